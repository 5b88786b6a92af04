#include "core/context.h"

#include "core/error.h"

namespace cugmm {

#ifdef CUGMM_HAVE_CUDA
namespace detail {  // core/context_cuda.cu
void* create_stream();
void destroy_stream(void* s) noexcept;
void create_flags(uint32_t** dev, uint32_t** host, void* stream);
void destroy_flags(uint32_t* dev, uint32_t* host) noexcept;
uint32_t sync_and_take_flags(void* stream, uint32_t* dev, uint32_t* host);
}  // namespace detail
#endif

std::string describe_device_flags(uint32_t f) {
  std::string s;
  auto add = [&](uint32_t bit, const char* what) {
    if (f & bit) s += (s.empty() ? "" : "; ") + std::string(what);
  };
  add(kFlagNonFiniteParams, "a Gaussian parameter is not finite");
  add(kFlagWidthOutOfBounds, "a Gaussian width is outside the projector's bounds");
  add(kFlagNonFiniteView, "a particle's pose or CTF is not finite");
  add(kFlagNonFiniteData, "particle data are not finite");
  add(kFlagNonFiniteGradient, "a gradient is not finite (the optimizer did not apply it)");
  return s;
}

Context::Context(Device device) : device_(device) {
  if (device_ == Device::cpu) return;
#ifdef CUGMM_HAVE_CUDA
  stream_ = detail::create_stream();
  own_stream_ = true;
  try {
    detail::create_flags(&flags_, &flags_host_, stream_);
  } catch (...) {
    detail::destroy_stream(stream_);
    throw;
  }
#else
  throw Error("this cugmm was built without the CUDA backend");
#endif
}

Context::Context(Device device, void* cuda_stream) : device_(device) {
  if (device_ == Device::cpu) return;
#ifdef CUGMM_HAVE_CUDA
  stream_ = cuda_stream;
  detail::create_flags(&flags_, &flags_host_, stream_);
#else
  (void)cuda_stream;
  throw Error("this cugmm was built without the CUDA backend");
#endif
}

Context::~Context() {
  resources_.clear();  // handles bound to the stream go before it
#ifdef CUGMM_HAVE_CUDA
  if (own_stream_) detail::destroy_stream(stream_);
  if (flags_) detail::destroy_flags(flags_, flags_host_);
#endif
}

void Context::synchronize() {
  if (device_ == Device::cpu) return;
#ifdef CUGMM_HAVE_CUDA
  const uint32_t f = detail::sync_and_take_flags(stream_, flags_, flags_host_);
  if (f) throw Error("invalid input found on the GPU: " + describe_device_flags(f));
#endif
}

Context& cpu_context() {
  static Context cx(Device::cpu);
  return cx;
}

}  // namespace cugmm
