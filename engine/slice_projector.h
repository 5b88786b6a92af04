// The simulator's own projector, independent of the Gaussian projector (engine/projector.h) that later
// scores the data: Fourier-slice projection of voxel maps. Each map (one rigid body of the molecule) is
// zero-padded `padding` times, divided by the transform of the trilinear interpolation kernel (sinc^2 per
// axis: the gridding correction) and transformed once; a particle's image is then the sum over bodies of
// the central slice at its view, each body moved by its own rigid motion, times the CTF, shifted by
// -origin and inverse-transformed. Cost per image: bodies x box^2 trilinear samples and one 2-D FFT.
//
// A body's motion is a rotation R about its pivot c followed by a translation t:
//   rho'(x) = rho(R^T (x - c - t) + c)   =>   rho'^(K) = exp(-2 pi i K.(c + t)) exp(2 pi i (R^T K).c) rho^(R^T K),
// so a moving body costs no more than a still one, its states are continuous, and weight 0 removes it
// (composition). A view A (RELION) samples the 3-D transform at K = A^T (kx, ky, 0).
#pragma once
#include <complex>
#include <vector>

#include "io/mrc.h"
#include "kernels/ctf.h"
#include "kernels/geometry.h"

namespace cugmm {

using cfloat = std::complex<float>;

struct BodyMotion {
  Mat3<double> rotation{{1, 0, 0, 0, 1, 0, 0, 0, 1}};  // about the body's pivot
  Vec3<double> translation{0, 0, 0};                   // Å, after the rotation
  double weight = 1;                                    // scales the body's density; 0 = absent
};

class SliceProjector {
 public:
  // Maps: box^3 each, one box and pixel size; pivots in Å from the box centre (voxel box/2), one per map.
  SliceProjector(const std::vector<io::Image>& bodies, const std::vector<Vec3<double>>& pivots, int padding = 2);

  int box() const { return box_; }
  double pixel() const { return pixel_; }
  size_t num_bodies() const { return bodies_.size(); }

  // The noise-free image of one particle (box^2 floats, x fastest, centre at pixel box/2): view A, origin
  // (Å; the image is the projection translated by -origin), one motion per body, and the CTF (mode none:
  // ctf is ignored). Frequencies beyond box/2 (the corners) are zero. Thread-safe.
  void project(const Mat3<double>& view, double origin_x, double origin_y, const std::vector<BodyMotion>& motion,
               const CtfParams& ctf, CtfMode mode, float* image) const;

  // The same before the inverse transform: the half-plane box x (box/2 + 1) that fft2_r2c of `image`
  // gives (origin at pixel 0). Thread-safe.
  void project_half(const Mat3<double>& view, double origin_x, double origin_y, const std::vector<BodyMotion>& motion,
                    const CtfParams& ctf, CtfMode mode, cfloat* half) const;

  // The two steps of project_half, for callers that reuse one body's slice across many states of another
  // (the oracle reference): add_body adds body b's slice (about the box centre, before origin and CTF) into
  // `centred` (box x (box/2 + 1), zeroed by the caller); finish turns the sum into project_half's output.
  void add_body(const Mat3<double>& view, size_t body, const BodyMotion& motion, std::complex<double>* centred) const;
  void finish(const std::complex<double>* centred, double origin_x, double origin_y, const CtfParams& ctf,
              CtfMode mode, cfloat* half) const;

 private:
  std::complex<double> sample(size_t body, double kx, double ky, double kz) const;  // padded-grid units
  std::complex<double> at(size_t body, int ix, int iy, int iz) const;
  int box_, pad_, p_;  // p_ = padded size
  double pixel_;
  std::vector<std::vector<cfloat>> bodies_;  // p^2 x (p/2 + 1) each
  std::vector<Vec3<double>> pivots_;
  std::vector<Vec3<double>> origins_;  // Å from the box centre: where each body's transform is taken
};

}  // namespace cugmm
