// `cugmm demo`: the main job on the built-in example, as the sequence of commands a user would type
// (each is printed before it runs). Needs no download and no GPU. Until training lands, this is the most
// complete pipeline there is: simulate two conformations, cache, score, project, reconstruct, compare
// against the ground truth.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/command.h"
#include "cli/files.h"
#include "core/error.h"
#include "engine/example_model.h"
#include "engine/fsc.h"
#include "io/atomic_file.h"
#include "io/model.h"
#include "io/mrc.h"

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

// Fraction of particles whose best-scoring model (the csv's last column) is the one they show: particle
// row r shows model r % 2 (engine/simulate.h), rows being 0-based in the csv.
double classification_accuracy(const std::string& csv) {
  std::ifstream f(csv);
  std::string line;
  std::getline(f, line);
  size_t n = 0, right = 0;
  while (std::getline(f, line)) {
    long row = std::strtol(line.c_str(), nullptr, 10);
    int best = int(std::strtol(line.c_str() + line.rfind(',') + 1, nullptr, 10));
    right += (best - 1) == int(row % 2);
    ++n;
  }
  CUGMM_REQUIRE(n > 0, csv + " holds no scores");
  return double(right) / n;
}

// FSC between a reconstruction and the ground-truth map: resolution at 0.5 in Å.
double fsc_to_truth(const std::string& recon, const std::string& truth) {
  io::Image a = io::read_mrc(recon), b = io::read_mrc(truth);
  CUGMM_REQUIRE(a.nx == b.nx && a.voxels() == b.voxels(), "demo: maps of different sizes");
  return fsc(a.data.data(), b.data.data(), a.nx, a.pixel_size).resolution_at(0.5);
}

}  // namespace

static int run_demo(Command& c) {
  std::string out = "demo_out", device = "auto";
  int count = 2000, threads_n = 0;
  double snr = 0.5;
  c.text("--out", out, "output directory");
  c.integer("--count", count, "particles to simulate", 2, 1'000'000);
  c.number("--snr", snr, "signal-to-noise ratio of the simulated particles", 0, 1e6);
  c.text("--device", device, "where to compute (auto: a GPU when there is one)")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  c.integer("--threads", threads_n, "CPU threads (0 = all cores)", 0, max_threads());
  if (c.parse()) return 0;
  const std::string threads = std::to_string(threads_n);
  require_directory_name("--out", out);
  check_files({{}, {}, {out}});
  const std::vector<std::string> dev = {"--device", device, "--threads", threads};
  auto with_dev = [&](std::vector<std::string> v) { v.insert(v.end(), dev.begin(), dev.end()); return v; };

  // 1. The built-in molecule in two conformations, in the formats users open.
  ExampleMolecule mol = make_example_molecule();
  const std::string open = out + "/model_open.txt", closed = out + "/model_closed.txt";
  io::write_model(open, mol.open);
  io::write_model(closed, mol.closed);
  io::write_pseudo_atoms(out + "/model_open.cif", mol.open);
  io::write_cmm(out + "/model_open.cmm", mol.open);
  io::write_bild_arrows(out + "/motion.bild", mol.open, mol.closed, 1.0);
  std::printf("built-in molecule: %zu Gaussians, box %d at %.1f Å/px; conformation B swings domain 2 by %.0f deg\n",
              mol.open.size(), mol.open.box_size, mol.open.pixel_size, mol.hinge_degrees);

  // 2-8. The pipeline, command by command.
  const std::string star = out + "/particles.star";
  step(with_dev({"simulate", "--models", open + "," + closed, "--out", out, "--count", std::to_string(count),
                 "--snr", std::to_string(snr)}));
  step({"info", star});
  step({"preprocess", "--particles", star, "--out", out + "/particles.cugmm-cache", "--threads", threads});  // CPU only
  step(with_dev({"score", "--models", open + "," + closed, "--particles", star, "--cache",
                 out + "/particles.cugmm-cache", "--out", out + "/scores"}));
  step(with_dev({"project", "--model", open, "--particles", star, "--out", out + "/projections_open.mrcs", "--ctf"}));
  step({"render", "--model", open, "--out", out + "/truth_open.mrc", "--threads", threads});  // CPU only
  step({"render", "--model", closed, "--out", out + "/truth_closed.mrc", "--threads", threads});
  for (const char* cls : {"1", "2"})
    step(with_dev({"reconstruct", "--particles", star, "--subset-column", "rlnClassNumber", "--subset-values", cls,
                   "--out", out + (cls[0] == '1' ? "/recon_open" : "/recon_closed")}));

  // The numbers that say whether it worked, against the ground truth.
  nlohmann::json summary;
  summary["particles"] = count;
  summary["snr"] = snr;
  summary["score_classification_accuracy"] = classification_accuracy(out + "/scores/scores.csv");
  summary["fsc05_open_recon_vs_open_truth_A"] = fsc_to_truth(out + "/recon_open/full.mrc", out + "/truth_open.mrc");
  summary["fsc05_open_recon_vs_closed_truth_A"] = fsc_to_truth(out + "/recon_open/full.mrc", out + "/truth_closed.mrc");
  summary["fsc05_closed_recon_vs_closed_truth_A"] =
      fsc_to_truth(out + "/recon_closed/full.mrc", out + "/truth_closed.mrc");
  io::write_file_atomic(out + "/summary.json", summary.dump(2) + "\n");
  std::printf("\nsummary (%s/summary.json):\n%s\n", out.c_str(), summary.dump(2).c_str());
  return 0;
}

static RegisterCommand reg("demo", "the main job on the built-in example (no download, no GPU needed)", run_demo);

}  // namespace cugmm::cli
