// engine/latent_denoise and fit_gmm's extreme deconvolution (GmmOptions::noise): on points z + n with z from a
// known mixture and n of known covariance, the fit recovers z's covariances (where plain EM gets z's plus the
// noise), BIC finds the number of components, the posterior mean is Bayes' formula and tightens a discrete
// state while keeping a wide continuous motion's order; bad noise matrices are refused.
#include <doctest/doctest.h>

#include <Eigen/Dense>
#include <cmath>
#include <random>

#include "core/error.h"
#include "engine/latent_denoise.h"

using namespace cugmm;

namespace {

// n points in 3-D: z from component c = i % 2 of {means, covariances} (a Cholesky factor each), plus noise of
// Cholesky factor ln.
Matrix sample(size_t n, const std::vector<Eigen::Vector3d>& means, const std::vector<Eigen::Matrix3d>& chol,
              const Eigen::Matrix3d& ln, uint64_t seed, std::vector<double>* cls = nullptr) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> g;
  Matrix y(n, 3);
  for (size_t i = 0; i < n; ++i) {
    const size_t c = i % means.size();
    if (cls) cls->push_back(double(c));
    const Eigen::Vector3d u(g(rng), g(rng), g(rng)), v(g(rng), g(rng), g(rng));
    const Eigen::Vector3d x = means[c] + chol[c] * u + ln * v;
    for (int j = 0; j < 3; ++j) y(i, size_t(j)) = x(j);
  }
  return y;
}

Matrix to_matrix(const Eigen::Matrix3d& m) {
  Matrix out(3, 3);
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 3; ++c) out(size_t(r), size_t(c)) = m(r, c);
  return out;
}

double max_abs_diff(const Matrix& a, const Eigen::Matrix3d& b) {
  double worst = 0;
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 3; ++c) worst = std::max(worst, std::fabs(a(size_t(r), size_t(c)) - b(r, c)));
  return worst;
}

const Eigen::Matrix3d kNoiseChol = (Eigen::Matrix3d() << 1.0, 0, 0, 0.4, 0.9, 0, -0.3, 0.2, 0.7).finished();

}  // namespace

TEST_CASE("extreme deconvolution recovers z's covariance; plain EM gets z's plus the noise") {
  const Eigen::Matrix3d ls = (Eigen::Matrix3d() << 2.0, 0, 0, 0.5, 1.0, 0, 0.0, 0.3, 0.4).finished();
  const Eigen::Matrix3d s = ls * ls.transpose(), noise = kNoiseChol * kNoiseChol.transpose();
  const Matrix y = sample(20000, {Eigen::Vector3d(1, -2, 3)}, {ls}, kNoiseChol, 11);
  GmmOptions o;
  const GmmFit plain = fit_gmm(y, 1, o);
  CHECK(plain.deconvolved.empty());
  CHECK(max_abs_diff(plain.covariances[0], s + noise) < 0.15);
  o.noise = to_matrix(noise);
  const GmmFit xd = fit_gmm(y, 1, o);
  REQUIRE(xd.deconvolved.size() == 1);
  CHECK(max_abs_diff(xd.deconvolved[0], s) < 0.15);
  CHECK(max_abs_diff(xd.covariances[0], s + noise) < 0.15);  // what the points show
  CHECK(max_abs_diff(plain.covariances[0], s) > 0.5);         // not what plain EM reports
  CHECK(xd.means(0, 0) == doctest::Approx(1).epsilon(0.05));
  CHECK(xd.means(0, 2) == doctest::Approx(3).epsilon(0.05));
}

TEST_CASE("BIC finds two components, and the posterior mean tightens a discrete state but keeps a motion's order") {
  // Two states 6 noise SDs apart along y, each a line along x (a wide continuous motion): S = diag(9, 0, 0).
  const Eigen::Matrix3d line = Eigen::Vector3d(3, 1e-3, 1e-3).asDiagonal();
  const Eigen::Matrix3d ln = Eigen::Matrix3d::Identity();
  std::vector<double> cls;
  const Matrix y = sample(4000, {Eigen::Vector3d(0, -3, 0), Eigen::Vector3d(0, 3, 0)}, {line, line}, ln, 12, &cls);
  const Matrix noise = to_matrix(Eigen::Matrix3d::Identity());
  const DenoisedLatent r = denoise_latent(y, noise);
  CHECK(r.components == 2);
  REQUIRE(r.bic.size() == 6);
  CHECK(r.bic[1] < r.bic[0]);
  // Within a state the spread along y falls from the noise's 1 to near 0; along x it stays (9 + 1 -> ~9).
  double raw_y = 0, den_y = 0, raw_x = 0, den_x = 0;
  for (size_t i = 0; i < y.rows; ++i) {
    const double centre = cls[i] > 0.5 ? 3 : -3;
    raw_y += (y(i, 1) - centre) * (y(i, 1) - centre);
    den_y += (r.mean(i, 1) - centre) * (r.mean(i, 1) - centre);
    raw_x += y(i, 0) * y(i, 0);
    den_x += r.mean(i, 0) * r.mean(i, 0);
  }
  CHECK(den_y < 0.05 * raw_y);
  CHECK(den_x > 0.8 * raw_x);
  std::vector<double> yx = y.column(0), zx = r.mean.column(0);
  CHECK(spearman(yx, zx) > 0.99);
  CHECK(composition_score(r.mean, cls) > 0.99);
}

TEST_CASE("one component: the posterior mean is m + S (S + N)^-1 (y - m), and BIC keeps one") {
  const Eigen::Matrix3d ls = Eigen::Vector3d(1.5, 0.8, 0.3).asDiagonal();
  const Matrix y = sample(3000, {Eigen::Vector3d(0.5, 0, -1)}, {ls}, kNoiseChol, 13);
  const Eigen::Matrix3d noise = kNoiseChol * kNoiseChol.transpose();
  const DenoisedLatent r = denoise_latent(y, to_matrix(noise));
  REQUIRE(r.components == 1);
  Eigen::Matrix3d s;
  for (int a = 0; a < 3; ++a)
    for (int b = 0; b < 3; ++b) s(a, b) = r.prior.deconvolved[0](size_t(a), size_t(b));
  const Eigen::Vector3d m(r.prior.means(0, 0), r.prior.means(0, 1), r.prior.means(0, 2));
  const Eigen::Matrix3d gain = s * (s + noise).inverse();
  double worst = 0;
  for (size_t i = 0; i < y.rows; ++i) {
    const Eigen::Vector3d yi(y(i, 0), y(i, 1), y(i, 2)), zi = m + gain * (yi - m);
    for (int j = 0; j < 3; ++j) worst = std::max(worst, std::fabs(r.mean(i, size_t(j)) - zi(j)));
  }
  CHECK(worst < 1e-9);
}

TEST_CASE("bad noise covariances are refused") {
  const Matrix y = sample(200, {Eigen::Vector3d(0, 0, 0)}, {Eigen::Matrix3d::Identity()}, kNoiseChol, 14);
  CHECK_THROWS_WITH_AS(denoise_latent(y, Matrix(2, 2)), doctest::Contains("not d x d"), Error);
  GmmOptions o;
  o.noise = to_matrix(-Eigen::Matrix3d::Identity());
  CHECK_THROWS_WITH_AS(fit_gmm(y, 1, o), doctest::Contains("not positive semi-definite"), Error);
  Matrix nan = to_matrix(Eigen::Matrix3d::Identity());
  nan(1, 1) = NAN;
  o.noise = nan;
  CHECK_THROWS_WITH_AS(fit_gmm(y, 1, o), doctest::Contains("non-finite"), Error);
}
