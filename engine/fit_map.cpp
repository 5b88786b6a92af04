// The progressive fit of engine/fit_map.h.
#include "engine/fit_map.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>
#include <sstream>

#include "core/error.h"
#include "core/log.h"
#include "core/threads.h"
#include "engine/fft.h"
#include "engine/fit_map_detail.h"
#include "engine/gaussian_fourier3d.h"
#include "engine/render.h"
#include "kernels/nn_adam.h"
#include "kernels/philox.h"

namespace cugmm {

using namespace fit_detail;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

std::string fmt(double v, int prec = 3) {
  std::ostringstream s;
  s.precision(prec);
  s << v;
  return s.str();
}

// Mean power per shell of a half-space transform (shells in pixels, 0..N/2).
std::vector<double> shell_power(const std::vector<cfloat>& half, int n) {
  const int h = n / 2, nxh = h + 1;
  std::vector<double> p(h + 1, 0), c(h + 1, 0);
  for (int zi = 0; zi < n; ++zi)
    for (int yi = 0; yi < n; ++yi)
      for (int kx = 0; kx <= h; ++kx) {
        const int ky = yi > h ? yi - n : yi, kz = zi > h ? zi - n : zi;
        const int s = int(std::lround(std::sqrt(double(kx * kx + ky * ky + kz * kz))));
        if (s > h) continue;
        p[s] += std::norm(half[(size_t(zi) * n + yi) * nxh + kx]);
        c[s] += 1;
      }
  for (int s = 0; s <= h; ++s) p[s] = c[s] > 0 ? p[s] / c[s] : 0;
  return p;
}

// The model's FSC against the masked map (the model masked the same way).
FscCurve model_fsc(const io::GaussianModel& g, const std::vector<float>& mm, const std::vector<float>& mask, int n,
                   double pixel) {
  io::Image v = render_volume(g, n, pixel);
  if (!mask.empty()) v.data = apply_mask(v.data, mask);
  return fsc(v.data.data(), mm.data(), n, pixel);
}

// Keeps the Gaussians whose centre lies in the box and sees mask >= keep; returns how many were dropped.
long drop_outside(io::GaussianModel& g, const std::vector<float>& mask, double keep, int n, double pixel) {
  size_t out = 0;
  long dropped = 0;
  for (size_t j = 0; j < g.size(); ++j) {
    const int ix = int(std::lround(g.x[j] / pixel)) + n / 2, iy = int(std::lround(g.y[j] / pixel)) + n / 2,
              iz = int(std::lround(g.z[j] / pixel)) + n / 2;
    bool inside = ix >= 0 && iy >= 0 && iz >= 0 && ix < n && iy < n && iz < n;
    if (inside && !mask.empty()) inside = mask[(size_t(iz) * n + iy) * n + ix] >= keep;
    if (!inside) { ++dropped; continue; }
    g.x[out] = g.x[j]; g.y[out] = g.y[j]; g.z[out] = g.z[j];
    g.amplitude[out] = g.amplitude[j]; g.width[out] = g.width[j];
    ++out;
  }
  g.resize(out);
  return dropped;
}

// The random draws: Philox (kernels/philox.h) under key seed ^ kDrawKey, one stream per round (the seed
// model is round 0's, each split its round's), so a fit resumed at any round draws what an uninterrupted
// one does.
constexpr uint64_t kDrawKey = 0x6669742d6d6170ull;  // "fit-map"

// Seeds G Gaussians on voxels above the threshold, drawn with probability proportional to density.
io::GaussianModel seed_model(const AboveThreshold& at, const std::vector<float>& mm, long count, double width, int n,
                             double pixel, uint64_t seed) {
  std::vector<double> cum(at.voxels.size());
  double run = 0;
  for (size_t i = 0; i < at.voxels.size(); ++i) cum[i] = run += mm[at.voxels[i]];
  uint64_t draw = 0;
  auto u = [&]() { return double(philox_uniform(seed ^ kDrawKey, 0, draw++)); };
  io::GaussianModel g;
  g.box_size = n;
  g.pixel_size = pixel;
  g.resize(size_t(count));
  for (long j = 0; j < count; ++j) {
    const size_t k = std::min(size_t(std::lower_bound(cum.begin(), cum.end(), u() * run) - cum.begin()),
                              cum.size() - 1);
    const size_t v = at.voxels[k];
    const int ix = int(v % n), iy = int(v / n % n), iz = int(v / (size_t(n) * n));
    g.x[j] = float((ix - n / 2 + u() - 0.5) * pixel);
    g.y[j] = float((iy - n / 2 + u() - 0.5) * pixel);
    g.z[j] = float((iz - n / 2 + u() - 0.5) * pixel);
    g.amplitude[j] = float(at.mass / count);
    g.width[j] = float(width);
  }
  return g;
}

// Removes Gaussians whose amplitude the projection held at ~0 (they no longer model anything); the next
// split re-seeds that many where the residual is largest. Returns how many.
long remove_dead(io::GaussianModel& g) {
  if (g.size() == 0) return 0;
  const double mean = std::accumulate(g.amplitude.begin(), g.amplitude.end(), 0.0) / g.size();
  size_t out = 0;
  for (size_t j = 0; j < g.size(); ++j) {
    if (g.amplitude[j] <= 1e-3 * mean) continue;
    g.x[out] = g.x[j]; g.y[out] = g.y[j]; g.z[out] = g.z[j];
    g.amplitude[out] = g.amplitude[j]; g.width[out] = g.width[j];
    ++out;
  }
  const long dead = long(g.size() - out);
  g.resize(out);
  return dead;
}

// Real-space |map - model| summed over each Gaussian's footprint (radius 2 s).
std::vector<double> footprint_residual(const io::GaussianModel& g, const std::vector<float>& mm,
                                       const std::vector<float>& mask, int n, double pixel) {
  io::Image v = render_volume(g, n, pixel);
  std::vector<float> d(mm.size());
  for (size_t i = 0; i < d.size(); ++i) d[i] = std::fabs(mm[i] - v.data[i] * (mask.empty() ? 1.f : mask[i]));
  std::vector<double> r(g.size(), 0);
#pragma omp parallel for schedule(dynamic, 16)
  for (long j = 0; j < long(g.size()); ++j) {
    const int rad = std::max(1, int(std::ceil(2 * g.width[j] / pixel)));
    const int cx = int(std::lround(g.x[j] / pixel)) + n / 2, cy = int(std::lround(g.y[j] / pixel)) + n / 2,
              cz = int(std::lround(g.z[j] / pixel)) + n / 2;
    double s = 0;
    for (int z = std::max(0, cz - rad); z <= std::min(n - 1, cz + rad); ++z)
      for (int y = std::max(0, cy - rad); y <= std::min(n - 1, cy + rad); ++y)
        for (int x = std::max(0, cx - rad); x <= std::min(n - 1, cx + rad); ++x) s += d[(size_t(z) * n + y) * n + x];
    r[j] = s;
  }
  return r;
}

// Splits the `extra` Gaussians with the largest residual: parent and child at -/+ s/2 along a random
// direction (round `round`'s draws), half the amplitude each, width x 0.8 (half the mass in about half
// the volume).
void split(io::GaussianModel& g, const std::vector<double>& residual, size_t extra, uint64_t seed, int round) {
  std::vector<size_t> order(g.size());
  std::iota(order.begin(), order.end(), 0);
  extra = std::min(extra, g.size());
  std::partial_sort(order.begin(), order.begin() + extra, order.end(), [&](size_t a, size_t b) {
    return residual[a] != residual[b] ? residual[a] > residual[b] : a < b;
  });
  const size_t g0 = g.size();
  g.resize(g0 + extra);
  for (size_t e = 0; e < extra; ++e) {
    const size_t j = order[e], c = g0 + e;
    double d[3];
    for (int a = 0; a < 3; ++a) d[a] = philox_normal(seed ^ kDrawKey, uint64_t(round), 3 * e + a);
    const double len = std::max(1e-12, std::sqrt(d[0] * d[0] + d[1] * d[1] + d[2] * d[2]));
    const double off = 0.5 * g.width[j] / len;
    g.x[c] = float(g.x[j] + off * d[0]); g.y[c] = float(g.y[j] + off * d[1]); g.z[c] = float(g.z[j] + off * d[2]);
    g.x[j] = float(g.x[j] - off * d[0]); g.y[j] = float(g.y[j] - off * d[1]); g.z[j] = float(g.z[j] - off * d[2]);
    g.amplitude[j] *= 0.5f;
    g.amplitude[c] = g.amplitude[j];
    g.width[j] *= 0.8f;
    g.width[c] = g.width[j];
  }
}

struct AdamRun {
  int iterations = 0;
  double loss = 0;
  bool converged = false;
};

// Adam on all five parameter groups against one band, from `st` (a round not started when its history is
// empty) to at most max_iter steps in all; `check` (every opt.check_every steps and at convergence) may
// stop early by returning true; otherwise `save` is called there (st and g are the state after that step).
template <class Check, class Save>
AdamRun run_adam(io::GaussianModel& g, Fourier3dLoss& lf, const FitMapOptions& opt, double res, double pixel,
                 int max_iter, AdamState& st, Check&& check, Save&& save) {
  const size_t gc = g.size();
  AdamRun run;
  if (gc == 0) return run;
  if (st.history.empty()) {
    st.m.assign(5 * gc, 0.f);
    st.v.assign(5 * gc, 0.f);
    st.a_ref = std::accumulate(g.amplitude.begin(), g.amplitude.end(), 0.0) / gc;
  }
  CUGMM_REQUIRE(st.m.size() == 5 * gc && st.v.size() == 5 * gc, "fit-map: Adam's state is not the model's");
  std::vector<float> grad(5 * gc);
  std::vector<float>&m = st.m, &v = st.v;
  std::vector<double>& history = st.history;
  const double sr = target_width(res);
  const double lr[5] = {opt.lr_position * sr, opt.lr_position * sr, opt.lr_position * sr,
                        opt.lr_amplitude * st.a_ref, opt.lr_width * sr};
  const float smin = float(min_width(opt, pixel, res)), smax = float(max_width(pixel, res));
  for (size_t j = 0; j < gc; ++j) g.width[j] = std::clamp(g.width[j], smin, smax);
  float* p[5] = {g.x.data(), g.y.data(), g.z.data(), g.amplitude.data(), g.width.data()};
  run.iterations = int(history.size());
  if (!history.empty()) run.loss = history.back();
  for (int t = int(history.size()) + 1; t <= max_iter; ++t) {
    GaussSoA<float> soa{p[0], p[1], p[2], p[3], p[4], gc};
    GaussGrad<float> gg{grad.data(), grad.data() + gc, grad.data() + 2 * gc, grad.data() + 3 * gc, grad.data() + 4 * gc};
    run.loss = lf.loss_grad(soa, gg);
    run.iterations = t;
    history.push_back(run.loss);
    // Step decay to a tenth: large early moves, then settling (Adam's step is ~lr whatever the gradient).
    const double decay = std::max(0.1, std::pow(0.5, t / 200.0));
    for (int c = 0; c < 5; ++c) {
      // eps far below any gradient of the normalised loss: Adam stays scale-free.
      AdamScalars s{float(lr[c] * decay), 0.9f, 0.999f, 1e-30f, float(1 - std::pow(0.9, t)),
                    float(1 - std::pow(0.999, t)), 0.f, 1.f};
      float* pc = p[c];
      const float* gcp = grad.data() + c * gc;
      for (size_t j = 0; j < gc; ++j) adam_step<float>(pc[j], gcp[j], m[c * gc + j], v[c * gc + j], s);
    }
    for (size_t j = 0; j < gc; ++j) {
      g.amplitude[j] = std::max(0.f, g.amplitude[j]);
      g.width[j] = std::clamp(g.width[j], smin, smax);
    }
    const int lag = 25;
    if (t >= 2 * lag && history[t - 1 - lag] - run.loss < opt.converge_tol * history[t - 1 - lag]) run.converged = true;
    if (run.converged || (opt.check_every > 0 && t % opt.check_every == 0)) {
      if (check() || run.converged) break;
      if (t < max_iter) save();  // at max_iter the round ends here anyway
    }
  }
  return run;
}

}  // namespace

