// The projector (engine/projector.h) against the exact Fourier sum in double (DESIGN §2), every gradient
// against central finite differences in double, both strategies, the three CTF modes, shared and
// per-particle parameters.
#include <doctest/doctest.h>

#include <cmath>
#include <complex>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "engine/projector.h"
#include "engine/projector_cpu.h"

using namespace cugmm;
using cd = std::complex<double>;

namespace {

constexpr ProjectionStrategy kStrategies[] = {ProjectionStrategy::splat_fft, ProjectionStrategy::separable_fourier};
constexpr CtfMode kModes[] = {CtfMode::none, CtfMode::full, CtfMode::phase_flipped};

// G Gaussians within the central half of the box, widths in [s_min, s_max] pixels.
std::vector<double> random_params(std::mt19937& rng, int g, int box, double pixel, double s_min, double s_max) {
  std::uniform_real_distribution<double> pos(-box * pixel / 4, box * pixel / 4), amp(0.5, 2), wid(s_min, s_max);
  std::vector<double> p(5 * g);
  for (int j = 0; j < g; ++j) {
    p[j] = pos(rng); p[g + j] = pos(rng); p[2 * g + j] = pos(rng);
    p[3 * g + j] = amp(rng); p[4 * g + j] = wid(rng) * pixel;
  }
  return p;
}

CtfParams some_ctf(double defocus) {
  CtfParams c;
  c.defocus_u = defocus; c.defocus_v = defocus - 700; c.defocus_angle = 25;
  c.voltage = 300; c.cs = 2.7; c.amp_contrast = 0.1; c.bfactor = 20;
  return c;
}

struct Pose {
  double rot, tilt, psi, ox, oy;
};

// The oracle: P^(k) = sum_j a exp(-2 pi^2 s^2 |k|^2) exp(-2 pi i k.p), p = (A c)_xy - o, in double.
cd exact_projection(const std::vector<double>& p, int g, const Pose& pose, double fx, double fy) {
  Mat3<double> a = euler_to_matrix(pose.rot, pose.tilt, pose.psi);
  cd sum = 0;
  for (int j = 0; j < g; ++j) {
    Vec3<double> q = mul(a, Vec3<double>{p[j], p[g + j], p[2 * g + j]});
    double px = q.x - pose.ox, py = q.y - pose.oy, s = p[4 * g + j];
    sum += p[3 * g + j] * std::exp(-2 * kPi * kPi * s * s * (fx * fx + fy * fy)) *
           std::polar(1.0, -2 * kPi * (fx * px + fy * py));
  }
  return sum;
}

double ctf_factor(const CtfParams& c, CtfMode mode, double fx, double fy) {
  return mode == CtfMode::none ? 1.0 : ctf_apply_mode(ctf_value(make_ctf_consts<double>(c), fx, fy), mode);
}

detail::View<double> view_d(const Pose& pose, const CtfParams& c, CtfMode mode) {
  return {euler_to_matrix(pose.rot, pose.tilt, pose.psi), pose.ox, pose.oy, make_ctf_consts<double>(c), mode};
}

// Data: the exact projection of a perturbed model, with the CTF, plus noise; band order.
std::vector<cd> make_data(std::mt19937& rng, const FourierBand& band, const std::vector<double>& p, int g,
                          const Pose& pose, const CtfParams& c, CtfMode mode, double noise) {
  std::normal_distribution<double> n01(0, 1);
  std::vector<double> q = p;
  for (int j = 0; j < 3 * g; ++j) q[j] += 0.5 * n01(rng);
  const double len = band.box * band.pixel_size;
  std::vector<cd> d(band.size());
  double scale = 0;
  for (int j = 0; j < g; ++j) scale += p[3 * g + j];
  for (size_t b = 0; b < band.size(); ++b) {
    double fx = band.kx[b] / len, fy = band.ky[b] / len;
    d[b] = ctf_factor(c, mode, fx, fy) * exact_projection(q, g, pose, fx, fy) +
           noise * scale * cd(n01(rng), n01(rng));
  }
  return d;
}

std::vector<cfloat> to_float(const std::vector<cd>& v) {
  std::vector<cfloat> f(v.size());
  for (size_t i = 0; i < v.size(); ++i) f[i] = cfloat(float(v[i].real()), float(v[i].imag()));
  return f;
}

// The double-precision pipeline of one particle, as the CPU backend runs it in float.
struct DoubleRun {
  const FourierBand& band;
  detail::BandPlan plan;
  detail::CallPlan<double> call;
  int g;
  detail::Workspace<double> ws;
  DoubleRun(const FourierBand& b, ProjectionStrategy s, double tau2, int g_count)
      : band(b), plan(detail::make_band_plan(b)), call{s, tau2, 1e-20}, g(g_count) {}
  double score(const std::vector<double>& p, const detail::View<double>& v, const std::vector<cd>& d,
               double* gp = nullptr, double* gpose = nullptr) {
    return detail::project_particle(plan, call, g, p.data(), v, d.data(), ws, detail::NaiveDft<double>{band.box},
                                    static_cast<double*>(nullptr), gp, gpose);
  }
};

}  // namespace

