// The Sequential container on the CPU backend: its wiring of the layers (whole-network gradients
// against finite differences), the skipped input gradient, the residual output's Δ(0) = 0 guarantee,
// dropout's modes, the checks on architectures, and that CPU work never loads cuBLAS.
#include <doctest/doctest.h>

#include <cmath>
#include <fstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "kernels/philox.h"
#include "nn/sequential.h"

using namespace cugmm;
using namespace cugmm::nn;

namespace {

std::vector<float> rand_vec(size_t n, uint64_t stream, float lo = -1, float hi = 1) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = lo + (hi - lo) * philox_uniform(5, stream, i);
  return v;
}

double weighted_sum(const float* y, const std::vector<float>& r) {
  double s = 0;
  for (size_t i = 0; i < r.size(); ++i) s += double(r[i]) * y[i];
  return s;
}

Arch mixed_arch() {
  Arch a;
  a.in = 6;
  a.layers = {dense(8), tanh_act(), batchnorm(), dense(8), leaky_relu(0.1f), dropout(0.25f), dense(3), sigmoid()};
  return a;
}

}  // namespace

TEST_CASE("a whole network's parameter and input gradients match finite differences (float)") {
  Sequential net(mixed_arch(), cpu_context(), 11);
  const int B = 5;
  std::vector<float> x = rand_vec(B * 6, 1), r = rand_vec(B * 3, 2);
  auto loss = [&] { return weighted_sum(net.forward(x.data(), B, Mode::train, 3), r); };
  loss();
  const float* vx = net.backward(r.data(), true);
  REQUIRE(vx != nullptr);
  std::vector<float> vin(vx, vx + x.size());
  std::vector<float> g(net.grads(), net.grads() + net.num_params());

  // Float forward: steps of 1e-2 keep rounding noise (~1e-7 relative) well under the tolerance.
  const float h = 1e-2f;
  double worst = 0;
  for (size_t i = 0; i < net.num_params(); ++i) {
    float keep = net.params()[i];
    net.params()[i] = keep + h;
    double up = loss();
    net.params()[i] = keep - h;
    double dn = loss();
    net.params()[i] = keep;
    double fd = (up - dn) / (2 * h);
    worst = std::max(worst, std::abs(fd - g[i]) / (2e-3 + std::abs(fd)));
  }
  CHECK(worst < 2e-2);
  worst = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    float keep = x[i];
    x[i] = keep + h;
    double up = loss();
    x[i] = keep - h;
    double dn = loss();
    x[i] = keep;
    double fd = (up - dn) / (2 * h);
    worst = std::max(worst, std::abs(fd - vin[i]) / (2e-3 + std::abs(fd)));
  }
  CHECK(worst < 2e-2);
}

TEST_CASE("an input that needs no gradient gets none, and the parameter gradients are unchanged") {
  Arch a;
  a.in = 40;
  a.layers = {dense(16), relu(), dense(4)};
  Sequential net(a, cpu_context(), 1);
  std::vector<float> x = rand_vec(8 * 40, 3), r = rand_vec(8 * 4, 4);
  net.forward(x.data(), 8, Mode::train);
  CHECK(net.backward(r.data(), true) != nullptr);
  std::vector<float> g1(net.grads(), net.grads() + net.num_params());
  net.forward(x.data(), 8, Mode::train);
  CHECK(net.backward(r.data(), false) == nullptr);
  std::vector<float> g2(net.grads(), net.grads() + net.num_params());
  CHECK(g1 == g2);
  // A fresh network asked for no input gradient never allocates the 8 x 40 input cotangent.
  Sequential fresh(a, cpu_context(), 1);
  fresh.forward(x.data(), 8, Mode::train);
  fresh.backward(r.data(), false);
  CHECK(fresh.workspace_bytes() < 8 * 40 * sizeof(float));
}

