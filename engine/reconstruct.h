// 3-D reconstruction by direct Fourier inversion (`cugmm reconstruct`), CPU and CUDA back-projection.
//
//  1. Each image is zero-padded (factor `padding`), Fourier transformed, shifted by its origin, and
//     CTF * F inserted with weight CTF^2 into a padded half-space grid by trilinear weights times a
//     |k| density compensation (kernels/backproject.h).
//  2. solve(): Wiener-like division F = D / (W + tau_s) with tau_s = wiener_tau * mean(W over shell s):
//     a regulariser relative to the sampling of each shell, so it damps only voxels sampled far below
//     their shell's average (and removes the division by zero of unsampled ones) without attenuating
//     well-sampled ones by more than ~wiener_tau. It plays the part of RELION's 1/SNR term when no FSC is
//     known yet. Then the x = 0 plane is made Hermitian, an inverse FFT, crop to N^3, and the gridding
//     correction (divide by the trilinear kernel's sinc^2 per axis).
//
// Determinism: the CPU backend gives each thread a slab of z planes, so every voxel receives its sums in
// the same order whatever the thread count. The CUDA backend accumulates with float atomicAdd, whose
// order varies run to run (differences at rounding level; documented, accepted for back-projection).
#pragma once
#include <complex>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "core/context.h"
#include "core/device.h"
#include "io/particles.h"
#include "kernels/ctf.h"

namespace cugmm {

struct ReconstructOptions {
  int padding = 2;            // Np = padding * N
  double wiener_tau = 1e-3;   // relative regulariser (see above)
  double maxres = 0;          // Å; insert and keep only |k| <= 1/maxres; 0 = Nyquist
  CtfMode ctf = CtfMode::full;
};

// One image's geometry and CTF.
struct ImagePose {
  double rot = 0, tilt = 0, psi = 0;  // degrees, RELION
  double origin_x = 0, origin_y = 0;  // Å
  CtfParams ctf;
};

// The accumulated sums: data and weight on the padded half-space grid ([z][y][x], np/2 + 1 columns).
struct FourierGrid {
  int box = 0, padding = 2, np = 0;
  double pixel_size = 0;
  double r_max = 0;  // insertion radius, padded pixels
  std::vector<std::complex<float>> data;
  std::vector<float> weight;
  void add(const FourierGrid& o);  // same geometry
};

// Fewest Fourier shells a reconstruction must keep: below this an FSC is a handful of numbers near 1
// that would be reported as a resolution (--maxres 1e9 kept only shell 0: FSC 1 everywhere).
constexpr double kMinShells = 4;

// Throws cugmm::Error naming the option when the options cannot give a meaningful map of `box` pixels of
// `pixel_size` Å: padding outside 1..4, a non-finite or non-positive wiener_tau, a non-finite or negative
// maxres, or a maxres that keeps fewer than kMinShells shells. reconstruct_halves calls it first; the
// CLI calls it before reading anything.
void check_reconstruct_options(const ReconstructOptions& opt, int box, double pixel_size);

// Throws unless the FSC mask is usable for maps of `box` pixels: finite values in [0, 1] with some mass
// (an all-zero mask gives 0/0); a sphere's radius must cover at least 2 pixels and its edge be >= 0.
void check_mask(const std::vector<float>& mask, const std::string& what);
void check_sphere_mask(double radius_A, double edge_A, int box, double pixel_size);

// Radius (padded pixels) the options allow: padding * min(N/2, N * pixel / maxres).
double insertion_radius(int box, double pixel_size, const ReconstructOptions& opt);

class Backprojector {
 public:
  // On the context's device, queueing on its stream (the context must outlive the back-projector).
  // Throws cugmm::Error for a CUDA context in a build without CUDA.
  static std::unique_ptr<Backprojector> create(Context& cx, int box, double pixel_size,
                                               const ReconstructOptions& opt);
  virtual ~Backprojector() = default;
  // n images of box x box (x fastest), one pose each. Non-finite pixels are an Error.
  virtual void insert(const float* images, const ImagePose* poses, size_t n) = 0;
  // The sums so far (copied back from the GPU for CUDA).
  virtual FourierGrid grid() const = 0;
  size_t inserted() const { return inserted_; }

 protected:
  size_t inserted_ = 0;
};

// The reconstruction (N^3, x fastest) from accumulated sums (taken by value: move a grid in that is no
// longer needed, the padded grids are large).
std::vector<float> solve(FourierGrid grid, double wiener_tau);

// Throws InputError when two of `rows` are the same particle or name the same image (file and section):
// a particle in both halves makes the two half-maps share data, and the FSC then overstates the
// resolution (duplicated rows gave FSC 1.000 in every shell).
void require_distinct_particles(const io::ParticleSet& set, const std::vector<size_t>& rows);

// Which half each particle goes to (1 or 2): rlnRandomSubset when every particle has one (values 1/2),
// else alternating 1, 2, 1, ... in the given order.
std::vector<int> split_halves(const std::vector<int>& random_subset);

// Half-maps and the full map of the particles set.particles[rows]: images read from their stacks in
// batches, split by split_halves over those rows (rlnRandomSubset when every row has one). The CTF mode
// follows the data (phase-flipped optics groups: |CTF|; no defocus values: none) unless opt.ctf is
// none. All rows must share one box and pixel size. Shows progress. Makes the run's Context on `device`.
struct HalfMaps {
  int box = 0;
  double pixel_size = 0;
  size_t count[2] = {0, 0};   // particles in half 1 and half 2
  CtfMode ctf = CtfMode::none;
  std::vector<float> half1, half2, full;
};
HalfMaps reconstruct_halves(const io::ParticleSet& set, const std::vector<size_t>& rows, Device device,
                            const ReconstructOptions& opt);

}  // namespace cugmm