TEST_CASE("the FRC backward matches finite differences, clamped or not") {
  std::mt19937 rng(7);
  std::normal_distribution<double> n01(0, 1);
  const int n = 9;
  std::vector<Cplx<double>> m(n), d(n);
  std::vector<double> w(n);
  for (int i = 0; i < n; ++i) {
    m[i] = {n01(rng), n01(rng)}; d[i] = {n01(rng), n01(rng)}; w[i] = i % 3 ? 2 : 1;
  }
  for (double eps : {1e-20, 1e3}) {  // the second clamps the denominator
    auto frc = [&](const std::vector<Cplx<double>>& mm) {
      RingSums<double> s{0, 0, 0};
      for (int i = 0; i < n; ++i) frc_accumulate(s, mm[i], d[i], w[i]);
      return frc_value(s, eps);
    };
    RingSums<double> s{0, 0, 0};
    for (int i = 0; i < n; ++i) frc_accumulate(s, m[i], d[i], w[i]);
    CHECK(frc_clamped(s, eps) == (eps > 1));
    const double h = 1e-6;
    for (int i = 0; i < n; ++i) {
      Cplx<double> g = frc_vjp(s, eps, 1.0, m[i], d[i], w[i]);
      auto mp = m, mn = m;
      mp[i].re += h; mn[i].re -= h;
      CHECK(g.re == doctest::Approx((frc(mp) - frc(mn)) / (2 * h)).epsilon(1e-6));
      mp = m; mn = m;
      mp[i].im += h; mn[i].im -= h;
      CHECK(g.im == doctest::Approx((frc(mp) - frc(mn)) / (2 * h)).epsilon(1e-6));
    }
  }
}

