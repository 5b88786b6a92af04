// Issue 12 item 4 and 7: the oracle reference of a noise-free set is ~1 and falls with the SNR; the
// pose-marginalised reference is not better than the true-pose one by more than its noise.
#include <doctest/doctest.h>

#include <string>

#include "engine/oracle_reference.h"
#include "engine/simulate_system.h"
#include "support.h"

using namespace cugmm;

namespace {

OracleResult run(const std::string& system, double snr, int count, const std::string& dir) {
  HeteroSystem sys = builtin_system(system);
  TruthSimOptions o;
  o.count = count;
  o.box = 48;
  o.pixel = 3.5;
  o.snr = snr;
  o.consensus = false;
  o.pose_error_deg = 2;
  o.shift_error_px = 0.5;
  std::vector<float> images;
  SimulatedTruth set = simulate_system(sys, o, test::scratch_dir(dir), &images);
  OracleOptions oo;
  oo.pose_samples = 6;
  oo.bootstrap = 50;
  OracleResult r = oracle_reference(sys, o, set, images, oo);
  write_oracle_json(test::scratch_dir(dir + "_json") + "/oracle.json", r);
  for (const OracleFigure& f : r.figures)
    MESSAGE(system << " SNR " << snr << ": " << f.metric << " true pose " << f.true_pose.value << " ["
                   << f.true_pose.lo << ", " << f.true_pose.hi << "], pose-marginalised " << f.marginal.value);
  return r;
}

}  // namespace

TEST_CASE("oracle reference: ~1 without noise, lower at low SNR (linear motion)") {
  OracleResult clean = run("linear", 0, 60, "oracle_linear_clean");
  REQUIRE(clean.figures.size() == 1);
  CHECK(clean.figures[0].metric == "linear_motion");
  CHECK(clean.figures[0].true_pose.value > 0.99);
  CHECK(clean.figures[0].true_pose.lo <= clean.figures[0].true_pose.value);
  OracleResult noisy = run("linear", 0.002, 60, "oracle_linear_noisy");
  CHECK(noisy.figures[0].true_pose.value < clean.figures[0].true_pose.value - 0.05);
  CHECK(noisy.figures[0].marginal.value < clean.figures[0].true_pose.value);
}

TEST_CASE("oracle reference: composition and a full rotation are recovered without noise") {
  OracleResult comp = run("composition", 0, 60, "oracle_comp_clean");
  bool saw_composition = false;
  for (const OracleFigure& f : comp.figures) {
    if (f.metric == "composition") {
      saw_composition = true;
      CHECK(f.true_pose.value > 0.98);
    } else {
      CHECK(f.true_pose.value > 0.95);  // canonical correlations of (displacement, presence)
    }
  }
  CHECK(saw_composition);
  OracleResult rot = run("rotation", 0, 60, "oracle_rot_clean");
  REQUIRE(rot.figures.size() == 1);
  CHECK(rot.figures[0].metric == "rotation");
  CHECK(rot.figures[0].true_pose.value > 0.95);
}
