// engine/latent_metrics: each accuracy metric on synthetic latents whose answer is known (perfect,
// monotone, rotated, reflected, independent), Fisher-Lee against its O(N^2) definition, the mixture on
// separated and overlapping clusters, CCA of a rotated truth, bootstrap intervals, the oracle helpers on a
// hand-computed case, and the errors on bad input.
#include <doctest/doctest.h>

#include <cmath>
#include <random>

#include "core/error.h"
#include "engine/latent_metrics.h"

using namespace cugmm;

namespace {

constexpr double kPi = 3.14159265358979323846;

struct Gen {
  std::mt19937_64 rng;
  explicit Gen(uint64_t seed) : rng(seed) {}
  double normal() { return std::normal_distribution<double>(0, 1)(rng); }
  double uniform(double a, double b) { return std::uniform_real_distribution<double>(a, b)(rng); }
};

// A d-dimensional latent whose first direction (a fixed oblique one) carries `signal`, plus small
// isotropic noise: PC1 is that direction.
Matrix embed(const std::vector<double>& signal, size_t d, double noise, Gen& g) {
  Matrix m(signal.size(), d);
  for (size_t i = 0; i < signal.size(); ++i)
    for (size_t j = 0; j < d; ++j) m(i, j) = signal[i] * (j + 1.0) / double(d) + noise * g.normal();
  return m;
}

// The pairwise definition Fisher & Lee wrote down.
double fisher_lee_pairwise(const std::vector<double>& a, const std::vector<double>& b) {
  double num = 0, da = 0, db = 0;
  for (size_t i = 0; i < a.size(); ++i)
    for (size_t j = i + 1; j < a.size(); ++j) {
      double x = std::sin(a[i] - a[j]), y = std::sin(b[i] - b[j]);
      num += x * y; da += x * x; db += y * y;
    }
  return num / std::sqrt(da * db);
}

// A 2-D latent tracing a circle at the true angle, with noise of standard deviation `noise`.
Matrix circle(const std::vector<double>& angle, double noise, Gen& g) {
  Matrix m(angle.size(), 2);
  for (size_t i = 0; i < angle.size(); ++i) {
    m(i, 0) = 3 * std::cos(angle[i]) + noise * g.normal();
    m(i, 1) = 3 * std::sin(angle[i]) + noise * g.normal();
  }
  return m;
}

// Two Gaussian clusters in 3-D with unit covariance, centres +-separation/2 along a diagonal; truth 0/1.
void clusters(size_t n, double separation, Gen& g, Matrix& latent, std::vector<double>& truth) {
  latent = Matrix(n, 3);
  truth.resize(n);
  for (size_t i = 0; i < n; ++i) {
    truth[i] = double(i % 2);
    double c = (truth[i] - 0.5) * separation / std::sqrt(3.0);
    for (size_t j = 0; j < 3; ++j) latent(i, j) = c + g.normal();
  }
}

}  // namespace

TEST_CASE("PCA: components by decreasing variance, scores centred, variance explained sums to 1") {
  Gen g(1);
  Matrix x(500, 3);
  for (size_t i = 0; i < x.rows; ++i) {
    double a = 3 * g.normal(), b = 1 * g.normal(), c = 0.1 * g.normal();
    x(i, 0) = a + 10; x(i, 1) = b - 5; x(i, 2) = c;  // axis-aligned, offset mean
  }
  Pca p = pca(x);
  CHECK(p.variance[0] > p.variance[1]);
  CHECK(p.variance[1] > p.variance[2]);
  CHECK(std::fabs(p.components(0, 0)) == doctest::Approx(1).epsilon(1e-3));
  CHECK(p.components(0, 0) > 0);  // the sign convention
  CHECK(p.explained[0] + p.explained[1] + p.explained[2] == doctest::Approx(1));
  CHECK(p.explained[0] == doctest::Approx(9 / 10.01).epsilon(0.1));
  double mean = 0;
  for (size_t i = 0; i < x.rows; ++i) mean += p.scores(i, 0);
  CHECK(std::fabs(mean / x.rows) < 1e-10);
}

