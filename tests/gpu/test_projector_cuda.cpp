// The CUDA projector against the CPU one (the oracle) on random batches: scores, FRC, every gradient in
// both reductions, render; the device-pointer run() on a Context; determinism; and its input checks
// (device-side, reported by the context's synchronize()). Exits 77 (skipped) without a GPU.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "core/buffer.h"
#include "core/context.h"
#include "core/error.h"
#include "engine/projector.h"
#include "tests/gpu/float_sensitivity.h"

using namespace cugmm;

namespace {

struct Batch {
  std::vector<float> params;
  std::vector<ParticleView> views;
  std::vector<cfloat> data;
};

Batch random_batch(std::mt19937& rng, const FourierBand& band, int g, int count, bool per_particle) {
  Batch b;
  std::uniform_real_distribution<float> pos(-float(band.box * band.pixel_size / 4), float(band.box * band.pixel_size / 4));
  std::uniform_real_distribution<float> amp(0.5f, 2.f), wid(1.f, 2.5f);
  std::uniform_real_distribution<double> ang(-180, 180), tilt(0, 180), sh(-4, 4), df(8000, 25000);
  const int rows = per_particle ? count : 1;
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < 5; ++c)
      for (int j = 0; j < g; ++j)
        b.params.push_back(c < 3 ? pos(rng) : c == 3 ? amp(rng) : wid(rng) * float(band.pixel_size));
  const CtfMode modes[] = {CtfMode::none, CtfMode::full, CtfMode::phase_flipped};
  for (int i = 0; i < count; ++i) {
    CtfParams c;
    c.defocus_u = df(rng); c.defocus_v = c.defocus_u - 400; c.defocus_angle = ang(rng);
    b.views.push_back(make_particle_view(ang(rng), tilt(rng), ang(rng), sh(rng), sh(rng), c, modes[i % 3]));
  }
  // Data: the CPU model of the same particles plus noise, so the scores are far from zero.
  auto cpu = make_projector(cpu_context(), band, g, {ProjectionStrategy::splat_fft});
  const size_t plane = size_t(band.box) * (band.box / 2 + 1);
  std::vector<cfloat> half(count * plane);
  ProjectionBatch in{count, b.params.data(), per_particle ? size_t(5 * g) : 0, b.views.data(), nullptr};
  cpu->render_host(in, half.data());
  std::normal_distribution<float> n01;
  for (int i = 0; i < count; ++i)
    for (size_t k = 0; k < band.size(); ++k)
      b.data.push_back(half[i * plane + band.fft_index[k]] * 0.9f + cfloat(n01(rng), n01(rng)) * 0.3f);
  return b;
}

double max_abs(const std::vector<float>& v) {
  double m = 0;
  for (float x : v) m = std::max(m, double(std::fabs(x)));
  return m;
}

// Within max(rel x the largest wanted value, what float rounding alone moves it by: the CPU's change from
// `oracle` to `oracle_jittered`, tests/gpu/float_sensitivity.h).
void check_close(const std::vector<float>& got, const std::vector<float>& want, double rel,
                 const std::vector<float>& oracle, const std::vector<float>& oracle_jittered) {
  REQUIRE(got.size() == want.size());
  const double tol = test::tolerance(rel * max_abs(want) + 1e-12, oracle, oracle_jittered);
  for (size_t i = 0; i < got.size(); ++i) CHECK(std::fabs(got[i] - want[i]) <= tol);
}

}  // namespace

