// One refine-and-retrain round (the paper's Fig. S1 loop; issue 14 item 4): a simulated linear motion whose
// STAR poses carry a known error is trained (`cugmm train`), its poses refined against each particle's
// decoded model (`cugmm refine-pose RUN`), and trained again with them (`train --poses-from`). Prints and
// writes as JSON the pose errors against the truth and the latent accuracy |Spearman(PC1, truth)|
// (engine/latent_metrics.h) before and after. Runs the `cugmm` program (--cugmm, default beside this
// benchmark's directory), as a user would. --against neutral refines against the neutral model instead of
// the run's decoder; a first training already in --dir (run1/run.json) is reused.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <unistd.h>

#include "bench/common.h"
#include "core/error.h"
#include "core/log.h"
#include "engine/latent_metrics.h"
#include "engine/residue_model.h"
#include "engine/simulate_system.h"
#include "engine/train_outputs.h"
#include "io/particles.h"

using namespace cugmm;
namespace fs = std::filesystem;

namespace {

double run(const std::string& cmd) {
  const auto t0 = std::chrono::steady_clock::now();
  std::printf("$ %s\n", cmd.c_str());
  std::fflush(stdout);
  if (std::system(cmd.c_str()) != 0) throw Error("failed: " + cmd);
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double latent_score(const std::string& latent_txt, int d, const std::vector<double>& truth) {
  const std::vector<float> z = read_latent_txt(latent_txt, d);
  return linear_motion_score(Matrix(truth.size(), size_t(d), std::vector<double>(z.begin(), z.end())), truth);
}

std::vector<ParticlePose> poses_in(const std::string& star) {
  io::ParticleReadOptions ro;
  ro.check_images = false;
  std::vector<ParticlePose> p;
  for (const io::Particle& q : io::read_particles(star, ro).particles)
    p.push_back({q.rot, q.tilt, q.psi, q.origin_x, q.origin_y});
  return p;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    TruthSimOptions o;
    o.count = 400;
    o.box = 40;
    o.pixel = 4.0;
    o.snr = 2.0;
    o.pose_error_deg = 3;
    o.shift_error_px = 1.0;
    o.consensus = false;
    o.seed = 7;
    std::string cugmm = (fs::path(argv[0]).parent_path() / ".." / "cugmm").string(), out = "bench_refine_retrain.json";
    std::string dir, train = "--epochs 40 --batch 32 --lr 1e-3 --latent 2 --noise 1 --latent-reg 1e-4",
                refine = "--bands 16,10,8 --search 2,1", against = "decoder";
    for (int i = 1; i < argc; ++i) {
      std::string a = argv[i];
      auto next = [&] { return std::string(i + 1 < argc ? argv[++i] : ""); };
      if (a == "--count") o.count = std::stoi(next());
      else if (a == "--snr") o.snr = std::stod(next());
      else if (a == "--pose-error") o.pose_error_deg = std::stod(next());
      else if (a == "--shift-error") o.shift_error_px = std::stod(next());
      else if (a == "--train") train = next();
      else if (a == "--refine") refine = next();
      else if (a == "--cugmm") cugmm = next();
      else if (a == "--against") against = next();
      else if (a == "--dir") dir = next();
      else if (a == "--out") out = next();
      else {
        std::fprintf(stderr, "usage: bench_refine_retrain [--count N] [--snr S] [--pose-error DEG] [--shift-error PX] "
                             "[--train 'train options'] [--refine 'refine-pose options'] [--against decoder|neutral] "
                             "[--cugmm PATH] [--dir DIR] "
                             "[--out FILE]\n");
        return 2;
      }
    }
    if (dir.empty()) dir = (fs::temp_directory_path() / ("bench_refine_retrain_" + std::to_string(::getpid()))).string();
    fs::create_directories(dir);
    set_quiet(true);
    const HeteroSystem sys = builtin_system("linear");
    const SimulatedTruth truth = simulate_system(sys, o, dir);
    io::write_model(dir + "/neutral.txt", residue_model(sys, o.box, o.pixel));
    std::vector<double> state;
    for (const auto& s : truth.state) state.push_back(s[0]);
    const int d = 2;
    const std::string common = " --model " + dir + "/neutral.txt --device cpu " + train;
    if (against != "decoder" && against != "neutral") throw Error("--against: decoder or neutral");
    const bool reuse = fs::exists(dir + "/run1/run.json");
    const double t1 = reuse ? 0 : run(cugmm + " train --particles " + truth.star + common + " --out " + dir + "/run1 > " +
                                       dir + "/train1.log 2>&1");
    const std::string refined = dir + "/refined_" + against + ".star", run2 = dir + "/run2_" + against;
    const double t2 = run(cugmm + " refine-pose " + (against == "decoder" ? dir + "/run1" : "--model " + dir + "/neutral.txt") +
                          " --particles " + truth.star + " --out " + refined + " --device cpu " + refine + " > " + dir +
                          "/refine_" + against + ".log 2>&1");
    const double t3 = run(cugmm + " train --particles " + truth.star + common + " --poses-from " + refined + " --out " +
                          run2 + " > " + run2 + ".log 2>&1");
    const PoseErrors e0 = pose_errors(sys, o, poses_in(truth.star)), e1 = pose_errors(sys, o, poses_in(refined));
    const double s1 = latent_score(dir + "/run1/latent.txt", d, state), s2 = latent_score(run2 + "/latent.txt", d, state);
    std::printf("linear motion, box %d at %.1f Å, %d particles, SNR %g, STAR error %.2f degrees / %.2f px RMS\n"
                "  train (STAR poses): |Spearman(PC1, truth)| %.3f (%.0f s)\n"
                "  refine-pose against %s: %.2f degrees / %.2f px RMS (%.0f s)\n"
                "  train --poses-from the refined poses: |Spearman(PC1, truth)| %.3f (%.0f s)\n",
                o.box, o.pixel, o.count, o.snr, e0.deg, e0.px, s1, t1,
                against == "decoder" ? "each particle's decoded model" : "the neutral model", e1.deg, e1.px, t2, s2, t3);
    nlohmann::json doc;
    doc["machine"] = bench::machine();
    doc["setup"] = {{"system", "linear"}, {"box", o.box}, {"pixel", o.pixel}, {"particles", o.count}, {"snr", o.snr},
                    {"pose_error_deg", o.pose_error_deg}, {"shift_error_px", o.shift_error_px}, {"seed", o.seed},
                    {"train", train}, {"refine", refine}, {"against", against}};
    doc["star_poses"] = {{"rms_angle_deg", e0.deg}, {"rms_shift_px", e0.px}, {"latent_spearman_pc1", s1}, {"train_s", t1}};
    doc["refined_poses"] = {{"rms_angle_deg", e1.deg}, {"rms_shift_px", e1.px}, {"latent_spearman_pc1", s2},
                            {"refine_s", t2}, {"train_s", t3}};
    bench::write_json(out, doc);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_refine_retrain: %s\n", e.what());
    return 1;
  }
}
