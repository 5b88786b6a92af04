// Issue 14's additions on CUDA against the CPU backend (the oracle): the SNR-weighted and the pooled score (the
// projector with ProjectorOptions::ring_weights, and with ::pooled: scores, FRC and parameter gradients) and the rigid-mode projection of
// the decoder's positions (train_ops::rigid_project, forward and adjoint). Exits 77 (skipped) without a GPU.
// Tolerances as tests/gpu/test_projector_cuda.cpp: scores 1e-4 absolute, gradients 1e-3 of their largest, each
// FRC ring 1e-4, or what float rounding alone moves them by if more (tests/gpu/float_sensitivity.h).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "core/buffer.h"
#include "core/context.h"
#include "engine/projector.h"
#include "engine/train_ops.h"
#include "engine/trainer.h"
#include "tests/gpu/float_sensitivity.h"

using namespace cugmm;

namespace {

double max_abs(const std::vector<float>& v) {
  double m = 0;
  for (float x : v) m = std::max(m, double(std::fabs(x)));
  return m;
}

}  // namespace

TEST_CASE("CUDA matches CPU: the SNR-weighted and the pooled score and their gradients") {
 for (bool pooled : {false, true}) {
  CAPTURE(pooled);
  std::mt19937 rng(17);
  const int g = 120, count = 29, box = 48;
  FourierBand band = make_fourier_band(box, 1.7, 60, 0);
  std::uniform_real_distribution<float> pos(-18, 18), amp(0.5f, 2.f), wid(1.8f, 4.f);
  std::uniform_real_distribution<double> ang(-180, 180), tilt(0, 180);
  std::vector<float> params;
  for (int r = 0; r < count; ++r)
    for (int c = 0; c < 5; ++c)
      for (int j = 0; j < g; ++j) params.push_back(c < 3 ? pos(rng) : c == 3 ? amp(rng) : wid(rng));
  std::vector<ParticleView> views;
  for (int i = 0; i < count; ++i) {
    CtfParams c;
    c.defocus_u = 15000;
    c.defocus_v = 14600;
    views.push_back(make_particle_view(ang(rng), tilt(rng), ang(rng), 1.0, -2.0, c, CtfMode::full));
  }
  std::normal_distribution<float> n01;
  std::vector<cfloat> data(size_t(count) * band.size());
  for (auto& d : data) d = cfloat(n01(rng), n01(rng));
  // Weights that fall with the ring and vanish beyond ring 15, as the estimated ones do.
  ProjectorOptions o;
  o.max_batch = 8;
  o.ring_weights.assign(band.num_rings(), 0.f);
  for (int r = 0; r <= 15 && r < band.num_rings(); ++r) o.ring_weights[size_t(r)] = float(r) * std::exp(-0.2f * r);
  o.pooled = pooled;
  Context cx(Device::cuda);
  auto cpu = make_projector(cpu_context(), band, g, o);
  auto gpu = make_projector(cx, band, g, o);
  const size_t row = size_t(5) * g, nr = band.num_rings();
  ProjectionBatch in{count, params.data(), row, views.data(), data.data()};
  // [0] the CPU, [1] CUDA, [2] the CPU on jittered parameters (how far rounding alone moves each output).
  const std::vector<float> params_j = test::jittered(params);
  ProjectionBatch in_j = in;
  in_j.params = params_j.data();
  std::vector<float> s[3], f[3], gp[3];
  Projector* ps[3] = {cpu.get(), gpu.get(), cpu.get()};
  for (int k = 0; k < 3; ++k) {
    s[k].resize(count);
    f[k].resize(count * nr);
    gp[k].resize(count * row);
    ProjectionOutputs out;
    out.score = s[k].data();
    out.frc = f[k].data();
    out.grad_params = gp[k].data();
    ps[k]->run_host(k == 2 ? in_j : in, out);
  }
  const double score_tol = test::tolerance(1e-4, s[0], s[2]);
  const std::vector<double> ring_tol = test::ring_tolerances(1e-4, f[0], f[2], nr);
  CHECK(ring_tol[nr / 3] < 1e-3);  // the low rings are well conditioned: only the last are rounding-bound
  // The CPU's score is the weighted sum of its own FRC (weights normalised to 1).
  const std::vector<float> v = score_ring_weights(band, o.ring_weights);
  for (int i = 0; i < count; ++i) {
    double want = 0;
    for (size_t r = 0; r < nr; ++r) want += double(v[r]) * f[0][i * nr + r];
    if (!pooled) CHECK(std::fabs(s[0][i] - want) <= 1e-5);  // the pooled one: tests/test_accuracy_ops.cpp
    CHECK(std::fabs(s[1][i] - s[0][i]) <= score_tol);
    for (size_t r = 0; r < nr; ++r) CHECK(std::fabs(f[1][i * nr + r] - f[0][i * nr + r]) <= ring_tol[r]);
  }
  const double tol = test::tolerance(1e-3 * max_abs(gp[0]), gp[0], gp[2]);
  CHECK(max_abs(gp[0]) > 0);
  for (size_t i = 0; i < gp[0].size(); ++i) CHECK(std::fabs(gp[1][i] - gp[0][i]) <= tol);
 }
}

TEST_CASE("CUDA matches CPU: the rigid-mode projection and its adjoint") {
  std::mt19937 rng(23);
  const int g = 300, rows = 11;
  std::uniform_real_distribution<float> pos(-30, 30), amp(1.f, 9.f), u(-1, 1);
  std::vector<float> neutral;
  for (int c = 0; c < 5; ++c)
    for (int j = 0; j < g; ++j) neutral.push_back(c < 3 ? pos(rng) : c == 3 ? amp(rng) : 3.f);
  TrainConfig tc;
  tc.rigid_free = true;
  const StepConsts k = step_consts(tc, neutral, 64, 2.0);
  REQUIRE(k.rigid_free);
  std::vector<float> x(size_t(rows) * 5 * g);
  for (float& e : x) e = u(rng);
  Context cx(Device::cuda);
  Buffer<float> base(cx), din(cx), dout(cx, x.size());
  base.upload(neutral);
  din.upload(x);
  for (bool adjoint : {false, true}) {
    std::vector<float> want(x.size()), got(x.size());
    train_ops::rigid_project(cpu_context(), k, neutral.data(), x.data(), want.data(), rows, adjoint);
    train_ops::rigid_project(cx, k, base.data(), din.data(), dout.data(), rows, adjoint);
    dout.download(got.data(), got.size());
    cx.synchronize();
    const double tol = 1e-5 * max_abs(want);
    for (size_t i = 0; i < x.size(); ++i) CHECK(std::fabs(got[i] - want[i]) <= tol);
  }
}