void evaluate_stop_rule(FitMapResult& r, double res, int box, double pixel) {
  const FscCurve& f = r.fsc;
  const bool half = !r.half_fsc.value.empty();
  const int smax = std::min(int(std::ceil(box * pixel / res)) - 1, box / 2);
  r.c_ref.clear();
  if (half)
    for (double F : r.half_fsc.value) {
      F = std::max(0.0, F);
      r.c_ref.push_back(std::sqrt(2 * F / (1 + F)));
    }
  r.failing_shells.clear();
  r.worst_ratio = 1e300;
  int worst = 1;
  for (int s = 1; s <= smax && s < int(f.value.size()); ++s) {
    const double goal = r.options.stop_fsc * (half ? r.c_ref[s] : 1.0);
    const double ratio = goal > 0 ? f.value[s] / goal : 1e300;
    if (f.value[s] < goal) r.failing_shells.push_back(s);
    if (ratio < r.worst_ratio) { r.worst_ratio = ratio; worst = s; }
  }
  r.reached = r.failing_shells.empty();
  const std::string what = half ? "FSC >= " + fmt(r.options.stop_fsc) + " C_ref" : "FSC >= " + fmt(r.options.stop_fsc);
  if (r.reached) {
    r.verdict = "stop rule reached: " + what + " in every shell to " + fmt(res) + " Å (worst shell " +
                std::to_string(worst) + " at " + fmt(f.resolution(worst)) + " Å, " + fmt(r.worst_ratio) + " of the goal)";
    return;
  }
  std::string shells;
  for (size_t i = 0; i < r.failing_shells.size(); ++i) {
    const int s = r.failing_shells[i];
    if (i > 0 && s == r.failing_shells[i - 1] + 1 && (i + 1 == r.failing_shells.size() || r.failing_shells[i + 1] != s + 1)) {
      shells += "-" + std::to_string(s);
    } else if (i == 0 || s != r.failing_shells[i - 1] + 1) {
      shells += (i ? "," : "") + std::to_string(s);
    }
  }
  r.verdict = "stop rule not reached: " + what + " fails in shells " + shells + " (of 1-" + std::to_string(smax) +
              "); worst shell " + std::to_string(worst) + " (" + fmt(f.resolution(worst)) + " Å): FSC " +
              fmt(f.value[worst]) + ", " + fmt(r.worst_ratio) + " of the goal";
}

