#include "engine/api/session.h"

#include <omp.h>

#include "core/error.h"
#include "core/threads.h"
#include "io/text.h"

namespace cugmm {

Device parse_device(const std::string& choice, int& cuda_index) {
  cuda_index = 0;
  if (choice.rfind("cuda:", 0) == 0) {
    const std::string n = choice.substr(5);
    if (n.empty() || n.size() > 4 || n.find_first_not_of("0123456789") != std::string::npos)
      throw Error("device '" + quote_value(choice) + "': expected cuda:N with N a GPU number (0, 1, ...)");
    cuda_index = std::stoi(n);
    const Device d = pick_device("cuda");
    use_cuda_device(cuda_index);  // refuses a number beyond the machine's GPUs
    return d;
  }
  return pick_device(choice);
}

Engine::Impl::Impl(const EngineOptions& o) : threads(o.threads), stream(o.stream) {
  if (o.threads < 0) throw Error("EngineOptions::threads must be >= 0, not " + std::to_string(o.threads));
  device = parse_device(o.device, cuda_index);
  if (stream && device != Device::cuda) throw Error("a CUDA stream was given for the " + name() + " device");
  job.progress = o.progress ? [fn = o.progress](const std::string& stage, size_t done, size_t total,
                                                const std::string& detail) {
    return fn(ProgressInfo{stage, done, total, detail});
  } : decltype(job.progress)();
  job.log = o.log;
}

std::string Engine::Impl::name() const {
  return device == Device::cuda ? "cuda:" + std::to_string(cuda_index) : "cpu";
}

EngineCall::EngineCall(Engine::Impl& e) : e_(e), lock_(e.calls), scope_(&e.job) {
  e_.job.cancel = false;
  if (e_.threads > 0) {
    saved_threads_ = omp_get_max_threads();
    set_threads(e_.threads);  // the calling thread's OpenMP setting (an ICV of the thread), restored after
  }
  if (e_.device == Device::cuda) use_cuda_device(e_.cuda_index);
  if (!e_.cx) e_.cx = e_.stream ? std::make_unique<Context>(e_.device, e_.stream) : std::make_unique<Context>(e_.device);
}

EngineCall::~EngineCall() {
  if (saved_threads_ > 0) set_threads(saved_threads_);
}

}  // namespace cugmm
