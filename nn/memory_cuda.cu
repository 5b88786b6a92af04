#include <cuda_runtime.h>

#include "engine/cuda_check.h"

namespace cugmm::nn::cuda {

void* alloc(size_t bytes) {
  void* p = nullptr;
  CUGMM_CHECK(cudaMalloc(&p, bytes));
  return p;
}

void free(void* p) noexcept { cudaFree(p); }  // no throw from destructors

void zero(void* p, size_t bytes) { CUGMM_CHECK(cudaMemset(p, 0, bytes)); }

void copy(void* dst, bool dst_dev, const void* src, bool src_dev, size_t bytes) {
  cudaMemcpyKind k = dst_dev ? (src_dev ? cudaMemcpyDeviceToDevice : cudaMemcpyHostToDevice)
                             : cudaMemcpyDeviceToHost;
  CUGMM_CHECK(cudaMemcpy(dst, src, bytes, k));
}

void sync() { CUGMM_CHECK(cudaDeviceSynchronize()); }

}  // namespace cugmm::nn::cuda
