// The main job on the built-in example (`cugmm demo`, what scripts/demo.sh runs), end to end and small:
// every step runs, every output a user opens is there, and the ground-truth checks come out right.
#include <doctest/doctest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "io/mrc.h"
#include "support.h"

using namespace cugmm;

TEST_CASE("cugmm demo runs the whole pipeline and tells the two conformations apart") {
  std::string dir = test::scratch_dir("demo");
  auto r = test::run(test::cugmm_exe() + " demo --out out --count 400 --snr 0.5 --device cpu", dir);
  INFO(r.out);
  REQUIRE(r.status == 0);
  for (const char* f : {"model_open.txt", "model_closed.txt", "model_open.cif", "model_open.cmm", "motion.bild",
                        "particles.star", "particles.mrcs", "particles.cugmm-cache", "scores/scores.csv", "scores/scores.png",
                        "projections_open.mrcs", "truth_open.mrc", "recon_open/full.mrc", "recon_open/fsc.png",
                        "recon_closed/half1.mrc", "summary.json"})
    CHECK_MESSAGE(std::filesystem::exists(dir + "/out/" + f), f);
  auto s = nlohmann::json::parse(test::read_text(dir + "/out/summary.json"));
  // The FRC score picks the conformation each particle shows.
  CHECK(s["score_classification_accuracy"].get<double>() > 0.9);
  // Each class reconstructs its own conformation better than the other one (smaller Å at FSC 0.5).
  double own = s["fsc05_open_recon_vs_open_truth_A"], other = s["fsc05_open_recon_vs_closed_truth_A"];
  CHECK(own < other);
  CHECK(own < 25);
  io::Image proj = io::read_mrc(dir + "/out/projections_open.mrcs");
  CHECK(proj.nz == 400);
  CHECK(proj.nx == 64);
}
