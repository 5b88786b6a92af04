// Which backend computes: `--device auto|cpu|cuda`. Without a GPU (or a build without CUDA), auto picks
// the CPU and says so once; cuda is then an error.
#pragma once
#include <cstddef>
#include <string>

namespace cugmm {

enum class Device { cpu, cuda };

struct CudaInfo {
  bool available = false;
  std::string reason;        // why not, when not available
  std::string name;          // e.g. "NVIDIA H100 80GB HBM3"
  int sm_count = 0;
  int cc_major = 0, cc_minor = 0;
  double clock_ghz = 0;
  double peak_fp32_tflops = 0;  // SMs x 128 FP32 lanes x 2 x clock (DESIGN §4)
  size_t memory_bytes = 0;
};

// Queried once and cached. Any error from the driver means "no GPU" (DESIGN §6).
const CudaInfo& cuda_info();
inline bool cuda_available() { return cuda_info().available; }

// Parses "auto" | "cpu" | "cuda"; throws on anything else or on "cuda" without a usable GPU.
Device pick_device(const std::string& choice);
const char* device_name(Device d);

}  // namespace cugmm