TEST_CASE("Spearman: average ranks for ties; 1 for any monotone relation; near 0 for independent noise") {
  CHECK(average_ranks({10, 20, 20, 5}) == std::vector<double>{2, 3.5, 3.5, 1});
  Gen g(2);
  const size_t n = 2000;
  std::vector<double> t(n), noise(n);
  for (size_t i = 0; i < n; ++i) { t[i] = g.uniform(-1, 1); noise[i] = g.normal(); }
  std::vector<double> cubic(n);
  for (size_t i = 0; i < n; ++i) cubic[i] = std::exp(3 * t[i]) + t[i] * t[i] * t[i];  // monotone, not linear
  CHECK(spearman(t, t) == doctest::Approx(1).epsilon(1e-14));
  CHECK(spearman(t, cubic) == 1.0);  // ranks identical: exactly 1
  // Under independence Spearman has standard deviation 1 / sqrt(n - 1): 4 of them is a 1-in-15000 miss.
  CHECK(std::fabs(spearman(t, noise)) < 4 / std::sqrt(double(n - 1)));

  // Through the latent: PC1 of a 4-D embedding of a monotone function of the truth.
  Matrix latent = embed(cubic, 4, 0.0, g);
  CHECK(linear_motion_score(latent, t) == doctest::Approx(1).epsilon(1e-12));
  std::vector<double> flipped(n);
  for (size_t i = 0; i < n; ++i) flipped[i] = -t[i];
  CHECK(linear_motion_score(latent, flipped) == doctest::Approx(1).epsilon(1e-12));  // signless
}

TEST_CASE("Fisher-Lee: the O(N) closed form equals the pairwise definition") {
  Gen g(3);
  std::vector<double> a(40), b(40);
  for (size_t i = 0; i < a.size(); ++i) { a[i] = g.uniform(-kPi, kPi); b[i] = a[i] + 0.8 * g.normal(); }
  CHECK(fisher_lee(a, b) == doctest::Approx(fisher_lee_pairwise(a, b)).epsilon(1e-10));
  for (size_t i = 0; i < a.size(); ++i) b[i] = g.uniform(-kPi, kPi);
  CHECK(fisher_lee(a, b) == doctest::Approx(fisher_lee_pairwise(a, b)).epsilon(1e-10));
}

TEST_CASE("Fisher-Lee: 1 when rotated by a constant, -1 when reflected, falling with noise") {
  Gen g(4);
  const size_t n = 1000;
  std::vector<double> a(n), rotated(n), reflected(n);
  for (size_t i = 0; i < n; ++i) {
    a[i] = g.uniform(-kPi, kPi);
    rotated[i] = std::remainder(a[i] + 2.1, 2 * kPi);
    reflected[i] = 0.7 - a[i];
  }
  CHECK(fisher_lee(a, rotated) == doctest::Approx(1).epsilon(1e-12));
  CHECK(fisher_lee(a, reflected) == doctest::Approx(-1).epsilon(1e-12));

  // Through the latent: atan2(PC2, PC1) of a circle. Exactly 1 only where the points' mean is the circle's
  // centre (evenly spaced angles); random angles shift the centring a little.
  std::vector<double> even(360);
  for (size_t i = 0; i < even.size(); ++i) even[i] = 2 * kPi * i / even.size() - kPi;
  CHECK(rotation_score(circle(even, 0.0, g), even) == doctest::Approx(1).epsilon(1e-12));
  CHECK(rotation_score(circle(a, 0.0, g), a) > 0.99);
  double last = 1;
  for (double noise : {0.3, 1.0, 3.0}) {
    double r = rotation_score(circle(a, noise, g), a);
    CHECK(r > 0);
    CHECK(r < last);
    last = r;
  }
  CHECK(rotation_score(circle(a, 1.0, g), reflected) == doctest::Approx(rotation_score(circle(a, 1.0, g), a)).epsilon(0.1));
}