TEST_CASE("forward: both strategies match the exact Fourier sum to 1e-4 (s >= 1 px, |k| <= 0.8 Nyquist)") {
  std::mt19937 rng(1);
  const int box = 48, g = 60;
  const double pixel = 1.7;
  FourierBand band = make_fourier_band(box, pixel, 0, 0);
  const Pose pose{37, 71, -122, 3.1, -2.4};
  const CtfParams ctf = some_ctf(15000);
  for (double s_min : {1.0, 1.5, 3.0}) {
    std::vector<double> p = random_params(rng, g, box, pixel, s_min, s_min + 1.5);
    std::vector<float> pf(p.begin(), p.end());
    for (auto strategy : kStrategies)
      for (auto mode : kModes) {
        CAPTURE(s_min); const std::string sname = strategy_name(strategy);
        CAPTURE(sname); CAPTURE(int(mode));
        ProjectorOptions o;
        o.strategy = strategy;
        auto proj = make_projector(cpu_context(), band, g, o);
        ParticleView v = make_particle_view(pose.rot, pose.tilt, pose.psi, pose.ox, pose.oy, ctf, mode);
        ProjectionBatch in;
        in.count = 1; in.params = pf.data(); in.views = &v;
        std::vector<cfloat> plane(size_t(box) * (box / 2 + 1));
        proj->render_host(in, plane.data());
        double err2 = 0, ref2 = 0, max_ref = 0;
        const double len = box * pixel;
        for (size_t b = 0; b < band.size(); ++b) {
          double kpx = std::hypot(double(band.kx[b]), double(band.ky[b]));
          if (kpx > 0.8 * box / 2) continue;
          double fx = band.kx[b] / len, fy = band.ky[b] / len;
          cd ref = ctf_factor(ctf, mode, fx, fy) * exact_projection(p, g, pose, fx, fy);
          cd got(plane[band.fft_index[b]].real(), plane[band.fft_index[b]].imag());
          err2 += std::norm(got - ref);
          ref2 += std::norm(ref);
          max_ref = std::max(max_ref, std::abs(ref));
        }
        CHECK(std::sqrt(err2 / ref2) <= 1e-4);
        CHECK(max_ref > 0);
      }
  }
}

TEST_CASE("forward: score and FRC match the exact sum; a particle equal to the model scores 1") {
  std::mt19937 rng(2);
  const int box = 40, g = 30;
  const double pixel = 2.0;
  // Rings 2 .. 0.8 Nyquist.
  FourierBand band = make_fourier_band(box, pixel, box * pixel / 2.0, box * pixel / 16.0);
  REQUIRE(band.ring_min == 2);
  REQUIRE(band.ring_max == 16);
  const Pose pose{-60, 120, 15, -1.5, 4.0};
  const CtfParams ctf = some_ctf(20000);
  std::vector<double> p = random_params(rng, g, box, pixel, 1.2, 2.5);
  std::vector<float> pf(p.begin(), p.end());
  for (auto mode : kModes) {
    std::vector<cd> data = make_data(rng, band, p, g, pose, ctf, mode, 0.02);
    // Exact FRC per ring.
    std::vector<double> num(band.num_rings()), mm(band.num_rings()), dd(band.num_rings());
    const double len = box * pixel;
    for (size_t b = 0; b < band.size(); ++b) {
      double fx = band.kx[b] / len, fy = band.ky[b] / len;
      cd m = ctf_factor(ctf, mode, fx, fy) * exact_projection(p, g, pose, fx, fy);
      num[band.ring[b]] += band.weight[b] * std::real(m * std::conj(data[b]));
      mm[band.ring[b]] += band.weight[b] * std::norm(m);
      dd[band.ring[b]] += band.weight[b] * std::norm(data[b]);
    }
    double score = 0;
    for (int r = band.ring_min; r <= band.ring_max; ++r) score += num[r] / std::sqrt(mm[r] * dd[r]);
    score /= band.ring_max - band.ring_min + 1;
    std::vector<cfloat> df = to_float(data);
    ParticleView v = make_particle_view(pose.rot, pose.tilt, pose.psi, pose.ox, pose.oy, ctf, mode);
    for (auto strategy : kStrategies) {
      const std::string sname = strategy_name(strategy);
        CAPTURE(sname); CAPTURE(int(mode));
      ProjectorOptions o;
      o.strategy = strategy;
      auto proj = make_projector(cpu_context(), band, g, o);
      float got = 0;
      std::vector<float> frc(band.num_rings());
      ProjectionBatch in;
      in.count = 1; in.params = pf.data(); in.views = &v; in.data = df.data();
      ProjectionOutputs out;
      out.score = &got; out.frc = frc.data();
      proj->run(in, out);
      // The FRC is a correlation in [-1, 1]: absolute tolerances.
      CHECK(std::fabs(got - score) <= 2e-4);
      CHECK(frc[0] == 0);
      for (int r = band.ring_min; r <= band.ring_max; ++r)
        CHECK(std::fabs(frc[r] - num[r] / std::sqrt(mm[r] * dd[r])) <= 1e-3);
      // The model itself as the particle: every ring correlates perfectly.
      std::vector<cfloat> plane(size_t(box) * (box / 2 + 1)), self(band.size());
      proj->render_host(in, plane.data());
      for (size_t b = 0; b < band.size(); ++b) self[b] = plane[band.fft_index[b]];
      in.data = self.data();
      proj->run(in, out);
      CHECK(got == doctest::Approx(1.0).epsilon(1e-5));
    }
  }
}

