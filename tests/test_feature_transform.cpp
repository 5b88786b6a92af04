// The encoder's input transform (engine/feature_transform.h): the streamed randomized PCA finds a known
// low-rank structure under noise, its basis is orthonormal, ordered and reproducible, bad k is refused,
// and the row scaling gives unit-RMS rows.
#include <doctest/doctest.h>

#include <cmath>
#include <random>
#include <vector>

#include "core/error.h"
#include "engine/feature_transform.h"

using namespace cugmm;

namespace {

// m rows of width D: three orthonormal directions with standard deviations 5, 3, 2, plus white noise of SD
// 0.3 in every column. The true components and their variances are returned.
struct LowRank {
  size_t D = 60, m = 600;
  std::vector<float> rows;
  std::vector<std::vector<double>> u;  // 3 unit vectors
  std::vector<double> sd = {5, 3, 2};
};

LowRank make_rows() {
  LowRank r;
  std::mt19937 g(5);
  std::normal_distribution<double> n01;
  for (int j = 0; j < 3; ++j) {  // Gram-Schmidt on random vectors
    std::vector<double> v(r.D);
    for (double& x : v) x = n01(g);
    for (const auto& w : r.u) {
      double d = 0;
      for (size_t i = 0; i < r.D; ++i) d += v[i] * w[i];
      for (size_t i = 0; i < r.D; ++i) v[i] -= d * w[i];
    }
    double nn = 0;
    for (double x : v) nn += x * x;
    for (double& x : v) x /= std::sqrt(nn);
    r.u.push_back(v);
  }
  r.rows.assign(r.m * r.D, 0.f);
  for (size_t p = 0; p < r.m; ++p) {
    std::vector<double> x(r.D);
    for (double& v : x) v = 0.3 * n01(g);
    for (int j = 0; j < 3; ++j) {
      const double a = r.sd[size_t(j)] * n01(g);
      for (size_t i = 0; i < r.D; ++i) x[i] += a * r.u[size_t(j)][i];
    }
    for (size_t i = 0; i < r.D; ++i) r.rows[p * r.D + i] = float(x[i]);
  }
  return r;
}

RowSource source_of(const LowRank& r) {
  return [&r](const size_t* index, int n, float* out) {
    for (int i = 0; i < n; ++i)
      for (size_t c = 0; c < r.D; ++c) out[size_t(i) * r.D + c] = r.rows[index[i] * r.D + c];
  };
}

std::vector<size_t> all_rows(size_t m) {
  std::vector<size_t> v(m);
  for (size_t i = 0; i < m; ++i) v[i] = i;
  return v;
}

double column_dot(const FeatureTransform& f, size_t D, int a, const std::vector<double>& w) {
  double d = 0;
  for (size_t i = 0; i < D; ++i) d += double(f.basis[i * size_t(f.k) + size_t(a)]) * w[i];
  return d;
}

}  // namespace

