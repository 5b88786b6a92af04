// The library API's engine as the rest of the code sees it (internal): the device, its Context, the job
// (callbacks and cancel flag, core/log.h) and the lock that serialises calls. `cugmm` commands make one
// too, so the program and the library run the same code on the same kind of object.
#pragma once
#include <memory>
#include <mutex>
#include <string>

#include "core/context.h"
#include "core/device.h"
#include "core/log.h"
#include "cugmm/engine.h"

namespace cugmm {

// "auto" | "cpu" | "cuda" | "cuda:N" -> the backend and the GPU index (0 for "cuda"); throws as
// pick_device does for anything else or a GPU that is not there.
Device parse_device(const std::string& choice, int& cuda_index);

struct Engine::Impl {
  explicit Impl(const EngineOptions& options);
  Device device = Device::cpu;
  int cuda_index = 0;
  int threads = 0;
  std::unique_ptr<Context> cx;  // made on the first call's thread, with its GPU current
  void* stream = nullptr;
  Job job;
  std::mutex calls;
  std::string name() const;     // "cpu", "cuda:0"
};

// One call on the calling thread, for its duration: calls of one engine serialised, the cancel flag
// cleared, the job current, OpenMP's thread count and the GPU set; the Context made on first use.
class EngineCall {
 public:
  explicit EngineCall(Engine::Impl& e);
  ~EngineCall();
  Context& cx() { return *e_.cx; }

 private:
  Engine::Impl& e_;
  std::lock_guard<std::mutex> lock_;
  JobScope scope_;
  int saved_threads_ = 0;
};

}  // namespace cugmm
