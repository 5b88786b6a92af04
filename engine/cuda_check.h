// CUDA, cuBLAS, cuFFT and cuRAND status codes become cugmm::Error naming the call and the place.
// Include only from .cu files (or code compiled with CUGMM_HAVE_CUDA).
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cufft.h>
#include <curand.h>

#include <string>

#include "engine/error.h"

namespace cugmm::detail {
const char* cublas_status_name(cublasStatus_t s);
const char* cufft_status_name(cufftResult s);
const char* curand_status_name(curandStatus_t s);
inline const char* status_name(cudaError_t s) { return cudaGetErrorString(s); }
inline const char* status_name(cublasStatus_t s) { return cublas_status_name(s); }
inline const char* status_name(cufftResult s) { return cufft_status_name(s); }
inline const char* status_name(curandStatus_t s) { return curand_status_name(s); }
inline bool ok(cudaError_t s) { return s == cudaSuccess; }
inline bool ok(cublasStatus_t s) { return s == CUBLAS_STATUS_SUCCESS; }
inline bool ok(cufftResult s) { return s == CUFFT_SUCCESS; }
inline bool ok(curandStatus_t s) { return s == CURAND_STATUS_SUCCESS; }
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
