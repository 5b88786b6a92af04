// The data-parallel gradient exchange (engine/data_parallel.h GradientExchange) with ranks as threads of one
// process (tests/thread_comm.h): after backward and finish(), every rank holds the sum over the ranks of
// every parameter gradient (the same bits on every rank), whichever way each layer was exchanged, and that
// sum is the gradient one network computes on the whole batch (up to rounding: OpenBLAS's kernels for a
// slice's rows and the whole batch's round differently in the last bit).
// tests/mpi runs the same exchange under mpirun through the trainer.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "engine/data_parallel.h"
#include "nn/sequential.h"
#include "support.h"
#include "thread_comm.h"

using namespace cugmm;
using namespace cugmm::nn;
using data_parallel::ExchangeMode;
using data_parallel::GradientExchange;

namespace {

// The decoder's layer kinds (no batch-norm, so each rank's rows go forward exactly as in the whole batch).
Arch decoder_like() {
  Arch a;
  a.in = 5;
  a.layers = {dense(24), leaky_relu(), dropout(0.3f), dense(24), leaky_relu(), dense(40)};
  return a;
}

// The encoder's: batch-norm, whose gamma and beta go by all-reduce in every mode.
Arch encoder_like() {
  Arch a;
  a.in = 40;
  a.layers = {dense(24), relu(), dropout(0.3f), batchnorm(), dense(3)};
  return a;
}

struct RankResult {
  std::vector<float> grads;
  std::vector<char> low_rank;  // per dense layer
  bool finished = false;
};

std::vector<RankResult> exchange_on_ranks(const Arch& a, int ranks, int B, const std::vector<float>& x,
                                          const std::vector<float>& v, ExchangeMode mode) {
  test::ThreadGroup group(ranks);
  std::vector<RankResult> out(static_cast<size_t>(ranks));
  const int outw = a.layers.back().out;
  group.run([&](int r) {
    Context cx(Device::cpu);
    test::ThreadComm comm(group, r);
    Sequential net(a, cx, 4);
    net.set_comm(&comm);
    GradientExchange ex(comm, net, mode, B);
    net.set_gradient_hook(&ex);
    for (int step = 0; step < 2; ++step) {  // twice: the exchange's buffers are reused
      net.forward(x.data() + size_t(r) * B * a.in, B, Mode::train, 6);
      net.backward(v.data() + size_t(r) * B * outw, true);
      ex.finish();
    }
    RankResult& o = out[size_t(r)];
    o.grads.assign(net.grads(), net.grads() + net.num_params());
    for (const auto& c : ex.choices()) o.low_rank.push_back(c.low_rank);
    o.finished = true;
  });
  return out;
}

std::vector<float> whole_grads(const Arch& a, int rows, const std::vector<float>& x, const std::vector<float>& v) {
  Sequential whole(a, cpu_context(), 4);
  whole.forward(x.data(), rows, Mode::train, 6);
  whole.backward(v.data(), true);
  return std::vector<float>(whole.grads(), whole.grads() + whole.num_params());
}

double max_rel_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double m = 0, scale = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    m = std::max(m, std::abs(double(a[i]) - double(b[i])));
    scale = std::max(scale, std::abs(double(b[i])));
  }
  return m / scale;
}

}  // namespace

TEST_CASE("low-rank: each rank's gradients are the whole batch's") {
  const Arch a = decoder_like();
  const int R = 2, B = 16;
  const std::vector<float> x = test::random_values(size_t(R) * B * 5, 3, 1), v = test::random_values(size_t(R) * B * 40, 3, 2);
  const std::vector<float> whole = whole_grads(a, R * B, x, v);
  const std::vector<RankResult> s = exchange_on_ranks(a, R, B, x, v, ExchangeMode::low_rank);
  for (const RankResult& r : s) {
    CHECK(r.finished);
    CHECK(r.low_rank == std::vector<char>{1, 1, 1});
    CHECK(r.grads == s[0].grads);
    // Measured 1e-7 (float rounding); a gather that lost or misordered a rank's rows is off by O(1).
    CHECK(max_rel_diff(r.grads, whole) < 1e-6);
  }
}

TEST_CASE("dense and auto: every rank holds the sum over the ranks, the same bits on every rank") {
  const int R = 3, B = 8;
  for (const Arch& a : {decoder_like(), encoder_like()}) {
    const int outw = a.layers.back().out;
    const std::vector<float> x = test::random_values(size_t(R) * B * a.in, 5, 1),
                             v = test::random_values(size_t(R) * B * outw, 5, 2);
    const std::vector<float> whole = whole_grads(a, R * B, x, v);
    for (ExchangeMode mode : {ExchangeMode::dense, ExchangeMode::automatic, ExchangeMode::low_rank}) {
      CAPTURE(data_parallel::exchange_mode_name(mode));
      const std::vector<RankResult> s = exchange_on_ranks(a, R, B, x, v, mode);
      CHECK(max_rel_diff(s[0].grads, whole) < 1e-5);  // batch-norm's statistics are summed in another order
      for (const RankResult& r : s) {
        CHECK(r.grads == s[0].grads);
        CHECK(r.low_rank == s[0].low_rank);  // rank 0's plan for all
      }
      if (mode == ExchangeMode::dense) CHECK(s[0].low_rank == std::vector<char>(s[0].low_rank.size(), 0));
    }
  }
}

TEST_CASE("the plan: bytes per layer and the break-even batch") {
  test::ThreadGroup group(2);
  group.run([&](int r) {
    Context cx(Device::cpu);
    test::ThreadComm comm(group, r);
    Arch a;
    a.in = 1000;
    a.layers = {dense(100, false), relu(), dense(10, false)};
    Sequential net(a, cx, 1);
    GradientExchange ex(comm, net, ExchangeMode::dense, 8);
    const auto& c = ex.choices();
    REQUIRE(c.size() == 2);
    // 2 ranks: a ring all-reduce receives (R-1)/R x 2 x n floats; low-rank receives x B x (in + out).
    CHECK(c[0].dense_bytes == doctest::Approx(1000.0 * 100 * 4));
    CHECK(c[0].low_rank_bytes == doctest::Approx(8.0 * 1100 * 4));
    CHECK(c[0].break_even_batch == doctest::Approx(2.0 * 1000 * 100 / (2 * 1100)));
    CHECK(c[1].break_even_batch == doctest::Approx(2.0 * 100 * 10 / (2 * 110)));
    CHECK(ex.describe().find("layer 0 (1000 -> 100): dense") != std::string::npos);
  });
}
