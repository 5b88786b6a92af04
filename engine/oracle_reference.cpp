#include "engine/oracle_reference.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <fstream>
#include <map>
#include <random>
#include <sstream>

#include "core/error.h"
#include "core/log.h"
#include "engine/fft.h"
#include "engine/random_pose.h"
#include "engine/system_imager.h"
#include "engine/train_outputs.h"
#include "io/atomic_file.h"

namespace cugmm {

namespace {

using cdouble = std::complex<double>;

struct Grid {
  std::vector<std::vector<double>> values;  // per motion, its grid values (degrees / Å / 0-1)
  std::vector<size_t> stride;
  size_t size = 1;
  std::vector<int> index(size_t s) const {
    std::vector<int> idx(values.size());
    for (size_t k = 0; k < values.size(); ++k) idx[k] = int(s / stride[k] % values[k].size());
    return idx;
  }
};

Grid make_grid(const HeteroSystem& sys, int per_motion) {
  Grid g;
  int continuous = 0;
  for (const Motion& m : sys.motions) continuous += m.kind != Motion::Kind::present;
  const int n = per_motion > 0 ? per_motion : continuous > 1 ? 17 : 41;
  for (const Motion& m : sys.motions) {
    std::vector<double> v;
    if (m.kind == Motion::Kind::present) v = {0, 1};
    else if (m.circular())
      for (int j = 0; j < 72; ++j) v.push_back(m.lo + (m.hi - m.lo) * j / 72);
    else
      for (int j = 0; j < n; ++j) v.push_back(m.lo + (m.hi - m.lo) * j / (n - 1));
    g.stride.push_back(g.size);
    g.size *= v.size();
    g.values.push_back(v);
  }
  return g;
}

// The latent columns a motion contributes (posterior mean; (cos, sin) of a full rotation's; presence
// probability) and its truth in metric units (radians for rotations).
bool is_circular(const Motion& m) { return m.circular(); }

double log_mean_exp(const std::vector<double>& x) {
  double mx = -INFINITY;
  for (double v : x) mx = std::max(mx, v);
  double s = 0;
  for (double v : x) s += std::exp(v - mx);
  return mx + std::log(s / double(x.size()));
}

}  // namespace

std::vector<MetricFigure> score_latent(const HeteroSystem& sys, const Matrix& latent, const Matrix& truth,
                                       const BootstrapOptions& bo) {
  CUGMM_REQUIRE(truth.cols == sys.motions.size() && truth.rows == latent.rows, "score_latent: truth of the wrong shape");
  std::vector<MetricFigure> out;
  if (sys.motions.size() == 1) {
    const Motion& m = sys.motions[0];
    const std::vector<double> t = truth.column(0);
    if (m.kind == Motion::Kind::present)
      out.push_back({"composition", m.name, bootstrap(latent, t, [](const Matrix& l, const std::vector<double>& y) {
                       return composition_score(l, y);
                     }, bo)});
    else if (is_circular(m))
      out.push_back({"rotation", m.name, bootstrap(latent, t, rotation_score, bo)});
    else
      out.push_back({"linear_motion", m.name, bootstrap(latent, t, linear_motion_score, bo)});
    return out;
  }
  std::string names;
  for (const Motion& m : sys.motions) names += (names.empty() ? "" : "+") + m.name;
  // A full rotation enters the canonical correlation as (cos, sin) of its angle.
  Matrix t2(truth.rows, 0);
  std::vector<std::vector<double>> cols;
  for (size_t k = 0; k < sys.motions.size(); ++k) {
    std::vector<double> c = truth.column(k);
    if (is_circular(sys.motions[k])) {
      std::vector<double> cs(c.size()), sn(c.size());
      for (size_t i = 0; i < c.size(); ++i) { cs[i] = std::cos(c[i]); sn[i] = std::sin(c[i]); }
      cols.push_back(cs);
      cols.push_back(sn);
    } else {
      cols.push_back(c);
    }
  }
  Matrix tm(truth.rows, cols.size());
  for (size_t i = 0; i < truth.rows; ++i)
    for (size_t k = 0; k < cols.size(); ++k) tm(i, k) = cols[k][i];
  std::vector<Interval> cc = bootstrap(latent, tm, several_motions_score, bo);
  for (size_t k = 0; k < cc.size(); ++k) out.push_back({"canonical_correlation_" + std::to_string(k + 1), names, cc[k]});
  for (size_t k = 0; k < sys.motions.size(); ++k)
    if (sys.motions[k].kind == Motion::Kind::present)
      out.push_back({"composition", sys.motions[k].name,
                     bootstrap(latent, truth.column(k), [](const Matrix& l, const std::vector<double>& y) {
                       return composition_score(l, y);
                     }, bo)});
  return out;
}

TruthTable read_truth_table(const HeteroSystem& sys, const std::string& truth_csv) {
  std::ifstream f(truth_csv);
  if (!f) throw InputError(truth_csv, "", "cannot open the truth table");
  std::string line;
  std::getline(f, line);
  const size_t nm = sys.motions.size();
  std::vector<double> rows;  // kept particles x motions
  TruthTable t;
  for (size_t i = 0; std::getline(f, line); ++i) {
    std::stringstream ss(line);
    std::string cell;
    std::vector<double> r;
    while (std::getline(ss, cell, ',')) r.push_back(std::atof(cell.c_str()));
    // index, one column per motion, junk, ...
    if (r.size() < nm + 2) throw InputError(truth_csv, std::to_string(i + 2), "fewer columns than the system's motions");
    if (r[nm + 1] != 0) continue;
    t.kept.push_back(i);
    for (size_t k = 0; k < nm; ++k)
      rows.push_back(sys.motions[k].kind == Motion::Kind::rotate ? r[k + 1] * M_PI / 180 : r[k + 1]);
  }
  if (t.kept.empty()) throw InputError(truth_csv, "", "holds no particle that is not junk");
  t.truth = Matrix(t.kept.size(), nm, rows);
  return t;
}

std::vector<MetricFigure> score_latent_file(const HeteroSystem& sys, const std::string& latent_txt, int d,
                                            const std::string& truth_csv, const BootstrapOptions& bo) {
  const std::vector<float> z = read_latent_txt(latent_txt, d);
  const TruthTable t = read_truth_table(sys, truth_csv);
  const size_t n = z.size() / size_t(d);
  if (t.kept.back() >= n)
    throw InputError(latent_txt, "", "holds " + std::to_string(n) + " rows, fewer than the truth table " + truth_csv);
  Matrix latent(t.kept.size(), size_t(d));
  for (size_t i = 0; i < t.kept.size(); ++i)
    for (int k = 0; k < d; ++k) latent(i, size_t(k)) = z[t.kept[i] * size_t(d) + size_t(k)];
  return score_latent(sys, latent, t.truth, bo);
}

OracleResult oracle_reference(const HeteroSystem& sys, const TruthSimOptions& sim, const SimulatedTruth& set,
                              const std::vector<float>& images, const OracleOptions& opt) {
  const auto t0 = std::chrono::steady_clock::now();
  const int n = sim.box, w = n / 2 + 1;
  const size_t plane = size_t(n) * n, half = size_t(n) * w;
  CUGMM_REQUIRE(images.size() == plane * size_t(sim.count), "oracle_reference: images do not match the set");
  CUGMM_REQUIRE(opt.pose_samples >= 1 && opt.max_particles >= 2, "oracle_reference: needs pose samples and particles");
  SystemImager imager(sys, n, sim.pixel, sim.oversample);
  const SliceProjector& sp = imager.projector();
  const Bodies& bodies = imager.bodies();
  const Grid grid = make_grid(sys, opt.grid);

  OracleResult res;
  for (size_t i = 0; i < size_t(sim.count) && res.particles.size() < size_t(opt.max_particles); ++i)
    if (!set.junk[i]) res.particles.push_back(i);
  const size_t np = res.particles.size();
  CUGMM_REQUIRE(np >= 2, "oracle_reference: fewer than two particles that are not junk");

  // The noise's variance per Fourier coefficient: E|n^_k|^2 = N^2 sigma_w^2 f_k^2 (white: f = 1).
  double mean_f2 = 1;
  const std::vector<float> filter = noise_filter(n, sim.pixel, sim.noise_bfactor, mean_f2);
  double sigma = set.noise_sigma;
  if (!(sigma > 0)) {  // a noise-free set: any small noise makes the posterior the nearest grid state
    double v = 0;
    for (size_t p = 0; p < plane; ++p) v += double(images[plane * res.particles[0] + p]) * images[plane * res.particles[0] + p];
    sigma = 1e-3 * std::sqrt(v / plane) + 1e-30;
  }
  const double sigma_w2 = sigma * sigma / mean_f2;
  // Coefficients inside the projected disc, with their half-plane weights and 1 / variance.
  std::vector<size_t> coef;
  std::vector<double> inv_var;
  for (int row = 0; row < n; ++row)
    for (int kx = 0; kx < w; ++kx) {
      const int ky = row > n / 2 ? row - n : row;
      if (kx * kx + ky * ky > (n / 2) * (n / 2)) continue;
      const size_t k = size_t(row) * w + kx;
      const double wt = (kx == 0 || kx == n / 2) ? 1 : 2;
      coef.push_back(k);
      inv_var.push_back(wt / (double(plane) * sigma_w2 * double(filter[k]) * filter[k]));
    }
  std::vector<double> log_prior(grid.size, 0.0);
  for (size_t s = 0; s < grid.size; ++s) {
    const std::vector<int> idx = grid.index(s);
    for (size_t k = 0; k < sys.motions.size(); ++k)
      if (sys.motions[k].kind == Motion::Kind::present)
        log_prior[s] += std::log(idx[k] ? sys.motions[k].fraction : 1 - sys.motions[k].fraction);
  }

  Matrix ll_true(np, grid.size), ll_marg(np, grid.size);
  Progress progress("oracle reference", np);
#pragma omp parallel
  {
    std::vector<float> img(plane);
    std::vector<cfloat> data(half), factor(half);
    std::vector<cdouble> ones(half, cdouble(1, 0)), x(half);
    std::vector<double> ll(grid.size), per_sample;
    std::vector<std::vector<double>> samples(grid.size);
#pragma omp for schedule(dynamic, 1)
    for (size_t q = 0; q < np; ++q) {
      const size_t i = res.particles[q];
      const ParticleTruth t = draw_particle(sys, sim, i);
      std::copy(images.begin() + long(plane * i), images.begin() + long(plane * (i + 1)), img.begin());
      fft2_r2c(n, n, img.data(), data.data());
      std::mt19937_64 rng(opt.seed * 0x9E3779B97F4A7C15ull + i);
      const double sig_rot = deg2rad(sim.pose_error_deg) / std::sqrt(3.0), sig_shift = sim.shift_error_px * sim.pixel;
      std::normal_distribution<double> shift(0, sig_shift > 0 ? sig_shift : 1e-30);
      for (int mode = 0; mode < 2; ++mode) {
        const int ns = mode == 0 ? 1 : opt.pose_samples;
        for (auto& v : samples) v.clear();
        for (int m = 0; m < ns; ++m) {
          Mat3<double> view = t.view;
          double ox = t.origin_x, oy = t.origin_y;
          if (mode == 1) {
            double angle;
            view = mul(random_small_rotation(rng, sig_rot, angle), t.star_view);
            ox = t.star_origin_x + shift(rng);
            oy = t.star_origin_y + shift(rng);
          }
          // What multiplies the centred projection: scale, origin phase, CTF, pixel-0 sign.
          sp.finish(ones.data(), ox, oy, t.ctf, sim.ctf ? CtfMode::full : CtfMode::none, factor.data());
          // Each body's slice for each combination of its own motions' grid values, made once.
          std::vector<std::map<std::vector<int>, std::vector<cdouble>>> cache(bodies.atoms.size());
          for (size_t s = 0; s < grid.size; ++s) {
            const std::vector<int> idx = grid.index(s);
            std::vector<double> state(sys.motions.size());
            for (size_t k = 0; k < state.size(); ++k) state[k] = grid.values[k][size_t(idx[k])];
            std::fill(x.begin(), x.end(), cdouble(0));
            for (size_t b = 0; b < bodies.atoms.size(); ++b) {
              std::vector<int> key;
              for (int k : bodies.motions[b]) key.push_back(idx[size_t(k)]);
              auto it = cache[b].find(key);
              if (it == cache[b].end()) {
                std::vector<cdouble> slice(half, cdouble(0));
                sp.add_body(view, b, imager.body_motion(b, state), slice.data());
                it = cache[b].emplace(key, std::move(slice)).first;
              }
              for (size_t c = 0; c < coef.size(); ++c) x[coef[c]] += it->second[coef[c]];
            }
            // log L = Re sum w conj(D) M / v - 1/2 sum w |M|^2 / v (+ a constant), M = scale * factor * x.
            double a = 0, bsum = 0;
            for (size_t c = 0; c < coef.size(); ++c) {
              const size_t k = coef[c];
              const cdouble mk = t.scale * cdouble(factor[k]) * x[k];
              a += inv_var[c] * (std::conj(cdouble(data[k])) * mk).real();
              bsum += inv_var[c] * std::norm(mk);
            }
            samples[s].push_back(a - 0.5 * bsum);
          }
        }
        Matrix& out = mode == 0 ? ll_true : ll_marg;
        for (size_t s = 0; s < grid.size; ++s) out(q, s) = log_mean_exp(samples[s]) + log_prior[s];
      }
#pragma omp critical(oracle_progress)
      progress.add(1);
    }
  }
  progress.finish();

  // The oracle's latent: posterior means (and (cos, sin) of a full rotation's; presence probabilities).
  res.truth = Matrix(np, sys.motions.size());
  for (size_t q = 0; q < np; ++q)
    for (size_t k = 0; k < sys.motions.size(); ++k) {
      const double v = set.state[res.particles[q]][k];
      res.truth(q, k) = sys.motions[k].kind == Motion::Kind::rotate ? deg2rad(v) : v;
    }
  auto latent_of = [&](const Matrix& ll) {
    std::vector<std::vector<double>> cols;
    for (size_t k = 0; k < sys.motions.size(); ++k) {
      const Motion& m = sys.motions[k];
      std::vector<double> values(grid.size);
      std::vector<int> cls(grid.size);
      for (size_t s = 0; s < grid.size; ++s) {
        const double v = grid.values[k][size_t(grid.index(s)[k])];
        values[s] = m.kind == Motion::Kind::rotate ? deg2rad(v) : v;
        cls[s] = int(v);
      }
      if (m.kind == Motion::Kind::present) {
        cols.push_back(posterior_classes(ll, cls, 2).column(1));
      } else if (is_circular(m)) {
        std::vector<double> a = posterior_mean(ll, values, StateKind::circular), c(a.size()), s(a.size());
        for (size_t i = 0; i < a.size(); ++i) { c[i] = std::cos(a[i]); s[i] = std::sin(a[i]); }
        cols.push_back(c);
        cols.push_back(s);
      } else {
        cols.push_back(posterior_mean(ll, values, StateKind::linear));
      }
    }
    Matrix l(np, cols.size());
    for (size_t q = 0; q < np; ++q)
      for (size_t c = 0; c < cols.size(); ++c) l(q, c) = cols[c][q];
    return l;
  };
  res.latent_true = latent_of(ll_true);
  res.latent_marginal = latent_of(ll_marg);
  BootstrapOptions bo;
  bo.resamples = opt.bootstrap;
  bo.seed = opt.seed;
  std::vector<MetricFigure> ft = score_latent(sys, res.latent_true, res.truth, bo),
                            fm = score_latent(sys, res.latent_marginal, res.truth, bo);
  for (size_t f = 0; f < ft.size(); ++f) res.figures.push_back({ft[f].metric, ft[f].motion, ft[f].value, fm[f].value});
  res.grid_states = int(grid.size);
  res.pose_samples = opt.pose_samples;
  res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return res;
}

void write_oracle_json(const std::string& path, const OracleResult& r) {
  auto iv = [](const Interval& i) { return nlohmann::json{{"value", i.value}, {"lo95", i.lo}, {"hi95", i.hi}}; };
  nlohmann::json figs = nlohmann::json::array();
  for (const OracleFigure& f : r.figures)
    figs.push_back({{"metric", f.metric}, {"truth", f.motion}, {"true_pose", iv(f.true_pose)}, {"pose_marginalised", iv(f.marginal)}});
  nlohmann::json j = {{"figures", figs},
                      {"particles", r.particles.size()},
                      {"grid_states", r.grid_states},
                      {"pose_samples", r.pose_samples},
                      {"seconds", r.seconds},
                      {"note", "posterior-mean state per particle under the simulation's noise model; a reference, "
                               "not a proof of optimality"}};
  io::write_file_atomic(path, j.dump(2) + "\n");
}

}  // namespace cugmm