TEST_CASE("backward: every gradient matches central finite differences in double") {
  std::mt19937 rng(3);
  const int g = 8;
  const double pixel = 2.2;
  const Pose pose{25, 65, -40, 1.3, -0.7};
  const CtfParams ctf = some_ctf(12000);
  // At 48 px the widened footprints (17-24 px) take the splat's long fixed-length rows; at 24 px the generic loop.
  for (const int box : {24, 48})
  for (auto strategy : kStrategies)
    for (auto mode : kModes) {
      FourierBand band = make_fourier_band(box, pixel, 0, 0);
      const std::string sname = strategy_name(strategy);
        CAPTURE(box); CAPTURE(sname); CAPTURE(int(mode));
      // Widths from 0.8 px: the splat then widens (tau > 0), whose correction the backward must replay.
      std::vector<double> p = random_params(rng, g, box, pixel, 0.8, 2.0);
      std::vector<cd> data = make_data(rng, band, p, g, pose, ctf, mode, 0.05);
      double smin = 1e9;
      for (int j = 0; j < g; ++j) smin = std::min(smin, p[4 * g + j]);
      const double tau2 = splat_tau2(smin / pixel, pixel);
      if (strategy == ProjectionStrategy::splat_fft) CHECK(tau2 > 0);
      DoubleRun run(band, strategy, tau2, g);
      detail::View<double> v = view_d(pose, ctf, mode);
      std::vector<double> grad(5 * g);
      double gpose[5];
      double s0 = run.score(p, v, data, grad.data(), gpose);
      CHECK(s0 > 0.1);
      double gmax = 0;
      for (double x : grad) gmax = std::max(gmax, std::fabs(x));
      for (int c = 0; c < 5 * g; ++c) {
        const double h = c < 3 * g ? 1e-4 : 1e-4 * std::fabs(p[c]);
        auto pp = p, pn = p;
        pp[c] += h; pn[c] -= h;
        double fd = (run.score(pp, v, data) - run.score(pn, v, data)) / (2 * h);
        CAPTURE(c);
        CHECK(std::fabs(fd - grad[c]) <= 1e-6 * gmax + 1e-5 * std::fabs(fd));
      }
      // Pose: the local rotation A <- exp([w]x) A and the origin.
      double pmax = 0;
      for (double x : gpose) pmax = std::max(pmax, std::fabs(x));
      CHECK(pmax > 0);
      for (int c = 0; c < 5; ++c) {
        const double h = 1e-4;
        auto at = [&](double step) {
          detail::View<double> u = v;
          double w[3] = {0, 0, 0};
          if (c < 3) w[c] = step;
          u.rotation = mul(axis_angle_to_matrix(w[0], w[1], w[2]), v.rotation);
          if (c == 3) u.origin_x += step;
          if (c == 4) u.origin_y += step;
          return run.score(p, u, data);
        };
        double fd = (at(h) - at(-h)) / (2 * h);
        CAPTURE(c);
        CHECK(std::fabs(fd - gpose[c]) <= 1e-6 * pmax + 1e-5 * std::fabs(fd));
      }
    }
}

