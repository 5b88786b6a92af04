// `cugmm train`, `embed`, `decode` end to end on small simulated systems with known truth (issue 13 §6):
// a linear motion, with a threshold a broken trainer cannot pass (set
// from the measured spread over training seeds, beside untrained and shuffled-truth baselines); on the same trained run, the
// posterior-mean latent (engine/latent_posterior.h, issue 14): against the truth, encoder points deliberately
// spoiled and pulled back by the likelihood (what no implementation that ignores the data can do), the same
// result whatever the thread count and batch.
#include <Eigen/Dense>

#include "core/context.h"
#include "core/threads.h"
#include "engine/latent_posterior.h"
#include "engine/particle_cache.h"
#include "engine/train_outputs.h"
#include "nn/blas.h"
#include "nn/checkpoint.h"
#include "train_data.h"

using namespace cugmm;
using namespace cugmm::train_test;

constexpr int kCount = 800;
constexpr double kSnr = 0.2;  // whole-box SNR (engine/simulate_system.h), realistic; issue 13's test ran at 2

namespace {

// The run the cases share, trained once per process (training is most of this file's time), with the
// defaults (no flag but the size of the run: what a user gets). It also writes the posterior-mean latent
// (latent.txt; the encoder's points in latent_encoder.txt), which the second case judges.
const DataSet& linear_run() {
  static const DataSet d = [] {
    DataSet data = make_data("train_linear", "linear", kCount, kSnr);
    MESSAGE(data.gaussians << " Gaussians");
    test::RunResult r = test::run(train_cmd(data, data.dir + "/run", "--epochs 30 --batch 32 --latent 2 --latent-estimate posterior"));
    MESSAGE(r.out);
    REQUIRE(r.status == 0);
    return data;
  }();
  return d;
}

std::vector<double> truth_of(const DataSet& d) {
  std::vector<double> t;
  for (auto& s : d.truth.state) t.push_back(s[0]);
  return t;
}

// How well the latent holds the truth linearly, whichever axis it landed on: the canonical correlation of
// the latent with the one truth column (the correlation of the truth with its least-squares read-out).
double linear_readout(const Matrix& z, const std::vector<double>& truth) {
  return several_motions_score(z, Matrix(truth.size(), 1, truth))[0];
}

}  // namespace

TEST_CASE("a linear motion trains to a latent that holds the truth linearly") {
  const DataSet& d = linear_run();
  const std::string out = d.dir + "/run";
  test::RunResult r;
  Matrix z = read_latent(out + "/latent_encoder.txt");  // the trainer's own: the encoder's points
  REQUIRE(z.rows == kCount);
  const std::vector<double> truth = truth_of(d);
  REQUIRE(truth.size() == size_t(kCount));
  const double score = linear_readout(z, truth);
  std::vector<double> shuffled = truth;
  std::mt19937 rng(3);
  std::shuffle(shuffled.begin(), shuffled.end(), rng);
  const double baseline = linear_readout(z, shuffled);
  MESSAGE("truth's linear read-out from the latent: R = " << score << " (|Spearman(PC1, truth)| "
                                                          << linear_motion_score(z, truth) << "), shuffled truth "
                                                          << baseline);
  // Measured R = 0.778 at SNR 0.2 (CPU, bit-reproducible), 0.750-0.778 over training seeds 1-5; untrained
  // 0.117; shuffled truth 0.084 (this shuffle; 0.02-0.06 for others: chance is ~sqrt(2 / 800)). PC1's Spearman, which this case checked before, depends on which latent
  // axis the motion lands on (0.006-0.767 over the same seeds: a change in the last bits flipped it).
  CHECK(score > 0.65);
  // The same networks untrained (one epoch at lr 1e-12) on the same features: the threshold measures training.
  r = test::run(train_cmd(d, d.dir + "/untrained", "--epochs 1 --batch 32 --lr 1e-12 --latent 2 --noise 1"));
  REQUIRE_MESSAGE(r.status == 0, r.out);
  const double untrained = linear_readout(read_latent(d.dir + "/untrained/latent.txt"), truth);
  MESSAGE("untrained encoder: R = " << untrained);
  CHECK(untrained < 0.3);  // measured 0.117 (CPU, bit-reproducible)
  CHECK(baseline < 0.2);
  for (const char* f : {"particles.star", "model.ckpt", "loss.txt", "loss.png", "run.json"})
    CHECK(fs::exists(out + "/" + f));
  // RELION reads the STAR with the added columns and keeps them through a selection (it treats labels it does
  // not know as text, so it cannot select on them itself).
  if (test::oracle("relion_star_handler")) {
    test::RunResult h = test::run("relion_star_handler --i " + out + "/particles.star --o " + d.dir +
                                  "/sel.star --select rlnDefocusU --minval 0");
    CHECK_MESSAGE(h.status == 0, h.out);
    const std::string sel = test::read_text(d.dir + "/sel.star");
    CHECK(test::contains(sel, "_rlnCugmmLatent2"));
    CHECK(test::contains(sel, "_rlnCugmmFrc"));
    CHECK(test::contains(h.out, "800 item"));
  }
  // decode: the origin is the neutral model exactly.
  r = test::run(test::cugmm_exe() + " decode " + out + " --z \"0 0\" --out " + d.dir + "/decoded --device cpu");
  MESSAGE(r.out);
  REQUIRE(r.status == 0);
  io::GaussianModel n0 = io::read_model(d.model), z0 = io::read_model(d.dir + "/decoded/point_001.txt");
  CHECK(params_from_model(n0) == params_from_model(z0));
  CHECK(fs::exists(d.dir + "/decoded/point_001.mrc"));
  // embed: the same particles through the trained encoder give train's encoder points.
  r = test::run(test::cugmm_exe() + " embed " + out + " --particles " + d.star + " --out " + d.dir + "/embedded --device cpu --threads 2");
  MESSAGE(r.out);
  REQUIRE(r.status == 0);
  Matrix e = read_latent(d.dir + "/embedded/latent.txt");
  REQUIRE(e.rows == z.rows);
  double maxdiff = 0;
  for (size_t i = 0; i < e.values.size(); ++i) maxdiff = std::max(maxdiff, std::abs(e.values[i] - z.values[i]));
  CHECK(maxdiff < 1e-4);
}