TEST_CASE("residual output: base at z = 0 exactly, in both modes, whatever the weights") {
  Arch a;
  a.in = 4;
  a.residual = true;
  a.layers = {dense(16, false), tanh_act(), dense(16, false), leaky_relu(0.2f), dropout(0.2f), dense(10, false)};
  Sequential net(a, cpu_context(), 3);
  std::vector<float> base = rand_vec(10, 7, -5, 5);
  net.set_base(base);
  const int B = 3;
  std::vector<float> z = rand_vec(B * 4, 8);
  // Freshly initialised, the last layer is zero: the output is the base for every z.
  const float* y = net.forward(z.data(), B, Mode::infer);
  for (int b = 0; b < B; ++b)
    for (int j = 0; j < 10; ++j) CHECK(y[b * 10 + j] == base[j]);
  // Any weights: a zero row gives exactly the base, a nonzero row does not.
  net.params_from_host(rand_vec(net.num_params(), 9));
  for (int j = 0; j < 4; ++j) z[4 + j] = 0.f;  // row 1 is the origin
  for (Mode mode : {Mode::infer, Mode::train}) {
    y = net.forward(z.data(), B, mode, 17);
    int moved = 0;
    for (int j = 0; j < 10; ++j) {
      CHECK(y[10 + j] == base[j]);
      moved += y[j] != base[j];
    }
    CHECK(moved > 0);
  }
  // Δ's gradient still reaches every layer once the last one is nonzero.
  std::vector<float> r = rand_vec(B * 10, 10);
  net.forward(z.data(), B, Mode::train, 1);
  net.backward(r.data(), false);
  double g0 = 0;
  for (size_t i = 0; i < 4 * 16; ++i) g0 += std::abs(net.grads()[i]);
  CHECK(g0 > 0);
}

TEST_CASE("a residual network refuses what would move Δ(0)") {
  Arch a;
  a.in = 4;
  a.residual = true;
  a.layers = {dense(8, true), relu(), dense(5, false)};
  CHECK_THROWS_WITH_AS(Sequential(a, cpu_context(), 1), doctest::Contains("bias-free"), Error);
  a.layers = {dense(8, false), sigmoid(), dense(5, false)};
  CHECK_THROWS_WITH_AS(Sequential(a, cpu_context(), 1), doctest::Contains("sigmoid"), Error);
  a.layers = {dense(8, false), batchnorm(), dense(5, false)};
  CHECK_THROWS_WITH_AS(Sequential(a, cpu_context(), 1), doctest::Contains("batch-norm"), Error);
  a.layers = {dense(8, false), relu()};
  CHECK_THROWS_WITH_AS(Sequential(a, cpu_context(), 1), doctest::Contains("end with a dense"), Error);
  Sequential ok(Arch{4, {dense(8, false), relu(), dense(5, false)}, true}, cpu_context(), 1);
  CHECK_THROWS_AS(ok.set_base(std::vector<float>(4)), Error);
}

TEST_CASE("dropout: identity in inference, a mask per step in training; batch-norm uses running stats in inference") {
  Arch a;
  a.in = 32;
  a.layers = {dense(64), batchnorm(), relu(), dropout(0.5f), dense(8)};
  Sequential net(a, cpu_context(), 2);
  std::vector<float> x = rand_vec(16 * 32, 12);
  auto out = [&](Mode m, uint64_t step) {
    const float* y = net.forward(x.data(), 16, m, step);
    return std::vector<float>(y, y + 16 * 8);
  };
  std::vector<float> i1 = out(Mode::infer, 1), i2 = out(Mode::infer, 2);
  CHECK(i1 == i2);
  std::vector<float> t1 = out(Mode::train, 1), t1b = out(Mode::train, 1), t2 = out(Mode::train, 2);
  CHECK(t1 != t2);
  // Training moved the running statistics, so inference now differs from before.
  CHECK(out(Mode::infer, 1) != i1);
  // One inference row does not depend on the others (running statistics, no dropout).
  const float* y1 = net.forward(x.data() + 5 * 32, 1, Mode::infer);
  std::vector<float> row(y1, y1 + 8);
  const float* yall = net.forward(x.data(), 16, Mode::infer);
  for (int j = 0; j < 8; ++j) CHECK(row[j] == doctest::Approx(yall[5 * 8 + j]).epsilon(1e-5));
}

