#include "engine/data_parallel.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>

#include "core/buffer.h"
#include "core/error.h"
#include "nn/ops.h"

namespace cugmm::data_parallel {

ExchangeMode parse_exchange_mode(const std::string& s) {
  if (s == "auto") return ExchangeMode::automatic;
  if (s == "dense") return ExchangeMode::dense;
  if (s == "low-rank") return ExchangeMode::low_rank;
  throw Error("--exchange must be dense, low-rank or auto, not '" + s + "'");
}

const char* exchange_mode_name(ExchangeMode m) {
  switch (m) {
    case ExchangeMode::dense: return "dense";
    case ExchangeMode::low_rank: return "low-rank";
    default: return "auto";
  }
}

// A low-rank layer's buffers: its cotangent copied out of the network's scratch (which the next layers
// overwrite while the gather runs), and every rank's rows of X and V in rank order.
struct GradientExchange::Gathered {
  Gathered(Context& cx) : v_send(cx), x_all(cx), v_all(cx) {}
  Buffer<float> v_send, x_all, v_all;
  int rows = 0;
  bool taken = false;
};

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// The timings use at most this many floats per array: large enough for a link's and a GEMM's full rate,
// small enough not to matter beside the run's memory plan (G = 100,000's first layer alone is 1 GB).
constexpr size_t kCalibrationFloats = size_t(16) << 20;

}  // namespace

GradientExchange::GradientExchange(Comm& comm, nn::Sequential& net, ExchangeMode mode, int batch)
    : comm_(comm), net_(net), ranks_(comm.size()) {
  const double R = ranks_, B = batch;
  for (const nn::Sequential::DenseLayer& d : net.dense_layers()) {
    Choice c{};
    c.layer = d.layer;
    c.in = d.in;
    c.out = d.out;
    const double n = double(d.in) * d.out + (d.b != SIZE_MAX ? d.out : 0);
    c.dense_bytes = 2 * (R - 1) / R * n * 4;
    c.low_rank_bytes = (R - 1) * B * (double(d.in) + d.out) * 4;
    c.break_even_batch = 2.0 * d.in * d.out / (R * (double(d.in) + d.out));
    c.low_rank = mode == ExchangeMode::low_rank;
    choices_.push_back(c);
  }
  if (mode == ExchangeMode::automatic && ranks_ > 1 && !choices_.empty()) {
    calibrate(batch);
    std::vector<unsigned char> pick(choices_.size());
    for (size_t i = 0; i < choices_.size(); ++i) {
      Choice& c = choices_[i];
      c.dense_seconds = c.dense_bytes / link_;
      c.low_rank_seconds = c.low_rank_bytes / link_ + (R - 1) * 2 * B * double(c.in) * c.out / flops_;
      pick[i] = c.low_rank_seconds < c.dense_seconds;
    }
    comm.broadcast(pick.data(), pick.size(), 0);  // rank 0's timings decide for all: one exchange plan
    for (size_t i = 0; i < choices_.size(); ++i) choices_[i].low_rank = pick[i] != 0;
  }
  low_rank_.assign(net.arch().layers.size(), 0);
  gathered_.resize(low_rank_.size());
  for (const Choice& c : choices_)
    if (c.low_rank) {
      low_rank_[c.layer] = 1;
      gathered_[c.layer] = std::make_unique<Gathered>(net.context());
    }
}

GradientExchange::~GradientExchange() = default;

void GradientExchange::calibrate(int batch) {
  Context& cx = net_.context();
  const Choice* big = &choices_[0];
  for (const Choice& c : choices_)
    if (double(c.in) * c.out > double(big->in) * big->out) big = &c;
  const int out = big->out;
  const int in = int(std::max<size_t>(1, std::min<size_t>(size_t(big->in), kCalibrationFloats / size_t(out))));
  const double saved_s = comm_.exchange_seconds;
  const size_t saved_b = comm_.exchange_bytes;
  // The link: one warm-up all-reduce, then two timed.
  Buffer<float> a(cx), x(cx), v(cx);
  a.upload(std::vector<float>(size_t(in) * out, 1e-3f));
  comm_.allreduce_sum(cx, a.data(), a.size());
  cx.synchronize();
  comm_.barrier();
  auto t0 = std::chrono::steady_clock::now();
  for (int r = 0; r < 2; ++r) comm_.allreduce_sum(cx, a.data(), a.size());
  cx.synchronize();
  link_ = 2 * 2.0 * (ranks_ - 1) / ranks_ * double(a.size()) * 4 / std::max(1e-9, seconds_since(t0));
  comm_.exchange_seconds = saved_s;
  comm_.exchange_bytes = saved_b;
  // The device: this layer's d W for one rank's batch (warm-up, then two timed).
  x.upload(std::vector<float>(size_t(batch) * in, 1e-3f));
  v.upload(std::vector<float>(size_t(batch) * out, 1e-3f));
  nn::ops::dense_bwd(cx, x.data(), nullptr, v.data(), a.data(), nullptr, nullptr, batch, in, out);
  cx.synchronize();
  t0 = std::chrono::steady_clock::now();
  for (int r = 0; r < 2; ++r)
    nn::ops::dense_bwd(cx, x.data(), nullptr, v.data(), a.data(), nullptr, nullptr, batch, in, out);
  cx.synchronize();
  flops_ = 2 * 2.0 * batch * double(in) * out / std::max(1e-9, seconds_since(t0));
}

