#include <cuda_runtime.h>

#include <cstdint>

#include "core/cuda_check.h"

namespace cugmm::detail {

void* create_stream() {
  cudaStream_t s = nullptr;
  CUGMM_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  return s;
}

void destroy_stream(void* s) noexcept { cudaStreamDestroy(static_cast<cudaStream_t>(s)); }

// Zeroed on the context's stream, so the first kernel that ORs into it is ordered after the fill.
void create_flags(uint32_t** dev, uint32_t** host, void* stream) {
  CUGMM_CHECK(cudaMallocHost(host, sizeof(uint32_t)));
  **host = 0;
  if (cudaError_t e = cudaMalloc(dev, sizeof(uint32_t)); e != cudaSuccess) {
    cudaFreeHost(*host);
    CUGMM_CHECK(e);
  }
  if (cudaError_t e = cudaMemsetAsync(*dev, 0, sizeof(uint32_t), static_cast<cudaStream_t>(stream)); e != cudaSuccess) {
    cudaFree(*dev);
    cudaFreeHost(*host);
    CUGMM_CHECK(e);
  }
}

void destroy_flags(uint32_t* dev, uint32_t* host) noexcept {
  cudaFree(dev);
  cudaFreeHost(host);
}

// The flag word travels back with the work already queued (one small async copy), then is cleared.
uint32_t sync_and_take_flags(void* stream, uint32_t* dev, uint32_t* host) {
  auto s = static_cast<cudaStream_t>(stream);
  CUGMM_CHECK(cudaMemcpyAsync(host, dev, sizeof(uint32_t), cudaMemcpyDeviceToHost, s));
  CUGMM_CHECK(cudaStreamSynchronize(s));
  const uint32_t f = *host;
  if (f) CUGMM_CHECK(cudaMemsetAsync(dev, 0, sizeof(uint32_t), s));
  return f;
}

}  // namespace cugmm::detail
