#include "engine/latent_analysis.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.h"

namespace cugmm {

namespace {
double dist2(const Matrix& z, size_t i, const std::vector<double>& p) {
  double s = 0;
  for (size_t c = 0; c < z.cols; ++c) s += (z(i, c) - p[c]) * (z(i, c) - p[c]);
  return s;
}
void check_point(const Matrix& z, const std::vector<double>& p, const char* what) {
  CUGMM_REQUIRE(p.size() == z.cols, std::string(what) + ": the point has " + std::to_string(p.size()) +
                                        " coordinates, the latent " + std::to_string(z.cols));
  for (double v : p) CUGMM_REQUIRE(std::isfinite(v), std::string(what) + ": non-finite coordinate");
}
double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  const double at = p / 100 * double(v.size() - 1);
  const size_t i = size_t(at);
  return i + 1 < v.size() ? v[i] + (at - double(i)) * (v[i + 1] - v[i]) : v.back();
}
}  // namespace

std::vector<double> latent_mean(const Matrix& latent) {
  CUGMM_REQUIRE(latent.rows > 0, "latent_mean: no points");
  std::vector<double> m(latent.cols, 0.0);
  for (size_t i = 0; i < latent.rows; ++i)
    for (size_t c = 0; c < latent.cols; ++c) m[c] += latent(i, c);
  for (double& v : m) v /= double(latent.rows);
  return m;
}

LatentClusters cluster_latent(const Matrix& latent, int k, uint64_t seed) {
  GmmOptions opt;
  opt.seed = seed;
  GmmFit fit = fit_gmm(latent, k, opt);
  const size_t d = latent.cols;
  std::vector<size_t> count(size_t(k), 0);
  for (int l : fit.labels) ++count[size_t(l)];
  // Numbered by decreasing size (ties by the mixture's order), so cluster 1 is the largest in every run.
  std::vector<int> order(static_cast<size_t>(k));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return count[size_t(a)] > count[size_t(b)]; });
  std::vector<int> rank(static_cast<size_t>(k));
  for (int r = 0; r < k; ++r) rank[size_t(order[size_t(r)])] = r;
  LatentClusters c;
  c.labels.resize(latent.rows);
  for (size_t i = 0; i < latent.rows; ++i) c.labels[i] = rank[size_t(fit.labels[i])];
  c.means = Matrix(size_t(k), d);
  c.size.assign(size_t(k), 0);
  c.centre.assign(size_t(k), SIZE_MAX);
  std::vector<double> best(size_t(k), INFINITY);
  for (int r = 0; r < k; ++r)
    for (size_t j = 0; j < d; ++j) c.means(size_t(r), j) = fit.means(size_t(order[size_t(r)]), j);
  for (size_t i = 0; i < latent.rows; ++i) {
    const size_t l = size_t(c.labels[i]);
    ++c.size[l];
    const std::vector<double> mu(c.means.values.begin() + long(l * d), c.means.values.begin() + long((l + 1) * d));
    const double e = dist2(latent, i, mu);
    if (e < best[l]) { best[l] = e; c.centre[l] = i; }
  }
  for (int r = 0; r < k; ++r)
    CUGMM_REQUIRE(c.size[size_t(r)] > 0, "cluster_latent: cluster " + std::to_string(r + 1) +
                                             " has no particle (fewer distinct groups than --k?)");
  return c;
}

LatentPath latent_path(const std::string& name, const Matrix& latent, const std::vector<double>& origin,
                       const std::vector<double>& direction, int frames, double lo, double hi) {
  check_point(latent, origin, "latent_path");
  check_point(latent, direction, "latent_path");
  CUGMM_REQUIRE(frames >= 2, "latent_path: at least 2 frames");
  CUGMM_REQUIRE(latent.rows >= 2, "latent_path: at least 2 particles");
  double norm = 0;
  for (double v : direction) norm += v * v;
  norm = std::sqrt(norm);
  CUGMM_REQUIRE(norm > 0, "latent_path: zero direction");
  LatentPath p;
  p.name = name;
  p.origin = origin;
  for (double v : direction) p.direction.push_back(v / norm);
  p.coordinate.resize(latent.rows);
  for (size_t i = 0; i < latent.rows; ++i) {
    double t = 0;
    for (size_t c = 0; c < latent.cols; ++c) t += (latent(i, c) - origin[c]) * p.direction[c];
    p.coordinate[i] = t;
  }
  const double a = percentile(p.coordinate, lo), b = percentile(p.coordinate, hi);
  p.points = Matrix(size_t(frames), latent.cols);
  for (int f = 0; f < frames; ++f) {
    const double t = a + (b - a) * f / (frames - 1);
    p.t.push_back(t);
    for (size_t c = 0; c < latent.cols; ++c) p.points(size_t(f), c) = origin[c] + t * p.direction[c];
  }
  return p;
}

