// `cugmm evenodd` (issue 15 item 4): the pieces on known answers, then two small simulated sets end to end:
// one with a real motion (the halves must agree) and one with no heterogeneity at all (must be flagged).
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "engine/evenodd.h"
#include "engine/hetero_system.h"
#include "support.h"
#include "train_data.h"

using namespace cugmm;
namespace fs = std::filesystem;

TEST_CASE("evenodd pieces: variance explained, relative RMSD, field matching") {
  std::mt19937 rng(2);
  std::normal_distribution<double> g;
  const size_t n = 500;
  Matrix x(n, 2), z(n, 2);
  for (size_t i = 0; i < n; ++i) {
    x(i, 0) = g(rng);
    x(i, 1) = g(rng);
    z(i, 0) = 3 * x(i, 0) + 0.1 * g(rng);  // explained
    z(i, 1) = g(rng);                       // not
  }
  const double r = variance_explained(z, x);
  MESSAGE("R^2 " << r);
  CHECK(r == doctest::Approx(9.0 / 10.0).epsilon(0.05));  // 9 of 9 + 1 + 0.01 units of variance
  Matrix noise(n, 1);
  for (size_t i = 0; i < n; ++i) noise(i, 0) = g(rng);
  CHECK(variance_explained(z, noise) < 0.02);
  std::vector<double> a = {1, 0, 0, 2, 0, 0}, b = {-1, 0, 0, -2, 0, 0}, c = {0, 1, 0, 0, 2, 0};
  CHECK(relative_rmsd(a, b) == doctest::Approx(0));
  CHECK(relative_rmsd(a, b, false) == doctest::Approx(2));
  CHECK(relative_rmsd(a, c) == doctest::Approx(std::sqrt(2.0)));
  const FieldMatch m = match_fields({a, c}, {c, b});
  CHECK(m.matched == std::vector<int>{1, 0});
  CHECK(m.rmsd[0] == doctest::Approx(0));
}

namespace {

nlohmann::json evenodd(const train_test::DataSet& d, const std::string& name) {
  const std::string out = d.dir + "/" + name;
  test::RunResult r = test::run(test::cugmm_exe() + " evenodd " + d.star + " " + d.model + " --out " + out +
                                " --device cpu --threads 2 --epochs 40 --batch 32 --lr 1e-3 --latent 2 --noise 1 "
                                "--latent-reg 1e-4 --k 2 --loss gain");
  MESSAGE(r.out);
  REQUIRE(r.status == 0);
  std::ifstream f(out + "/evenodd.json");
  return nlohmann::json::parse(f);
}

}  // namespace

TEST_CASE("cugmm evenodd: a real motion agrees more than no heterogeneity, which is flagged") {
  train_test::DataSet d = train_test::make_data("evenodd_linear", "linear", 400, 10.0);
  const nlohmann::json j = evenodd(d, "eo");
  for (const char* f : {"report.md", "half1.star", "half2.star", "half1/latent.txt", "half2/model.ckpt", "half1/run.json"})
    CHECK_MESSAGE(fs::exists(d.dir + "/eo/" + f), f);
  HeteroSystem still = builtin_system("linear");
  for (auto& m : still.motions) m.lo = m.hi = 0;  // the arm never moves: nothing to find but noise
  train_test::DataSet s = train_test::make_data("evenodd_still", still, 400, 10.0);
  const nlohmann::json k = evenodd(s, "eo");
  CHECK_FALSE(k["reproducible"].get<bool>());
  // The pooled score with the model's radial gain (--loss gain), aligned shifts. Without the gain
  // (docs/accuracy.md rounds 6 and 7b) the still set's halves agreed with canonical correlation 0.71 and
  // followed the view (R^2 0.38): a latent that learns each view's correction of the neutral model's radial
  // power profile, reproducible but not heterogeneity; cc_still < 0.3 fails there. Measured with the gain
  // (CPU, bit-reproducible, these flags with --threads 2): canonical correlation 0.75 with the motion, 0.22
  // without; RMS motion along PC1 2.9 Å vs 0.01 Å (docs/accuracy.md round 7b).
  // 200 particles per half at 40 px do not reach the absolute thresholds (kEvenOddMinCanonical 0.8) on the
  // moving set: that verdict is not asserted here.
  const double cc_move = j["latent"]["canonical_correlations"][0], cc_still = k["latent"]["canonical_correlations"][0];
  const double m_move = j["trajectories"]["pcs"][0]["rms_motion_half1_A"], m_still = k["trajectories"]["pcs"][0]["rms_motion_half1_A"];
  CHECK(cc_still < 0.3);
  CHECK(cc_move > cc_still + 0.2);
  CHECK(m_still < 1.0);
  CHECK(m_move > 4 * m_still);
}
