// Issue 14's step maths on the CPU: the SNR-weighted score (projector ring weights; its backward is the
// plain FRC's, ring by ring, whose finite-difference check is in test_projector.cpp), the weights' rule
// (kernels/frc.h snr_ring_weight), the coarse band, and the rigid-mode projection of the decoder's positions
// (kernels/train_step.h) with its adjoint.
#include <doctest/doctest.h>

#include <cmath>
#include <complex>
#include <random>
#include <vector>

#include "core/context.h"
#include "core/error.h"
#include "engine/model_params.h"
#include "engine/particle_batch.h"
#include "engine/particle_cache.h"
#include "engine/projector.h"
#include "engine/ring_weights.h"
#include "engine/simulate.h"
#include "engine/train_ops.h"
#include "engine/trainer.h"
#include "kernels/frc.h"
#include "kernels/philox.h"
#include "support.h"

using namespace cugmm;

namespace {

struct Case {
  FourierBand band;
  int g = 40, count = 5;
  std::vector<float> params;
  std::vector<ParticleView> views;
  std::vector<cfloat> data;
};

Case make_case() {
  Case c;
  c.band = make_fourier_band(40, 2.0, 60, 0);
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> pos(-15, 15), amp(0.5f, 2.f), wid(2.5f, 5.f), ang(-180, 180);
  for (int i = 0; i < c.count; ++i)
    for (int k = 0; k < 5; ++k)
      for (int j = 0; j < c.g; ++j) c.params.push_back(k < 3 ? pos(rng) : k == 3 ? amp(rng) : wid(rng));
  CtfParams ctf;
  ctf.defocus_u = ctf.defocus_v = 12000;
  for (int i = 0; i < c.count; ++i) c.views.push_back(make_particle_view(ang(rng), 40, ang(rng), 0, 0, ctf, CtfMode::full));
  std::normal_distribution<float> n01;
  for (size_t i = 0; i < size_t(c.count) * c.band.size(); ++i) c.data.push_back(cfloat(n01(rng), n01(rng)));
  return c;
}

void run(const Case& c, const std::vector<float>& weights, std::vector<float>& score, std::vector<float>& frc,
         std::vector<float>& grad, bool pooled = false) {
  ProjectorOptions o;
  o.ring_weights = weights;
  o.pooled = pooled;
  auto p = make_projector(cpu_context(), c.band, c.g, o);
  score.assign(c.count, 0.f);
  frc.assign(size_t(c.count) * c.band.num_rings(), 0.f);
  grad.assign(size_t(c.count) * 5 * c.g, 0.f);
  ProjectionBatch in{c.count, c.params.data(), size_t(5 * c.g), c.views.data(), c.data.data()};
  ProjectionOutputs out;
  out.score = score.data();
  out.frc = frc.data();
  out.grad_params = grad.data();
  p->run_host(in, out);
}

}  // namespace

