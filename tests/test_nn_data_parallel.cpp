// A network's share of a data-parallel step (nn/sequential.h set_comm) on the CPU: ranks as threads of one
// process (tests/thread_comm.h), each with its slice of a batch, compute with batch-norm synchronised and
// dropout keyed by the global row what one network computes on the whole batch: the slice's rows of the
// output and input gradient, the running statistics, and parameter gradients that add up to the whole's.
// tests/mpi runs the whole trainer under mpirun.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "nn/sequential.h"
#include "support.h"
#include "thread_comm.h"

using namespace cugmm;
using namespace cugmm::nn;

namespace {

double max_diff(const std::vector<float>& a, const float* b) {
  double d = 0;
  for (size_t i = 0; i < a.size(); ++i) d = std::max(d, std::abs(double(a[i]) - double(b[i])));
  return d;
}

// The encoder's layer kinds: dropout before batch-norm, so the statistics see the masks too.
Arch encoder_like() {
  Arch a;
  a.in = 12;
  a.layers = {dense(32), relu(), dropout(0.3f), batchnorm(), dense(3)};
  return a;
}

struct Share {
  std::vector<float> y, vx, grads, state;
};

// Rank r of `ranks` runs rows [r B, (r + 1) B) of x (and of the cotangent v) through its own network.
std::vector<Share> run_ranks(const Arch& a, int ranks, int B, const std::vector<float>& x, const std::vector<float>& v,
                             bool with_comm) {
  test::ThreadGroup group(ranks);
  std::vector<Share> out(static_cast<size_t>(ranks));
  group.run([&](int r) {
    Context cx(Device::cpu);  // one per thread, as a rank has
    test::ThreadComm comm(group, r);
    Sequential net(a, cx, 4);
    if (with_comm) net.set_comm(&comm);
    const size_t in = size_t(a.in), o = 3;
    const float* y = net.forward(x.data() + size_t(r) * B * in, B, Mode::train, 6);
    out[size_t(r)].y.assign(y, y + B * o);
    const float* vx = net.backward(v.data() + size_t(r) * B * o, true);
    out[size_t(r)].vx.assign(vx, vx + B * in);
    out[size_t(r)].grads.assign(net.grads(), net.grads() + net.num_params());
    out[size_t(r)].state = net.state_to_host();
  });
  return out;
}

}  // namespace

TEST_CASE("3 ranks x 6 rows compute what one network computes on 18 rows") {
  const Arch a = encoder_like();
  const int R = 3, B = 6;
  const std::vector<float> x = test::random_values(size_t(R) * B * 12, 9, 1), v = test::random_values(size_t(R) * B * 3, 9, 2);
  Sequential whole(a, cpu_context(), 4);
  const float* yw = whole.forward(x.data(), R * B, Mode::train, 6);
  const std::vector<float> y_whole(yw, yw + R * B * 3);
  const float* vw = whole.backward(v.data(), true);
  const std::vector<float> vx_whole(vw, vw + R * B * 12);

  const std::vector<Share> s = run_ranks(a, R, B, x, v, true);
  std::vector<float> grad_sum(whole.num_params(), 0.f);
  for (int r = 0; r < R; ++r) {
    CHECK(max_diff(s[size_t(r)].y, y_whole.data() + size_t(r) * B * 3) < 1e-5);
    CHECK(max_diff(s[size_t(r)].vx, vx_whole.data() + size_t(r) * B * 12) < 1e-5);
    CHECK(max_diff(s[size_t(r)].state, whole.state_to_host().data()) < 1e-6);  // running stats of 18 rows
    for (size_t i = 0; i < grad_sum.size(); ++i) grad_sum[i] += s[size_t(r)].grads[i];
  }
  CHECK(max_diff(grad_sum, whole.grads()) < 1e-4);  // what the gradient exchange adds up

  // Without the comm each slice normalises by its own statistics and draws rank 0's masks: the checks
  // above can fail.
  const std::vector<Share> alone = run_ranks(a, R, B, x, v, false);
  CHECK(max_diff(alone[1].y, y_whole.data() + B * 3) > 1e-2);
}
