// The CUDA side of a network's share of a data-parallel step (nn/ops_cuda.cu bn_fwd_train_synced,
// bn_bwd_synced and dropout's global row offset) against the CPU backend: 3 ranks as threads
// (tests/thread_comm.h), each on its own CUDA context, against the same ranks on the CPU: outputs, running
// statistics, input and parameter gradients.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "../thread_comm.h"
#include "../support.h"
#include "nn/sequential.h"

using namespace cugmm;
using namespace cugmm::nn;

namespace {

struct Share {
  std::vector<float> y, vx, grads, state;
};

std::vector<Share> run_ranks(Device d, const Arch& a, int ranks, int B, const std::vector<float>& x,
                             const std::vector<float>& v) {
  test::ThreadGroup group(ranks);
  std::vector<Share> out(static_cast<size_t>(ranks));
  group.run([&](int r) {
    Context cx(d);
    test::ThreadComm comm(group, r);
    Sequential net(a, cx, 4);
    net.set_comm(&comm);
    const size_t in = size_t(a.in), o = 7;
    Buffer<float> dx(cx), dv(cx);
    dx.upload(std::vector<float>(x.begin() + size_t(r) * B * in, x.begin() + size_t(r + 1) * B * in));
    dv.upload(std::vector<float>(v.begin() + size_t(r) * B * o, v.begin() + size_t(r + 1) * B * o));
    Share& s = out[size_t(r)];
    const float* y = net.forward(dx.data(), B, Mode::train, 2);
    s.y.resize(B * o);
    mem_copy(Device::cpu, s.y.data(), d, y, s.y.size() * sizeof(float), cx.stream());
    const float* vx = net.backward(dv.data(), true);
    s.vx.resize(B * in);
    mem_copy(Device::cpu, s.vx.data(), d, vx, s.vx.size() * sizeof(float), cx.stream());
    s.grads.resize(net.num_params());
    mem_copy(Device::cpu, s.grads.data(), d, net.grads(), s.grads.size() * sizeof(float), cx.stream());
    s.state = net.state_to_host();
  });
  return out;
}

}  // namespace

TEST_CASE("CUDA == CPU for 3 ranks: synchronised batch-norm and globally keyed dropout") {
  Arch a;
  a.in = 40;
  a.layers = {dense(300), relu(), dropout(0.3f), batchnorm(), dense(7)};
  const int R = 3, B = 70;
  const std::vector<float> x = test::random_values(size_t(R) * B * 40, 10, 1), v = test::random_values(size_t(R) * B * 7, 10, 2);
  const std::vector<Share> c = run_ranks(Device::cpu, a, R, B, x, v), g = run_ranks(Device::cuda, a, R, B, x, v);
  for (int r = 0; r < R; ++r) {
    CHECK(test::scaled_diff(g[size_t(r)].y, c[size_t(r)].y) < 1e-5);
    CHECK(test::scaled_diff(g[size_t(r)].state, c[size_t(r)].state) < 1e-5);
    CHECK(test::scaled_diff(g[size_t(r)].vx, c[size_t(r)].vx) < 1e-4);
    CHECK(test::scaled_diff(g[size_t(r)].grads, c[size_t(r)].grads) < 1e-4);
  }
}