TEST_CASE("feature PCA recovers a known three-component structure under noise") {
  const LowRank r = make_rows();
  const FeatureTransform f = fit_feature_pca(source_of(r), r.D, all_rows(r.m), 3, false, 1);
  REQUIRE(f.k == 3);
  REQUIRE(f.basis.size() == r.D * 3);
  // Each fitted component is the true one (up to sign): |cos| near 1. A wrong order or a missed direction
  // gives |cos| near 0.
  for (int j = 0; j < 3; ++j) CHECK(std::abs(column_dot(f, r.D, j, r.u[size_t(j)])) > 0.99);
  // Variances: SD^2 plus the noise's 0.09, within the sampling error of 600 rows (~6% for the variance).
  for (int j = 0; j < 3; ++j) CHECK(f.variance[size_t(j)] == doctest::Approx(r.sd[size_t(j)] * r.sd[size_t(j)] + 0.09).epsilon(0.15));
  CHECK(f.variance[0] > f.variance[1]);
  CHECK(f.variance[1] > f.variance[2]);
  // Total: 25 + 9 + 4 + 60 x 0.09.
  CHECK(f.total_variance == doctest::Approx(43.4).epsilon(0.1));
  // Orthonormal columns.
  for (int a = 0; a < 3; ++a)
    for (int b = 0; b < 3; ++b) {
      double d = 0;
      for (size_t i = 0; i < r.D; ++i) d += double(f.basis[i * 3 + size_t(a)]) * f.basis[i * 3 + size_t(b)];
      CHECK(d == doctest::Approx(a == b ? 1.0 : 0.0).epsilon(1e-5));
    }
  // Reproducible: the same seed gives the same basis, bit for bit.
  CHECK(fit_feature_pca(source_of(r), r.D, all_rows(r.m), 3, false, 1).basis == f.basis);
  // Whitened: the same directions, each column of length 1 / sqrt(variance), so the scores have unit variance.
  const FeatureTransform w = fit_feature_pca(source_of(r), r.D, all_rows(r.m), 3, false, 1, true);
  for (int j = 0; j < 3; ++j) {
    double nn = 0;
    for (size_t i = 0; i < r.D; ++i) nn += double(w.basis[i * 3 + size_t(j)]) * w.basis[i * 3 + size_t(j)];
    CHECK(nn * w.variance[size_t(j)] == doctest::Approx(1.0).epsilon(1e-4));
    CHECK(std::abs(column_dot(w, r.D, j, r.u[size_t(j)])) * std::sqrt(w.variance[size_t(j)]) > 0.99);
  }
  // A subsample (every 4th row) still finds the leading component.
  const FeatureTransform s = fit_feature_pca(source_of(r), r.D, all_rows(r.m), 3, false, 1, false, 150);
  CHECK(std::abs(column_dot(s, r.D, 0, r.u[0])) > 0.98);
}

TEST_CASE("feature PCA refuses a number of components the rows cannot give") {
  const LowRank r = make_rows();
  for (int k : {0, -1, 60, 61}) CHECK_THROWS_AS(fit_feature_pca(source_of(r), r.D, all_rows(r.m), k, false, 1), Error);
  CHECK_THROWS_WITH_AS(fit_feature_pca(source_of(r), r.D, all_rows(40), 40, false, 1),
                       doctest::Contains("particles it is fitted on (40)"), Error);
}

TEST_CASE("row scaling: every row at unit RMS, a zero row stays zero") {
  std::vector<float> rows = {3, 4, 0, 0, 0, 0, 0, 0, 1, -1, 2, 2};  // 3 rows of 4, the second zero
  scale_rows_to_unit_rms(rows.data(), 3, 4);
  for (int r : {0, 2}) {
    double ss = 0;
    for (int c = 0; c < 4; ++c) ss += double(rows[size_t(4 * r + c)]) * rows[size_t(4 * r + c)];
    CHECK(ss / 4 == doctest::Approx(1.0));
  }
  CHECK(rows[0] / rows[1] == doctest::Approx(0.75));  // directions kept
  for (int c = 4; c < 8; ++c) CHECK(rows[size_t(c)] == 0.f);
  // With row_rms the PCA sees the scaled rows: rows of one direction at very different scales give one
  // component holding all of the variance, at unit RMS per row (variance = width).
  const size_t D = 8;
  std::vector<float> line(20 * D);
  for (size_t p = 0; p < 20; ++p)
    for (size_t c = 0; c < D; ++c) line[p * D + c] = float((p + 1) * (c % 2 ? 1.0 : -1.0));
  auto src = [&](const size_t* index, int n, float* out) {
    for (int i = 0; i < n; ++i)
      for (size_t c = 0; c < D; ++c) out[size_t(i) * D + c] = line[index[i] * D + c];
  };
  std::vector<size_t> idx(20);
  for (size_t i = 0; i < 20; ++i) idx[i] = i;
  const FeatureTransform f = fit_feature_pca(src, D, idx, 2, true, 3);
  CHECK(f.variance[0] == doctest::Approx(double(D)).epsilon(1e-4));
  CHECK(f.variance[1] == doctest::Approx(0.0).epsilon(1e-4));
  CHECK(f.total_variance == doctest::Approx(double(D)).epsilon(1e-5));
}
