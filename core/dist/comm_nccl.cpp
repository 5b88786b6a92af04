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

void check(cudaError_t rc, const char* what) {
  if (rc != cudaSuccess) throw Error(std::string(what) + " failed: " + cudaGetErrorString(rc));
}

double since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

NcclComm::~NcclComm() {
  if (nccl_) ncclCommDestroy(static_cast<ncclComm_t>(nccl_));
  if (done_) cudaEventDestroy(static_cast<cudaEvent_t>(done_));
  if (ready_) cudaEventDestroy(static_cast<cudaEvent_t>(ready_));
  if (side_) cudaStreamDestroy(static_cast<cudaStream_t>(side_));
}

void* NcclComm::comm(Context&) {
  if (!nccl_) {
    // Collective: every rank reaches its first device call at the same step.
    ncclUniqueId id;
    if (rank_ == 0) check(ncclGetUniqueId(&id), "ncclGetUniqueId");
    broadcast(&id, sizeof id, 0);
    ncclComm_t c = nullptr;
    check(ncclCommInitRank(&c, size_, id, rank_), "ncclCommInitRank");
    nccl_ = c;
  }
  return nccl_;
}

void* NcclComm::side(Context& cx) {
  if (!side_) {
    cudaStream_t st = nullptr;
    cudaEvent_t a = nullptr, b = nullptr;
    check(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
    check(cudaEventCreateWithFlags(&a, cudaEventDisableTiming), "cudaEventCreateWithFlags");
    check(cudaEventCreateWithFlags(&b, cudaEventDisableTiming), "cudaEventCreateWithFlags");
    side_ = st;
    ready_ = a;
    done_ = b;
  }
  auto st = static_cast<cudaStream_t>(side_);
  auto ready = static_cast<cudaEvent_t>(ready_);
  check(cudaEventRecord(ready, static_cast<cudaStream_t>(cx.stream())), "cudaEventRecord");
  check(cudaStreamWaitEvent(st, ready, 0), "cudaStreamWaitEvent");
  pending_device_ = true;
  return st;
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
  // Queued on the run's stream: the step's kernels before it, Adam after it, no host wait.
  check(ncclAllReduce(data, data, n, ncclFloat, ncclSum, static_cast<ncclComm_t>(comm(cx)),
                      static_cast<cudaStream_t>(cx.stream())),
        "ncclAllReduce");
  exchange_seconds += since(t0);
  exchange_bytes += n * sizeof(float);
}

void NcclComm::allgather(Context& cx, const float* send, float* recv, size_t n) {
  if (!cx.cuda()) return MpiComm::allgather(cx, send, recv, n);
  const auto t0 = std::chrono::steady_clock::now();
  check(ncclAllGather(send, recv, n, ncclFloat, static_cast<ncclComm_t>(comm(cx)),
                      static_cast<cudaStream_t>(cx.stream())),
        "ncclAllGather");
  exchange_seconds += since(t0);
  exchange_bytes += n * size_t(size_) * sizeof(float);
}

void NcclComm::start_allreduce_sum(Context& cx, float* data, size_t n) {
  if (!cx.cuda()) return MpiComm::start_allreduce_sum(cx, data, n);
  const auto t0 = std::chrono::steady_clock::now();
  ncclComm_t c = static_cast<ncclComm_t>(comm(cx));
  check(ncclAllReduce(data, data, n, ncclFloat, ncclSum, c, static_cast<cudaStream_t>(side(cx))), "ncclAllReduce");
  exchange_seconds += since(t0);
  exchange_bytes += n * sizeof(float);
}

void NcclComm::start_allgather(Context& cx, const float* send, float* recv, size_t n) {
  if (!cx.cuda()) return MpiComm::start_allgather(cx, send, recv, n);
  const auto t0 = std::chrono::steady_clock::now();
  ncclComm_t c = static_cast<ncclComm_t>(comm(cx));
  check(ncclAllGather(send, recv, n, ncclFloat, c, static_cast<cudaStream_t>(side(cx))), "ncclAllGather");
  exchange_seconds += since(t0);
  exchange_bytes += n * size_t(size_) * sizeof(float);
}

void NcclComm::wait_all(Context& cx) {
  MpiComm::wait_all(cx);
  if (!pending_device_) return;
  const auto t0 = std::chrono::steady_clock::now();
  auto done = static_cast<cudaEvent_t>(done_);
  check(cudaEventRecord(done, static_cast<cudaStream_t>(side_)), "cudaEventRecord");
  check(cudaStreamWaitEvent(static_cast<cudaStream_t>(cx.stream()), done, 0), "cudaStreamWaitEvent");
  pending_device_ = false;
  exchange_seconds += since(t0);
}

void NcclComm::abort(int code) {
  // A rank stuck in a kernel waiting for a dead peer would never return: NCCL's abort frees it first.
  if (nccl_) ncclCommAbort(static_cast<ncclComm_t>(nccl_));
  nccl_ = nullptr;
  MpiComm::abort(code);
}

}  // namespace cugmm::dist