bool GradientExchange::takes(size_t layer) const { return layer < low_rank_.size() && low_rank_[layer]; }

void GradientExchange::take(size_t layer, const float* x, const float* v, int rows, int in, int out) {
  Gathered& g = *gathered_.at(layer);
  Context& cx = net_.context();
  const size_t nx = size_t(rows) * in, nv = size_t(rows) * out;
  g.rows = rows;
  g.v_send.resize(nv);
  mem_copy(cx.device(), g.v_send.data(), cx.device(), v, nv * sizeof(float), cx.stream());
  g.x_all.resize(nx * size_t(ranks_));
  g.v_all.resize(nv * size_t(ranks_));
  comm_.start_allgather(cx, x, g.x_all.data(), nx);  // x is the layer's input: untouched until the next forward
  comm_.start_allgather(cx, g.v_send.data(), g.v_all.data(), nv);
  g.taken = true;
  exchanged_ += size_t(in) * out;  // its bias with the weight, in finish()
  comm_.progress();
}

void GradientExchange::ready(size_t offset, size_t n) {
  comm_.start_allreduce_sum(net_.context(), net_.grads() + offset, n);
  exchanged_ += n;
  comm_.progress();
}

void GradientExchange::finish() {
  Context& cx = net_.context();
  comm_.wait_all(cx);
  for (const nn::Sequential::DenseLayer& d : net_.dense_layers()) {
    if (!takes(d.layer)) continue;
    Gathered& g = *gathered_[d.layer];
    if (!g.taken) continue;
    float* grads = net_.grads();
    nn::ops::dense_bwd(cx, g.x_all.data(), nullptr, g.v_all.data(), grads + d.w,
                       d.b != SIZE_MAX ? grads + d.b : nullptr, nullptr, g.rows * ranks_, d.in, d.out);
    exchanged_ += d.b != SIZE_MAX ? size_t(d.out) : 0;
    g.taken = false;
  }
  const size_t done = exchanged_;
  exchanged_ = 0;
  if (done != net_.num_params())
    throw Error("the gradient exchange covered " + std::to_string(done) + " of the network's " +
                std::to_string(net_.num_params()) + " parameters: a layer kind it does not know?");
}

std::string GradientExchange::describe() const {
  std::string s;
  char line[320];
  for (const Choice& c : choices_) {
    std::snprintf(line, sizeof line,
                  "%slayer %zu (%d -> %d): %s (per rank and step %.1f MB dense, %.1f MB low-rank; low-rank moves "
                  "fewer bytes below a per-rank batch of %.0f)",
                  s.empty() ? "" : "\n", c.layer, c.in, c.out, c.low_rank ? "low-rank" : "dense", c.dense_bytes / 1e6,
                  c.low_rank_bytes / 1e6, c.break_even_batch);
    s += line;
    if (c.dense_seconds > 0) {
      std::snprintf(line, sizeof line, "; modelled %.2f ms dense, %.2f ms low-rank", 1e3 * c.dense_seconds,
                    1e3 * c.low_rank_seconds);
      s += line;
    }
  }
  return s;
}

bool any(Comm& comm, bool flag) {
  if (comm.size() == 1) return flag;
  double f = flag ? 1 : 0;
  comm.allreduce_sum(&f, 1);
  return f > 0;
}

void gather_rows(Comm& comm, std::vector<float>& rows) {
  if (comm.size() > 1) comm.allreduce_sum(cpu_context(), rows.data(), rows.size());
}

void same_everywhere(Comm& comm, const std::vector<float>& values, const std::string& what) {
  if (comm.size() == 1) return;
  uint64_t h = 1469598103934665603ull;  // FNV-1a over the bytes
  const unsigned char* b = reinterpret_cast<const unsigned char*>(values.data());
  for (size_t i = 0; i < values.size() * sizeof(float); ++i) h = (h ^ b[i]) * 1099511628211ull;
  uint64_t root = h;
  comm.broadcast(&root, sizeof root, 0);
  if (root != h)
    throw Error("rank " + std::to_string(comm.rank()) + "'s " + what + " differ from rank 0's: the ranks no "
                "longer train one model (a reduction that gave ranks different sums?)");
}

}  // namespace cugmm::data_parallel
