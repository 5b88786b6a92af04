// `cugmm train`, `embed`, `decode` end to end on small simulated systems with known truth (issue 13 §6):
// a linear motion, with a threshold a broken trainer cannot pass (set
// from the measured value with a margin, beside a shuffled-truth baseline).
#include "train_data.h"

using namespace cugmm;
using namespace cugmm::train_test;

constexpr int kCount = 800;
constexpr double kSnr = 0.2;  // whole-box SNR (engine/simulate_system.h), realistic; issue 13's test ran at 2

TEST_CASE("a linear motion trains to a latent whose first component follows the truth") {
  DataSet d = make_data("train_linear", "linear", kCount, kSnr);
  MESSAGE(d.gaussians << " Gaussians");
  const std::string out = d.dir + "/run";
  // The defaults (no flag but the size of the run): what a user gets.
  test::RunResult r = test::run(train_cmd(d, out, "--epochs 30 --batch 32 --latent 2"));
  MESSAGE(r.out);
  REQUIRE(r.status == 0);
  Matrix z = read_latent(out + "/latent.txt");
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
  // Measured 0.409 (CPU, bit-reproducible; untrained 0.022, shuffled truth 0.076) at SNR 0.2; issue 13's test
  // reached > 0.6 at SNR 2 with hand-picked flags.
  CHECK(score > 0.3);
  // The same networks untrained (one epoch at lr 1e-12) on the same features: the threshold measures training.
  r = test::run(train_cmd(d, d.dir + "/untrained", "--epochs 1 --batch 32 --lr 1e-12 --latent 2 --noise 1"));
  REQUIRE_MESSAGE(r.status == 0, r.out);
  const double untrained = linear_motion_score(read_latent(d.dir + "/untrained/latent.txt"), truth);
  MESSAGE("untrained encoder: " << untrained);
  CHECK(untrained < 0.2);  // measured 0.022 (CPU, bit-reproducible)
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
  // embed: the same particles through the trained encoder give train's latent.
  r = test::run(test::cugmm_exe() + " embed " + out + " --particles " + d.star + " --out " + d.dir + "/embedded --device cpu --threads 2");
  MESSAGE(r.out);
  REQUIRE(r.status == 0);
  Matrix e = read_latent(d.dir + "/embedded/latent.txt");
  REQUIRE(e.rows == z.rows);
  double maxdiff = 0;
  for (size_t i = 0; i < e.values.size(); ++i) maxdiff = std::max(maxdiff, std::abs(e.values[i] - z.values[i]));
  CHECK(maxdiff < 1e-4);
}