TEST_CASE("the weighted score is sum_r v_r FRC_r and its gradient is linear in the weights") {
  const Case c = make_case();
  const int nr = c.band.num_rings();
  std::vector<float> s0, f0, g0;
  run(c, {}, s0, f0, g0);
  // Uniform weights (any scale) are the plain mean.
  std::vector<float> s1, f1, g1;
  run(c, std::vector<float>(size_t(nr), 3.f), s1, f1, g1);
  for (int i = 0; i < c.count; ++i) CHECK(s1[i] == doctest::Approx(s0[i]).epsilon(1e-5));
  // Weights on two rings: the score and the gradient from the one-ring runs.
  std::vector<float> w(size_t(nr), 0.f);
  w[3] = 1.f;
  w[7] = 3.f;
  std::vector<float> s, f, g, sa, fa, ga, sb, fb, gb;
  run(c, w, s, f, g);
  std::vector<float> only(size_t(nr), 0.f);
  only[3] = 1.f;
  run(c, only, sa, fa, ga);
  only[3] = 0.f;
  only[7] = 1.f;
  run(c, only, sb, fb, gb);
  double gmax = 0;
  for (float x : g) gmax = std::max(gmax, double(std::fabs(x)));
  REQUIRE(gmax > 0);
  for (int i = 0; i < c.count; ++i) {
    CHECK(s[i] == doctest::Approx(0.25 * f[size_t(i) * nr + 3] + 0.75 * f[size_t(i) * nr + 7]).epsilon(1e-5));
    CHECK(sa[i] == doctest::Approx(f[size_t(i) * nr + 3]).epsilon(1e-5));
  }
  for (size_t e = 0; e < g.size(); ++e) CHECK(std::fabs(g[e] - (0.25f * ga[e] + 0.75f * gb[e])) <= 1e-5 * gmax);
  // Malformed weights are refused.
  CHECK_THROWS_AS(score_ring_weights(c.band, std::vector<float>(size_t(nr) - 1, 1.f)), Error);
  CHECK_THROWS_AS(score_ring_weights(c.band, std::vector<float>(size_t(nr), 0.f)), Error);
  std::vector<float> neg(size_t(nr), 1.f);
  neg[5] = -1.f;
  CHECK_THROWS_AS(score_ring_weights(c.band, neg), Error);
}

TEST_CASE("the pooled score is one correlation over the band with the ring weights on the coefficients; its "
          "gradient matches finite differences") {
  Case c = make_case();
  const int nr = c.band.num_rings();
  std::vector<float> u(size_t(nr), 0.f);
  for (int r = c.band.ring_min; r < nr; ++r) u[size_t(r)] = 1.f / float(1 + r * r);
  std::vector<float> s, f, g;
  run(c, u, s, f, g, true);
  // A / sqrt(B D) from the model's own coefficients (render_host) and the data.
  const std::vector<float> v = score_ring_weights(c.band, u);
  auto p = make_projector(cpu_context(), c.band, c.g);
  const size_t hp = size_t(c.band.box) * (c.band.box / 2 + 1);
  std::vector<cfloat> half(hp);
  for (int i = 0; i < c.count; ++i) {
    p->render_host({1, c.params.data() + size_t(i) * 5 * c.g, 0, &c.views[size_t(i)], nullptr}, half.data());
    double a = 0, b = 0, d = 0;
    for (size_t k = 0; k < c.band.size(); ++k) {
      const int r = c.band.ring[k];
      if (r < c.band.ring_min) continue;
      const std::complex<double> m = half[size_t(c.band.fft_index[k])], x = c.data[size_t(i) * c.band.size() + k];
      const double w = double(c.band.weight[k]) * v[size_t(r)];
      a += w * (m * std::conj(x)).real();
      b += w * std::norm(m);
      d += w * std::norm(x);
    }
    CHECK(s[size_t(i)] == doctest::Approx(a / std::sqrt(b * d)).epsilon(1e-4));
  }
  // Central differences of particle 0's score in a position, an amplitude and a width (float: steps well above
  // the rounding, tolerance 2% of the largest of the three).
  const size_t G = size_t(c.g);
  const std::pair<size_t, float> probe[] = {{3, 0.05f}, {G + 8, 0.05f}, {3 * G + 5, 0.02f}, {4 * G + 7, 0.02f}};
  double gmax = 0;
  for (auto [col, h] : probe) gmax = std::max(gmax, double(std::fabs(g[col])));
  REQUIRE(gmax > 0);
  for (auto [col, h] : probe) {
    Case up = c, down = c;
    up.count = down.count = 1;
    up.params[col] += h;
    down.params[col] -= h;
    std::vector<float> su, sd, x, y;
    run(up, u, su, x, y, true);
    run(down, u, sd, x, y, true);
    CAPTURE(col);
    CHECK(std::fabs((su[0] - sd[0]) / (2 * h) - g[col]) <= 0.02 * gmax);
  }
}

