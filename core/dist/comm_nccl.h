// NCCL between GPUs, MPI for everything else (issue 19): one rank per GPU; sums over device buffers of a
// CUDA context are one ncclAllReduce queued on the context's stream (no host round trip: NVLink within a
// node, InfiniBand/RoCE between nodes, as NCCL finds them); host buffers and the bootstrap (the unique id
// broadcast from rank 0) go through MPI. Built only when NCCL is found (CUGMM_HAVE_NCCL).
#pragma once
#include "core/dist/comm_mpi.h"

namespace cugmm::dist {

class NcclComm final : public MpiComm {
 public:
  NcclComm() = default;
  ~NcclComm() override;
  std::string describe() const override;
  void allreduce_sum(Context& cx, float* data, size_t n) override;
  void allgather(Context& cx, const float* send, float* recv, size_t n) override;
  void start_allreduce_sum(Context& cx, float* data, size_t n) override;
  void start_allgather(Context& cx, const float* send, float* recv, size_t n) override;
  void wait_all(Context& cx) override;
  [[noreturn]] void abort(int code) override;

 private:
  void* comm(Context& cx);   // the ncclComm_t, made at the first device call (once the rank's GPU is current)
  void* side(Context& cx);   // the exchange's stream, after the run's stream's work queued so far
  void* nccl_ = nullptr;
  void* side_ = nullptr;     // cudaStream_t
  void* ready_ = nullptr;    // cudaEvent_t: the run's stream reached a start
  void* done_ = nullptr;     // cudaEvent_t: the side stream's exchanges
  bool pending_device_ = false;
};

}  // namespace cugmm::dist
