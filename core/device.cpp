#include "core/device.h"

#include "core/error.h"
#include "core/log.h"

namespace cugmm {

#ifdef CUGMM_HAVE_CUDA
namespace detail {  // core/device_cuda.cu
CudaInfo query_cuda();
int set_cuda_device(int index);  // the device count; sets the device when index is below it
}  // namespace detail
#endif

int fp32_lanes_per_sm(int major, int minor) {
  switch (major) {
    case 5: return 128;
    case 6: return minor == 0 ? 64 : 128;
    case 7: return 64;
    case 8: return minor == 0 ? 64 : 128;
    case 9: case 10: case 12: return 128;
    default: return 0;
  }
}

const CudaInfo& cuda_info() {
  static const CudaInfo info = [] {
#ifdef CUGMM_HAVE_CUDA
    return detail::query_cuda();
#else
    CudaInfo i;
    i.reason = "this cugmm was built without the CUDA backend";
    return i;
#endif
  }();
  return info;
}

Device pick_device(const std::string& choice) {
  if (choice == "cpu") return Device::cpu;
  if (choice == "cuda") {
    if (!cuda_available()) throw Error("--device cuda: no usable GPU (" + cuda_info().reason + ")");
    return Device::cuda;
  }
  if (choice == "auto") {
    if (cuda_available()) return Device::cuda;
    // Nobody asked for a GPU: falling back is normal, so it is said only with --debug (and once).
    static bool said = false;
    if (!said && debug_enabled()) log_info("no usable GPU (" + cuda_info().reason + "): running on the CPU");
    said = true;
    return Device::cpu;
  }
  throw Error("--device must be auto, cpu or cuda, not '" + quote_value(choice) + "'");
}

const char* device_name(Device d) { return d == Device::cuda ? "cuda" : "cpu"; }

void use_cuda_device(int index) {
  if (!cuda_available()) throw Error("cuda:" + std::to_string(index) + ": no usable GPU (" + cuda_info().reason + ")");
#ifdef CUGMM_HAVE_CUDA
  const int count = detail::set_cuda_device(index);
  if (index < 0 || index >= count)
    throw Error("cuda:" + std::to_string(index) + ": there is no such GPU (this machine has " + std::to_string(count) +
                ", numbered from 0)");
#endif
}

}  // namespace cugmm
