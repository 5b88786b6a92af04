// `cugmm devices`: what this machine can compute on.
#include <omp.h>

#include <cstdio>

#include "cli/args.h"
#include "core/device.h"

namespace cugmm::cli {

static int run_devices(Args& args) {
  if (args.done("cugmm devices", 0)) return 0;
  std::printf("cpu: %d threads\n", omp_get_max_threads());
  const CudaInfo& c = cuda_info();
  if (c.available)
    std::printf("cuda: %s, sm_%d%d, %d SMs, %.2f GHz, %.1f TFLOP/s FP32 peak, %.1f GiB\n", c.name.c_str(),
                c.cc_major, c.cc_minor, c.sm_count, c.clock_ghz, c.peak_fp32_tflops,
                c.memory_bytes / double(1ull << 30));
  else
    std::printf("cuda: not available (%s)\n", c.reason.c_str());
  return 0;
}

static RegisterCommand reg("devices", "list the CPU and GPU this machine offers", run_devices);

}  // namespace cugmm::cli