TEST_CASE("CUDA matches CPU: scores, FRC, parameter and pose gradients, render") {
  std::mt19937 rng(11);
  for (int box : {32, 64}) {
    for (bool per_particle : {false, true}) {
      const int g = 150, count = 37;
      FourierBand band = make_fourier_band(box, 1.8, 60, 0);
      Batch b = random_batch(rng, band, g, count, per_particle);
      ProjectorOptions o;
      o.strategy = ProjectionStrategy::splat_fft;
      o.max_batch = 16;  // several chunks
      Context cx(Device::cuda);
      auto cpu = make_projector(cpu_context(), band, g, o);
      auto gpu = make_projector(cx, band, g, o);
      const size_t row = size_t(5) * g, nr = band.num_rings();
      ProjectionBatch in{count, b.params.data(), per_particle ? row : 0, b.views.data(), b.data.data()};
      const std::vector<float> pj = test::jittered(b.params);  // the oracle's own sensitivity (see the header)
      ProjectionBatch in_j = in;
      in_j.params = pj.data();
      double score_tol = 0;
      for (GradReduce red : {GradReduce::per_particle, GradReduce::sum}) {
        if (per_particle && red == GradReduce::sum) continue;
        // [0] the CPU, [1] CUDA, [2] the CPU on jittered parameters.
        std::vector<float> s[3], f[3], gp[3], pose[3];
        Projector* ps[3] = {cpu.get(), gpu.get(), cpu.get()};
        for (int k = 0; k < 3; ++k) {
          s[k].resize(count); f[k].resize(count * nr);
          gp[k].resize(red == GradReduce::sum ? row : count * row); pose[k].resize(count * 5);
          ProjectionOutputs out;
          out.score = s[k].data(); out.frc = f[k].data(); out.grad_params = gp[k].data();
          out.grad_reduce = red; out.grad_pose = pose[k].data();
          ps[k]->run_host(k == 2 ? in_j : in, out);
        }
        CAPTURE(box); CAPTURE(per_particle); CAPTURE(int(red));
        CHECK(max_abs(s[0]) > 0.1);
        score_tol = test::tolerance(1e-4, s[0], s[2]);
        CHECK(score_tol < 0.02);  // the scores themselves are well conditioned
        for (int i = 0; i < count; ++i) CHECK(std::fabs(s[1][i] - s[0][i]) <= score_tol);
        const std::vector<double> ring_tol = test::ring_tolerances(1e-3, f[0], f[2], nr);
        CHECK(ring_tol[nr / 2] < 2e-3);  // the middle ring is well conditioned: only the last are rounding-bound
        for (size_t i = 0; i < f[0].size(); ++i) CHECK(std::fabs(f[1][i] - f[0][i]) <= ring_tol[i % nr]);
        check_close(gp[1], gp[0], 1e-3, gp[0], gp[2]);
        check_close(pose[1], pose[0], 1e-3, pose[0], pose[2]);
      }
      // Score only: the same scores without the backward.
      std::vector<float> s_only(count), s_cpu(count);
      ProjectionOutputs out;
      out.score = s_only.data();
      gpu->run_host(in, out);
      out.score = s_cpu.data();
      cpu->run_host(in, out);
      for (int i = 0; i < count; ++i) CHECK(std::fabs(s_only[i] - s_cpu[i]) <= score_tol);
      // Render.
      const size_t plane = size_t(box) * (box / 2 + 1);
      std::vector<cfloat> h_cpu(count * plane), h_gpu(count * plane);
      cpu->render_host(in, h_cpu.data());
      gpu->render_host(in, h_gpu.data());
      double m = 0;
      for (auto& c : h_cpu) m = std::max(m, double(std::abs(c)));
      for (size_t i = 0; i < h_cpu.size(); ++i) CHECK(std::abs(h_gpu[i] - h_cpu[i]) <= 1e-4 * m);
    }
  }
}

TEST_CASE("CUDA run() on device pointers: queued on the context, deterministic after the splat") {
  std::mt19937 rng(5);
  const int g = 120, count = 21, box = 48;
  FourierBand band = make_fourier_band(box, 1.6, 60, 0);
  Batch b = random_batch(rng, band, g, count, true);
  Context cx(Device::cuda);
  ProjectorOptions o;
  o.max_batch = 8;
  auto gpu = make_projector(cx, band, g, o);
  auto cpu = make_projector(cpu_context(), band, g, o);
  const size_t row = size_t(5) * g;
  Buffer<float> params(cx), score(cx), grad(cx), pose(cx);
  Buffer<ParticleView> views(cx);
  Buffer<cfloat> data(cx);
  params.upload(b.params);
  views.upload(b.views);
  data.upload(b.data);
  score.resize(count);
  grad.resize(count * row);
  pose.resize(count * 5);
  ProjectionBatch in{count, params.data(), row, views.data(), data.data()};
  ProjectionOutputs out;
  out.score = score.data(); out.grad_params = grad.data(); out.grad_pose = pose.data();
  std::vector<float> s[2], gp[2], ps[2];
  for (int k = 0; k < 2; ++k) {
    gpu->run(in, out);  // queued
    cx.synchronize();
    s[k] = score.to_host(); gp[k] = grad.to_host(); ps[k] = pose.to_host();
  }
  // CPU agreement, and the CPU on jittered parameters: how far rounding alone moves these outputs.
  std::vector<float> sc(count), gc(count * row), pc(count * 5), sj(count), gj(count * row), pj(count * 5);
  const std::vector<float> params_j = test::jittered(b.params);
  for (int k = 0; k < 2; ++k) {
    ProjectionBatch hin{count, (k ? params_j : b.params).data(), row, b.views.data(), b.data.data()};
    ProjectionOutputs hout;
    hout.score = (k ? sj : sc).data(); hout.grad_params = (k ? gj : gc).data(); hout.grad_pose = (k ? pj : pc).data();
    cpu->run(hin, hout);
  }
  // The splat's float atomics may reorder additions into an image, so two runs agree to rounding, not
  // bit for bit (and rounding is amplified at the rings where the model is far below its peak); everything
  // after the splat is a fixed-order reduction (checked bit for bit below, with one Gaussian per image).
  const double run_tol = test::tolerance(1e-6, sc, sj);
  for (int i = 0; i < count; ++i) CHECK(std::fabs(s[1][i] - s[0][i]) <= run_tol);
  check_close(gp[1], gp[0], 1e-5, gc, gj);
  const double score_tol = test::tolerance(1e-4, sc, sj);
  for (int i = 0; i < count; ++i) CHECK(std::fabs(s[0][i] - sc[i]) <= score_tol);
  check_close(gp[0], gc, 1e-3, gc, gj);
  check_close(ps[0], pc, 1e-3, pc, pj);
  // One Gaussian: each pixel of each particle's image receives one atomic add, so nothing is reordered
  // and the whole chain (splat, FFT, ring sums, backward, reductions) must be bit-identical run to run.
  const std::vector<float> one = {3.1f, -2.2f, 1.4f, 1.f, float(1.7 * band.pixel_size)};
  auto gpu1 = make_projector(cx, band, 1, o);
  Buffer<float> p1(cx), g1(cx);
  p1.upload(one);
  g1.resize(count * 5);
  ProjectionBatch in1{count, p1.data(), 0, views.data(), data.data()};
  ProjectionOutputs out1;
  out1.score = score.data(); out1.grad_params = g1.data(); out1.grad_pose = pose.data();
  std::vector<float> a[2], c[2];
  for (int k = 0; k < 2; ++k) {
    gpu1->run(in1, out1);
    cx.synchronize();
    a[k] = score.to_host(); c[k] = g1.to_host();
  }
  CHECK(a[0] == a[1]);
  CHECK(c[0] == c[1]);
}

