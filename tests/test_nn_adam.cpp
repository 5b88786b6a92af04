// Adam: the step against a textbook reference, per-group learning rates, global-norm clipping, the
// bfloat16 moments, and a small regression problem that must train to a known loss with either
// precision of moments.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <vector>

#include "kernels/nn_adam.h"
#include "kernels/philox.h"
#include "nn/adam.h"
#include "nn/ops.h"
#include "nn/sequential.h"

using namespace cugmm;
using namespace cugmm::nn;

namespace {

std::vector<float> rand_vec(size_t n, uint64_t stream, float lo = -1, float hi = 1) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = lo + (hi - lo) * philox_uniform(8, stream, i);
  return v;
}

Arch small_arch() {
  Arch a;
  a.in = 3;
  a.layers = {dense(4), tanh_act(), dense(2)};
  return a;
}

// The textbook algorithm (Kingma & Ba), in double.
struct RefAdam {
  double lr, b1, b2, eps;
  std::vector<double> m, v;
  int t = 0;
  void step(std::vector<double>& p, const std::vector<double>& g) {
    ++t;
    for (size_t i = 0; i < p.size(); ++i) {
      m[i] = b1 * m[i] + (1 - b1) * g[i];
      v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
      double mh = m[i] / (1 - std::pow(b1, t)), vh = v[i] / (1 - std::pow(b2, t));
      p[i] -= lr * mh / (std::sqrt(vh) + eps);
    }
  }
};

}  // namespace

TEST_CASE("Adam with bias correction matches the textbook algorithm over several steps") {
  Sequential net(small_arch(), cpu_context(), 1);
  AdamConfig cfg;
  cfg.lr = 0.01f;
  Adam opt(net, cfg);
  size_t n = net.num_params();
  std::vector<double> p(net.params(), net.params() + n);
  RefAdam ref{0.01, 0.9, 0.999, 1e-8, std::vector<double>(n), std::vector<double>(n)};
  for (int s = 0; s < 4; ++s) {
    std::vector<float> g = rand_vec(n, 100 + s, -1.f - s, 1.f + s);
    std::copy(g.begin(), g.end(), net.grads());
    opt.step();
    ref.step(p, std::vector<double>(g.begin(), g.end()));
  }
  CHECK(opt.steps() == 4);
  for (size_t i = 0; i < n; ++i) CHECK(net.params()[i] == doctest::Approx(p[i]).epsilon(1e-6));
  // Bias correction: the very first step moves every parameter by lr (|m_hat / sqrt(v_hat)| = 1).
  Sequential fresh(small_arch(), cpu_context(), 1);
  Adam first(fresh, cfg);
  std::vector<float> before = fresh.params_to_host(), g = rand_vec(n, 200);
  std::copy(g.begin(), g.end(), fresh.grads());
  first.step();
  for (size_t i = 0; i < n; ++i) CHECK(std::abs(fresh.params()[i] - before[i]) == doctest::Approx(0.01).epsilon(1e-4));
}

TEST_CASE("per-group learning rates: a layer's lr factor scales its step, zero freezes it") {
  Arch a = small_arch();
  a.layers[0].lr_scale = 0;
  a.layers[2].lr_scale = 3;
  Sequential net(a, cpu_context(), 1);
  AdamConfig cfg;
  cfg.lr = 0.01f;
  Adam opt(net, cfg);
  std::vector<float> before = net.params_to_host(), g = rand_vec(net.num_params(), 300);
  std::copy(g.begin(), g.end(), net.grads());
  opt.step();
  const auto& t = net.tensors();
  for (const ParamTensor& pt : t)
    for (size_t i = pt.offset; i < pt.offset + pt.size; ++i) {
      double step = std::abs(net.params()[i] - before[i]);
      if (pt.name.rfind("0.", 0) == 0) CHECK(step == 0);
      else CHECK(step == doctest::Approx(0.03).epsilon(1e-4));
    }
}