TEST_CASE("ring weights: signal over noise, zero where the mean FRC is not significant; the coarse band") {
  // n_r x mean FRC where significant (3 standard errors), else 0.
  CHECK(snr_ring_weight(0.2, 0.1, 100.0, 50.0, 3.0) == doctest::Approx(10.0));
  CHECK(snr_ring_weight(0.02, 0.1, 100.0, 50.0, 3.0) == 0.0);  // 2 standard errors
  CHECK(snr_ring_weight(-0.3, 0.1, 100.0, 50.0, 3.0) == 0.0);
  const FourierBand band = make_fourier_band(64, 3.0, 100, 0);
  std::vector<float> w(size_t(band.num_rings()), 1.f);
  const std::vector<float> c = coarse_ring_weights(band, w, 12.0);  // rings <= 64 x 3 / 12 = 16
  double sum = 0;
  for (size_t r = 0; r < c.size(); ++r) {
    CHECK((c[r] > 0) == (r >= 1 && r <= 16));
    sum += c[r];
  }
  CHECK(sum == doctest::Approx(1.0));
}

TEST_CASE("the pooled score's model gain: flat for data the model made, the data's radial filter for filtered data") {
  // Particles simulated from a model with the projector (noise: the inverse noise weights need some), and a
  // copy of them with every ring multiplied by h_r: the model's gain must be flat on the first (up to the
  // noise) and follow h on the second exactly (the same noise, scaled), and the pooled score's weights on the
  // gained data, u_r g_r^2, must not change: a radial filter of the data no longer moves the score.
  const std::string dir = test::scratch_dir("ring_gain");
  io::GaussianModel model;
  model.box_size = 32;
  model.pixel_size = 3.0;
  model.resize(30);
  for (int j = 0; j < 30; ++j) {
    model.x[j] = float(30 * (2 * philox_uniform(5, 0, 3 * j) - 1));
    model.y[j] = float(30 * (2 * philox_uniform(5, 0, 3 * j + 1) - 1));
    model.z[j] = float(30 * (2 * philox_uniform(5, 0, 3 * j + 2) - 1));
    model.amplitude[j] = float(1 + philox_uniform(5, 1, j));
    model.width[j] = 6.f;
  }
  SimulationOptions so;
  so.count = 300;
  so.snr = 2;
  CacheOptions co;
  co.particles = simulate_particles({model}, so, dir).star;
  co.normalise = false;
  const ParticleCache cache = open_particle_cache(co, dir + "/p.cugmm-cache", true);
  const FourierBand& band = cache.band();
  std::vector<double> h(size_t(band.num_rings()));
  for (size_t r = 0; r < h.size(); ++r) h[r] = std::exp(0.15 * double(r));  // data sharper than the model
  std::vector<CachedParticle> table(cache.count());
  for (size_t i = 0; i < table.size(); ++i) table[i] = cache.particle(i);
  write_derived_cache(cache, table, {{"test", "ring filter"}}, [&](size_t first, size_t n, cfloat* out) {
    for (size_t i = 0; i < n; ++i)
      for (size_t k = 0; k < band.size(); ++k)
        out[i * band.size() + k] = cache.coefficients(first + i)[k] * float(h[band.ring[k]]);
  }, dir + "/filtered.cugmm-cache");
  const ParticleCache filtered(dir + "/filtered.cugmm-cache");
  const FourierBand loss = training_band(cache, 0, 0);
  const std::vector<float> params = params_from_model(model);
  std::vector<size_t> all(cache.count());
  for (size_t i = 0; i < all.size(); ++i) all[i] = i;
  Context& cx = cpu_context();
  const RingWeights w0 = estimate_ring_weights(cx, ParticleBatcher(cache, loss, CtfChoice::automatic), params, all);
  const RingWeights w1 = estimate_ring_weights(cx, ParticleBatcher(filtered, loss, CtfChoice::automatic), params, all);
  double pooled_sum = 0;
  std::vector<double> q;
  size_t scored = 0;
  for (int r = loss.ring_min; r <= loss.ring_max; ++r) {
    CAPTURE(r);
    const size_t i = size_t(r);
    if (w0.mean_frc[i] > 0.3) CHECK(std::fabs(w0.model_gain[i] - 1) < 0.1);  // the rings the model makes
    if (w0.model_gain[i] == 0) {  // no significant signal in the ring (a CTF zero): left out of both
      CHECK(w1.model_gain[i] == 0);
      CHECK(w1.pooled_weights[i] == 0);
      continue;
    }
    q.push_back(w1.model_gain[i] / (w0.model_gain[i] * h[i]));
    CHECK(w1.data_scale[i] * w1.model_gain[i] == doctest::Approx(1).epsilon(1e-5));
    CHECK(w1.pooled_weights[i] == doctest::Approx(w0.pooled_weights[i]).epsilon(1e-3));
    pooled_sum += w1.pooled_weights[i];
    ++scored;
  }
  CHECK(scored > size_t(loss.ring_max - loss.ring_min) / 2);
  CHECK(pooled_sum == doctest::Approx(1).epsilon(1e-5));
  // g follows h up to the one free scale (the gains are normalised to mean 1).
  for (double v : q) CHECK(v == doctest::Approx(q[0]).epsilon(1e-3));
  // Without the gain the pooled weights of the two sets differ by h^2 (what the gain undoes): the check above
  // can fail.
  const double r1 = double(loss.ring_max), r0 = double(loss.ring_min);
  CHECK(w1.inverse_noise[size_t(r1)] / w1.inverse_noise[size_t(r0)] <
        0.5 * w0.inverse_noise[size_t(r1)] / w0.inverse_noise[size_t(r0)]);
}

