#include "engine/pose_refine.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <sstream>

#include "core/buffer.h"
#include "core/error.h"
#include "core/log.h"
#include "engine/ring_weights.h"
#include "engine/training_score.h"
#include "io/text.h"

namespace cugmm {

std::vector<double> parse_bands(const std::string& text, const std::string& option) {
  std::vector<double> b;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    char* end = nullptr;
    const double v = std::strtod(item.c_str(), &end);
    if (item.empty() || *end != 0 || !std::isfinite(v) || v <= 0)
      throw Error(option + ": '" + quote_value(item) + "' is not a resolution in Å (a positive number)");
    if (!b.empty() && v >= b.back())
      throw Error(option + ": the resolutions must go from coarse to fine (decreasing Å): " + text);
    b.push_back(v);
  }
  if (b.empty()) throw Error(option + " names no resolution");
  return b;
}

namespace {

template <class T>
double norm3(const T* v) {
  return std::sqrt(double(v[0]) * v[0] + double(v[1]) * v[1] + double(v[2]) * v[2]);
}

// One particle of the batch being refined: its pose, score and gradient, and a quasi-Newton (BFGS) estimate
// of the inverse Hessian of -score in the local coordinates (w, origin) about the current pose.
struct State {
  Mat3<double> a;         // RELION matrix
  double ox = 0, oy = 0;  // Å
  Mat3<double> a0;        // the input pose
  double ox0 = 0, oy0 = 0;
  float score = 0;
  float g[5] = {0, 0, 0, 0, 0};
  double h[25];           // inverse Hessian estimate (row-major)
  double d[5];            // the step being tried
  double alpha = 1;       // its fraction of the quasi-Newton step (cut after each failure)
  bool moving = true;

  // d = alpha H g, shortened (whole) so that its rotation is at most max_rot radians and its shift max_shift Å.
  void proposal(double max_rot, double max_shift) {
    for (int i = 0; i < 5; ++i) {
      d[i] = 0;
      for (int j = 0; j < 5; ++j) d[i] += h[5 * i + j] * g[j];
      d[i] *= alpha;
    }
    const double dw = norm3(d), dox = std::hypot(d[3], d[4]);
    double f = 1;
    if (dw > max_rot) f = std::min(f, max_rot / dw);
    if (dox > max_shift) f = std::min(f, max_shift / dox);
    for (double& x : d) x *= f;
    // A step against the gradient (H lost positive definiteness to rounding) is replaced by the gradient's.
    double dot = 0;
    for (int i = 0; i < 5; ++i) dot += d[i] * g[i];
    if (!(dot > 0)) {
      for (int i = 0; i < 5; ++i) d[i] = alpha * h[6 * i] * g[i];
    }
  }

  // BFGS update of H after the step d was taken and the gradient became g_new: s = d, y = g - g_new (the
  // change of the gradient of -score); skipped when the curvature s.y is not positive.
  void update_h(const float* g_new) {
    double y[5], sy = 0, hy[5], yhy = 0;
    for (int i = 0; i < 5; ++i) {
      y[i] = double(g[i]) - g_new[i];
      sy += d[i] * y[i];
    }
    if (!(sy > 1e-12)) return;
    for (int i = 0; i < 5; ++i) {
      hy[i] = 0;
      for (int j = 0; j < 5; ++j) hy[i] += h[5 * i + j] * y[j];
      yhy += y[i] * hy[i];
    }
    // H += ((sy + yHy) / sy^2) s s^T - (Hy s^T + s (Hy)^T) / sy   (H symmetric)
    const double c1 = (sy + yhy) / (sy * sy);
    for (int i = 0; i < 5; ++i)
      for (int j = 0; j < 5; ++j) h[5 * i + j] += c1 * d[i] * d[j] - (hy[i] * d[j] + d[i] * hy[j]) / sy;
  }
};

// The view at pose (a, origin in Å).
void set_pose(ParticleView& v, const Mat3<double>& a, double ox, double oy) {
  for (int e = 0; e < 9; ++e) v.rotation.m[e] = float(a.m[e]);
  v.origin_x = float(ox);
  v.origin_y = float(oy);
}

// A stage of the schedule: its band, the coefficients on it, a projector.
struct Stage {
  FourierBand band;
  std::unique_ptr<ParticleBatcher> batcher;
  std::unique_ptr<Projector> projector;
};

// Scores of candidate poses for some rows of the batch, through training_score on the projector's device.
class Evaluator {
 public:
  Evaluator(Context& cx, int G) : cx_(cx), W_(5 * size_t(G)), params_(cx), score_(cx), grad_(cx), views_(cx), data_(cx) {}