FitMapResult fit_map(const FitMapInputs& in, const FitMapOptions& opt_in, Context& ctx) {
  const auto t0 = std::chrono::steady_clock::now();
  validate_inputs(in, opt_in);
  if (opt_in.threads > 0) set_threads(opt_in.threads);
  FitMapResult r;
  r.options = opt_in;
  FitMapOptions& opt = r.options;
  r.device = ctx.cuda() ? "cuda" : "cpu";
  const int n = in.map.nx;
  const double pixel = in.map.pixel_size;
  const std::string mp = name_or(opt.map_path, "map");
  const std::vector<float>& mask = in.mask;
  const std::vector<float> mm = masked(in.map, mask);

  // Resolution: the half-maps' FSC 0.143, else 3 pixels; never finer than 2.5 pixels.
  double signal_res = 0;
  if (in.half1) {
    std::vector<float> h1 = masked(*in.half1, mask), h2 = masked(*in.half2, mask);
    r.half_fsc = fsc(h1.data(), h2.data(), n, pixel);
    signal_res = r.half_fsc.resolution_at(0.143);
  }
  if (!(opt.res > 0)) opt.res = signal_res > 0 ? signal_res : 3 * pixel;
  if (opt.res < 2.5 * pixel) {
    r.warnings.push_back("--res " + fmt(opt.res) + " Å is finer than 2.5 pixels; using " + fmt(2.5 * pixel) + " Å");
    opt.res = 2.5 * pixel;
  }
  if (!std::isfinite(opt.threshold)) opt.threshold = auto_threshold(mm, mask);
  const AboveThreshold at = above_threshold(mm, mask, opt.threshold);
  if (at.voxels.empty() || !(at.mass > 0))
    throw InputError(mp, "", "no voxel above the threshold " + fmt(opt.threshold) + (mask.empty() ? "" : " inside the mask"));
  if (opt.ngauss <= 0) {
    const double vol = at.voxels.size() * pixel * pixel * pixel, cell = std::pow(opt.res / 2, 3);
    opt.ngauss = std::clamp(long(std::lround(vol / cell)), 32L, 200000L);
  }

  // The full transform once; each round gathers its band from it.
  std::vector<cfloat> half(size_t(n) * n * (n / 2 + 1));
  fft3_r2c(n, n, n, mm.data(), half.data());
  const std::vector<double> pw = shell_power(half, n);
  {
    const int sres = std::min(n / 2, int(std::floor(n * pixel / opt.res)));
    if (sres >= 4 && pw[sres] > pw[sres / 2])
      r.warnings.push_back("the map's power rises toward --res (shell " + std::to_string(sres) + " vs " +
                           std::to_string(sres / 2) + "): it looks sharpened; fit an unsharpened map");
    if (signal_res > 0 && opt.res < 0.98 * signal_res)
      r.warnings.push_back("--res " + fmt(opt.res) + " Å is finer than the half-maps' FSC 0.143 (" + fmt(signal_res) +
                           " Å): the shells beyond hold mostly noise");
    else if (signal_res == 0 && sres >= 2 && pw[sres] < 1e-8 * pw[1])
      r.warnings.push_back("the map has almost no power at --res " + fmt(opt.res) + " Å (filtered coarser?)");
  }
  for (const std::string& w : r.warnings) log_warn("fit-map: " + w);

  io::GaussianModel g;
  long g_first;
  double res0 = std::clamp(std::max(opt.start_res, opt.res), opt.res, std::max(opt.res, n * pixel / 3));
  if (in.init) {
    g = *in.init;
    g.box_size = n;
    g.pixel_size = pixel;
    // Relative masses kept, the total set to the map's mass above threshold.
    const double total = std::accumulate(g.amplitude.begin(), g.amplitude.end(), 0.0);
    CUGMM_REQUIRE(total > 0, "fit-map: the initial model has no mass");
    for (float& a : g.amplitude) a = float(a * at.mass / total);
    r.dropped_by_mask += drop_outside(g, mask, opt.mask_keep, n, pixel);
    if (g.size() == 0) throw InputError(name_or(opt.init_path, "init"), "", "every Gaussian lies outside the mask");
    g_first = long(g.size());
    opt.ngauss = std::max(opt.ngauss, g_first);
  } else {
    g_first = std::min<long>(opt.start_gaussians, opt.ngauss);
    g = seed_model(at, mm, g_first, target_width(res0), n, pixel, opt.seed);
    r.dropped_by_mask += drop_outside(g, mask, opt.mask_keep, n, pixel);
  }
  const int doublings = opt.ngauss > g_first ? int(std::ceil(std::log2(double(opt.ngauss) / g_first))) : 0;
  const int rounds = std::max(doublings + 1, opt.min_rounds);
  auto round_res = [&](int i) { return rounds == 1 ? opt.res : res0 * std::pow(opt.res / res0, double(i) / (rounds - 1)); };
  auto round_g = [&](int i) {
    const int d = std::max(0, i - (rounds - 1 - doublings));
    return i == rounds - 1 ? opt.ngauss : std::min(opt.ngauss, long(std::ldexp(double(g_first), d)));
  };

  log_info("fit-map: " + std::to_string(n) + "^3 at " + fmt(pixel) + " Å/px, --res " + fmt(opt.res) + " Å, " +
           std::to_string(opt.ngauss) + " Gaussians in " + std::to_string(rounds) + " rounds, threshold " +
           fmt(opt.threshold) + ", " + r.device);

  // Resuming: the checkpoint's state replaces the one just set up (FitMapOptions::checkpoint).
  const std::string& ckpt = opt_in.checkpoint;
  const nlohmann::json key = ckpt.empty() ? nlohmann::json() : checkpoint_key(in, opt_in, r.device);
  FitState resumed;
  double seconds_before = 0;  // spent by the runs this one continues
  if (!ckpt.empty()) {
    if (std::optional<FitState> s = load_fit_state(ckpt, key, rounds)) {
      resumed = std::move(*s);
      g = std::move(resumed.model);
      r.rounds = resumed.rounds;
      r.dropped_by_mask = resumed.dropped_by_mask;
      seconds_before = resumed.seconds;
      const int step = int(resumed.adam.history.size());
      log_info("fit-map: resuming from round " + std::to_string(resumed.round + 1) + " of " + std::to_string(rounds) +
               (step ? ", step " + std::to_string(step) : "") + " (" + ckpt + ")");
    }
  }
  auto save = [&](int round, const AdamState& adam, double round_seconds) {
    if (ckpt.empty()) return;
    FitState s{round, g, adam, r.rounds, r.dropped_by_mask, round_seconds, seconds_before + seconds_since(t0)};
    save_fit_state(ckpt, key, rounds, s);
    if (opt_in.on_checkpoint) opt_in.on_checkpoint(round, int(adam.history.size()));
  };

  Progress progress("fit-map", size_t(rounds - resumed.round));
  for (int i = resumed.round; i < rounds; ++i) {
    const auto tr0 = std::chrono::steady_clock::now();
    const double res = round_res(i);
    const bool last = i == rounds - 1;
    // Mid-round (a resumed round with steps done): the split was made before those steps.
    AdamState adam = i == resumed.round ? std::move(resumed.adam) : AdamState{};
    const double round_before = i == resumed.round ? resumed.round_seconds : 0;
    if (i > 0 && adam.history.empty()) {
      const long want = round_g(i);
      remove_dead(g);
      if (want > long(g.size()))
        split(g, footprint_residual(g, mm, mask, n, pixel), size_t(want - long(g.size())), opt.seed, i);
    }
    Band3d band = make_band3d(n, pixel, res);
    if (opt.whiten > 0) {
      std::vector<double> sw(pw.size());
      const double floor = 1e-12 * *std::max_element(pw.begin(), pw.end());
      for (size_t s = 0; s < pw.size(); ++s) sw[s] = std::pow(std::max(pw[s], floor) / pw[0], -opt.whiten);
      weight_shells(band, sw);
    }
    std::vector<float> tr, ti;
    band3d_gather(band, half.data(), tr, ti);
    std::unique_ptr<Fourier3dLoss> lf = Fourier3dLoss::create(ctx, band, std::move(tr), std::move(ti));
    FscCurve round_fsc;
    auto check = [&]() {
      if (!last) return false;
      // Judged as it would be written: without the Gaussians that left the mask (a copy: Adam's state
      // stays aligned with g until the round ends and drops them for real).
      io::GaussianModel probe = g;
      drop_outside(probe, mask, opt.mask_keep, n, pixel);
      r.fsc = round_fsc = model_fsc(probe, mm, mask, n, pixel);
      evaluate_stop_rule(r, opt.res, n, pixel);
      return r.reached;
    };
    AdamRun run = run_adam(g, *lf, opt, res, pixel, last ? opt.final_iterations : opt.round_iterations, adam, check,
                           [&]() { save(i, adam, round_before + seconds_since(tr0)); });
    r.dropped_by_mask += drop_outside(g, mask, opt.mask_keep, n, pixel);
    round_fsc = model_fsc(g, mm, mask, n, pixel);
    FitRound fr{i, long(g.size()), res, run.iterations, run.loss, round_fsc, round_before + seconds_since(tr0)};
    r.rounds.push_back(fr);
    // The last round's end needs no state: the result follows from it at once.
    if (!last) save(i + 1, AdamState{}, 0);
    std::vector<float> ws = g.width;
    std::sort(ws.begin(), ws.end());
    const std::string widths = ws.empty() ? "" : ", widths " + fmt(ws.front()) + "/" + fmt(ws[ws.size() / 2]) + "/" +
                                                     fmt(ws.back()) + " Å";
    const std::string line = "round " + std::to_string(i + 1) + "/" + std::to_string(rounds) + ": G " +
                             std::to_string(g.size()) + widths + ", " + fmt(res) + " Å, " + std::to_string(run.iterations) +
                             " steps, loss " + fmt(run.loss) + ", FSC 0.5 at " + fmt(round_fsc.resolution_at(0.5)) +
                             " Å, " + fmt(fr.seconds) + " s";
    progress.add(1, line);
    log_info("fit-map: " + line);
    if (last) {
      r.fsc = round_fsc;
      evaluate_stop_rule(r, opt.res, n, pixel);
      if (!r.reached) {
        std::string why;
        if (long(g.size()) < opt.ngauss) why += "; " + std::to_string(opt.ngauss - long(g.size())) + " Gaussians were dropped by the mask or box";
        if (!run.converged) why += "; the iteration budget (" + std::to_string(opt.final_iterations) + ") ran out while the loss still fell";
        else why += "; the fit converged: more Gaussians (--ngauss) or a coarser --res would be needed";
        if (!r.c_ref.empty()) why += " (C_ref is low where the half-maps lack signal)";
        r.verdict += why;
      }
    }
  }
  progress.finish();
  g.box_size = n;
  g.pixel_size = pixel;
  r.model = std::move(g);
  r.res_fsc05 = r.fsc.resolution_at(0.5);
  r.res_fsc0143 = r.fsc.resolution_at(0.143);
  r.seconds = seconds_before + seconds_since(t0);
  (r.reached ? log_info : log_warn)("fit-map: " + r.verdict);
  return r;
}

}  // namespace cugmm
