#include "core/cuda_check.h"
#include "core/device.h"

#include <cstdio>
#include <string>

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
  info.fp32_lanes_per_sm = fp32_lanes_per_sm(p.major, p.minor);
  const std::string sm = "sm_" + std::to_string(p.major) + std::to_string(p.minor);
  if (info.fp32_lanes_per_sm > 0) {
    info.peak_fp32_tflops = info.sm_count * double(info.fp32_lanes_per_sm) * 2.0 * info.clock_ghz * 1e-3;
    char buf[160];
    std::snprintf(buf, sizeof buf, "%d SMs x %d FP32 lanes (%s) x 2 x %.3f GHz", info.sm_count,
                  info.fp32_lanes_per_sm, sm.c_str(), info.clock_ghz);
    info.peak_source = buf;
  } else {
    info.peak_source = "unknown: FP32 lanes per SM of " + sm + " are not in cugmm's table (core/device.cpp)";
  }
  info.memory_bytes = p.totalGlobalMem;
  return info;
}

int set_cuda_device(int index) {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  if (index >= 0 && index < n) CUGMM_CHECK(cudaSetDevice(index));
  return n;
}

}  // namespace detail
}  // namespace cugmm
