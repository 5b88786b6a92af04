// The fit-map loss and its gradient (kernels/gaussian_fourier3d.h for the maths): least squares between
// the model's analytic 3-D transform and the map's, over a ball of the half-space. Unlike the FSC it sees
// the overall scale and a common width change.
//
// Band layout: rows (ky, kz) with ky^2 + kz^2 <= kmax^2, each holding kx = 0..len-1 contiguously
// (|K| <= kmax, in pixels). kmax stays below N/2, so the kx = N/2 plane never enters and the weight is
// 1 on kx = 0 and 2 elsewhere: sums equal sums over the full transform.
//
// Target: T(K) = (-1)^(kx+ky+kz) DFT(map)[K]; a map holds mass per voxel, so this is the continuous
// transform of the density about voxel N/2, directly comparable with F (engine/render.h's scale).
#pragma once
#include <complex>
#include <cstdint>
#include <memory>
#include <vector>

#include "core/context.h"

namespace cugmm {

struct Band3d {
  int box = 0;
  double pixel_size = 0;
  double kmax = 0;                      // pixels
  std::vector<int16_t> ky, kz;          // per row
  std::vector<int32_t> start, len;      // per row: offset into the coefficient arrays, kx count
  size_t size = 0;                      // coefficients
  // Per coefficient: the half-space weight (1 on kx = 0, else 2) times an optional per-shell weight
  // (weight_shells), so every backend reads one array.
  std::vector<float> weight;
  int kmax_int() const { return int(kmax); }
};

// Rows for |K| <= N / resolution_px, capped below N/2.
Band3d make_band3d(int box, double pixel_size, double resolution);
// Multiplies each coefficient's weight by shell_weight[round(|K|)] (shells in pixels).
void weight_shells(Band3d& b, const std::vector<double>& shell_weight);

// The target from a half-space transform of the (masked) map (fft3_r2c layout, n x n x (n/2+1)).
void band3d_gather(const Band3d& b, const std::complex<float>* half, std::vector<float>& tr, std::vector<float>& ti);

// Gaussian parameters as structure-of-arrays pointers (c in Å from voxel N/2, a mass, s Å).
template <class T>
struct GaussSoA {
  const T *x, *y, *z, *a, *s;
  size_t count;
};
template <class T>
struct GaussGrad {
  T *x, *y, *z, *a, *s;
};

// CPU reference, templated (float for fitting, double for gradient tests). Forward writes F; loss_grad
// computes F, returns L and writes dL/d(parameters). norm = sum w |T|^2 (0: computed here).
template <class T>
void gf3_forward_cpu(const Band3d& b, const GaussSoA<T>& p, T* fr, T* fi);
template <class T>
double gf3_loss_grad_cpu(const Band3d& b, const GaussSoA<T>& p, const T* tr, const T* ti, GaussGrad<T> g);
double band3d_norm(const Band3d& b, const float* tr, const float* ti);

// A backend that holds one band and target and evaluates loss + gradient repeatedly (float).
class Fourier3dLoss {
 public:
  virtual ~Fourier3dLoss() = default;
  virtual double loss_grad(const GaussSoA<float>& p, GaussGrad<float> g) = 0;
  static std::unique_ptr<Fourier3dLoss> create(Context& ctx, const Band3d& b, std::vector<float> tr,
                                               std::vector<float> ti);
};

// The CPU backend (engine/gaussian_fourier3d_gemm.cpp): the same sums as gf3_loss_grad_cpu, as real
// GEMMs per kz slab (DESIGN §2 (b)): at 128^3, res 3 px, G = 3,200 one step took 0.30-0.33 s against
// 0.63 s for the row loops (lane-split) on the shared 2-core machine, about 2x.
std::unique_ptr<Fourier3dLoss> make_fourier3d_loss_cpu(const Band3d& b, std::vector<float> tr, std::vector<float> ti);
#ifdef CUGMM_HAVE_CUDA
std::unique_ptr<Fourier3dLoss> make_fourier3d_loss_cuda(Context& ctx, const Band3d& b, const std::vector<float>& tr,
                                                        const std::vector<float>& ti);
#endif

}  // namespace cugmm
