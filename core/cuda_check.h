// CUDA status codes become cugmm::Error naming the call and the place. nn/cublas_check.h and
// engine/cufft_check.h add cuBLAS's and cuFFT's codes to the same CUGMM_CHECK (only the layers that use
// those libraries link them). Include only from .cu files (or code compiled with CUGMM_HAVE_CUDA).
#pragma once
#include <cuda_runtime.h>

#include <string>

#include "core/error.h"

namespace cugmm::detail {
inline const char* status_name(cudaError_t s) { return cudaGetErrorString(s); }
inline bool ok(cudaError_t s) { return s == cudaSuccess; }
}  // namespace cugmm::detail

#define CUGMM_CHECK(call)                                                                        \
  do {                                                                                            \
    auto cugmm_status_ = (call);                                                                  \
    if (!::cugmm::detail::ok(cugmm_status_))                                                      \
      ::cugmm::throw_error(std::string(#call) + " failed: " +                                     \
                               ::cugmm::detail::status_name(cugmm_status_), __FILE__, __LINE__);  \
  } while (0)

// After a kernel launch: catches bad launch configurations at the launch site.
#define CUGMM_CHECK_LAUNCH() CUGMM_CHECK(cudaGetLastError())
