// The data-parallel gradient exchange (engine/data_parallel.h) on device memory against the CPU: 2 ranks as
// threads (tests/thread_comm.h), each on its own CUDA context, every mode (the low-rank one gathers the
// layers' inputs and output gradients and runs cuBLAS's d W over the gathered rows).
#include <doctest/doctest.h>

#include <memory>
#include <vector>

#include "../support.h"
#include "../thread_comm.h"
#include "engine/data_parallel.h"
#include "nn/sequential.h"

using namespace cugmm;
using namespace cugmm::nn;
using data_parallel::ExchangeMode;

namespace {

std::vector<std::vector<float>> grads_on_ranks(Device d, const Arch& a, int ranks, int B, const std::vector<float>& x,
                                               const std::vector<float>& v, ExchangeMode mode) {
  test::ThreadGroup group(ranks);
  std::vector<std::vector<float>> out(static_cast<size_t>(ranks));
  const size_t in = size_t(a.in), o = size_t(a.layers.back().out);
  group.run([&](int r) {
    Context cx(d);
    test::ThreadComm comm(group, r);
    Sequential net(a, cx, 4);
    net.set_comm(&comm);
    data_parallel::GradientExchange ex(comm, net, mode, B);
    net.set_gradient_hook(&ex);
    Buffer<float> dx(cx), dv(cx);
    dx.upload(std::vector<float>(x.begin() + r * B * in, x.begin() + (r + 1) * B * in));
    dv.upload(std::vector<float>(v.begin() + r * B * o, v.begin() + (r + 1) * B * o));
    net.forward(dx.data(), B, Mode::train, 2);
    net.backward(dv.data(), true);
    ex.finish();
    std::vector<float>& g = out[size_t(r)];
    g.resize(net.num_params());
    mem_copy(Device::cpu, g.data(), d, net.grads(), g.size() * sizeof(float), cx.stream());
  });
  return out;
}

}  // namespace

TEST_CASE("CUDA == CPU: the gradient exchange's sums on device memory, each mode") {
  Arch a;
  a.in = 40;
  a.layers = {dense(300), relu(), dropout(0.3f), batchnorm(), dense(7)};
  const int R = 2, B = 50;
  const std::vector<float> x = test::random_values(size_t(R) * B * 40, 11, 1), v = test::random_values(size_t(R) * B * 7, 11, 2);
  for (ExchangeMode m : {ExchangeMode::dense, ExchangeMode::low_rank, ExchangeMode::automatic}) {
    CAPTURE(data_parallel::exchange_mode_name(m));
    const auto c = grads_on_ranks(Device::cpu, a, R, B, x, v, m), g = grads_on_ranks(Device::cuda, a, R, B, x, v, m);
    for (int r = 0; r < R; ++r) CHECK(test::scaled_diff(g[size_t(r)], c[size_t(r)]) < 1e-4);
    CHECK(g[0] == g[1]);  // one sum, the same bits on every rank
  }
}
