// The posterior-mean latent (engine/latent_posterior.h) on a small trained run of the built-in "linear"
// system with known truth: the pieces on known answers; posterior vs encoder points against the truth;
// encoder points deliberately spoiled and pulled back by the likelihood (what no implementation that
// ignores the data can do); the same result whatever the thread count and batch.
#include <cmath>
#include <random>

#include "core/context.h"
#include "core/threads.h"
#include "engine/latent_posterior.h"
#include "engine/particle_cache.h"
#include "engine/train_outputs.h"
#include "nn/blas.h"
#include "train_data.h"

using namespace cugmm;
using namespace cugmm::train_test;

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

namespace {

std::vector<double> truth_of(const DataSet& d) {
  std::vector<double> t;
  for (auto& s : d.truth.state) t.push_back(s[0]);
  return t;
}

double motion_score(const std::vector<float>& z, int dim, const std::vector<double>& truth) {
  return linear_motion_score(Matrix(z.size() / size_t(dim), size_t(dim), std::vector<double>(z.begin(), z.end())), truth);
}

}  // namespace

TEST_CASE("posterior latent on a trained run: against the truth, spoiled encoder points recovered, deterministic") {
  DataSet d = make_data("latent_posterior", "linear", 300, 2.0);
  const std::string run = d.dir + "/run";
  test::RunResult r = test::run(train_cmd(d, run, "--epochs 25 --batch 32 --lr 1e-3 --latent 2 --noise 1 --latent-reg 1e-4 "
                                                  "--latent-estimate posterior"));
  REQUIRE_MESSAGE(r.status == 0, r.out);
  MESSAGE(r.out);
  const std::vector<double> truth = truth_of(d);
  const std::vector<float> enc = read_latent_txt(run + "/latent_encoder.txt", 2), post = read_latent_txt(run + "/latent.txt", 2);
  const double s_enc = motion_score(enc, 2, truth), s_post = motion_score(post, 2, truth);
  MESSAGE("|Spearman(PC1, truth)|: encoder " << s_enc << ", posterior mean " << s_post);
  CHECK(s_post > 0.6);
  CHECK(s_post > s_enc - 0.05);  // never much worse than the point it starts from

  // Spoiled encoder points: each moved by noise of 0.7 prior SDs. The likelihood must pull them back
  // towards the truth; a posterior that ignored the data (or mis-weighted it) would keep the noise.
  Context cx(Device::cpu);
  const TrainedModel m = load_trained(run + "/model.ckpt", cx);
  ParticleCache cache(run + "/particles.cugmm-cache");
  const ParticleBatcher batcher(cache, training_band(cache, m.config.minres, m.config.maxres), m.config.ctf);
  const GaussianPrior pr = fit_gaussian_prior(enc, 2);
  std::mt19937 rng(9);
  std::normal_distribution<double> g;
  std::vector<float> spoiled = enc;
  for (size_t i = 0; i < spoiled.size() / 2; ++i) {
    const double a = g(rng), b = g(rng);
    spoiled[2 * i] += float(0.7 * (pr.chol[0] * a));
    spoiled[2 * i + 1] += float(0.7 * (pr.chol[2] * a + pr.chol[3] * b));
  }
  PosteriorOptions o;
  const PosteriorLatent back = posterior_latent(m, cx, batcher, spoiled, o);
  const double s_spoiled = motion_score(spoiled, 2, truth), s_back = motion_score(back.mean, 2, truth);
  MESSAGE("spoiled encoder points " << s_spoiled << ", their posterior mean " << s_back << " (K " << back.scale << ")");
  CHECK(s_back > s_spoiled + 0.1);

  // Deterministic: the same posterior whatever the threads and the batch (Philox keyed by particle index,
  // the decoder's rows and the projector's particles independent of their neighbours).
  set_threads(1);
  nn::set_blas_threads(1);
  o.batch = 7;
  const PosteriorLatent one = posterior_latent(m, cx, batcher, enc, o);
  set_threads(2);
  nn::set_blas_threads(2);
  o.batch = 50;
  const PosteriorLatent two = posterior_latent(m, cx, batcher, enc, o);
  CHECK(one.scale == two.scale);
  CHECK(one.mean == two.mean);
  CHECK(motion_score(one.mean, 2, truth) == doctest::Approx(s_post).epsilon(0.02));  // what train wrote
}