  // rows[k] of the batch at poses (a[k], o[k]): score[k] (and grad[k x 5] when grad is not null).
  void run(Projector& pr, const std::vector<int>& rows, const std::vector<Mat3<double>>& a,
           const std::vector<std::array<double, 2>>& o, const std::vector<ParticleView>& views,
           const std::vector<cfloat>& data, const std::vector<float>& params, float* score, float* grad) {
    const int n = int(rows.size());
    const size_t nb = pr.band().size();
    hv_.resize(size_t(n));
    hd_.resize(size_t(n) * nb);
    hp_.resize(size_t(n) * W_);
    for (int k = 0; k < n; ++k) {
      const size_t r = size_t(rows[k]);
      hv_[k] = views[r];
      set_pose(hv_[k], a[k], o[k][0], o[k][1]);
      std::memcpy(hd_.data() + size_t(k) * nb, data.data() + r * nb, nb * sizeof(cfloat));
      std::memcpy(hp_.data() + size_t(k) * W_, params.data() + r * W_, W_ * sizeof(float));
    }
    views_.upload(hv_);
    data_.upload(hd_);
    params_.upload(hp_);
    score_.resize(size_t(n));
    if (grad) grad_.resize(size_t(n) * 5);
    training_score(pr, params_.data(), W_, views_.data(), data_.data(), n, score_.data(), nullptr,
                   grad ? grad_.data() : nullptr);
    score_.download(score, size_t(n));
    if (grad) grad_.download(grad, size_t(n) * 5);
    cx_.synchronize();
    if (grad && !rotations)
      for (int k = 0; k < n; ++k) std::fill(grad + 5 * k, grad + 5 * k + 3, 0.f);
  }
  bool rotations = true;  // PoseRefineOptions::rotations

 private:
  Context& cx_;
  size_t W_;
  Buffer<float> params_, score_, grad_;
  Buffer<ParticleView> views_;
  Buffer<cfloat> data_;
  std::vector<ParticleView> hv_;
  std::vector<cfloat> hd_;
  std::vector<float> hp_;
};

Mat3<double> rotate(const Mat3<double>& a, double wx, double wy, double wz) {
  return mul(axis_angle_to_matrix(wx, wy, wz), a);
}

}  // namespace

