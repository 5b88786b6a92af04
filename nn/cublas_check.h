// cuBLAS status codes through CUGMM_CHECK (core/cuda_check.h). Include only from .cu files.
#pragma once
#include <cublas_v2.h>

#include "core/cuda_check.h"

namespace cugmm::detail {
inline const char* status_name(cublasStatus_t s) { return cublasGetStatusString(s); }
inline bool ok(cublasStatus_t s) { return s == CUBLAS_STATUS_SUCCESS; }
}  // namespace cugmm::detail
