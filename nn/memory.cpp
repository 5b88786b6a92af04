#include "nn/memory.h"

#include <cstdlib>
#include <cstring>

#include "engine/error.h"

namespace cugmm::nn {

#ifdef CUGMM_HAVE_CUDA
namespace cuda {  // nn/memory_cuda.cu
void* alloc(size_t bytes);
void free(void* p) noexcept;
void zero(void* p, size_t bytes);
void copy(void* dst, bool dst_dev, const void* src, bool src_dev, size_t bytes);
void sync();
}  // namespace cuda
#define CUGMM_NN_CUDA_OR_THROW(expr) expr
#else
#define CUGMM_NN_CUDA_OR_THROW(expr) throw Error("this cugmm was built without the CUDA backend")
#endif

void* mem_alloc(Device d, size_t bytes) {
  if (bytes == 0) return nullptr;
  if (d == Device::cuda) { CUGMM_NN_CUDA_OR_THROW(return cuda::alloc(bytes)); }
  // 64-byte alignment for AVX-512 loads; aligned_alloc wants a multiple of the alignment.
  void* p = std::aligned_alloc(64, (bytes + 63) / 64 * 64);
  if (!p) throw Error("out of host memory allocating " + std::to_string(bytes) + " bytes");
  return p;
}

void mem_free(Device d, void* p) noexcept {
  if (!p) return;
#ifdef CUGMM_HAVE_CUDA
  if (d == Device::cuda) { cuda::free(p); return; }
#endif
  std::free(p);
}

void mem_zero(Device d, void* p, size_t bytes) {
  if (!bytes) return;
  if (d == Device::cuda) { CUGMM_NN_CUDA_OR_THROW(cuda::zero(p, bytes); return); }
  std::memset(p, 0, bytes);
}

void mem_copy(Device dst_dev, void* dst, Device src_dev, const void* src, size_t bytes) {
  if (!bytes) return;
  if (dst_dev == Device::cpu && src_dev == Device::cpu) { std::memcpy(dst, src, bytes); return; }
  CUGMM_NN_CUDA_OR_THROW(cuda::copy(dst, dst_dev == Device::cuda, src, src_dev == Device::cuda, bytes));
}

void device_sync(Device d) {
  if (d == Device::cuda) { CUGMM_NN_CUDA_OR_THROW(cuda::sync()); }
}

}  // namespace cugmm::nn
