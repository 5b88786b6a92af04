// The noise-whitened input transform (engine/noise_features.h fit_noise_whitened_pca; docs/accuracy.md round
// 7c): on rows of pure noise the whitened spectrum stays at the Marchenko-Pastur edge; a weak direction planted under strongly anisotropic noise is the first generalized
// component although plain PCA ranks it below the loud noise directions; a stronger direction that is a
// function of the view outranks it unless the view-dependent mean is counted as noise (view_neighbour_means,
// round 9); deterministic; bad k and widths refused.
#include <doctest/doctest.h>

#include <cmath>
#include <random>
#include <vector>

#include "core/error.h"
#include "engine/feature_transform.h"
#include "engine/noise_features.h"

using namespace cugmm;

namespace {

constexpr size_t D = 40;

// Noise with column SDs from 0.2 to 5 (log-spaced) plus one loud correlated direction (SD 4 along the sum
// of columns 20-29): as anisotropic as the gradient features' noise.
struct Noise {
  std::mt19937 g;
  std::normal_distribution<double> n01;
  explicit Noise(unsigned seed) : g(seed) {}
  void row(float* x) {
    const double loud = 4 * n01(g) / std::sqrt(10.0);
    for (size_t c = 0; c < D; ++c) {
      const double sd = 0.2 * std::pow(25.0, double(c) / double(D - 1));
      x[c] = float(sd * n01(g) + (c >= 20 && c < 30 ? loud : 0.0));
    }
  }
  std::vector<float> rows(size_t m) {
    std::vector<float> v(m * D);
    for (size_t i = 0; i < m; ++i) row(v.data() + i * D);
    return v;
  }
};

// The weak signal: unit direction over the five quietest columns (noise SD 0.2-0.3 there), amplitude SD 1.
std::vector<double> planted() {
  std::vector<double> w(D, 0.0);
  for (size_t c = 0; c < 5; ++c) w[c] = (c % 2 ? -1.0 : 1.0) / std::sqrt(5.0);
  return w;
}

RowSource source_of(const std::vector<float>& rows) {
  return [&rows](const size_t* index, int n, float* out) {
    for (int i = 0; i < n; ++i)
      for (size_t c = 0; c < D; ++c) out[size_t(i) * D + c] = rows[index[i] * D + c];
  };
}

std::vector<size_t> all_rows(size_t m) {
  std::vector<size_t> v(m);
  for (size_t i = 0; i < m; ++i) v[i] = i;
  return v;
}

// |correlation| over the rows between component j's scores and the values a.
double score_corr(const FeatureTransform& f, const std::vector<float>& rows, int j, const std::vector<double>& a) {
  const size_t m = a.size();
  double sx = 0, sy = 0, sxx = 0, syy = 0, sxy = 0;
  for (size_t i = 0; i < m; ++i) {
    double s = 0;
    for (size_t c = 0; c < D; ++c) s += double(rows[i * D + c]) * f.basis[c * size_t(f.k) + size_t(j)];
    sx += s, sy += a[i], sxx += s * s, syy += a[i] * a[i], sxy += s * a[i];
  }
  const double n = double(m), cov = sxy / n - sx / n * sy / n;
  return std::abs(cov) / std::sqrt((sxx / n - sx * sx / n / n) * (syy / n - sy * sy / n / n));
}

}  // namespace

TEST_CASE("pure noise: the whitened spectrum stays at the Marchenko-Pastur edge") {
  Noise gen(11);
  const std::vector<float> noise = gen.rows(4000), rows = gen.rows(2000);
  const FeatureTransform f = fit_noise_whitened_pca(source_of(rows), D, all_rows(2000), noise, 3, false);
  const double edge = std::pow(1 + std::sqrt(double(D) / 2000.0), 2);  // 1.30
  // Nothing far beyond the edge of pure noise (N's own sampling error widens it a little); a loud noise
  // direction that leaked through the whitening would stand near its raw variance (16), far above it.
  REQUIRE(f.k == 3);
  CHECK(f.variance[0] > 1.0);
  CHECK(f.variance[0] < edge * 1.1);
  CHECK(f.variance[2] > 1.0);
}

