// What engine/projector.cpp shares with the two backends (internal to engine/).
#pragma once
#include <cmath>
#include <memory>

#include "engine/projector.h"
#include "kernels/gaussian_projection.h"
#include "kernels/hd.h"

namespace cugmm::detail {

ProjectionStrategy resolve_strategy(ProjectionStrategy s);

// Shared by the host check and the CUDA validation kernel.
CUGMM_HD bool view_is_finite(const ParticleView& v) {
  bool ok = std::isfinite(v.origin_x) && std::isfinite(v.origin_y);
  for (int i = 0; i < 9; ++i) ok = ok && std::isfinite(v.rotation.m[i]);
  const float c[] = {v.ctf.k1, v.ctf.k2, v.ctf.offset, v.ctf.def_avg, v.ctf.def_dev, v.ctf.angle,
                     v.ctf.bfac_quarter, v.ctf.scale};
  for (int i = 0; i < 8; ++i) ok = ok && std::isfinite(c[i]);
  const int mode = int(v.ctf_mode);
  return ok && mode >= 0 && mode <= 2;
}
// Throws cugmm::Error naming the row, Gaussian, particle or coefficient on a malformed batch, a Gaussian
// failing gaussian_in_bounds, a non-finite view or (need_data) non-finite data (host pointers).
void check_host_inputs(const ProjectionBatch& in, const ProjectionOutputs* out, const FourierBand& band,
                       int num_gaussians, bool need_data);
// The narrowest width in Å over `rows` parameter rows (for the splat's widening; inputs already checked).
float min_width(const float* params, size_t rows, size_t stride, int num_gaussians);

std::unique_ptr<Projector> make_cpu_projector(Context& cx, const FourierBand& band, int num_gaussians,
                                              const ProjectorOptions& options);
#ifdef CUGMM_HAVE_CUDA
std::unique_ptr<Projector> make_cuda_projector(Context& cx, const FourierBand& band, int num_gaussians,
                                               const ProjectorOptions& options);
#endif

}  // namespace cugmm::detail
