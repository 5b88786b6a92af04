// `cugmm score`: how well one or more models explain each particle (the FRC score the engine trains on).
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "cli/command.h"
#include "cli/files.h"
#include "core/error.h"
#include "engine/particle_cache.h"
#include "engine/score.h"
#include "io/atomic_file.h"
#include "io/model.h"
#include "io/text.h"
#include "io/plot.h"

namespace fs = std::filesystem;

namespace cugmm::cli {

static std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) if (!item.empty()) out.push_back(item);
  return out;
}

static int run_score(Command& c) {
  CacheOptions o;
  std::string models, out, cache_path, cache_dir;
  double minres = kDefaultMinRes, maxres = 0;
  c.text("--models", models, "model files, comma-separated (native, PDB or mmCIF)")->required();
  c.text("--particles", o.particles, "particle STAR or cryoSPARC .cs file")->required();
  c.text("--out", out, "output directory: scores.csv (per particle), scores.png (mean FRC per model)")->required();
  c.text("--root", o.root, "directory that relative image paths are relative to");
  c.text("--cache", cache_path, "particle cache (.cugmm-cache) as `cugmm preprocess` built it; made with default "
                                "options when missing (default: OUT/<particle file's name>.cugmm-cache)");
  c.text("--cache-dir", cache_dir, "directory for the particle cache instead of OUT");
  c.number("--minres", minres, "lowest resolution in the score, Å (0: from ring 1)", 0, 1e4);
  c.number("--maxres", maxres, "highest resolution in the score, Å (0: Nyquist)", 0, 1e4);
  c.device_options();
  if (c.parse()) return 0;
  o.accept_any_options = true;  // score the particles as they were preprocessed
  std::vector<std::string> paths = split_commas(models);
  if (paths.empty()) throw Error("--models names no file");
  if (!cache_path.empty() && !cache_dir.empty()) throw Error("give --cache or --cache-dir, not both");
  if (minres > 0 && maxres > 0 && minres <= maxres)
    throw Error("--minres (" + std::to_string(minres) + " Å) must be a lower resolution, i.e. more Å, than --maxres (" +
                std::to_string(maxres) + " Å)");
  require_directory_name("--out", out);
  // The cache goes under the output (or where the user says), never beside the user's data: a RELION job
  // directory may be shared or read-only.
  if (cache_path.empty()) cache_path = ((cache_dir.empty() ? fs::path(out) : fs::path(cache_dir)) /
                                        fs::path(o.particles).stem()).string() + ".cugmm-cache";
  require_extension("--cache", cache_path, {".cugmm-cache"});
  const std::string csv_path = (fs::path(out) / "scores.csv").string(), png = (fs::path(out) / "scores.png").string();
  FileSpec files{{o.particles}, {csv_path, png, cache_path}, {out}};
  if (!cache_dir.empty()) files.output_dirs.push_back(cache_dir);
  files.inputs.insert(files.inputs.end(), paths.begin(), paths.end());
  check_files(files, false);
  // Native models are read before the output directory is made and the cache built (the long step);
  // pseudo-atoms need the cache's grid.
  for (const std::string& p : paths) {
    const std::string e = io::lower_extension(p);
    if (e == ".txt" || e == ".gmm") io::read_model(p);
  }
  check_files(files);
  const Device device = c.device();

  ParticleCache cache = open_particle_cache(o, cache_path, true);
  std::vector<ScoreResult> results;
  io::Plot plot;
  plot.title("mean FRC of model and particles").xlabel("spatial frequency (Å⁻¹)").ylabel("FRC");
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
  io::write_file_atomic(csv_path, csv.str());
  plot.write_png(png);
  std::printf("wrote %s and %s\n", csv_path.c_str(), png.c_str());
  return 0;
}

static RegisterCommand reg("score", "FRC score of models against every particle", run_score);

}  // namespace cugmm::cli