PoseRefineResult refine_poses(Context& cx, const ParticleCache& cache, int G, const ParticleParams& params,
                              const PoseRefineOptions& o) {
  if (o.bands.empty()) throw Error("refine-pose: no resolution bands");
  const double cache_res = cache.band().ring_resolution(cache.band().ring_max);
  const double pixel = cache.pixel_size();
  std::vector<Stage> stages;
  for (double maxres : o.bands) {
    // Compared in rings: a cache made for maxres holds that band's last ring, whose resolution is a little
    // coarser than maxres itself.
    if (make_fourier_band(cache.box(), pixel, o.minres, maxres).ring_max > cache.band().ring_max)
      throw Error("refine-pose: band " + io::format_number("%g", maxres) + " Å is finer than the particle cache " +
                  cache.path() + " holds (" + io::format_number("%.3g", cache_res) + " Å)");
    if (o.minres > 0 && o.minres <= maxres)
      throw Error("refine-pose: --minres " + io::format_number("%g", o.minres) + " Å must be coarser than every band (" +
                  io::format_number("%g", maxres) + " Å)");
    Stage s;
    s.band = training_band(cache, o.minres, maxres);
    if (s.band.ring_max < s.band.ring_min)
      throw Error("refine-pose: band " + io::format_number("%g", maxres) + " Å holds no ring at this grid");
    // Bands finer than Nyquist all end at its ring: one stage for them (the default bands reach 3 Å).
    if (!stages.empty() && s.band.ring_max == stages.back().band.ring_max) continue;
    s.batcher = std::make_unique<ParticleBatcher>(cache, s.band, o.ctf);
    stages.push_back(std::move(s));
  }
  const size_t N = cache.count(), W = 5 * size_t(G);
  CUGMM_REQUIRE(o.weight_model.empty() || o.weight_model.size() == W,
                "refine_poses: the weight model is not one row of 5G parameters");
  PoseRefineResult res;
  res.before.resize(N);
  res.after.resize(N);
  res.score_before.resize(N);
  res.score_after.resize(N);
  res.angle_change_deg.resize(N);
  res.shift_change_a.resize(N);
  Evaluator ev(cx, G);
  ev.rotations = o.rotations;
  const int B = std::max(1, o.batch);
  std::vector<size_t> idx;
  std::vector<float> prm;
  std::vector<ParticleView> views;
  std::vector<cfloat> data;
  std::vector<State> st, all(N);  // the batch's particles; every particle between stages
  std::vector<int> rows;
  std::vector<Mat3<double>> ca;
  std::vector<std::array<double, 2>> co;
  std::vector<float> sc, gr;
  for (size_t i = 0; i < N; ++i) {
    const CachedParticle& c = cache.particle(i);
    State& p = all[i];
    p.a = p.a0 = c.rotation();
    p.ox = p.ox0 = c.origin_x;
    p.oy = p.oy0 = c.origin_y;
    res.before[i] = {c.rot, c.tilt, c.psi, c.origin_x, c.origin_y};
  }
  // The score's ring weights at the particles' current poses (training's, engine/ring_weights.h), estimated on
  // the finest band (ring r is the same frequency in every band of this grid) and cut to the stage's rings.
  // Re-estimated before every stage: at poses 3 degrees off the rings finer than ~8 Å show no signal and would
  // be weighted 0 for good; nearer the truth they show it (measured: 1.36 degrees with the weights of the
  // input poses, bench/README.md).
  auto stage_weights = [&](const Stage& s) {
    std::vector<float> w;
    if (o.weight_model.empty()) return w;
    std::vector<size_t> every(N);
    for (size_t i = 0; i < N; ++i) every[i] = i;
    res.ring_weights = estimate_ring_weights(cx, *stages.back().batcher, o.weight_model, every, 2000,
                                             [&](size_t i, ParticleView& v) { set_pose(v, all[i].a, all[i].ox, all[i].oy); })
                           .weight;
    w.assign(res.ring_weights.begin(), res.ring_weights.begin() + s.band.num_rings());
    double sum = 0;
    for (int r = s.band.ring_min; r <= s.band.ring_max; ++r) sum += w[size_t(r)];
    if (!(sum > 0))
      throw Error("refine-pose: no ring of the " + io::format_number("%.3g", s.band.ring_resolution(s.band.ring_max)) +
                  " Å band holds a measurable signal against the model at the current poses (all weighted 0): start "
                  "with a finer band or give --loss frc");
    return w;
  };
  // The batch [first, first + n) of the stage: its parameters, views and data.
  auto load = [&](Stage& s, size_t first, int n) {
    idx.resize(size_t(n));
    for (int i = 0; i < n; ++i) idx[size_t(i)] = first + size_t(i);
    prm.resize(size_t(n) * W);
    params(idx.data(), n, prm.data());
    views.resize(size_t(n));
    data.resize(size_t(n) * s.band.size());
    s.batcher->gather(idx.data(), n, views.data(), data.data());
    st.assign(all.begin() + std::ptrdiff_t(first), all.begin() + std::ptrdiff_t(first) + n);
  };
  Progress progress("refine-pose", N * (stages.size() + 1));

  // Scores (and gradients) of the rows at their current poses.
  auto eval_current = [&](Stage& s, bool with_grad) {
    rows.clear(); ca.clear(); co.clear();
    for (int r = 0; r < int(st.size()); ++r) {
      rows.push_back(r);
      ca.push_back(st[r].a);
      co.push_back({st[r].ox, st[r].oy});
    }
    sc.resize(rows.size());
    gr.resize(rows.size() * 5);
    ev.run(*s.projector, rows, ca, co, views, data, prm, sc.data(), with_grad ? gr.data() : nullptr);
  };
  // The grid of the local search: each candidate offset for every row, the best kept.
  // Every candidate is an offset from the pose before the search (not from the best so far).
  auto search = [&](Stage& s, const std::vector<std::array<double, 5>>& offsets) {
    const std::vector<State> start = st;
    for (const auto& d : offsets) {
      rows.clear(); ca.clear(); co.clear();
      for (int r = 0; r < int(st.size()); ++r) {
        rows.push_back(r);
        ca.push_back(rotate(start[size_t(r)].a, d[0], d[1], d[2]));
        co.push_back({start[size_t(r)].ox + d[3], start[size_t(r)].oy + d[4]});
      }
      sc.resize(rows.size());
      ev.run(*s.projector, rows, ca, co, views, data, prm, sc.data(), nullptr);
      for (size_t k = 0; k < rows.size(); ++k) {
        State& p = st[size_t(rows[k])];
        if (sc[k] > p.score) {
          p.score = sc[k];
          p.a = ca[k];
          p.ox = co[k][0];
          p.oy = co[k][1];
        }
      }
    }
  };
  std::vector<std::array<double, 5>> rot_grid, shift_grid;
  if (o.search_deg > 0 && o.rotations) {
    const double d = deg2rad(o.search_deg);
    for (int i = -1; i <= 1; ++i)
      for (int j = -1; j <= 1; ++j)
        for (int k = -1; k <= 1; ++k)
          if (i || j || k) rot_grid.push_back({i * d, j * d, k * d, 0, 0});
  }
  if (o.search_px > 0) {
    const double d = o.search_px * pixel;
    for (int i = -1; i <= 1; ++i)
      for (int j = -1; j <= 1; ++j)
        if (i || j) shift_grid.push_back({0, 0, 0, i * d, j * d});
  }

  for (size_t b = 0; b < stages.size(); ++b) {
    Stage& s = stages[b];
    s.projector = make_training_projector(cx, s.band, stage_weights(s), G);
    for (size_t first = 0; first < N; first += size_t(B)) {
      const int n = int(std::min(size_t(B), N - first));
      load(s, first, n);
      const bool searching = b == 0 && !(rot_grid.empty() && shift_grid.empty());
      eval_current(s, !searching);
      for (int i = 0; i < n; ++i) st[size_t(i)].score = sc[size_t(i)];
      if (searching) {
        search(s, rot_grid);
        search(s, shift_grid);
        eval_current(s, true);
      }
      const double shrink = std::ldexp(1.0, -int(b));
      const double r0 = deg2rad(o.start_deg) * shrink, s0 = o.start_px * pixel * shrink;
      const double tol_r = deg2rad(o.tol_deg), tol_s = o.tol_px * pixel;
      const double max_rot = deg2rad(o.max_change_deg), max_shift = o.max_change_px * pixel;
      for (int i = 0; i < n; ++i) {
        State& p = st[size_t(i)];
        p.score = sc[size_t(i)];
        std::copy(gr.begin() + 5 * i, gr.begin() + 5 * i + 5, p.g);
        // The first step: r0 along the rotation gradient, s0 along the shift gradient.
        const double gw = norm3(p.g), go = std::hypot(double(p.g[3]), double(p.g[4]));
        std::fill(p.h, p.h + 25, 0.0);
        for (int k = 0; k < 5; ++k) p.h[6 * k] = k < 3 ? r0 / std::max(gw, 1e-12) : s0 / std::max(go, 1e-12);
        p.alpha = 1;
        p.moving = true;
      }
      for (int it = 0; it < o.iterations; ++it) {
        rows.clear(); ca.clear(); co.clear();
        for (int r = 0; r < n; ++r) {
          State& p = st[size_t(r)];
          if (!p.moving) continue;
          p.proposal(4 * r0, 4 * s0);
          rows.push_back(r);
          ca.push_back(rotate(p.a, p.d[0], p.d[1], p.d[2]));
          co.push_back({p.ox + p.d[3], p.oy + p.d[4]});
        }
        if (rows.empty()) break;
        sc.resize(rows.size());
        gr.resize(rows.size() * 5);
        ev.run(*s.projector, rows, ca, co, views, data, prm, sc.data(), gr.data());
        for (size_t k = 0; k < rows.size(); ++k) {
          State& p = st[size_t(rows[k])];
          const double dw = norm3(p.d), dox = std::hypot(p.d[3], p.d[4]);
          const bool inside = geodesic_angle(p.a0, ca[k]) <= max_rot &&
                              std::hypot(co[k][0] - p.ox0, co[k][1] - p.oy0) <= max_shift;
          if (inside && sc[k] > p.score) {
            p.update_h(gr.data() + 5 * k);
            p.score = sc[k];
            p.a = ca[k];
            p.ox = co[k][0];
            p.oy = co[k][1];
            std::copy(gr.begin() + 5 * k, gr.begin() + 5 * k + 5, p.g);
            p.alpha = 1;
          } else {
            p.alpha *= 0.3;
          }
          if (dw < tol_r && dox < tol_s) p.moving = false;
        }
      }
      std::copy(st.begin(), st.end(), all.begin() + std::ptrdiff_t(first));
      progress.add(size_t(n));
    }
  }
  // The score before and after, on the finest band with its last weights.
  Stage& fine = stages.back();
  for (size_t first = 0; first < N; first += size_t(B)) {
    const int n = int(std::min(size_t(B), N - first));
    load(fine, first, n);
    eval_current(fine, false);
    for (int i = 0; i < n; ++i) res.score_after[first + size_t(i)] = sc[size_t(i)];
    for (State& p : st) {
      p.a = p.a0;
      p.ox = p.ox0;
      p.oy = p.oy0;
    }
    eval_current(fine, false);
    for (int i = 0; i < n; ++i) res.score_before[first + size_t(i)] = sc[size_t(i)];
    progress.add(size_t(n));
  }
  for (size_t g = 0; g < N; ++g) {
    const State& p = all[g];
    ParticlePose& q = res.after[g];
    matrix_to_euler(p.a, q.rot, q.tilt, q.psi);
    q.origin_x = p.ox;
    q.origin_y = p.oy;
    res.angle_change_deg[g] = rad2deg(geodesic_angle(p.a0, p.a));
    res.shift_change_a[g] = std::hypot(p.ox - p.ox0, p.oy - p.oy0);
  }
  progress.finish();
  return res;
}

}  // namespace cugmm