TEST_CASE("initialisation: reproducible from the seed, He/Glorot ranges, zero biases") {
  Arch a;
  a.in = 100;
  a.layers = {dense(50), relu(), dense(20)};
  Sequential n1(a, cpu_context(), 7), n2(a, cpu_context(), 7), n3(a, cpu_context(), 8);
  CHECK(n1.params_to_host() == n2.params_to_host());
  CHECK(n1.params_to_host() != n3.params_to_host());
  std::vector<float> p = n1.params_to_host();
  const auto& t = n1.tensors();
  REQUIRE(t.size() == 4);
  double he = std::sqrt(6.0 / 100), gl = std::sqrt(6.0 / 70), m0 = 0, m1 = 0;
  for (size_t i = 0; i < t[0].size; ++i) m0 = std::max(m0, double(std::abs(p[t[0].offset + i])));
  for (size_t i = 0; i < t[2].size; ++i) m1 = std::max(m1, double(std::abs(p[t[2].offset + i])));
  CHECK(m0 <= he);
  CHECK(m0 > 0.95 * he);
  CHECK(m1 <= gl);
  CHECK(m1 > 0.9 * gl);
  for (size_t i = 0; i < t[1].size; ++i) CHECK(p[t[1].offset + i] == 0.f);
}

TEST_CASE("latent noise from Philox: reproducible per (seed, stream), unit variance") {
  std::vector<float> a(10000, 0.f), b(10000, 0.f);
  ops::add_normal(cpu_context(), a.data(), a.size(), 0.5f, 3, 4);
  ops::add_normal(cpu_context(), b.data(), b.size(), 0.5f, 3, 4);
  CHECK(a == b);
  double s2 = 0;
  for (float v : a) s2 += double(v) * v;
  CHECK(s2 / a.size() == doctest::Approx(0.25).epsilon(0.05));
}

TEST_CASE("architecture descriptions round-trip through JSON and reject nonsense") {
  Arch a = mixed_arch();
  a.layers[0].lr_scale = 0.5f;
  a.layers[0].init = Init::glorot_uniform;
  Arch b = Arch::from_json(a.to_json());
  CHECK(b.to_json() == a.to_json());
  CHECK(b.layers.size() == a.layers.size());
  nlohmann::json j = a.to_json();
  j["layers"][1]["act"] = "swish";
  CHECK_THROWS_WITH_AS(Arch::from_json(j), doctest::Contains("swish"), Error);
  j = a.to_json();
  j["layers"][0].erase("out");
  CHECK_THROWS_WITH_AS(Arch::from_json(j), doctest::Contains("malformed"), Error);
  for (const nlohmann::json& bad : {nlohmann::json(1e99), nlohmann::json(-3), nlohmann::json(2.5)}) {
    j = a.to_json();
    j["layers"][0]["out"] = bad;  // get<int>() of 1e99 would be undefined
    CHECK_THROWS_WITH_AS(Arch::from_json(j), doctest::Contains("not a layer size"), Error);
  }
  Sequential net(a, cpu_context(), 1);
  CHECK_THROWS_AS(net.backward(nullptr, false), Error);
  std::vector<float> x(6);
  CHECK_THROWS_AS(net.forward(x.data(), 1, Mode::train), Error);  // batch-norm statistics of one row
}

TEST_CASE("CPU training never loads cuBLAS (nn/ resolves it on first GPU use, it is not linked)") {
  Sequential net(mixed_arch(), cpu_context(), 4);
  std::vector<float> x = rand_vec(4 * 6, 30), r = rand_vec(4 * 3, 31);
  net.forward(x.data(), 4, Mode::train, 0);
  net.backward(r.data(), true);
  std::ifstream maps("/proc/self/maps");
  REQUIRE(maps.good());
  std::string line, found;
  while (std::getline(maps, line))
    if (line.find("libcublas") != std::string::npos) found = line;
  CHECK_MESSAGE(found.empty(), "mapped: " << found);
}