TEST_CASE("batches: shared and per-particle parameters, summed and per-particle gradients agree") {
  std::mt19937 rng(4);
  const int box = 32, g = 20, count = 5;
  const double pixel = 2.0;
  FourierBand band = make_fourier_band(box, pixel, 40, 0);
  std::vector<double> p = random_params(rng, g, box, pixel, 1.0, 2.5);
  std::vector<float> pf(p.begin(), p.end());
  std::vector<ParticleView> views;
  std::vector<cfloat> data;
  std::uniform_real_distribution<double> ang(-180, 180), tilt(0, 180), sh(-3, 3);
  for (int i = 0; i < count; ++i) {
    Pose pose{ang(rng), tilt(rng), ang(rng), sh(rng), sh(rng)};
    CtfMode mode = kModes[i % 3];
    CtfParams c = some_ctf(10000 + 2000 * i);
    views.push_back(make_particle_view(pose.rot, pose.tilt, pose.psi, pose.ox, pose.oy, c, mode));
    auto d = to_float(make_data(rng, band, p, g, pose, c, mode, 0.05));
    data.insert(data.end(), d.begin(), d.end());
    // The float backend agrees with the double pipeline on this particle (its gradient to 2e-3 of the
    // largest: float sums over thousands of coefficients, and the Debug sanitizer build, whose summation
    // order differs from Release's, reached 1.05e-3).
    if (i == 0) {
      double smin = 1e9;
      for (int j = 0; j < g; ++j) smin = std::min(smin, p[4 * g + j]);
      DoubleRun run(band, ProjectionStrategy::splat_fft, splat_tau2(smin / pixel, pixel), g);
      std::vector<cd> dd(d.begin(), d.end());
      std::vector<double> grad(5 * g);
      run.score(p, view_d(pose, c, mode), dd, grad.data());
      auto proj = make_projector(cpu_context(), band, g, {ProjectionStrategy::splat_fft});
      std::vector<float> gf(5 * g);
      float score;
      ProjectionBatch in{1, pf.data(), 0, &views[0], d.data()};
      ProjectionOutputs out;
      out.score = &score; out.grad_params = gf.data();
      proj->run(in, out);
      double gmax = 0;
      for (double x : grad) gmax = std::max(gmax, std::fabs(x));
      for (int k = 0; k < 5 * g; ++k) CHECK(std::fabs(gf[k] - grad[k]) <= 2e-3 * gmax);
    }
  }
  std::vector<float> replicated;
  for (int i = 0; i < count; ++i) replicated.insert(replicated.end(), pf.begin(), pf.end());
  for (auto strategy : kStrategies) {
    const std::string sname = strategy_name(strategy);
        CAPTURE(sname);
    ProjectorOptions o;
    o.strategy = strategy;
    o.max_batch = 2;  // several internal chunks
    auto proj = make_projector(cpu_context(), band, g, o);
    std::vector<float> s1(count), s2(count), g1(count * 5 * g), g2(count * 5 * g), gsum(5 * g), pose1(count * 5);
    ProjectionBatch shared{count, pf.data(), 0, views.data(), data.data()};
    ProjectionOutputs out;
    out.score = s1.data(); out.grad_params = g1.data(); out.grad_pose = pose1.data();
    proj->run(shared, out);
    ProjectionBatch rows{count, replicated.data(), size_t(5 * g), views.data(), data.data()};
    ProjectionOutputs out2;
    out2.score = s2.data(); out2.grad_params = g2.data();
    proj->run(rows, out2);
    ProjectionOutputs out3;
    out3.score = s2.data(); out3.grad_params = gsum.data(); out3.grad_reduce = GradReduce::sum;
    proj->run(shared, out3);
    for (int i = 0; i < count; ++i) CHECK(s1[i] == s2[i]);
    for (size_t k = 0; k < g1.size(); ++k) CHECK(g1[k] == g2[k]);
    double gmax = 0;
    for (float x : g1) gmax = std::max(gmax, double(std::fabs(x)));
    for (int k = 0; k < 5 * g; ++k) {
      double sum = 0;
      for (int i = 0; i < count; ++i) sum += g1[i * 5 * g + k];
      CHECK(std::fabs(gsum[k] - sum) <= 1e-5 * gmax);
    }
    // One particle alone gives the same as inside the batch.
    float alone;
    std::vector<float> galone(5 * g), pose_alone(5);
    ProjectionBatch one{1, pf.data(), 0, &views[3], &data[3 * band.size()]};
    ProjectionOutputs out4;
    out4.score = &alone; out4.grad_params = galone.data(); out4.grad_pose = pose_alone.data();
    proj->run(one, out4);
    CHECK(alone == s1[3]);
    for (int k = 0; k < 5 * g; ++k) CHECK(galone[k] == g1[3 * 5 * g + k]);
    for (int k = 0; k < 5; ++k) CHECK(pose_alone[k] == pose1[15 + k]);
  }
}

