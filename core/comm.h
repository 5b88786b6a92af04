// The processes of one run and what they exchange (data-parallel training, issue 19). One Comm object per
// run, made by the program's main (core/dist/launch.h): a single process gets the no-op SingleComm below; under
// `mpirun` a rank gets an MPI communicator (core/dist/comm_mpi.h), and on CUDA with NCCL one whose device sums
// run on the GPUs (core/dist/comm_nccl.h). Nothing below core/dist/ knows about MPI or NCCL: they see this interface.
//
// Every call is collective: all ranks make the same calls in the same order (a rank that stops calling
// leaves the others waiting, so a failing rank must abort() the job rather than return).
#pragma once
#include <cstddef>
#include <string>
#include <utility>

#include "core/context.h"

namespace cugmm {

class Comm {
 public:
  virtual ~Comm() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // Which implementation: "single process", "MPI (Open MPI 4.1)", "NCCL 2.x + MPI".
  virtual std::string describe() const = 0;

  // In place: data[i] = sum over ranks of data[i]. `data` is memory of cx's device (host memory on the CPU,
  // device memory on CUDA, ordered on cx's stream). The result is the same on every rank (one reduction,
  // then the same bits everywhere), so ranks that apply the same update stay bit-identical.
  virtual void allreduce_sum(Context& cx, float* data, size_t n) = 0;
  // recv (size() x n floats, memory of cx's device) = every rank's `send` (n floats), in rank order.
  virtual void allgather(Context& cx, const float* send, float* recv, size_t n) = 0;
  // Non-blocking forms, so the gradient exchange overlaps the backward pass (engine/data_parallel.h): the
  // call starts the operation; its buffers must stay untouched, and are not to be read, until wait_all(cx)
  // returns (on CUDA: until the work queued on cx's stream after wait_all). Started operations complete in
  // the order they were started, on every rank. progress() lets the library advance them meanwhile (MPI
  // moves a non-blocking collective only inside its own calls). The defaults complete at once.
  virtual void start_allreduce_sum(Context& cx, float* data, size_t n) { allreduce_sum(cx, data, n); }
  virtual void start_allgather(Context& cx, const float* send, float* recv, size_t n) {
    allgather(cx, send, recv, n);
  }
  virtual void progress() {}
  virtual void wait_all(Context&) {}
  // Host memory, double: loss accumulators, normalisation sums, counts.
  virtual void allreduce_sum(double* data, size_t n) = 0;
  // Host memory: root's bytes to every rank.
  virtual void broadcast(void* data, size_t bytes, int root) = 0;
  virtual void barrier() = 0;
  // Ends every rank of the job with `code` (after the caller has printed why): a failing rank must not
  // leave the others waiting in a collective.
  [[noreturn]] virtual void abort(int code) = 0;

  // Time spent in the calls above on device buffers (starting and waiting, not the time an operation runs
  // behind the caller's back), and the bytes of their arrays (an allreduce's array, an allgather's gathered
  // rows): the gradient exchange.
  double exchange_seconds = 0;
  size_t exchange_bytes = 0;
};

// Rank `rank`'s items [first, last) of n shared by `size` ranks: contiguous, in order, sizes differing by
// at most one (the ranks' shares concatenated in rank order are 0..n).
inline std::pair<size_t, size_t> rank_share(size_t n, int rank, int size) {
  const size_t r = size_t(rank), s = size_t(size), base = n / s, extra = n % s;
  const size_t first = r * base + (r < extra ? r : extra);
  return {first, first + base + (r < extra ? 1 : 0)};
}

// One process: every collective is the identity.
class SingleComm final : public Comm {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string describe() const override { return "single process"; }
  void allreduce_sum(Context&, float*, size_t) override {}
  void allgather(Context& cx, const float* send, float* recv, size_t n) override;
  void allreduce_sum(double*, size_t) override {}
  void broadcast(void*, size_t, int) override {}
  void barrier() override {}
  [[noreturn]] void abort(int code) override;
};

}  // namespace cugmm
