// Stream-ordered allocation (cudaMallocAsync/cudaFreeAsync): freeing a buffer does not synchronise the
// device the way cudaFree does, and reuse follows the stream's order.
#include <cuda_runtime.h>

#include <cstdint>

#include "core/cuda_check.h"

namespace cugmm::detail {

void* cuda_alloc(size_t bytes, void* stream) {
  void* p = nullptr;
  cudaError_t e = cudaMallocAsync(&p, bytes, static_cast<cudaStream_t>(stream));
  if (e == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    size_t free_b = 0, total_b = 0;
    cudaMemGetInfo(&free_b, &total_b);
    throw Error("out of GPU memory: " + std::to_string(bytes >> 20) + " MiB more were needed, " +
                std::to_string(free_b >> 20) + " MiB of " + std::to_string(total_b >> 20) + " MiB are free");
  }
  CUGMM_CHECK(e);
  return p;
}

void cuda_free(void* p, void* stream) noexcept { cudaFreeAsync(p, static_cast<cudaStream_t>(stream)); }

void cuda_zero(void* p, size_t bytes, void* stream) {
  CUGMM_CHECK(cudaMemsetAsync(p, 0, bytes, static_cast<cudaStream_t>(stream)));
}

void cuda_copy(void* dst, bool dst_dev, const void* src, bool src_dev, size_t bytes, void* stream) {
  auto s = static_cast<cudaStream_t>(stream);
  cudaMemcpyKind k = dst_dev ? (src_dev ? cudaMemcpyDeviceToDevice : cudaMemcpyHostToDevice)
                             : (src_dev ? cudaMemcpyDeviceToHost : cudaMemcpyHostToHost);
  CUGMM_CHECK(cudaMemcpyAsync(dst, src, bytes, k, s));
  if (!dst_dev) CUGMM_CHECK(cudaStreamSynchronize(s));  // the caller reads the host copy on return
}

void* cuda_pinned_alloc(size_t bytes) {
  void* p = nullptr;
  CUGMM_CHECK(cudaMallocHost(&p, bytes));
  return p;
}

void cuda_pinned_free(void* p) noexcept { cudaFreeHost(p); }

void cuda_copy_async(void* dst, bool dst_dev, const void* src, bool src_dev, size_t bytes, void* stream) {
  cudaMemcpyKind k = dst_dev ? (src_dev ? cudaMemcpyDeviceToDevice : cudaMemcpyHostToDevice)
                             : (src_dev ? cudaMemcpyDeviceToHost : cudaMemcpyHostToHost);
  CUGMM_CHECK(cudaMemcpyAsync(dst, src, bytes, k, static_cast<cudaStream_t>(stream)));
}

bool cuda_is_device_pointer(const void* p) {
  cudaPointerAttributes a{};
  if (cudaPointerGetAttributes(&a, p) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  return a.type == cudaMemoryTypeDevice || a.type == cudaMemoryTypeManaged;
}

// The default memory pool of the current device (the one cudaMallocAsync draws from): its high-water mark
// of memory in use. No GPU, or no pool: 0.
size_t cuda_pool_used_high(bool reset) {
  int dev = 0;
  cudaMemPool_t pool{};
  if (cudaGetDevice(&dev) != cudaSuccess || cudaDeviceGetDefaultMemPool(&pool, dev) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  std::uint64_t v = 0;  // the size of cuuint64_t, which cudaMemPoolAttrUsedMemHigh reads and writes
  if (reset) {
    cudaMemPoolSetAttribute(pool, cudaMemPoolAttrUsedMemHigh, &v);  // only 0 may be set: restart the mark
    return 0;
  }
  if (cudaMemPoolGetAttribute(pool, cudaMemPoolAttrUsedMemHigh, &v) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return size_t(v);
}

size_t cuda_process_in_use() {
  size_t free_b = 0, total_b = 0;
  if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return total_b - free_b;
}

}  // namespace cugmm::detail
