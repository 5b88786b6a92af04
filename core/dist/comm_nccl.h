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
  [[noreturn]] void abort(int code) override;

 private:
  void* nccl_ = nullptr;  // ncclComm_t, made at the first device sum (once the rank's GPU is current)
};

}  // namespace cugmm::dist
