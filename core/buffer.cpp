#include "core/buffer.h"

#include <cstdlib>
#include <cstring>
#include <string>

namespace cugmm {

#ifdef CUGMM_HAVE_CUDA
namespace detail {  // core/buffer_cuda.cu
void* cuda_alloc(size_t bytes, void* stream);
void cuda_free(void* p, void* stream) noexcept;
void cuda_zero(void* p, size_t bytes, void* stream);
void cuda_copy(void* dst, bool dst_dev, const void* src, bool src_dev, size_t bytes, void* stream);
bool cuda_is_device_pointer(const void* p);
void* cuda_pinned_alloc(size_t bytes);
void cuda_pinned_free(void* p) noexcept;
void cuda_copy_async(void* dst, bool dst_dev, const void* src, bool src_dev, size_t bytes, void* stream);
size_t cuda_pool_used_high(bool reset);
size_t cuda_process_in_use();
}  // namespace detail
#define CUGMM_CUDA_OR_THROW(expr) expr
#else
#define CUGMM_CUDA_OR_THROW(expr) throw Error("this cugmm was built without the CUDA backend")
#endif

void* mem_alloc(Device d, size_t bytes, void* stream) {
  if (bytes == 0) return nullptr;
  if (d == Device::cuda) { CUGMM_CUDA_OR_THROW(return detail::cuda_alloc(bytes, stream)); }
  // 64-byte alignment for AVX-512 loads; aligned_alloc wants a multiple of the alignment.
  void* p = std::aligned_alloc(64, (bytes + 63) / 64 * 64);
  if (!p) throw Error("out of host memory: " + std::to_string(bytes >> 20) + " MiB more were needed");
  return p;
}

void mem_free(Device d, void* p, void* stream) noexcept {
  if (!p) return;
#ifdef CUGMM_HAVE_CUDA
  if (d == Device::cuda) { detail::cuda_free(p, stream); return; }
#endif
  std::free(p);
}

void mem_zero(Device d, void* p, size_t bytes, void* stream) {
  if (!bytes) return;
  if (d == Device::cuda) { CUGMM_CUDA_OR_THROW(detail::cuda_zero(p, bytes, stream); return); }
  std::memset(p, 0, bytes);
}

void mem_copy(Device dst_dev, void* dst, Device src_dev, const void* src, size_t bytes, void* stream) {
  if (!bytes) return;
  if (dst_dev == Device::cpu && src_dev == Device::cpu) { std::memcpy(dst, src, bytes); return; }
  CUGMM_CUDA_OR_THROW(detail::cuda_copy(dst, dst_dev == Device::cuda, src, src_dev == Device::cuda, bytes, stream));
}

void* pinned_alloc(Device d, size_t bytes) {
  if (bytes == 0) return nullptr;
  if (d == Device::cuda) { CUGMM_CUDA_OR_THROW(return detail::cuda_pinned_alloc(bytes)); }
  return mem_alloc(Device::cpu, bytes, nullptr);
}

void pinned_free(Device d, void* p) noexcept {
  if (!p) return;
#ifdef CUGMM_HAVE_CUDA
  if (d == Device::cuda) { detail::cuda_pinned_free(p); return; }
#endif
  std::free(p);
}

void mem_copy_async(Device dst_dev, void* dst, Device src_dev, const void* src, size_t bytes, void* stream) {
  if (!bytes) return;
  if (dst_dev == Device::cpu && src_dev == Device::cpu) { std::memcpy(dst, src, bytes); return; }
  CUGMM_CUDA_OR_THROW(detail::cuda_copy_async(dst, dst_dev == Device::cuda, src, src_dev == Device::cuda, bytes, stream));
}

void check_pointer(Device d, const void* p, const char* what) {
  if (!p) return;
#ifdef CUGMM_HAVE_CUDA
  const bool on_device = detail::cuda_is_device_pointer(p);
  if (on_device != (d == Device::cuda))
    throw Error(std::string(what) + ": a " + (on_device ? "GPU" : "host") + " pointer was given where " +
                (d == Device::cuda ? "GPU" : "host") + " memory is expected");
#else
  (void)d;
  (void)what;
#endif
}

#ifdef CUGMM_HAVE_CUDA
size_t device_peak_bytes() { return detail::cuda_pool_used_high(false); }
size_t device_in_use_bytes() { return detail::cuda_process_in_use(); }
void reset_device_peak() { detail::cuda_pool_used_high(true); }
#else
size_t device_peak_bytes() { return 0; }
size_t device_in_use_bytes() { return 0; }
void reset_device_peak() {}
#endif

}  // namespace cugmm