TEST_CASE("a weak direction under anisotropic noise: first by signal-to-noise, buried by variance") {
  Noise gen(12);
  const std::vector<float> noise = gen.rows(4000);
  const std::vector<double> w = planted();
  const size_t n = 2000;
  std::vector<float> rows = gen.rows(n);
  std::vector<double> a(n);
  std::mt19937 g(3);
  std::normal_distribution<double> n01;
  for (size_t i = 0; i < n; ++i) {
    a[i] = n01(g);
    for (size_t c = 0; c < D; ++c) rows[i * D + c] += float(a[i] * w[c]);
  }
  const FeatureTransform f = fit_noise_whitened_pca(source_of(rows), D, all_rows(n), noise, 2, false);
  REQUIRE(f.k == 2);
  CHECK(f.variance[0] > 10);         // 1 + its signal-to-noise (~ 1 / 0.25^2 over the quiet columns)
  CHECK(f.variance[1] < 1.5);        // the next: noise, at the edge (1.30)
  CHECK(score_corr(f, rows, 0, a) > 0.95);
  // Plain PCA: its top 3 components are the loud noise; none follows the planted direction.
  const FeatureTransform p = fit_feature_pca(source_of(rows), D, all_rows(n), 3, false, 1);
  for (int j = 0; j < 3; ++j) CHECK(score_corr(p, rows, j, a) < 0.3);
  // Whitened to unit-variance scores: the same direction, the basis divided by sqrt(lambda).
  const FeatureTransform fw = fit_noise_whitened_pca(source_of(rows), D, all_rows(n), noise, 2, true);
  REQUIRE(fw.k == 2);
  CHECK(score_corr(fw, rows, 0, a) > 0.95);
  for (size_t c = 0; c < D; ++c)
    CHECK(fw.basis[c * 2] == doctest::Approx(f.basis[c * size_t(f.k)] / std::sqrt(f.variance[0])).epsilon(1e-4));
  // Deterministic.
  CHECK(fit_noise_whitened_pca(source_of(rows), D, all_rows(n), noise, 2, true).basis == fw.basis);
}

TEST_CASE("a direction the view predicts ranks as noise with the view-dependent mean counted as noise") {
  Noise gen(14);
  const std::vector<float> noise = gen.rows(4000);
  const std::vector<double> w = planted();
  std::vector<double> u(D, 0.0);  // the view artefact: a direction over quiet columns 5-9, orthogonal to w
  for (size_t c = 5; c < 10; ++c) u[c] = 1 / std::sqrt(5.0);
  const size_t n = 3000;
  std::vector<float> rows = gen.rows(n);
  std::vector<double> a(n), f(n), views(3 * n);
  std::mt19937 g(5);
  std::normal_distribution<double> n01;
  for (size_t i = 0; i < n; ++i) {
    double v[3] = {n01(g), n01(g), n01(g)};  // a uniform beam direction
    const double len = std::sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
    for (int q = 0; q < 3; ++q) views[3 * i + size_t(q)] = v[q] / len;
    // Smooth in the view but not quadratic (as the neutral model's mismatch seen from each view), SD ~3:
    // louder than the planted state (SD 1), which does not depend on the view.
    f[i] = 4 * std::sin(3 * views[3 * i]) * views[3 * i + 2];
    a[i] = n01(g);
    for (size_t c = 0; c < D; ++c) rows[i * D + c] += float(a[i] * w[c] + f[i] * u[c]);
  }
  const FeatureTransform plain = fit_noise_whitened_pca(source_of(rows), D, all_rows(n), noise, 2, false);
  CHECK(score_corr(plain, rows, 0, f) > 0.9);  // the view artefact first
  CHECK(score_corr(plain, rows, 0, a) < 0.2);
  const std::vector<float> means = view_neighbour_means(source_of(rows), D, all_rows(n), views);
  CHECK(means.size() == n * D);
  const FeatureTransform nv = fit_noise_whitened_pca(source_of(rows), D, all_rows(n), noise, 2, false, -1, 8000, means);
  CHECK(score_corr(nv, rows, 0, a) > 0.9);  // the state first
  CHECK(score_corr(nv, rows, 0, f) < 0.3);
  CHECK(nv.variance[0] > 5);                // still far above the noise (the state itself is not counted)
  // Fewer rows than neighbours: refused.
  CHECK_THROWS_WITH_AS(view_neighbour_means(source_of(rows), D, all_rows(10),
                                            std::vector<double>(views.begin(), views.begin() + 30)),
                       doctest::Contains("more than 20 particles"), Error);
}

TEST_CASE("bad k and widths are refused") {
  Noise gen(13);
  const std::vector<float> noise = gen.rows(100), rows = gen.rows(100);
  for (int k : {0, -1, 40})
    CHECK_THROWS_WITH_AS(fit_noise_whitened_pca(source_of(rows), D, all_rows(100), noise, k, false),
                         doctest::Contains("must be at least 1 and below"), Error);
  CHECK_THROWS_WITH_AS(fit_noise_whitened_pca(source_of(rows), D, all_rows(100), noise, 2, false, 0.5, 30),
                       doctest::Contains("feature width 40"), Error);
}