std::vector<size_t> rows_within(const Matrix& latent, const std::vector<double>& point, double radius) {
  check_point(latent, point, "rows_within");
  std::vector<size_t> rows;
  for (size_t i = 0; i < latent.rows; ++i)
    if (dist2(latent, i, point) <= radius * radius) rows.push_back(i);
  return rows;
}

std::vector<size_t> rows_nearest(const Matrix& latent, const std::vector<double>& point, size_t k) {
  check_point(latent, point, "rows_nearest");
  std::vector<double> e(latent.rows);
  for (size_t i = 0; i < latent.rows; ++i) e[i] = dist2(latent, i, point);
  std::vector<size_t> rows(latent.rows);
  std::iota(rows.begin(), rows.end(), size_t(0));
  k = std::min(k, rows.size());
  std::partial_sort(rows.begin(), rows.begin() + long(k), rows.end(),
                    [&](size_t a, size_t b) { return e[a] < e[b] || (e[a] == e[b] && a < b); });
  rows.resize(k);
  return rows;
}

std::vector<size_t> rows_in_range(const std::vector<double>& coordinate, double lo, double hi) {
  std::vector<size_t> rows;
  for (size_t i = 0; i < coordinate.size(); ++i)
    if (coordinate[i] >= lo && coordinate[i] <= hi) rows.push_back(i);
  return rows;
}

FoldRule parse_fold_rule(const std::string& s) {
  if (s == "copy-with-largest-motion") return FoldRule::largest_motion;
  if (s == "mean") return FoldRule::mean;
  throw Error("--fold must be copy-with-largest-motion or mean, not '" + quote_value(s) + "'");
}

const char* fold_rule_name(FoldRule r) { return r == FoldRule::mean ? "mean" : "copy-with-largest-motion"; }

FoldedCopies fold_copies(const Matrix& latent, size_t copies, const std::vector<double>& motion, FoldRule rule) {
  CUGMM_REQUIRE(copies > 0 && latent.rows % copies == 0 && motion.size() == latent.rows,
                "fold: the latent rows are not whole sets of copies");
  const size_t n = latent.rows / copies, d = latent.cols;
  FoldedCopies f;
  f.chosen.resize(n);
  f.latent = Matrix(n, d);
  for (size_t r = 0; r < n; ++r) {
    size_t best = 0;
    for (size_t k = 1; k < copies; ++k)
      if (motion[r * copies + k] > motion[r * copies + best]) best = k;
    f.chosen[r] = int(best);
    for (size_t j = 0; j < d; ++j) {
      double v = 0;
      if (rule == FoldRule::mean) {
        for (size_t k = 0; k < copies; ++k) v += latent(r * copies + k, j);
        v /= double(copies);
      } else {
        v = latent(r * copies + best, j);
      }
      f.latent(r, j) = v;
    }
  }
  return f;
}

std::vector<double> rms_displacement(const std::vector<float>& params, const std::vector<float>& neutral, size_t n) {
  const size_t W = neutral.size(), G = W / 5;
  CUGMM_REQUIRE(W % 5 == 0 && params.size() == n * W, "rms_displacement: n rows of 5G parameters");
  std::vector<double> out(n);
  for (size_t i = 0; i < n; ++i) {
    double s = 0;
    for (size_t c = 0; c < 3; ++c)
      for (size_t j = 0; j < G; ++j) s += std::pow(double(params[i * W + c * G + j]) - neutral[c * G + j], 2);
    out[i] = std::sqrt(s / double(std::max<size_t>(G, 1)));
  }
  return out;
}

LatentSummary summarise_latent(const Matrix& latent, int k, int pcs, int frames, uint64_t seed) {
  LatentSummary s;
  const size_t d = latent.cols;
  s.pca = pca(latent);
  s.mean = latent_mean(latent);
  if (k > 0) s.clusters = cluster_latent(latent, k, seed);
  const std::vector<double>& comp = s.pca.components.values;
  for (size_t j = 0; j < std::min(size_t(std::max(pcs, 0)), d); ++j)
    s.paths.push_back(latent_path("pc" + std::to_string(j + 1), latent, s.mean,
                                  comp.empty() ? std::vector<double>{}
                                               : std::vector<double>(comp.begin() + long(j * d), comp.begin() + long((j + 1) * d)),
                                  frames));
  return s;
}

}  // namespace cugmm