TEST_CASE("global-norm clipping scales the gradient before the moments see it") {
  Sequential a(small_arch(), cpu_context(), 1), b(small_arch(), cpu_context(), 1);
  AdamConfig clipped;
  clipped.lr = 0.01f;
  clipped.clip_norm = 1.f;
  AdamConfig plain = clipped;
  plain.clip_norm = 0;
  Adam oa(a, clipped), ob(b, plain);
  size_t n = a.num_params();
  std::vector<float> g1 = rand_vec(n, 400), g2 = rand_vec(n, 401);
  double n1 = 0, n2 = 0;
  for (float v : g1) n1 += double(v) * v;
  for (float& v : g2) v *= 0.1f;
  for (float v : g2) n2 += double(v) * v;
  REQUIRE(std::sqrt(n1) > 1.0);
  REQUIRE(std::sqrt(n2) < 1.0);
  // Step 1 is clipped (a sees g1 / |g1|), step 2 is not.
  std::copy(g1.begin(), g1.end(), a.grads());
  oa.step();
  CHECK(oa.last_grad_norm() == doctest::Approx(std::sqrt(n1)).epsilon(1e-6));
  for (size_t i = 0; i < n; ++i) b.grads()[i] = static_cast<float>(g1[i] / std::sqrt(n1));
  ob.step();
  std::copy(g2.begin(), g2.end(), a.grads());
  std::copy(g2.begin(), g2.end(), b.grads());
  oa.step();
  ob.step();
  for (size_t i = 0; i < n; ++i) CHECK(a.params()[i] == doctest::Approx(b.params()[i]).epsilon(1e-6));
  // And without the scaling the second step would differ: the moments remember step 1's size.
  Sequential c(small_arch(), cpu_context(), 1);
  Adam oc(c, plain);
  std::copy(g1.begin(), g1.end(), c.grads());
  oc.step();
  std::copy(g2.begin(), g2.end(), c.grads());
  oc.step();
  double diff = 0;
  for (size_t i = 0; i < n; ++i) diff = std::max(diff, double(std::abs(c.params()[i] - a.params()[i])));
  CHECK(diff > 1e-4);
}

TEST_CASE("bfloat16 moments: exact values stay exact, stochastic rounding is unbiased") {
  for (float v : {0.f, 1.f, -2.5f, 3.0517578125e-05f}) CHECK(bf16_to_f32(f32_to_bf16_stochastic(v, 0xffffffffu)) == v);
  const float x = 1.0f + 1.0f / 1024;  // between bf16 neighbours 1 and 1 + 1/128, 1/8 of the way
  double s = 0;
  const int n = 20000;
  for (int i = 0; i < n; ++i) {
    float r = bf16_to_f32(f32_to_bf16_stochastic(x, philox_u32(1, 2, i)));
    CHECK((r == 1.0f || r == 1.0f + 1.0f / 128));
    s += r;
  }
  CHECK(s / n == doctest::Approx(x).epsilon(2e-4));
}

TEST_CASE("bfloat16 Adam: one Philox draw per quad gives element i the word philox_u32(seed, step, i)") {
  // Groups that start and end inside quads, with their own lr factors and L2 coefficients.
  const std::vector<AdamSegment> segs = {{0, 5, 1.f, 0.f}, {5, 11, 0.5f, 1e-2f}, {11, 18, 2.f, 0.f}};
  const size_t n = 18;
  std::vector<float> p = rand_vec(n, 600), g = rand_vec(n, 601), p_ref = p;
  std::vector<uint16_t> m(n), v(n), m_ref(n), v_ref(n);
  for (size_t i = 0; i < n; ++i) {
    m[i] = m_ref[i] = static_cast<uint16_t>(0x3c00 + i);  // nonzero moments: the rounding bits matter
    v[i] = v_ref[i] = static_cast<uint16_t>(0x3a00 + 3 * i);
  }
  AdamScalars s{1e-2f, 0.9f, 0.999f, 1e-8f, 0.1f, 0.001f, 0.f, 1.f};
  const uint64_t seed = 77, step = 5;
  ops::adam_bf16(cpu_context(), p.data(), g.data(), m.data(), v.data(), segs, s, seed, step);
  for (const AdamSegment& seg : segs)
    for (size_t i = seg.begin; i < seg.end; ++i) {
      AdamScalars t = s;
      t.lr *= seg.lr_scale;
      t.wd = seg.wd;
      adam_step_bf16(p_ref[i], g[i], m_ref[i], v_ref[i], t, philox_u32(seed, step, i));
    }
  CHECK(p == p_ref);
  CHECK(m == m_ref);
  CHECK(v == v_ref);
}

namespace {

// A teacher network makes the targets; a student with its own seed learns them (full batch, MSE).
std::vector<double> train_regression(Moments moments, int steps) {
  const int N = 256, in = 8, out = 2;
  Arch teacher_arch;
  teacher_arch.in = in;
  teacher_arch.layers = {dense(16), tanh_act(), dense(out)};
  Sequential teacher(teacher_arch, cpu_context(), 1234);
  std::vector<float> x = rand_vec(size_t(N) * in, 500);
  const float* ty = teacher.forward(x.data(), N, Mode::infer);
  std::vector<float> target(ty, ty + size_t(N) * out);

  Arch a;
  a.in = in;
  a.layers = {dense(32), tanh_act(), dense(32), tanh_act(), dense(out)};
  Sequential net(a, cpu_context(), 99);
  AdamConfig cfg;
  cfg.lr = 3e-3f;
  cfg.moments = moments;
  Adam opt(net, cfg);
  std::vector<float> v(size_t(N) * out);
  std::vector<double> losses;
  for (int s = 0; s < steps; ++s) {
    const float* y = net.forward(x.data(), N, Mode::train, s);
    double loss = 0;
    for (size_t i = 0; i < v.size(); ++i) {
      double d = double(y[i]) - target[i];
      loss += d * d / v.size();
      v[i] = static_cast<float>(2 * d / v.size());
    }
    losses.push_back(loss);
    net.backward(v.data(), false);
    opt.step();
  }
  return losses;
}

}  // namespace

