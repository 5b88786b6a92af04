#include "core/comm.h"

#include <cstdio>
#include <cstdlib>

#include "core/buffer.h"

namespace cugmm {

void SingleComm::allgather(Context& cx, const float* send, float* recv, size_t n) {
  if (send != recv) mem_copy(cx.device(), recv, cx.device(), send, n * sizeof(float), cx.stream());
}

void SingleComm::abort(int code) {
  std::fflush(nullptr);
  std::exit(code);
}

}  // namespace cugmm
