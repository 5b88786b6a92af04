// `cugmm demo`: the main job on the built-in example, as the sequence of commands a user would type
// (each is printed before it runs). Needs no download and no GPU:
//   simulate (a domain that slides and a lid that comes and goes, from built-in atoms, with the oracle
//   reference) -> info -> preprocess -> fit-map (the neutral model of the consensus map) -> score and
//   project the neutral model against the particles -> train -> decode -> summary.json with the trained
//   latent's accuracy beside the oracle reference's.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/command.h"
#include "cli/files.h"
#include "core/error.h"
#include "engine/hetero_system.h"
#include "engine/oracle_reference.h"
#include "engine/train_outputs.h"
#include "io/atomic_file.h"

namespace fs = std::filesystem;

namespace cugmm::cli {

namespace {

void step(const std::vector<std::string>& argv) {
  std::string line = "$ cugmm";
  for (auto& a : argv) line += " " + a;
  std::printf("\n%s\n", line.c_str());
  std::fflush(stdout);
  if (run_command(argv) != 0) throw Error("demo step failed: " + line);
}

nlohmann::json read_json(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw Error("demo: " + path + " was not written");
  return nlohmann::json::parse(f);
}

// The mean of column `col` of a CSV with a header line (scores.csv: the neutral model's score per particle).
double column_mean(const std::string& path, int col) {
  std::ifstream f(path);
  std::string line;
  std::getline(f, line);
  double sum = 0;
  size_t n = 0;
  while (std::getline(f, line)) {
    std::stringstream ss(line);
    std::string cell;
    for (int i = 0; i <= col && std::getline(ss, cell, ','); ++i) {}
    sum += std::stod(cell);
    ++n;
  }
  CUGMM_REQUIRE(n > 0, path + " holds no rows");
  return sum / double(n);
}

// The trained latent's figures, scored as the oracle reference's are (engine/oracle_reference.h), against
// the truth table the simulator wrote (rows in STAR order, as latent.txt's).
nlohmann::json trained_figures(const std::string& latent_txt, int d, const std::string& truth_csv) {
  BootstrapOptions bo;
  bo.resamples = 100;
  nlohmann::json out = nlohmann::json::array();
  for (const MetricFigure& m : score_latent_file(builtin_system("composition"), latent_txt, d, truth_csv, bo))
    out.push_back({{"metric", m.metric}, {"truth", m.motion},
                   {"value", {{"value", m.value.value}, {"lo95", m.value.lo}, {"hi95", m.value.hi}}}});
  return out;
}

}  // namespace

static int run_demo(Command& c) {
  std::string out = "demo_out", device = "auto";
  int count = 2000, threads_n = 0, ref_particles = 300, epochs = 20;
  double snr = 0.1;
  c.text("--out", out, "output directory");
  c.integer("--count", count, "particles to simulate", 20, 1'000'000);
  c.number("--snr", snr, "signal-to-noise ratio of the simulated particles", 0, 1e6);
  c.integer("--reference-particles", ref_particles, "particles the oracle reference scores", 10, 1'000'000);
  c.integer("--epochs", epochs, "training epochs", 1, 100000);
  c.text("--device", device, "where to compute (auto: a GPU when there is one)")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  c.integer("--threads", threads_n, "CPU threads (0 = all cores)", 0, max_threads());
  if (c.parse()) return 0;
  const std::string threads = std::to_string(threads_n);
  require_directory_name("--out", out);
  check_files({{}, {}, {out}});
  const std::vector<std::string> dev = {"--device", device, "--threads", threads};
  auto with_dev = [&](std::vector<std::string> v) { v.insert(v.end(), dev.begin(), dev.end()); return v; };

  const std::string data = out + "/data", star = data + "/particles.star", cache = out + "/particles.cugmm-cache";
  step(with_dev({"simulate", "--system", "composition", "--out", data, "--count", std::to_string(count), "--box", "64",
                 "--angpix", "3", "--snr", std::to_string(snr), "--true-maps", "3", "--reference",
                 "--reference-particles", std::to_string(std::min(ref_particles, count)), "--reference-poses", "8"}));
  step({"info", star});
  step({"preprocess", "--particles", star, "--out", cache, "--threads", threads});  // CPU work only
  // About one Gaussian per residue of the built-in example (386 residues): the suggestion, 5x faster
  // training than the volume rule's 2,182, and no less accurate (docs/accuracy.md).
  step(with_dev({"fit-map", data + "/consensus.mrc", "--half-maps", data + "/consensus_half1.mrc",
                 data + "/consensus_half2.mrc", "--out", out + "/neutral", "--ngauss", "400"}));
  step(with_dev({"score", "--models", out + "/neutral/model.txt", "--particles", star, "--cache", cache, "--out",
                 out + "/scores"}));
  step(with_dev({"project", "--model", out + "/neutral/model.txt", "--particles", star, "--out",
                 out + "/neutral_projections.mrcs", "--ctf"}));
  // Training with the defaults (docs/accuracy.md: how they were measured).
  const std::string run = out + "/run";
  step(with_dev({"train", "--particles", star, "--model", out + "/neutral/model.txt", "--cache", cache, "--out", run,
                 "--epochs", std::to_string(epochs)}));
  step(with_dev({"decode", run, "--z", "0 0 0 0", "--out", out + "/decoded"}));

  // What the run found, beside what could be found (the oracle reference).
  nlohmann::json summary;
  summary["particles"] = count;
  summary["snr"] = snr;
  const nlohmann::json sim = read_json(data + "/simulation.json"), fit = read_json(out + "/neutral/fit.json");
  summary["pose_error_rms_deg"] = sim["pose_error_rms_deg"];
  summary["oracle_reference"] = read_json(data + "/oracle.json")["figures"];
  summary["neutral_model"] = {{"gaussians", fit["gaussians"]},
                              {"fsc_0.5_vs_consensus_A", fit["resolution_fsc_0.5"]},
                              {"fsc_0.143_vs_consensus_A", fit["resolution_fsc_0.143"]},
                              {"stop_rule", fit["stop_rule"]["verdict"]}};
  summary["neutral_model_mean_frc_score"] = column_mean(out + "/scores/scores.csv", 1);
  summary["trained_latent"] = trained_figures(run + "/latent.txt", 4, data + "/particles_truth.csv");
  const nlohmann::json runj = read_json(run + "/run.json");
  if (runj.contains("latent_diagnostic")) summary["trained_latent_diagnostic"] = runj["latent_diagnostic"];
  io::write_file_atomic(out + "/summary.json", summary.dump(2) + "\n");
  std::printf("\nsummary (%s/summary.json):\n%s\n", out.c_str(), summary.dump(2).c_str());
  return 0;
}

static RegisterCommand reg("demo", "the main job on the built-in example (no download, no GPU needed)", run_demo);

}  // namespace cugmm::cli
