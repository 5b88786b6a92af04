#include "core/cuda_check.h"
#include "core/device.h"

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

}  // namespace detail
}  // namespace cugmm
