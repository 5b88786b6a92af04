// The MPI communicator (Open MPI from Debian; any MPI-3 library): every sum is one MPI_Allreduce and every
// gather one MPI_Allgather, on host memory directly and on CUDA through a host copy (core/dist/comm_nccl.h
// keeps device buffers on the GPUs). The non-blocking forms are MPI-3's MPI_Iallreduce / MPI_Iallgather on
// host memory (on CUDA they complete at once: the host copy needs the stream).
#pragma once
#include <mpi.h>

#include <vector>

#include "core/comm.h"

namespace cugmm::dist {

class MpiComm : public Comm {
 public:
  MpiComm();  // MPI_COMM_WORLD, duplicated (MPI_Init must have run: core/dist/launch.h)
  ~MpiComm() override;
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string describe() const override;
  void allreduce_sum(Context& cx, float* data, size_t n) override;
  void allgather(Context& cx, const float* send, float* recv, size_t n) override;
  void start_allreduce_sum(Context& cx, float* data, size_t n) override;
  void start_allgather(Context& cx, const float* send, float* recv, size_t n) override;
  void progress() override;
  void wait_all(Context& cx) override;
  void allreduce_sum(double* data, size_t n) override;
  void broadcast(void* data, size_t bytes, int root) override;
  void barrier() override;
  [[noreturn]] void abort(int code) override;

 protected:
  void host_sum(float* data, size_t n);
  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1;
  std::vector<float> staging_, staging_in_;  // CUDA buffers pass through host memory
  std::vector<MPI_Request> pending_;          // started, not yet waited for
};

}  // namespace cugmm::dist