TEST_CASE("Composition: accuracy ~1 for separated clusters, lower for overlapping; labels matched") {
  Gen g(5);
  Matrix latent;
  std::vector<double> truth;
  clusters(1000, 10, g, latent, truth);
  double separated = composition_score(latent, truth);
  CHECK(separated > 0.995);
  std::vector<double> swapped(truth.size());
  for (size_t i = 0; i < truth.size(); ++i) swapped[i] = 1 - truth[i];
  CHECK(composition_score(latent, swapped) == separated);  // label matching: blind to which is "0"

  // 2 standard deviations apart: the Bayes accuracy is Phi(1) = 0.84; the fitted mixture cannot beat it.
  clusters(1000, 2, g, latent, truth);
  double overlapping = composition_score(latent, truth);
  CHECK(overlapping < 0.9);
  CHECK(overlapping >= 0.5);  // matching never does worse than chance

  GmmFit fit = fit_gmm(latent, 2);
  CHECK(fit.weights[0] + fit.weights[1] == doctest::Approx(1));
  CHECK(fit.responsibilities(0, 0) + fit.responsibilities(0, 1) == doctest::Approx(1));
  GmmFit again = fit_gmm(latent, 2);
  CHECK(again.labels == fit.labels);  // deterministic with the same seed
}

TEST_CASE("Matched accuracy finds the best relabelling among K! permutations") {
  std::vector<int> truth = {0, 0, 1, 1, 2, 2, 2};
  std::vector<int> pred = {2, 2, 0, 0, 1, 1, 0};  // relabelled, one mistake
  CHECK(matched_accuracy(pred, truth, 3) == doctest::Approx(6 / 7.0));
  CHECK_THROWS_AS(matched_accuracy(pred, truth, 7), Error);
}

TEST_CASE("CCA: a latent that is a rotation of the truths has all canonical correlations 1") {
  Gen g(6);
  const size_t n = 800;
  Matrix truths(n, 2), latent(n, 3);
  const double c = std::cos(0.6), s = std::sin(0.6);
  for (size_t i = 0; i < n; ++i) {
    truths(i, 0) = g.normal();
    truths(i, 1) = g.uniform(0, 5);
    latent(i, 0) = c * truths(i, 0) - s * truths(i, 1) + 4;
    latent(i, 1) = s * truths(i, 0) + c * truths(i, 1);
    latent(i, 2) = 0.5 * latent(i, 0) - latent(i, 1);  // rank 2: a redundant dimension is dropped
  }
  std::vector<double> r = several_motions_score(latent, truths);
  REQUIRE(r.size() == 2);
  CHECK(r[0] == doctest::Approx(1).epsilon(1e-9));
  CHECK(r[1] == doctest::Approx(1).epsilon(1e-9));

  // The second truth replaced by noise: one correlation stays 1, the other falls to ~0.
  for (size_t i = 0; i < n; ++i) truths(i, 1) = g.normal();
  r = several_motions_score(latent, truths);
  CHECK(r[0] == doctest::Approx(1).epsilon(1e-9));
  CHECK(r[1] < 5 / std::sqrt(double(n)));
}

