// What engine/projector.cpp shares with the two backends (internal to engine/).
#pragma once
#include <memory>

#include "engine/projector.h"

namespace cugmm::detail {

ProjectionStrategy resolve_strategy(ProjectionStrategy s, const FourierBand& band);
bool view_is_finite(const ParticleView& v);
// Throws cugmm::Error on a malformed batch or a non-finite parameter or view (host pointers).
void check_host_inputs(const ProjectionBatch& in, const ProjectionOutputs* out, int num_gaussians, bool need_data);
// The narrowest |width| in Å over `rows` parameter rows (for the splat's widening).
float min_abs_width(const float* params, size_t rows, size_t stride, int num_gaussians);

std::unique_ptr<Projector> make_cpu_projector(const FourierBand& band, int num_gaussians,
                                              const ProjectorOptions& options);
#ifdef CUGMM_HAVE_CUDA
std::unique_ptr<Projector> make_cuda_projector(const FourierBand& band, int num_gaussians,
                                               const ProjectorOptions& options);
#endif

}  // namespace cugmm::detail
