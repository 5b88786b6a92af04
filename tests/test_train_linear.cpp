// `cugmm train`, `embed`, `decode` end to end on small simulated systems with known truth (issue 13 §6):
// a linear motion, with a threshold a broken trainer cannot pass (set
// from the measured value with a margin, beside a shuffled-truth baseline); on the same trained run, the
// posterior-mean latent (engine/latent_posterior.h, issue 14): against the truth, encoder points deliberately
// spoiled and pulled back by the likelihood (what no implementation that ignores the data can do), the same
// result whatever the thread count and batch.
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

}  // namespace

TEST_CASE("a linear motion trains to a latent whose first component follows the truth") {
  const DataSet& d = linear_run();
  const std::string out = d.dir + "/run";
  test::RunResult r;
  Matrix z = read_latent(out + "/latent_encoder.txt");  // the trainer's own: the encoder's points
  REQUIRE(z.rows == kCount);
  const std::vector<double> truth = d.truth.state.size() ? [&] {
    std::vector<double> t;
    for (auto& s : d.truth.state) t.push_back(s[0]);
    return t;
  }() : std::vector<double>{};
  const double score = linear_motion_score(z, truth);
  std::vector<double> shuffled = truth;
  std::mt19937 rng(3);
  std::shuffle(shuffled.begin(), shuffled.end(), rng);
  const double baseline = linear_motion_score(z, shuffled);
  MESSAGE("|Spearman(PC1, truth)| = " << score << ", shuffled-truth baseline " << baseline);
  // Measured 0.615 (CPU, bit-reproducible; untrained 0.090, shuffled truth 0.047) at SNR 0.2 with the pooled
  // score and the shift alignment (docs/accuracy.md round 5); issue 13's defaults gave 0.409, which fails here.
  CHECK(score > 0.5);
  // The same networks untrained (one epoch at lr 1e-12) on the same features: the threshold measures training.
  r = test::run(train_cmd(d, d.dir + "/untrained", "--epochs 1 --batch 32 --lr 1e-12 --latent 2 --noise 1"));
  REQUIRE_MESSAGE(r.status == 0, r.out);
  const double untrained = linear_motion_score(read_latent(d.dir + "/untrained/latent.txt"), truth);
  MESSAGE("untrained encoder: " << untrained);
  CHECK(untrained < 0.2);  // measured 0.090 (CPU, bit-reproducible)
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

std::vector<double> truth_of(const DataSet& d) {
  std::vector<double> t;
  for (auto& s : d.truth.state) t.push_back(s[0]);
  return t;
}

double motion_score(const std::vector<float>& z, int dim, const std::vector<double>& truth) {
  return linear_motion_score(Matrix(z.size() / size_t(dim), size_t(dim), std::vector<double>(z.begin(), z.end())), truth);
}

}  // namespace

TEST_CASE("the posterior-mean latent (train --latent-estimate posterior): against the truth, spoiled encoder points recovered, deterministic") {
  const DataSet& d = linear_run();
  const std::string run = d.dir + "/run";
  const std::vector<double> truth = truth_of(d);
  const std::vector<float> enc = read_latent_txt(run + "/latent_encoder.txt", 2), post = read_latent_txt(run + "/latent.txt", 2);
  const double s_enc = motion_score(enc, 2, truth), s_post = motion_score(post, 2, truth);
  MESSAGE("|Spearman(PC1, truth)|: encoder " << s_enc << ", posterior mean " << s_post);
  // Measured (CPU, bit-reproducible): encoder 0.689, posterior 0.732 with the defaults of docs/accuracy.md
  // round 5 (0.615 / 0.601 on the branch that introduced them, before the merged pose refinement and projector
  // changes moved the aligned shifts' last bits; issue 13's defaults: 0.782 -> 0.852). The posterior mean must
  // not lose much to the encoder's points; what shows the likelihood at work is the recovery of spoiled points
  // below (0.531 -> 0.655).
  CHECK(s_post > s_enc - 0.03);

  // Spoiled encoder points: each moved by noise of 0.7 prior SDs. The likelihood must pull them back
  // towards the truth; a posterior that ignored the data (or mis-weighted it) would keep the noise.
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