namespace {

double motion_score(const std::vector<float>& z, int dim, const std::vector<double>& truth) {
  return linear_motion_score(Matrix(z.size() / size_t(dim), size_t(dim), std::vector<double>(z.begin(), z.end())), truth);
}

// The truth as the encoder's points hold it linearly: t ~ b . z + c, least squares on the encoder's points
// (b, then c). Other points of the same latent space (the posterior's) are read with the same b and c, so the
// comparison does not depend on which latent axis the motion landed on (PC1's Spearman does: below).
std::vector<double> fit_readout(const std::vector<float>& z, int dim, const std::vector<double>& truth) {
  Eigen::MatrixXd a(Eigen::Index(truth.size()), dim + 1);
  Eigen::VectorXd t(Eigen::Index(truth.size()));
  for (size_t i = 0; i < truth.size(); ++i) {
    for (int j = 0; j < dim; ++j) a(Eigen::Index(i), j) = z[i * size_t(dim) + size_t(j)];
    a(Eigen::Index(i), dim) = 1;
    t(Eigen::Index(i)) = truth[i];
  }
  const Eigen::VectorXd b = a.colPivHouseholderQr().solve(t);
  return std::vector<double>(b.data(), b.data() + b.size());
}

// Mean squared error of that read-out on points z.
double readout_error(const std::vector<double>& b, const std::vector<float>& z, int dim, const std::vector<double>& truth) {
  double s = 0;
  for (size_t i = 0; i < truth.size(); ++i) {
    double e = b[size_t(dim)] - truth[i];
    for (int j = 0; j < dim; ++j) e += b[size_t(j)] * z[i * size_t(dim) + size_t(j)];
    s += e * e;
  }
  return s / double(truth.size());
}

// Mean squared distance between two point sets in the prior's units ((u - v)' Sigma^-1 (u - v)).
double prior_distance2(const GaussianPrior& pr, const std::vector<float>& u, const std::vector<float>& v) {
  double s = 0;
  for (size_t i = 0; i < u.size() / 2; ++i) {
    const double x = u[2 * i] - v[2 * i], y = u[2 * i + 1] - v[2 * i + 1];
    s += x * x * pr.inv[0] + 2 * x * y * pr.inv[1] + y * y * pr.inv[3];
  }
  return s / double(u.size() / 2);
}

}  // namespace

