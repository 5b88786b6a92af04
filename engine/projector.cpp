// The projector's backend-independent parts: views, strategy names, input checks and the factory.
#include "engine/projector.h"

#include <cmath>

#include "core/error.h"
#include "engine/projector_backends.h"

namespace cugmm {

ParticleView make_particle_view(double rot, double tilt, double psi, double origin_x, double origin_y,
                                const CtfParams& ctf, CtfMode mode) {
  ParticleView v;
  Mat3<double> a = euler_to_matrix(rot, tilt, psi);
  for (int i = 0; i < 9; ++i) v.rotation.m[i] = float(a.m[i]);
  v.origin_x = float(origin_x);
  v.origin_y = float(origin_y);
  v.ctf = make_ctf_consts<float>(ctf);
  v.ctf_mode = mode;
  return v;
}

const char* strategy_name(ProjectionStrategy s) {
  switch (s) {
    case ProjectionStrategy::splat_fft: return "splat_fft";
    case ProjectionStrategy::separable_fourier: return "separable_fourier";
    default: return "automatic";
  }
}

namespace detail {

ProjectionStrategy resolve_strategy(ProjectionStrategy s, const FourierBand& band) {
  if (s != ProjectionStrategy::automatic) return s;
  // Below ~16 rings the exact sum costs less than splatting and two FFTs (DESIGN §2).
  return band.ring_max <= 16 ? ProjectionStrategy::separable_fourier : ProjectionStrategy::splat_fft;
}

void check_host_inputs(const ProjectionBatch& in, const ProjectionOutputs* out, int num_gaussians, bool need_data) {
  CUGMM_REQUIRE(in.count >= 0, "negative batch size");
  if (in.count == 0) return;
  const size_t row = size_t(5) * num_gaussians;
  CUGMM_REQUIRE(in.params && in.views, "projector: missing parameters or views");
  CUGMM_REQUIRE(in.params_stride == 0 || in.params_stride == row,
                "projector: params_stride must be 0 (shared) or 5G = " + std::to_string(row));
  CUGMM_REQUIRE(!need_data || in.data, "projector: missing particle data");
  if (out) CUGMM_REQUIRE(out->score, "projector: the score output is required");
  const size_t rows = in.params_stride ? size_t(in.count) : 1;
  for (size_t i = 0; i < rows * row; ++i)
    if (!std::isfinite(in.params[i]))
      CUGMM_FAIL("projector: non-finite Gaussian parameter (row " + std::to_string(i / row) + ", column " +
                 std::to_string(i % row) + ")");
  for (int i = 0; i < in.count; ++i)
    if (!view_is_finite(in.views[i])) CUGMM_FAIL("projector: non-finite pose or CTF for particle " + std::to_string(i));
}

float min_abs_width(const float* params, size_t rows, size_t stride, int num_gaussians) {
  float m = INFINITY;
  for (size_t r = 0; r < rows; ++r) {
    const float* s = params + r * stride + 4 * size_t(num_gaussians);
    for (int j = 0; j < num_gaussians; ++j) m = std::fmin(m, std::fabs(s[j]));
  }
  return m;
}

}  // namespace detail

std::unique_ptr<Projector> make_projector(Device device, const FourierBand& band, int num_gaussians,
                                          const ProjectorOptions& options) {
  CUGMM_REQUIRE(num_gaussians > 0, "the projector needs at least one Gaussian");
  CUGMM_REQUIRE(band.size() > 0 && band.box >= 4, "the projector needs a non-empty Fourier band");
  CUGMM_REQUIRE(options.max_batch > 0, "projector: max_batch must be positive");
  if (device == Device::cpu) return detail::make_cpu_projector(band, num_gaussians, options);
#ifdef CUGMM_HAVE_CUDA
  CUGMM_REQUIRE(cuda_available(), "CUDA projector requested but no GPU is usable: " + cuda_info().reason);
  return detail::make_cuda_projector(band, num_gaussians, options);
#else
  CUGMM_FAIL("this build of cugmm has no CUDA backend");
#endif
}

}  // namespace cugmm
