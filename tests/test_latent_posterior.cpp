// The posterior-mean latent's pieces (engine/latent_posterior.h) on known answers. The method end to end, on
// a trained run with known truth, is in test_train_linear.cpp (it shares that file's trained run).
#include <doctest/doctest.h>

#include <cmath>
#include <random>
#include <vector>

#include "core/error.h"
#include "engine/latent_posterior.h"

using namespace cugmm;

TEST_CASE("posterior pieces: the likelihood scale from antithetic pairs, the Gaussian prior") {
  // Scores as a log-likelihood K s would give them (header): with the encoder at the truth, s(e ± d) =
  // s(e) - D^2/(2K) ± D xi/K, xi ~ N(0, 1) the noise's slope, D = |d| in likelihood units. The estimate must
  // return K.
  const double K = 50;
  std::mt19937 rng(5);
  std::normal_distribution<double> g;
  const size_t n = 4000;
  const int P = 4;
  std::vector<float> s(n * (2 * P + 1));
  for (size_t i = 0; i < n; ++i) {
    float* r = s.data() + i * (2 * P + 1);
    r[0] = 0.3f;
    for (int p = 0; p < P; ++p) {
      const double d = 3 * g(rng), slope = g(rng) / K;
      r[1 + 2 * p] = float(0.3 - d * d / (2 * K) + slope * d);
      r[2 + 2 * p] = float(0.3 - d * d / (2 * K) - slope * d);
    }
  }
  const double k = likelihood_scale(s, n, P);
  MESSAGE("K " << k << " (true " << K << ")");
  CHECK(k == doctest::Approx(K).epsilon(0.1));
  // A score that does not peak at the encoder's points is refused.
  for (size_t i = 0; i < n; ++i) s[i * (2 * P + 1)] = -1;
  CHECK_THROWS_AS(likelihood_scale(s, n, P), Error);

  std::vector<float> z;
  for (size_t i = 0; i < 20000; ++i) {
    const double a = g(rng), b = g(rng);
    z.push_back(float(1 + 2 * a));
    z.push_back(float(-1 + a + 0.5 * b));
  }
  const GaussianPrior pr = fit_gaussian_prior(z, 2);
  CHECK(pr.mean[0] == doctest::Approx(1).epsilon(0.05));
  CHECK(pr.cov[0] == doctest::Approx(4).epsilon(0.05));
  CHECK(pr.cov[1] == doctest::Approx(2).epsilon(0.05));
  CHECK(pr.cov[3] == doctest::Approx(1.25).epsilon(0.05));
  CHECK(pr.inv[0] * pr.cov[0] + pr.inv[1] * pr.cov[2] == doctest::Approx(1).epsilon(1e-6));
  CHECK_THROWS_AS(parse_latent_estimate("mean"), Error);
}