TEST_CASE("bad input is rejected before any work") {
  const int g = 4;
  FourierBand band = make_fourier_band(16, 2.0, 0, 0);
  auto proj = make_projector(cpu_context(), band, g);
  std::vector<float> p(5 * g, 1.f);
  ParticleView v = make_particle_view(0, 0, 0, 0, 0, some_ctf(10000), CtfMode::full);
  std::vector<cfloat> d(band.size(), cfloat(1, 0));
  float score = 0;
  ProjectionBatch in{1, p.data(), 0, &v, d.data()};
  ProjectionOutputs out;
  out.score = &score;
  CHECK_NOTHROW(proj->run(in, out));
  p[7] = NAN;
  CHECK_THROWS_AS(proj->run(in, out), Error);
  p[7] = 1;
  v.origin_x = INFINITY;
  CHECK_THROWS_AS(proj->run(in, out), Error);
  v.origin_x = 0;
  in.params_stride = 3;
  CHECK_THROWS_AS(proj->run(in, out), Error);
  in.params_stride = 0;
  ProjectionOutputs none;
  CHECK_THROWS_AS(proj->run(in, none), Error);
  in.count = 0;
  CHECK_NOTHROW(proj->run(in, none));
  // Non-finite data, named by particle and coefficient.
  d[5] = cfloat(NAN, 0);
  in.count = 1;
  CHECK_THROWS_WITH_AS(proj->run(in, out), doctest::Contains("coefficient 5"), Error);
  d[5] = cfloat(1, 0);
  // Infinities too, anywhere in the vectorised check (the body and the tail of the loop).
  for (size_t k : {size_t(37), band.size() - 1}) {
    d[k] = cfloat(1, k % 2 ? INFINITY : -INFINITY);
    CAPTURE(k);
    const std::string where = "coefficient " + std::to_string(k) + ")";
    CHECK_THROWS_WITH_AS(proj->run(in, out), doctest::Contains(where.c_str()), Error);
    d[k] = cfloat(1, 0);
  }
  CHECK_NOTHROW(proj->run(in, out));
  // Widths outside [kMinWidthPx, box / 8] pixels (here 0.1 .. 4 Å), named; the bounds themselves pass.
  for (float w : {0.f, -1.f, 0.09f, 4.1f, 100.f}) {
    p[4 * g + 2] = w;
    CAPTURE(w);
    CHECK_THROWS_WITH_AS(proj->run(in, out), doctest::Contains("Gaussian 2 (row 0) has width"), Error);
  }
  for (float w : {0.1f, 4.f}) {
    p[4 * g + 2] = w;
    CHECK_NOTHROW(proj->run(in, out));
  }
  p[4 * g + 2] = 1;
  if (!cuda_available()) CHECK_THROWS_AS(Context{Device::cuda}, Error);
  // automatic is splat_fft on every band, as on CUDA (projector.h).
  CHECK(make_projector(cpu_context(), make_fourier_band(64, 2.0, 0, 20), g)->strategy() == ProjectionStrategy::splat_fft);
  CHECK(make_projector(cpu_context(), make_fourier_band(64, 2.0, 0, 0), g)->strategy() == ProjectionStrategy::splat_fft);
}

