// One Context per run: the device every layer computes on and, on CUDA, the single stream that the
// projector, nn and reconstruction all queue their work on. One stream orders a chain such as
// decoder GEMM -> projector -> decoder backward without a host sync; a side stream, where a later
// feature wants one, waits on an event recorded here. Libraries above core/ keep their per-stream state
// (nn's cuBLAS handle, bound to this stream) as a resource of the context, destroyed with it.
//
// Device-side input checks (non-finite values, widths out of bounds) set bits in flags() instead of
// stopping the host; synchronize() reads them with the results it waits for anyway and throws
// cugmm::Error naming what was wrong. Kernels skip flagged inputs, so nothing reads out of bounds.
//
// Thread safety: a Context and everything using it belong to one host thread at a time.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <typeindex>
#include <unordered_map>

#include "core/device.h"

namespace cugmm {

// Bits of Context::flags(), set by validation kernels.
enum DeviceFlag : uint32_t {
  kFlagNonFiniteParams = 1u << 0,
  kFlagWidthOutOfBounds = 1u << 1,
  kFlagNonFiniteView = 1u << 2,
  kFlagNonFiniteData = 1u << 3,
  kFlagNonFiniteGradient = 1u << 4,
};
std::string describe_device_flags(uint32_t flags);  // "non-finite Gaussian parameter; ..."

class Context {
 public:
  // CPU: nothing to create. CUDA: one non-blocking stream of its own on the current device.
  explicit Context(Device device = Device::cpu);
  // CUDA on a stream the caller owns (it outlives the Context; not destroyed here).
  Context(Device device, void* cuda_stream);
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  Device device() const { return device_; }
  bool cuda() const { return device_ == Device::cuda; }
  void* stream() const { return stream_; }  // cudaStream_t; null on the CPU

  // Waits for the queued work, then throws if a device-side check flagged an input since the last call.
  void synchronize();
  // The device word validation kernels OR their DeviceFlag bits into (null on the CPU).
  uint32_t* flags() { return flags_; }

  // Per-context state of a higher layer, made once by `make()` (returning std::unique_ptr<T>) and
  // destroyed with the context, before its stream.
  template <class T, class Make>
  T& resource(Make&& make) {
    auto& slot = resources_[std::type_index(typeid(T))];
    if (!slot) slot = std::shared_ptr<void>(make().release(), [](void* p) { delete static_cast<T*>(p); });
    return *static_cast<T*>(slot.get());
  }

 private:
  Device device_;
  void* stream_ = nullptr;
  bool own_stream_ = false;
  uint32_t* flags_ = nullptr;       // device
  uint32_t* flags_host_ = nullptr;  // pinned
  std::unordered_map<std::type_index, std::shared_ptr<void>> resources_;
};

// The context of CPU work that has no run of its own (tests, small tools). Stateless.
Context& cpu_context();

}  // namespace cugmm
