// `cugmm score`: how well one or more models explain each particle (the FRC score the engine trains on).
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "cli/args.h"
#include "core/error.h"
#include "engine/particle_cache.h"
#include "engine/score.h"
#include "io/atomic_file.h"
#include "io/model.h"
#include "io/plot.h"

namespace cugmm::cli {

static std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) if (!item.empty()) out.push_back(item);
  return out;
}

static int run_score(Args& args) {
  CacheOptions o;
  std::string models = args.required("models", "model files, comma-separated (native, PDB or mmCIF)");
  o.particles = args.required("particles", "particle STAR or cryoSPARC .cs file");
  std::string out = args.required("out", "per-particle scores (.csv); a mean-FRC plot is written beside it (.png)");
  o.root = args.str("root", "", "directory that relative image paths are relative to");
  std::string cache_path = args.str("cache", "", "particle cache as `cugmm preprocess` built it (default: beside "
                                                 "the particles; made with default options when missing)");
  o.accept_any_options = true;  // score the particles as they were preprocessed
  double minres = args.num("minres", kDefaultMinRes, "lowest resolution in the score, Å");
  double maxres = args.num("maxres", 0, "highest resolution in the score, Å (0: Nyquist)");
  Device device = args.device();
  if (args.done("cugmm score --models A[,B...] --particles STAR --out scores.csv", 0)) return 0;

  ParticleCache cache = open_particle_cache(o, cache_path, true);
  std::vector<std::string> paths = split_commas(models);
  CUGMM_REQUIRE(!paths.empty(), "--models names no file");
  std::vector<ScoreResult> results;
  io::Plot plot;
  plot.title("mean FRC of model and particles").xlabel("spatial frequency (1/A)").ylabel("FRC");
  for (const std::string& p : paths) {
    io::GaussianModel m = io::load_any_model(p, cache.box(), cache.pixel_size());
    results.push_back(score_particles(cache, m, device, minres, maxres));
    std::printf("%s: mean score %.4f over %zu particles\n", p.c_str(), results.back().mean_score, cache.count());
    std::vector<double> f, v;
    const FourierBand& b = cache.band();
    // Only the rings the score counts (the others are reported as 0).
    for (size_t r = size_t(results.back().ring_min); r < results.back().mean_frc.size(); ++r) {
      f.push_back(r / (b.box * b.pixel_size));
      v.push_back(results.back().mean_frc[r]);
    }
    plot.add_series(std::filesystem::path(p).filename().string(), f, v);
  }
  std::ostringstream csv;
  csv << "particle";
  for (auto& p : paths) csv << "," << p;
  csv << ",best\n";
  for (size_t i = 0; i < cache.count(); ++i) {
    csv << cache.particle(i).source_row;
    size_t best = 0;
    for (size_t k = 0; k < results.size(); ++k) {
      csv << "," << results[k].score[i];
      if (results[k].score[i] > results[best].score[i]) best = k;
    }
    csv << "," << best + 1 << "\n";
  }
  io::write_file_atomic(out, csv.str());
  std::string png = out.substr(0, out.rfind('.')) + ".png";
  plot.write_png(png);
  std::printf("wrote %s and %s\n", out.c_str(), png.c_str());
  return 0;
}

static RegisterCommand reg("score", "FRC score of models against every particle", run_score);

}  // namespace cugmm::cli
