// Each layer's backward against central finite differences, in double precision, through the very
// functions the CPU backend runs in float (nn/cpu_ops.h is templated on the scalar). The loss is
// L = sum(r * y) with a fixed random r, so dL/dy = r is the cotangent handed to backward.
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <vector>

#include "kernels/philox.h"
#include "kernels/nn_adam.h"
#include "nn/cpu_ops.h"

using namespace cugmm;
using Vec = std::vector<double>;

namespace {

Vec rand_vec(size_t n, uint64_t stream, double lo = -1, double hi = 1) {
  Vec v(n);
  for (size_t i = 0; i < n; ++i) v[i] = lo + (hi - lo) * philox_uniform(42, stream, i);
  return v;
}

double dot(const Vec& a, const Vec& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

// Checks every element of `analytic` against d loss / d v[i] by central differences.
void check_grad(const std::function<double()>& loss, Vec& v, const Vec& analytic, const char* what,
                double h = 1e-6, double tol = 1e-7) {
  REQUIRE(analytic.size() == v.size());
  double worst = 0;
  for (size_t i = 0; i < v.size(); ++i) {
    double keep = v[i];
    v[i] = keep + h;
    double up = loss();
    v[i] = keep - h;
    double dn = loss();
    v[i] = keep;
    double fd = (up - dn) / (2 * h);
    worst = std::max(worst, std::abs(fd - analytic[i]) / (1 + std::abs(fd)));
  }
  INFO(what << ": worst relative error " << worst);
  CHECK(worst < tol);
}

}  // namespace

TEST_CASE("dense: gradients of weights, bias and input; a skipped input gradient is not computed") {
  const int B = 3, in = 4, out = 5;
  Vec x = rand_vec(B * in, 1), w = rand_vec(out * in, 2), b = rand_vec(out, 3), r = rand_vec(B * out, 4);
  auto loss = [&] {
    Vec y(B * out);
    nn::cpu::dense_fwd(x.data(), w.data(), b.data(), y.data(), B, in, out);
    return dot(r, y);
  };
  Vec vw(out * in), vb(out), vx(B * in, 123.0);
  nn::cpu::dense_bwd(x.data(), w.data(), r.data(), vw.data(), vb.data(), vx.data(), B, in, out);
  check_grad(loss, w, vw, "dense weight");
  check_grad(loss, b, vb, "dense bias");
  check_grad(loss, x, vx, "dense input");

  // Bias-free, no input gradient: v_x untouched, weight gradient unchanged.
  Vec vw2(out * in), untouched(B * in, 7.0);
  nn::cpu::dense_bwd(x.data(), w.data(), r.data(), vw2.data(), static_cast<double*>(nullptr),
                     static_cast<double*>(nullptr), B, in, out);
  for (size_t i = 0; i < vw.size(); ++i) CHECK(vw2[i] == doctest::Approx(vw[i]).epsilon(1e-14));
  CHECK(untouched == Vec(B * in, 7.0));
}

TEST_CASE("activations: backward from the output matches finite differences") {
  const int n = 64;
  const Act acts[] = {Act::identity, Act::relu, Act::leaky_relu, Act::sigmoid, Act::tanh};
  for (Act a : acts) {
    Vec x = rand_vec(n, 10, -2, 2), r = rand_vec(n, 11);
    // Keep away from the ReLU kink, where the derivative is undefined and differences straddle it.
    for (double& v : x)
      if (std::abs(v) < 1e-3) v = 0.5;
    const double slope = 0.1;
    auto loss = [&] {
      Vec y = x;
      nn::cpu::act_fwd(a, slope, y.data(), y.size());
      return dot(r, y);
    };
    Vec y = x, v = r;
    nn::cpu::act_fwd(a, slope, y.data(), y.size());
    nn::cpu::act_bwd(a, slope, y.data(), v.data(), v.size());
    check_grad(loss, x, v, "activation");
  }
}

TEST_CASE("dropout: forward and backward apply the same Philox mask and scale") {
  const float p = 0.3f;
  {
    const size_t n = 300;  // finite differences: two forwards per element
    Vec x = rand_vec(n, 20), r = rand_vec(n, 21);
    auto loss = [&] {
      Vec y(n);
      nn::cpu::dropout(p, 9, 77, x.data(), y.data(), n);
      return dot(r, y);
    };
    Vec v(n);
    nn::cpu::dropout(p, 9, 77, r.data(), v.data(), n);
    check_grad(loss, x, v, "dropout");
  }
  const size_t n = 20000;
  Vec x = rand_vec(n, 22), y(n), y2(n);
  nn::cpu::dropout(p, 9, 77, x.data(), y.data(), n);
  size_t kept = 0, wrong = 0;
  for (size_t i = 0; i < n; ++i)
    if (y[i] != 0) {
      ++kept;
      wrong += std::abs(y[i] - x[i] / (1 - p)) > 1e-12;
    }
  CHECK(wrong == 0);
  CHECK(double(kept) / n == doctest::Approx(0.7).epsilon(0.02));
  nn::cpu::dropout(p, 9, 78, x.data(), y2.data(), n);  // another step: another mask
  CHECK(y2 != y);
  // The CPU loop draws once per four elements; the mask is the per-element one the CUDA kernel uses
  // (dropout_apply), bit for bit, including a tail that is not a whole draw.
  for (size_t m : {size_t(1), size_t(7), size_t(19999)}) {
    Vec z(m);
    nn::cpu::dropout(p, 9, 77, x.data(), z.data(), m);
    size_t differ = 0;
    for (size_t i = 0; i < m; ++i) differ += z[i] != dropout_apply(x[i], p, 9, 77, i);
    CHECK(differ == 0);
  }
}

TEST_CASE("batch-norm in training: gradients through the batch statistics; running statistics move") {
  const int B = 6, C = 3;
  Vec x = rand_vec(B * C, 30, -2, 3), gamma = rand_vec(C, 31, 0.5, 1.5), beta = rand_vec(C, 32), r = rand_vec(B * C, 33);
  const double eps = 1e-5, mom = 0.1;
  auto forward = [&](Vec& mean, Vec& rstd, Vec& rm, Vec& rv) {
    Vec y(B * C);
    nn::cpu::bn_fwd_train(x.data(), y.data(), gamma.data(), beta.data(), mean.data(), rstd.data(), rm.data(),
                          rv.data(), mom, eps, B, C);
    return y;
  };
  auto loss = [&] {
    Vec mean(C), rstd(C), rm(C, 0.0), rv(C, 1.0);
    return dot(r, forward(mean, rstd, rm, rv));
  };
  Vec mean(C), rstd(C), rm(C, 0.0), rv(C, 1.0);
  Vec y = forward(mean, rstd, rm, rv);
  Vec vx(B * C), vg(C), vb(C);
  nn::cpu::bn_bwd(true, x.data(), r.data(), gamma.data(), mean.data(), rstd.data(), vx.data(), vg.data(), vb.data(),
                  B, C);
  check_grad(loss, x, vx, "batch-norm input (train)", 1e-6, 1e-6);
  check_grad(loss, gamma, vg, "batch-norm gamma (train)");
  check_grad(loss, beta, vb, "batch-norm beta (train)");
  // Each column of y has mean beta and standard deviation ~gamma; the running mean took 10% of the batch's.
  for (int c = 0; c < C; ++c) {
    double s = 0, s2 = 0, xs = 0;
    for (int b = 0; b < B; ++b) {
      s += y[b * C + c];
      s2 += y[b * C + c] * y[b * C + c];
      xs += x[b * C + c];
    }
    CHECK(s / B == doctest::Approx(beta[c]).epsilon(1e-9));
    CHECK(std::sqrt(s2 / B - (s / B) * (s / B)) == doctest::Approx(gamma[c]).epsilon(1e-4));
    CHECK(rm[c] == doctest::Approx(0.1 * xs / B));
  }
}

TEST_CASE("batch-norm in inference: running statistics are constants") {
  const int B = 4, C = 5;
  Vec x = rand_vec(B * C, 40), gamma = rand_vec(C, 41, 0.5, 1.5), beta = rand_vec(C, 42), r = rand_vec(B * C, 43);
  Vec rm = rand_vec(C, 44), rv = rand_vec(C, 45, 0.5, 2);
  auto loss = [&] {
    Vec y(B * C), mean(C), rstd(C);
    nn::cpu::bn_fwd_infer(x.data(), y.data(), gamma.data(), beta.data(), rm.data(), rv.data(), mean.data(),
                          rstd.data(), 1e-5, B, C);
    return dot(r, y);
  };
  Vec y(B * C), mean(C), rstd(C), vx(B * C), vg(C), vb(C);
  nn::cpu::bn_fwd_infer(x.data(), y.data(), gamma.data(), beta.data(), rm.data(), rv.data(), mean.data(), rstd.data(),
                        1e-5, B, C);
  nn::cpu::bn_bwd(false, x.data(), r.data(), gamma.data(), mean.data(), rstd.data(), vx.data(), vg.data(), vb.data(),
                  B, C);
  check_grad(loss, x, vx, "batch-norm input (inference)");
  check_grad(loss, gamma, vg, "batch-norm gamma (inference)");
  check_grad(loss, beta, vb, "batch-norm beta (inference)");
}

TEST_CASE("L2 weight decay: the Adam step adds wd * p, the gradient of wd/2 |p|^2") {
  // With a zero data gradient and wd > 0, Adam's first step is -lr * sign(p) (m/sqrt(v) = g/|g|).
  AdamScalars s{0.01f, 0.9f, 0.999f, 1e-12f, 0.1f, 0.001f, 0.5f, 1.0f};
  double p = 2.0, m = 0, v = 0;
  adam_step(p, 0.0, m, v, s);
  CHECK(m == doctest::Approx(0.1 * 0.5 * 2.0));
  CHECK(v == doctest::Approx(0.001 * 1.0));
  CHECK(p == doctest::Approx(2.0 - 0.01).epsilon(1e-7));  // the scalars are floats
}