TEST_CASE("the posterior-mean latent (train --latent-estimate posterior): nearer the truth than the encoder's points, spoiled points pulled back, not overconfident, deterministic") {
  const DataSet& d = linear_run();
  const std::string run = d.dir + "/run";
  const std::vector<double> truth = truth_of(d);
  const std::vector<float> enc = read_latent_txt(run + "/latent_encoder.txt", 2), post = read_latent_txt(run + "/latent.txt", 2);
  const double s_post = motion_score(post, 2, truth);
  MESSAGE("|Spearman(PC1, truth)|: encoder " << motion_score(enc, 2, truth) << ", posterior mean " << s_post);
  // Training is chaotic: a change in the last bits anywhere (a vectorised sine in the projector) lands it
  // elsewhere, so these checks are relative to the same run's encoder points, and their thresholds sit between
  // the spread measured over training runs (this case with `--seed` 1-4 and libm's sine and exponentials in the
  // projector, 1, 2 and 5 with kernels/poly_math.h's; issue 13 §4) and the same runs with K sabotaged (x 0,
  // x 0.1, x 10). PC1's Spearman above is only reported: it follows the order of the latent axes' variances,
  // and on seeds 2 and 3 the motion landed on the second axis (encoder 0.148, 0.142 against 0.756 on seed 1)
  // with the same read-out error (20.9, 22.7 against 20.8); the posterior's points then scored 0.78 and 0.03.
  const std::vector<double> readout = fit_readout(enc, 2, truth);
  const double e_enc = readout_error(readout, enc, 2, truth), e_post = readout_error(readout, post, 2, truth);
  MESSAGE("truth read-out error: encoder points " << e_enc << ", posterior mean " << e_post << " (ratio "
                                                   << e_post / e_enc << ")");
  // Measured ratio 0.86-0.93 (the posterior is nearer); a posterior that ignores the likelihood (K = 0)
  // 1.24-1.37, K / 10 1.20-1.30.
  CHECK(e_post < 1.1 * e_enc);

  // Spoiled encoder points: each moved by noise of 0.7 prior SDs, three times over. The likelihood must pull
  // them back towards the truth; a posterior that ignored the data (or weighted it 10x too little) keeps most
  // of the noise. Recovery: the fraction of the read-out error the spoiling added that the posterior removes.
  Context cx(Device::cpu);
  const TrainedModel m = load_trained(run + "/model.ckpt", cx);
  ParticleCache cache(run + "/particles.cugmm-cache");
  ParticleBatcher batcher = model_batcher(m, cache);  // the run's band, CTF and data scale
  // The poses training scored with: the cache's angles with the shifts it aligned to the neutral model
  // (TrainConfig::align_shifts), as stored in the checkpoint; the cache's own shifts would score another model.
  if (m.config.align_shifts) {
    const std::vector<float> o = nn::Checkpoint::load(run + "/model.ckpt").get_f32("aligned_origins", 2 * cache.count());
    std::vector<ParticlePose> poses(cache.count());
    for (size_t i = 0; i < poses.size(); ++i) {
      const CachedParticle& c = cache.particle(i);
      poses[i] = {c.rot, c.tilt, c.psi, o[2 * i], o[2 * i + 1]};
    }
    batcher.set_poses(poses);
  }
  const GaussianPrior pr = fit_gaussian_prior(enc, 2);
  PosteriorOptions o;
  double recovered = 0, spoiling = 0;
  for (unsigned seed : {9u, 10u, 11u}) {
    std::mt19937 rng(seed);
    std::normal_distribution<double> g;
    std::vector<float> spoiled = enc;
    for (size_t i = 0; i < spoiled.size() / 2; ++i) {
      const double a = g(rng), b = g(rng);
      spoiled[2 * i] += float(0.7 * (pr.chol[0] * a));
      spoiled[2 * i + 1] += float(0.7 * (pr.chol[2] * a + pr.chol[3] * b));
    }
    const PosteriorLatent back = posterior_latent(m, cx, batcher, spoiled, o);
    const double e_spoiled = readout_error(readout, spoiled, 2, truth), e_back = readout_error(readout, back.mean, 2, truth);
    const double fraction = (e_spoiled - e_back) / (e_spoiled - e_enc);
    MESSAGE("spoiling " << seed << ": read-out error " << e_spoiled << ", their posterior mean " << e_back
                        << " (recovered " << fraction << " of the spoiling; K " << back.scale << ")");
    recovered += fraction / 3;
    spoiling += prior_distance2(pr, spoiled, enc) / 3;
  }
  MESSAGE("recovered on average " << recovered);
  // Measured 0.69-0.82 (single spoilings 0.63-0.91); K = 0 -0.08-0.12, K / 10 0.05-0.22.
  CHECK(recovered > 0.45);

  // Not overconfident: the posterior mean of the encoder's own points moves them by a small part of the
  // spoiling. With K 10x too large each point jumps to its best-scoring candidate (the noise in its score
  // decides), and the read-out checks above cannot see it: on this data a sharper posterior reads the truth
  // as well or better (K x 10: ratio 0.90-0.91, recovered 1.02-1.10).
  const double moved = prior_distance2(pr, post, enc) / spoiling;
  MESSAGE("posterior mean's move from the encoder's points: " << moved << " of the spoiling (mean squared, prior units)");
  // Measured 0.16-0.22; K x 10 0.45-0.58 (and K = 0, shrinking towards the prior's mean, 0.36-0.41).
  CHECK(moved < 0.3);

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
