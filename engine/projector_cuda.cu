#include "engine/error.h"
#include "engine/projector_backends.h"
namespace cugmm::detail {
std::unique_ptr<Projector> make_cuda_projector(const FourierBand&, int, const ProjectorOptions&) {
  CUGMM_FAIL("CUDA projector: not yet");
}
}  // namespace cugmm::detail