TEST_CASE("the band's partner table pairs (kx, ky) with (kx, -ky) on the self-conjugate columns only") {
  for (int box : {16, 34}) {
    FourierBand b = make_fourier_band(box, 1.3, 0, box == 16 ? 0 : 10);
    REQUIRE(b.partner.size() == b.size());
    for (size_t i = 0; i < b.size(); ++i) {
      const int p = b.partner[i];
      if (b.kx[i] != 0 && b.kx[i] != box / 2) {
        CHECK(p == -1);
        continue;
      }
      REQUIRE(p >= 0);
      CHECK(b.partner[p] == int(i));
      CHECK(b.kx[p] == b.kx[i]);
      CHECK((b.ky[p] + b.ky[i]) % box == 0);
    }
  }
}

TEST_CASE("the band is the half-plane's coefficients within ring_max, row-major, built in the band's time") {
  // The reference: every (row, kx) of the half-plane in memory order, kept when its ring is within ring_max.
  auto reference = [](int box, int ring_max) {
    std::vector<int32_t> idx;
    const int half = box / 2;
    for (int row = 0; row < box; ++row)
      for (int kx = 0; kx <= half; ++kx) {
        const int ky = row > half ? row - box : row;
        if (std::lround(std::sqrt(double(kx * kx + ky * ky))) <= ring_max) idx.push_back(row * (half + 1) + kx);
      }
    return idx;
  };
  for (int box : {16, 34, 64})
    for (double maxres : {0.0, 10.0, 5.3}) {
      CAPTURE(box);
      CAPTURE(maxres);
      const FourierBand b = make_fourier_band(box, 1.3, 0, maxres);
      CHECK(b.fft_index == reference(box, b.ring_max));
    }
  // A 32768 box cut to 8 rings (a damaged cache header asked for it): 5 x 10^8 coefficients in the half-plane,
  // a few hundred in the band. The reference skips the rows beyond |ky| = 8, which hold none (r >= |ky|).
  const FourierBand big = make_fourier_band(32768, 1.0, 0, 4096);
  CHECK(big.ring_max == 8);
  std::vector<int32_t> want;
  for (int row = 0; row < 32768; ++row) {
    const int ky = row > 16384 ? row - 32768 : row;
    if (std::abs(ky) > 8) continue;
    for (int kx = 0; kx <= 8; ++kx)
      if (std::lround(std::sqrt(double(kx * kx + ky * ky))) <= 8) want.push_back(row * 16385 + kx);
  }
  CHECK(big.fft_index == want);
  // N * pixel / maxres beyond any int (pixel 6e99: a damaged cache header; found by fuzzing) is Nyquist, not
  // an undefined conversion; the same from minres leaves no ring.
  CHECK(make_fourier_band(16, 6e99, 0, 1.0).ring_max == 8);
  CHECK_THROWS_WITH_AS(make_fourier_band(16, 1.0, 1e-300, 0), doctest::Contains("band is empty"), Error);
  // A reader's bound: the band its file holds.
  const size_t n = make_fourier_band(64, 1.0, 0, 0).size();
  CHECK(make_fourier_band(64, 1.0, 0, 0, n).size() == n);
  CHECK_THROWS_WITH_AS(make_fourier_band(64, 1.0, 0, 0, n - 1),
                       doctest::Contains(("holds more than " + std::to_string(n - 1) + " coefficients").c_str()), Error);
}

TEST_CASE("footprints never exceed the box, even for the widest accepted width at the largest widening") {
  const int box = 32;
  const float pixel = 1.5f;
  const float s_max = float(kMaxWidthBoxFraction * box) * pixel, tau2 = splat_tau2(0.06f, pixel);
  CHECK(width_in_bounds(s_max, pixel, box));
  CHECK_FALSE(width_in_bounds(s_max * 1.01f, pixel, box));
  CHECK_FALSE(width_in_bounds(float(NAN), pixel, box));
  Landing<float> l{{0, 0, 0}, 3.3f, -7.1f};
  Splat<float> g = make_splat(l, 1.f, s_max, tau2, pixel, box);
  CHECK(g.nx == box);
  CHECK(g.ny == box);
}