TEST_CASE("a small regression problem trains to a known loss, with fp32 and with bf16 moments") {
  const int steps = 1000;
  std::vector<double> f32 = train_regression(Moments::f32, steps);
  std::vector<double> b16 = train_regression(Moments::bf16, steps);
  std::printf("regression (teacher 8-16-2, student 8-32-32-2, Adam lr 3e-3, %d full-batch steps):\n"
              "  fp32 moments: loss %.3e -> %.3e\n  bf16 moments: loss %.3e -> %.3e\n",
              steps, f32.front(), f32.back(), b16.front(), b16.back());
  CHECK(f32.front() > 0.05);
  // Known result: ~2.6e-4 after 1000 steps (a 2,000-fold drop); bf16 moments land within 10% of it.
  CHECK(f32.back() < 5e-4);
  CHECK(b16.back() < 5e-4);
  CHECK(std::abs(b16.back() - f32.back()) < 0.1 * f32.back());
  // The same run twice gives the same trajectory, bit for bit.
  CHECK(train_regression(Moments::f32, 20) == std::vector<double>(f32.begin(), f32.begin() + 20));
}

TEST_CASE("a NaN or Inf gradient is not applied and stops the step, naming the network (issue 17 item 3)") {
  // Gradients are a boundary: train does not clip, so without this check one non-finite gradient would turn
  // every weight and both moments into NaN before the loss check saw anything.
  for (Moments mom : {Moments::f32, Moments::bf16}) {
    Sequential net(small_arch(), cpu_context(), 1);
    AdamConfig cfg;
    cfg.lr = 0.01f;
    cfg.moments = mom;
    cfg.name = "decoder";
    Adam opt(net, cfg);
    const size_t n = net.num_params();
    std::vector<float> before = net.params_to_host(), g = rand_vec(n, 500);
    g[3] = std::nanf("");
    g[n - 1] = -INFINITY;
    std::copy(g.begin(), g.end(), net.grads());
    const std::string want = "the decoder's gradient is not finite (2 of " + std::to_string(n) + " elements, Adam step 1";
    CHECK_THROWS_WITH_AS(opt.step(), doctest::Contains(want.c_str()), Error);
    for (size_t i = 0; i < n; ++i) {
      INFO("parameter " << i);
      CHECK(std::isfinite(net.params()[i]));
      if (i == 3 || i == n - 1) CHECK(net.params()[i] == before[i]);  // not applied
      else CHECK(net.params()[i] != before[i]);                         // the rest took their step
    }
    // With clipping the norm is the first to see it.
    AdamConfig clip = cfg;
    clip.clip_norm = 1.f;
    Adam clipped(net, clip);
    CHECK_THROWS_WITH_AS(clipped.step(), doctest::Contains("the decoder's gradient is not finite (norm"), Error);
  }
}

TEST_CASE("the CPU's vectorised fp32 pass is the scalar step bit for bit, skipping non-finite elements") {
  // ops::adam_f32 splits a segment over the threads and runs each span through a copy compiled for the
  // CPU's vector unit (nn/adam_cpu.cpp, contraction off): every element must round exactly as adam_step,
  // whatever its position in a vector or span, and a NaN/Inf gradient anywhere must leave its p, m, v.
  const size_t n = 100003;  // several vectors per thread and a ragged tail; >= kParallelMin (threads split it)
  std::vector<float> p = rand_vec(n, 601), g = rand_vec(n, 602, -1e-2f, 1e-2f), m = rand_vec(n, 603, -1e-3f, 1e-3f),
                     v = rand_vec(n, 604, 0.f, 1e-4f);
  const size_t bad[] = {0, 5, 15, 16, 17, 4096, n / 2, n - 2, n - 1};
  for (size_t i : bad) g[i] = (i % 2) ? std::nanf("") : INFINITY;
  AdamScalars s{1e-3f, 0.9f, 0.999f, 1e-8f, 0.271f, 0.00299f, 1e-3f, 0.5f};
  const std::vector<float> p0 = p;
  std::vector<float> rp = p, rm = m, rv = v;
  for (size_t i = 0; i < n; ++i)
    if (finite_f32(g[i])) adam_step(rp[i], g[i], rm[i], rv[i], s);
  const std::vector<AdamSegment> segs = {{0, 7, 1.f, 1e-3f}, {7, n, 1.f, 1e-3f}};  // a short one and a long one
  const size_t skipped = ops::adam_f32(cpu_context(), p.data(), g.data(), m.data(), v.data(), segs, s);
  CHECK(skipped == sizeof bad / sizeof bad[0]);
  size_t differ = 0;
  for (size_t i = 0; i < n; ++i) differ += (p[i] != rp[i]) + (m[i] != rm[i]) + (v[i] != rv[i]);
  CHECK(differ == 0);
  for (size_t i : bad) CHECK(p[i] == p0[i]);  // not applied
}
