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
  int fp32_lanes_per_sm = 0;    // from the compute capability; 0 when this cugmm does not know it
  double peak_fp32_tflops = 0;  // SMs x FP32 lanes per SM x 2 (an FMA) x clock; 0 when the lanes are unknown
  std::string peak_source;      // how the peak was found, e.g. "132 SMs x 128 FP32 lanes (sm_90) x 2 x 1.98 GHz"
  size_t memory_bytes = 0;
};

// Queried once and cached. Any error from the driver means "no GPU" (DESIGN §6).
const CudaInfo& cuda_info();
inline bool cuda_available() { return cuda_info().available; }

// FP32 lanes (CUDA cores) per SM of a compute capability: 64 on 6.0, 7.x and 8.0 (V100, T4, A100),
// 128 on 5.x, 6.1/6.2, 8.6-8.9, 9.0, 10.x and 12.x (consumer Ampere and Ada, H100/H200, Blackwell);
// 0 for one not in that list, so a figure built on it says "unknown" instead of guessing.
int fp32_lanes_per_sm(int cc_major, int cc_minor);

// Parses "auto" | "cpu" | "cuda"; throws on anything else or on "cuda" without a usable GPU.
Device pick_device(const std::string& choice);
const char* device_name(Device d);

// Makes GPU `index` (0-based) the calling thread's current device (CUDA keeps it per host thread: work
// queued from this thread, and streams made here, go to it). Throws naming the index and the count when
// there is no such GPU, or in a build without CUDA.
void use_cuda_device(int index);

}  // namespace cugmm