TEST_CASE("the rigid-mode projection removes rigid motions, keeps relative ones, and its backward is its adjoint") {
  std::mt19937 rng(9);
  const int g = 60, rows = 3;
  std::uniform_real_distribution<float> pos(-20, 20), amp(1.f, 5.f), u(-1, 1);
  std::vector<float> neutral;
  for (int k = 0; k < 5; ++k)
    for (int j = 0; j < g; ++j) neutral.push_back(k < 3 ? pos(rng) : k == 3 ? amp(rng) : 3.f);
  TrainConfig tc;
  tc.rigid_free = true;
  const StepConsts k = step_consts(tc, neutral, 64, 2.0);
  REQUIRE(k.rigid_free);
  tc.movable.assign(g, 1);
  tc.movable[0] = 0;
  CHECK_FALSE(step_consts(tc, neutral, 64, 2.0).rigid_free);  // a selection keeps its rigid motions
  const size_t W = 5 * size_t(g);
  auto project = [&](const std::vector<float>& x, bool adjoint) {
    std::vector<float> y(x.size());
    train_ops::rigid_project(cpu_context(), k, neutral.data(), x.data(), y.data(), int(x.size() / W), adjoint);
    return y;
  };
  // A rigid translation plus a small rotation about an arbitrary point: removed entirely.
  std::vector<float> rigid(W, 0.f), other(W);
  const double t[3] = {0.4, -0.2, 0.7}, w[3] = {0.01, -0.02, 0.015}, o[3] = {3, -5, 2};
  for (int j = 0; j < g; ++j) {
    const double r[3] = {neutral[j] - o[0], neutral[g + j] - o[1], neutral[2 * g + j] - o[2]};
    const double wr[3] = {w[1] * r[2] - w[2] * r[1], w[2] * r[0] - w[0] * r[2], w[0] * r[1] - w[1] * r[0]};
    for (int a = 0; a < 3; ++a) rigid[size_t(a) * g + j] = float(t[a] + wr[a]);
  }
  for (float& e : other) e = u(rng);
  std::vector<float> y = project(rigid, false);
  for (size_t c = 0; c < 3 * size_t(g); ++c) CHECK(std::fabs(y[c]) <= 1e-5);
  // Idempotent, amplitudes and widths untouched.
  std::vector<float> p1 = project(other, false), p2 = project(p1, false);
  for (size_t c = 0; c < W; ++c) CHECK(std::fabs(p2[c] - p1[c]) <= 1e-5);
  for (size_t c = 3 * size_t(g); c < W; ++c) CHECK(p1[c] == other[c]);
  // One Gaussian moved alone: most of that motion stays (a relative motion is not rigid).
  std::vector<float> one(W, 0.f);
  one[5] = 1.f;
  CHECK(project(one, false)[5] > 0.8f);
  // <P x, y> = <x, P^T y> over several rows.
  std::vector<float> x(rows * W), v(rows * W);
  for (float& e : x) e = u(rng);
  for (float& e : v) e = u(rng);
  const std::vector<float> px = project(x, false), ptv = project(v, true);
  double a = 0, b = 0;
  for (size_t c = 0; c < x.size(); ++c) {
    a += double(px[c]) * v[c];
    b += double(x[c]) * ptv[c];
  }
  CHECK(a == doctest::Approx(b).epsilon(1e-5));
}