TEST_CASE("CUDA run() reports bad input through the context, and rejects host pointers") {
  const int g = 8, count = 3;
  FourierBand band = make_fourier_band(32, 2.0, 0, 0);
  Context cx(Device::cuda);
  auto gpu = make_projector(cx, band, g);
  std::vector<float> p(5 * g, 1.f);
  std::vector<ParticleView> v(count, make_particle_view(10, 20, 30, 0, 0, CtfParams{}, CtfMode::full));
  std::vector<cfloat> d(count * band.size(), cfloat(1, 0));
  Buffer<float> params(cx), score(cx);
  Buffer<ParticleView> views(cx);
  Buffer<cfloat> data(cx);
  params.upload(p); views.upload(v); data.upload(d);
  score.resize(count);
  ProjectionBatch in{count, params.data(), 0, views.data(), data.data()};
  ProjectionOutputs out;
  out.score = score.data();
  gpu->run(in, out);
  CHECK_NOTHROW(cx.synchronize());
  const struct { int at; float value; const char* says; } cases[] = {
      {3 * g + 1, NAN, "not finite"}, {4 * g + 2, 1e3f, "width"}, {4 * g + 2, 0.f, "width"}};
  for (const auto& c : cases) {
    std::vector<float> bad = p;
    bad[c.at] = c.value;
    params.upload(bad);
    CHECK_NOTHROW(gpu->run(in, out));  // queued: nothing waits, nothing crashes
    CHECK_THROWS_WITH_AS(cx.synchronize(), doctest::Contains(c.says), Error);
    CHECK_NOTHROW(cx.synchronize());   // the flags were taken
  }
  params.upload(p);
  std::vector<ParticleView> bv = v;
  bv[1].origin_y = NAN;
  views.upload(bv);
  gpu->run(in, out);
  CHECK_THROWS_WITH_AS(cx.synchronize(), doctest::Contains("pose or CTF"), Error);
  views.upload(v);
  ProjectionBatch host{count, p.data(), 0, views.data(), data.data()};
  CHECK_THROWS_WITH_AS(gpu->run(host, out), doctest::Contains("params"), Error);
}

TEST_CASE("CUDA rejects non-finite input and runs empty batches") {
  const int g = 8;
  FourierBand band = make_fourier_band(32, 2.0, 0, 0);
  Context cx(Device::cuda);
  auto gpu = make_projector(cx, band, g);
  CHECK(gpu->device() == Device::cuda);
  std::vector<float> p(5 * g, 1.f);
  ParticleView v = make_particle_view(10, 20, 30, 0, 0, CtfParams{}, CtfMode::full);
  std::vector<cfloat> d(band.size(), cfloat(1, 0));
  float score = 0;
  ProjectionBatch in{1, p.data(), 0, &v, d.data()};
  ProjectionOutputs out;
  out.score = &score;
  CHECK_NOTHROW(gpu->run_host(in, out));
  p[3] = NAN;
  CHECK_THROWS_AS(gpu->run_host(in, out), Error);
  in.count = 0;
  CHECK_NOTHROW(gpu->run_host(in, out));
  CHECK_THROWS_AS(make_projector(cx, band, g, {ProjectionStrategy::separable_fourier}), Error);
}
