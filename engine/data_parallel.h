// How the trainer shares its work among the ranks of a data-parallel run (issue 19; core/comm.h). Each
// global batch of R x B particles (the epoch's Philox permutation, the same on every rank) is cut into R
// slices of B in rank order; every rank runs the step on its slice, the networks synchronise batch-norm
// (nn::Sequential::set_comm), and the parameter gradients are added over the ranks before Adam, which
// scales them by 1 / R (nn::AdamConfig::grad_scale): the step of one process on the whole batch, up to the
// order of the sums. Every rank then applies the same update to the same weights, so they stay identical
// (checked each epoch: same_everywhere).
//
// The exchange (GradientExchange) runs during the backward pass, layer by layer from the last, so it
// overlaps the backward of the layers before. A dense layer's weight gradient is a low-rank product,
// d W = V^T X over the batch's rows (X its input, V its output cotangent), so per layer there are two exact
// ways to add it over R ranks of B rows each:
//   dense:    all-reduce d W: each rank sends and receives ~2 (R-1)/R x in x out floats (a ring);
//   low-rank: all-gather X and V, and every rank forms the whole batch's d W itself: x B x (in + out)
//             floats received, and x 2 B in out extra FLOP (every rank does every rank's GEMM).
// By bytes alone low-rank pays below a per-rank batch of B* = 2 in out / (R (in + out)); `automatic` times
// the link (an all-reduce) and the device (the layer's d W GEMM) once at the start and picks, per layer,
// the cheaper of the two with both terms (rank 0 decides, every rank follows). Timings vary, so its plan
// (and a run's last bits) may too: the default is dense, the same plan every run. A low-rank layer's gradient
// is the same GEMM, over the same rows in the same order, that one process with batch R x B runs.
#pragma once
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "core/comm.h"
#include "nn/sequential.h"

namespace cugmm::data_parallel {

enum class ExchangeMode { automatic, dense, low_rank };
ExchangeMode parse_exchange_mode(const std::string& s);  // "auto", "dense", "low-rank"; throws naming s
const char* exchange_mode_name(ExchangeMode m);

// One network's exchange. Made once per run (collective: `automatic` times the link and the device); then
// per step: backward (the network calls the hooks), finish(), the optimizer.
class GradientExchange final : public nn::GradientHook {
 public:
  GradientExchange(Comm& comm, nn::Sequential& net, ExchangeMode mode, int batch);
  ~GradientExchange() override;

  bool takes(size_t layer) const override;
  void take(size_t layer, const float* x, const float* v, int rows, int in, int out) override;
  void ready(size_t offset, size_t n) override;
  // Waits for the step's exchange and forms the low-rank layers' gradients: afterwards every rank holds
  // the sum over the ranks of every parameter gradient. Throws if backward left a gradient unexchanged.
  void finish();

  struct Choice {
    size_t layer;
    int in, out;
    bool low_rank;
    double dense_bytes, low_rank_bytes;  // per rank and step (sent + received, ring estimates)
    double break_even_batch;             // the per-rank batch below which low-rank moves fewer bytes
    double dense_seconds, low_rank_seconds;  // the model's estimates (automatic only; 0 otherwise)
  };
  const std::vector<Choice>& choices() const { return choices_; }
  // The measured link (bytes/s of an all-reduce's ring traffic) and GEMM rate (FLOP/s), 0 when not timed.
  double link_bytes_per_second() const { return link_; }
  double gemm_flops() const { return flops_; }
  std::string describe() const;  // one line per layer, for the log and run.json

 private:
  void calibrate(int batch);
  Comm& comm_;
  nn::Sequential& net_;
  int ranks_;
  std::vector<Choice> choices_;
  std::vector<char> low_rank_;  // per layer index of the network
  struct Gathered;
  std::vector<std::unique_ptr<Gathered>> gathered_;  // per layer index (low-rank layers only)
  size_t exchanged_ = 0;  // floats this step
  double link_ = 0, flops_ = 0;
};

// Whether any rank's flag is set (Ctrl-C reaches ranks at different batches; they stop at the same one).
bool any(Comm& comm, bool flag);

// `rows` (n x width floats, host memory) where each rank filled its rank_share of the n rows and left the
// rest 0: afterwards every rank holds all of them (a sum with zeros is exact).
void gather_rows(Comm& comm, std::vector<float>& rows);

// Throws naming `what` when this rank's values differ from rank 0's (a checksum broadcast from rank 0):
// ranks whose weights drifted apart would no longer compute one model.
void same_everywhere(Comm& comm, const std::vector<float>& values, const std::string& what);

}  // namespace cugmm::data_parallel
