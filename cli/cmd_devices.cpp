// `cugmm devices`: what this machine can compute on.
#include <omp.h>

#include <cstdio>

#include "cli/command.h"
#include "core/device.h"

namespace cugmm::cli {

static int run_devices(Command& c) {
  if (c.parse()) return 0;
  std::printf("cpu: %d threads\n", omp_get_max_threads());
  const CudaInfo& ci = cuda_info();
  if (ci.available)
    std::printf("cuda: %s, sm_%d%d, %d SMs, %.2f GHz, %.1f TFLOP/s FP32 peak, %.1f GiB\n", ci.name.c_str(),
                ci.cc_major, ci.cc_minor, ci.sm_count, ci.clock_ghz, ci.peak_fp32_tflops,
                ci.memory_bytes / double(1ull << 30));
  else
    std::printf("cuda: not available (%s)\n", ci.reason.c_str());
  return 0;
}

static RegisterCommand reg("devices", "list the CPU and GPU this machine offers", run_devices);

}  // namespace cugmm::cli
