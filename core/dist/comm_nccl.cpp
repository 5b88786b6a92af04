#include "core/dist/comm_nccl.h"

#include <cuda_runtime.h>
#include <nccl.h>

#include <chrono>

#include "core/error.h"

namespace cugmm::dist {

namespace {

void check(ncclResult_t rc, const char* what) {
  if (rc != ncclSuccess) throw Error(std::string(what) + " failed: " + ncclGetErrorString(rc));
}

}  // namespace

NcclComm::~NcclComm() {
  if (nccl_) ncclCommDestroy(static_cast<ncclComm_t>(nccl_));
}

std::string NcclComm::describe() const {
  int v = 0;
  ncclGetVersion(&v);
  return MpiComm::describe() + ", NCCL " + std::to_string(v / 10000) + "." + std::to_string(v / 100 % 100) +
         " for GPU buffers";
}

void NcclComm::allreduce_sum(Context& cx, float* data, size_t n) {
  if (!cx.cuda()) return MpiComm::allreduce_sum(cx, data, n);
  const auto t0 = std::chrono::steady_clock::now();
  if (!nccl_) {
    // Collective: every rank reaches its first device sum at the same step.
    ncclUniqueId id;
    if (rank_ == 0) check(ncclGetUniqueId(&id), "ncclGetUniqueId");
    broadcast(&id, sizeof id, 0);
    ncclComm_t c = nullptr;
    check(ncclCommInitRank(&c, size_, id, rank_), "ncclCommInitRank");
    nccl_ = c;
  }
  // Queued on the run's stream: the step's kernels before it, Adam after it, no host wait.
  check(ncclAllReduce(data, data, n, ncclFloat, ncclSum, static_cast<ncclComm_t>(nccl_),
                      static_cast<cudaStream_t>(cx.stream())),
        "ncclAllReduce");
  exchange_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  exchange_bytes += n * sizeof(float);
}

void NcclComm::abort(int code) {
  // A rank stuck in a kernel waiting for a dead peer would never return: NCCL's abort frees it first.
  if (nccl_) ncclCommAbort(static_cast<ncclComm_t>(nccl_));
  nccl_ = nullptr;
  MpiComm::abort(code);
}

}  // namespace cugmm::dist