TEST_CASE("--position-unit: a decoder output of 1 moves a centre by that many Å, by one pixel when 0") {
  std::vector<float> neutral;
  for (int k = 0; k < 5; ++k)
    for (int j = 0; j < 4; ++j) neutral.push_back(k < 3 ? float(j) : k == 3 ? 2.f : 3.f);
  TrainConfig tc;
  tc.position_unit = 0;
  StepConsts k = step_consts(tc, neutral, 64, 2.5);
  for (int a = 0; a < 3; ++a) CHECK(k.scale[a] == 2.5f);
  tc.position_unit = 6;
  k = step_consts(tc, neutral, 64, 2.5);
  for (int a = 0; a < 3; ++a) CHECK(k.scale[a] == 6.f);
  CHECK(k.scale[3] == 2.f);     // the amplitude's unit: the mean amplitude, whatever the position's
  CHECK(k.scale[4] == 0.75f);   // the width's: a quarter of the mean width
  // A decoded position: the neutral one plus the unit times the output.
  const float raw[20] = {0.5f};
  bool inside = false;
  CHECK(step_param(k, neutral.data(), raw, 0, inside) == doctest::Approx(0 + 6 * 0.5));
  const test::RunResult r = test::run(test::cugmm_exe() + " train --particles none.star --model none.txt --out " +
                                      test::scratch_dir("position_unit") + "/run --position-unit -1");
  CHECK(r.status != 0);
  CHECK(test::contains(r.out, "--position-unit"));
}

TEST_CASE("--preset paper: the published recipe, refusing a line that changes part of it") {
  const std::string base = test::cugmm_exe() + " train --particles none.star --model none.txt --out " +
                           test::scratch_dir("preset_paper") + "/run --preset paper ";
  for (const char* opt : {"--lr 1e-3", "--noise 1", "--loss snr", "--relu", "--leaky", "--rigid remove",
                          "--coarse-epochs 2", "--latent-reg 1e-4", "--position-unit 6", "--positions-first 3"}) {
    test::RunResult r = test::run(base + opt);
    CAPTURE(opt);
    CHECK(r.status != 0);
    CHECK(test::contains(r.out, std::string("drop ") + std::string(opt).substr(0, std::string(opt).find(' '))));
  }
  const TrainConfig p = paper_recipe(), d;
  CHECK(p.lr == 1e-4f);
  CHECK(p.noise == 0.1f);
  CHECK_FALSE(p.snr_weighted);
  CHECK_FALSE(p.pooled);
  CHECK_FALSE(p.align_shifts);
  CHECK_FALSE(p.leaky);
  CHECK(p.reg_mass == 1.f);
  CHECK(p.position_unit == 0);  // one pixel
  CHECK(p.positions_first == 0);
  CHECK(d.pooled);  // the defaults are not the paper's
  CHECK(d.position_unit == 3);
  CHECK(d.align_shifts);
}