TEST_CASE("splat in float (vectorised fill and gather) agrees with the double pipeline, edges included") {
  // Widths of 1.5-1.6 px (the benchmark's neutral model) take the short fixed-length rows; 1.0-1.6 px (a
  // decoded batch: widened, tau > 0) the long ones; centres up to the box edge take the wrapped rows. Float
  // against double differs by up to ~4e-4 of the largest gradient here, 1.7e-3 widened (the widening's
  // correction amplifies float rounding; the generic loop gives the same figure), which a wrong row, lane
  // or padding would exceed by orders of magnitude.
  for (const bool widened : {false, true}) {
  CAPTURE(widened);
  std::mt19937 rng(7);
  const int box = 48, g = 40;
  const double pixel = 1.7;
  FourierBand band = make_fourier_band(box, pixel, 0, 0);
  std::vector<double> p = random_params(rng, g, box, pixel, widened ? 1.0 : 1.5, 1.6);
  std::uniform_real_distribution<double> edge(-box * pixel / 2, box * pixel / 2);
  for (int j = 0; j < g / 4; ++j) { p[j] = edge(rng); p[g + j] = edge(rng); }
  std::vector<float> pf(p.begin(), p.end());
  const Pose pose{10, 80, -30, 0.4, -1.1};
  const CtfParams c = some_ctf(15000);
  std::vector<cd> dd = make_data(rng, band, p, g, pose, c, CtfMode::full, 0.05);
  std::vector<cfloat> df = to_float(dd);
  std::vector<cd> dround(df.begin(), df.end());
  double smin = 1e9;
  for (int j = 0; j < g; ++j) smin = std::min(smin, p[4 * g + j]);
  const double tau2 = splat_tau2(smin / pixel, pixel);
  CHECK((tau2 > 0) == widened);
  int long_rows = 0;  // footprints of kRowLong pixels (at the widening of this batch)
  for (int j = g / 4; j < g; ++j) {
    const double sw = std::sqrt(p[4 * g + j] * p[4 * g + j] + tau2) / pixel;
    long_rows += 2 * std::floor((widened ? kSplatRadiusSigmasWidened : kSplatRadiusSigmas) * sw) + 1 > 16;
  }
  CHECK((long_rows > 0) == widened);
  DoubleRun run(band, ProjectionStrategy::splat_fft, tau2, g);
  std::vector<double> grad(5 * g);
  double gpose[5];
  const double s_ref = run.score(p, view_d(pose, c, CtfMode::full), dround, grad.data(), gpose);
  ParticleView view = make_particle_view(pose.rot, pose.tilt, pose.psi, pose.ox, pose.oy, c, CtfMode::full);
  auto proj = make_projector(cpu_context(), band, g, {ProjectionStrategy::splat_fft});
  std::vector<float> gf(5 * g), pf_pose(5);
  float score;
  ProjectionBatch in{1, pf.data(), 0, &view, df.data()};
  ProjectionOutputs out;
  out.score = &score; out.grad_params = gf.data(); out.grad_pose = pf_pose.data();
  proj->run(in, out);
  CHECK(score == doctest::Approx(s_ref).epsilon(1e-4));
  double gmax = 0, pmax = 0;
  for (double x : grad) gmax = std::max(gmax, std::fabs(x));
  for (double x : gpose) pmax = std::max(pmax, std::fabs(x));
  CHECK(gmax > 0);
  for (int k = 0; k < 5 * g; ++k) {
    CAPTURE(k);
    CHECK(std::fabs(gf[k] - grad[k]) <= (widened ? 3e-3 : 1e-3) * gmax);
  }
  for (int k = 0; k < 5; ++k) CHECK(std::fabs(pf_pose[k] - gpose[k]) <= 1e-3 * pmax);
  }
}
