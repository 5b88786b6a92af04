#include "engine/cuda_check.h"
#include "engine/device.h"

namespace cugmm {
namespace detail {

CudaInfo query_cuda() {
  CudaInfo info;
  int n = 0;
  cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {  // e.g. "CUDA driver version is insufficient" on a machine with no driver
    info.reason = cudaGetErrorString(e);
    cudaGetLastError();    // clear the sticky error so later calls are not confused by it
    return info;
  }
  if (n == 0) { info.reason = "no CUDA device found"; return info; }
  int dev = 0;
  cudaDeviceProp p{};
  if (cudaGetDeviceProperties(&p, dev) != cudaSuccess) { info.reason = "cudaGetDeviceProperties failed"; return info; }
  int clock_khz = 0;
  cudaDeviceGetAttribute(&clock_khz, cudaDevAttrClockRate, dev);
  info.available = true;
  info.name = p.name;
  info.sm_count = p.multiProcessorCount;
  info.cc_major = p.major;
  info.cc_minor = p.minor;
  info.clock_ghz = clock_khz * 1e-6;
  info.peak_fp32_tflops = info.sm_count * 128.0 * 2.0 * info.clock_ghz * 1e-3;
  info.memory_bytes = p.totalGlobalMem;
  return info;
}

const char* cublas_status_name(cublasStatus_t s) { return cublasGetStatusString(s); }

const char* cufft_status_name(cufftResult s) {
  switch (s) {
    case CUFFT_SUCCESS: return "CUFFT_SUCCESS";
    case CUFFT_INVALID_PLAN: return "CUFFT_INVALID_PLAN";
    case CUFFT_ALLOC_FAILED: return "CUFFT_ALLOC_FAILED";
    case CUFFT_INVALID_VALUE: return "CUFFT_INVALID_VALUE";
    case CUFFT_INTERNAL_ERROR: return "CUFFT_INTERNAL_ERROR";
    case CUFFT_EXEC_FAILED: return "CUFFT_EXEC_FAILED";
    case CUFFT_SETUP_FAILED: return "CUFFT_SETUP_FAILED";
    case CUFFT_INVALID_SIZE: return "CUFFT_INVALID_SIZE";
    default: return "cuFFT error";
  }
}

const char* curand_status_name(curandStatus_t s) {
  switch (s) {
    case CURAND_STATUS_SUCCESS: return "CURAND_STATUS_SUCCESS";
    case CURAND_STATUS_ALLOCATION_FAILED: return "CURAND_STATUS_ALLOCATION_FAILED";
    case CURAND_STATUS_LAUNCH_FAILURE: return "CURAND_STATUS_LAUNCH_FAILURE";
    default: return "cuRAND error";
  }
}

}  // namespace detail
}  // namespace cugmm
