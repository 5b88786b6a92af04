// cuBLAS status codes through CUGMM_CHECK (core/cuda_check.h). Include only from .cu files.
#pragma once
#include "core/cuda_check.h"
#include "nn/cublas_api.h"

namespace cugmm::detail {
// A status only exists once cuBLAS is loaded, so its own name for it is at hand.
inline const char* status_name(cublasStatus_t s) { return nn::cublas().status_string(s); }
inline bool ok(cublasStatus_t s) { return s == CUBLAS_STATUS_SUCCESS; }
}  // namespace cugmm::detail