TEST_CASE("Bootstrap: the interval holds the value and narrows with more particles") {
  Gen g(7);
  auto width = [&](size_t n) {
    std::vector<double> t(n), y(n);
    for (size_t i = 0; i < n; ++i) { t[i] = g.uniform(0, 1); y[i] = t[i] + 0.3 * g.normal(); }
    Interval iv = bootstrap(embed(y, 2, 0.01, g), t, linear_motion_score, {200, 9});
    CHECK(iv.lo <= iv.value);
    CHECK(iv.value <= iv.hi);
    CHECK(iv.lo < iv.hi);
    return iv.hi - iv.lo;
  };
  double small = width(200), large = width(3200);
  CHECK(large < 0.5 * small);  // width ~ 1 / sqrt(N): 16x the particles, ~1/4 of the width

  // Vector metrics get one interval per element.
  Matrix truths(300, 2), latent(300, 2);
  for (size_t i = 0; i < 300; ++i)
    for (size_t j = 0; j < 2; ++j) { truths(i, j) = g.normal(); latent(i, j) = truths(i, j) + 0.5 * g.normal(); }
  std::vector<Interval> cc = bootstrap(latent, truths, several_motions_score, {100, 3});
  REQUIRE(cc.size() == 2);
  for (const Interval& iv : cc) CHECK((iv.lo <= iv.value && iv.value <= iv.hi));
}

TEST_CASE("Oracle helpers: posterior mean, circular mean and class posteriors on a hand-computed case") {
  // Particle 0: log-likelihoods 0, log 3, -inf over states 1, 2, 3 -> weights 1/4, 3/4, 0 -> mean 1.75.
  // Particle 1: equal -> mean 2.
  Matrix ll(2, 3, {0, std::log(3.0), -INFINITY, 5, 5, 5});
  std::vector<double> mean = posterior_mean(ll, {1, 2, 3}, StateKind::linear);
  CHECK(mean[0] == doctest::Approx(1.75));
  CHECK(mean[1] == doctest::Approx(2));
  Matrix w = posterior_weights(ll);
  CHECK(w(0, 2) == 0);
  // Angles -170 and 170 degrees with equal weight: the circular mean is 180, not the linear 0.
  Matrix two(1, 2, {-1000, -1000});  // far from 0: the max shift keeps exp from underflowing
  double deg = kPi / 180;
  double m = posterior_mean(two, {-170 * deg, 170 * deg}, StateKind::circular)[0];
  CHECK(std::fabs(std::fabs(m) - kPi) < 1e-12);
  // States 0, 1 are class 0 and state 2 class 1: P(class 0) = 1 for particle 0, 2/3 for particle 1.
  Matrix p = posterior_classes(ll, {0, 0, 1}, 2);
  CHECK(p(0, 0) == doctest::Approx(1));
  CHECK(p(1, 0) == doctest::Approx(2 / 3.0));
  CHECK(p(1, 1) == doctest::Approx(1 / 3.0));
}

TEST_CASE("Bad input is refused with a message that says what is wrong") {
  auto message = [](auto&& f) {
    try { f(); } catch (const Error& e) { return std::string(e.what()); }
    return std::string();
  };
  Matrix latent(4, 2, {0, 1, 2, 3, 4, 5, 6, 7});
  CHECK(message([&] { linear_motion_score(latent, {1, 2, 3}); }).find("one per particle") != std::string::npos);
  Matrix bad = latent;
  bad(1, 1) = NAN;
  CHECK(message([&] { pca(bad); }).find("non-finite") != std::string::npos);
  CHECK(message([&] { spearman({1, 1, 1}, {1, 2, 3}); }).find("constant") != std::string::npos);
  CHECK(message([&] { composition_score(latent, {0, 1, 2, 0}); }).find("0 or 1") != std::string::npos);
  CHECK(message([&] { rotation_score(Matrix(4, 1, {1, 2, 3, 4}), {0, 1, 2, 3}); }).find("2 dimensions") !=
        std::string::npos);
  CHECK(message([&] { several_motions_score(latent, latent); }).find("more particles") != std::string::npos);
  CHECK(message([&] { posterior_mean(Matrix(1, 2, {-INFINITY, -INFINITY}), {0, 1}, StateKind::linear); })
            .find("no possible state") != std::string::npos);
  Matrix torn;
  torn.rows = 2; torn.cols = 2; torn.values = {1, 2, 3};
  CHECK(message([&] { pca(torn); }).find("rows x cols") != std::string::npos);
}
