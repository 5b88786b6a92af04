// The main job on the built-in example (`cugmm demo`, what scripts/demo.sh runs), end to end and small:
// every step runs, every output a user opens is there, and the numbers that say it worked come out right.
#include <doctest/doctest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "io/mrc.h"
#include "support.h"

using namespace cugmm;

TEST_CASE("cugmm demo: ground truth from atoms, its oracle reference, the neutral model of its consensus map") {
  std::string dir = test::scratch_dir("demo");
  auto r = test::run(test::cugmm_exe() + " demo --out out --count 300 --snr 0.5 --reference-particles 60 --epochs 4 --device cpu",
                     dir);
  INFO(r.out);
  REQUIRE(r.status == 0);
  for (const char* f : {"data/particles.star", "data/particles.mrcs", "data/particles_truth.csv", "data/consensus.mrc",
                        "data/true_state_001.mrc", "data/oracle.json", "data/simulation.json", "particles.cugmm-cache",
                        "neutral/model.txt", "neutral/model.cif", "neutral/model.mrc", "neutral/fsc.png",
                        "neutral/fit.json", "scores/scores.csv", "scores/scores.png", "neutral_projections.mrcs",
                        "run/latent.txt", "run/particles.star", "run/model.ckpt", "run/loss.png", "run/run.json",
                        "summary.json"})
    CHECK_MESSAGE(std::filesystem::exists(dir + "/out/" + f), f);
  auto s = nlohmann::json::parse(test::read_text(dir + "/out/summary.json"));
  // At SNR 0.5 the oracle reference recovers the lid's presence almost always.
  bool composition = false;
  for (auto& f : s["oracle_reference"])
    if (f["metric"] == "composition") {
      composition = true;
      CHECK(f["true_pose"]["value"].get<double>() > 0.9);
    }
  CHECK(composition);
  CHECK(test::contains(s["neutral_model"]["stop_rule"].get<std::string>(), "reached"));
  CHECK(s["neutral_model_mean_frc_score"].get<double>() > 0.05);
  // The trained latent is scored like the oracle: the same metrics, with intervals.
  REQUIRE(s["trained_latent"].size() == s["oracle_reference"].size());
  for (size_t i = 0; i < s["trained_latent"].size(); ++i) {
    CHECK(s["trained_latent"][i]["metric"] == s["oracle_reference"][i]["metric"]);
    CHECK(s["trained_latent"][i]["value"]["lo95"].get<double>() <= s["trained_latent"][i]["value"]["value"].get<double>());
  }
  io::Image proj = io::read_mrc(dir + "/out/neutral_projections.mrcs");
  CHECK(proj.nz == 300);
  CHECK(proj.nx == 64);
}
