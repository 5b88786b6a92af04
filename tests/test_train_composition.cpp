// `cugmm train`, `embed`, `decode` end to end on small simulated systems with known truth (issue 13 §6):
// a compositional change, with a threshold a broken trainer cannot pass (set
// from the measured value with a margin, beside a shuffled-truth baseline).
#include "train_data.h"

using namespace cugmm;
using namespace cugmm::train_test;

constexpr int kCount = 800;
constexpr double kSnr = 0.2;  // whole-box SNR (engine/simulate_system.h), realistic; issue 13's test ran at 2

TEST_CASE("a compositional change (a domain present in half the particles) separates in the latent") {
  // The built-in "composition" system without its slide: the lid (chain C) present or not, nothing else, so
  // the 2-component mixture of composition_score has one thing to find.
  HeteroSystem sys = builtin_system("composition");
  sys.motions.erase(sys.motions.begin());
  REQUIRE(sys.motions.size() == 1);
  DataSet d = make_data("train_composition", sys, kCount, kSnr);
  const std::string out = d.dir + "/run";
  // The defaults (no flag but the size of the run): what a user gets.
  test::RunResult r = test::run(train_cmd(d, out, "--epochs 30 --batch 32"));
  REQUIRE_MESSAGE(r.status == 0, r.out);
  Matrix z = read_latent(out + "/latent.txt");
  REQUIRE(z.rows == kCount);
  std::vector<double> present, shuffled;
  for (auto& s : d.truth.state) present.push_back(s[0]);
  shuffled = present;
  std::mt19937 rng(5);
  std::shuffle(shuffled.begin(), shuffled.end(), rng);
  const double acc = composition_score(z, present), base = composition_score(z, shuffled);
  MESSAGE("composition accuracy " << acc << ", shuffled-truth baseline " << base);
  // Measured 0.91 (CPU, bit-reproducible; untrained encoder 0.529, shuffled truth 0.5) with the learning rate
  // halved every 10 epochs (docs/accuracy.md round 13), 0.896 under the constant rate before it, 0.593 with a
  // half-life of 5 (fails here); issue 13's defaults gave 0.7025, which fails too.
  // Chance is 0.5: a trainer that learns nothing fails.
  CHECK(acc > 0.8);
  r = test::run(train_cmd(d, d.dir + "/untrained", "--epochs 1 --batch 32 --lr 1e-12"));
  REQUIRE_MESSAGE(r.status == 0, r.out);
  const double untrained = composition_score(read_latent(d.dir + "/untrained/latent.txt"), present);
  MESSAGE("untrained encoder: " << untrained);
  CHECK(untrained < 0.6);  // measured 0.529 (CPU, bit-reproducible)
  CHECK(base < 0.65);
}

