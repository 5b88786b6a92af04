// `cugmm embed RUN --particles STAR|CS --out DIR`: any particle set through a trained run's encoder
// (engine/trainer.h embed_particles), with the run's feature normalisation: latent.txt and particles.star
// as `cugmm train` writes them.
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "cli/command.h"
#include "cli/files.h"
#include "cli/latent_estimate.h"
#include "cli/ranks.h"
#include "core/error.h"
#include "core/log.h"
#include "engine/gaussian_mask.h"
#include "engine/particle_cache.h"
#include "engine/signal_subtraction.h"
#include "engine/symmetry.h"
#include "engine/train_outputs.h"
#include "engine/trainer.h"
#include "io/particles.h"

namespace fs = std::filesystem;

namespace cugmm::cli {

static int run_embed(Command& c) {
  std::string run, out, cache_path;
  CacheOptions co;
  int batch = 64;
  c.text("RUN", run, "a `cugmm train` run directory (its model.ckpt)")->required();
  c.text("--particles", co.particles, "particle STAR or cryoSPARC .cs file")->required();
  c.text("--out", out, "output directory: latent.txt, particles.star (and the cache and features)")->required();
  c.text("--root", co.root, "directory that relative image paths are relative to");
  c.text("--cache", cache_path, "particle cache (default: OUT/particles.cugmm-cache)");
  c.integer("--batch", batch, "particles per batch", 1, 4096);
  LatentEstimateOptions le;
  le.declare(c);
  long long seed = 1;
  c.integer("--seed", seed, "random seed of the posterior's samples", 0, (1ll << 62));
  c.device_options();
  if (c.parse()) return 0;
  le.finish(uint64_t(seed), batch);
  require_directory_name("--out", out);
  const std::string ckpt = (fs::path(run) / "model.ckpt").string();
  if (cache_path.empty()) cache_path = (fs::path(out) / "particles.cugmm-cache").string();
  require_extension("--cache", cache_path, {".cugmm-cache"});
  FileSpec files{{co.particles, ckpt},
                 {cache_path, (fs::path(out) / "latent.txt").string(), (fs::path(out) / "particles.star").string(),
                  (fs::path(out) / "features.cugmm-features").string()},
                 {out}};
  // A focused run (train --focus-mask, --subtract neutral or decoded) was trained on subtracted particles:
  // these are subtracted the same way (its run.json names the whole model, the mask, the recentring and the
  // run whose decoded models were subtracted, whose latent points must include these particles).
  nlohmann::json focus;
  {
    std::ifstream rj(fs::path(run) / "run.json");
    const nlohmann::json runinfo = rj ? nlohmann::json::parse(rj, nullptr, false) : nlohmann::json();
    if (runinfo.is_object() && runinfo.contains("focus") && runinfo["focus"].value("subtract", "none") != "none") {
      focus = runinfo["focus"];
      focus["model"] = runinfo.value("model", "");
      files.inputs.push_back(focus["model"].get<std::string>());
      files.inputs.push_back(focus.value("mask", ""));
      for (const char* f : {"model.ckpt", "latent.txt", "particles.star", "run.json"})
        if (focus.contains("decoded_run")) files.inputs.push_back((fs::path(focus["decoded_run"].get<std::string>()) / f).string());
    }
  }
  const std::string sub_path = fs::path(cache_path).replace_extension(".subtracted.cugmm-cache").string();
  if (!focus.is_null()) files.outputs.push_back(sub_path);
  if (le.use_posterior) files.outputs.push_back((fs::path(out) / "latent_encoder.txt").string());
  check_files(files, false);
  const Device device = c.device();
  Context cx(device);
  TrainedModel m = load_trained(ckpt, cx);
  io::ParticleReadOptions ropt;
  ropt.root = co.root;
  io::ParticleSet set = io::read_particles(co.particles, ropt);
  refuse_premultiplied(set, m.config.ctf);
  // The run's working grid: the particles must reach the same box and pixel size.
  const WorkingGrid native = choose_working_grid(set, 0);
  if (std::abs(native.box * native.pixel - m.cache_box * m.cache_pixel) > 1e-3 * m.cache_box * m.cache_pixel)
    throw InputError(co.particles, "", "the particles' field of view (" + std::to_string(native.box) + " x " +
                                           std::to_string(native.pixel) + " Å) differs from the run's (" +
                                           std::to_string(m.cache_box) + " x " + std::to_string(m.cache_pixel) + " Å)");
  // A run focused with --subtract decoded SOURCE: SOURCE's latent points must include these particles.
  const SymmetryGroup group = make_symmetry_group(m.config.symmetry);
  SubtractionSpec spec;
  io::GaussianModel full;
  if (!focus.is_null()) {
    full = io::load_any_model(focus["model"].get<std::string>(), m.neutral.box_size, m.neutral.pixel_size);
    if (focus.contains("decoded_run"))
      use_decoded_models(spec, cx, focus["decoded_run"].get<std::string>(), set, group.name, group.order(),
                         {m.cache_box, m.cache_pixel}, full);
  }
  check_files(files);
  co.box = m.cache_box;
  co.maxres = m.config.maxres;
  Comm& comm = c.comm();
  ParticleCache cache = open_cache_on_ranks(comm, co, cache_path);
  // A run trained with --sym sees every particle once per operator: so does its embedding (each copy
  // subtracted in its own frame when the run is focused).
  if (group.order() > 1) cache.expand(group.name, group.operators);
  if (!focus.is_null()) {
    // Every rank would write the subtracted cache under one name: focused runs are single-process for now.
    if (comm.size() > 1) throw Error("a focused run (--focus-mask) is embedded in one process, not under mpirun");
    spec.inside = gaussians_in_mask(focus["mask"].get<std::string>(), full);
    spec.ctf = m.config.ctf;
    spec.recentre = focus.value("recentre", false);
    spec.centre = mask_centre(focus["mask"].get<std::string>(), full);
    nlohmann::json report;
    cache = subtracted_cache(cx, cache, full, spec, sub_path, report);
  }
  std::vector<float> latent, score;
  embed_cache(m, cx, cache, ckpt, (fs::path(out) / "features.cugmm-features").string(), latent, score, batch, &comm);
  if (comm.rank() != 0) return 0;  // every rank holds every row; one writes them
  const std::vector<int64_t> rows = output_rows(cache);
  if (le.use_posterior) {  // both files only once the posterior has succeeded
    const std::vector<float> encoder_points = latent;
    const ParticleBatcher batcher(cache, training_band(cache, m.config.minres, m.config.maxres), m.config.ctf);
    apply_latent_estimate(le, m, cx, batcher, latent);
    write_latent_txt((fs::path(out) / "latent_encoder.txt").string(), encoder_points, m.config.latent, rows,
                     cache.copies());
  }
  write_latent_txt((fs::path(out) / "latent.txt").string(), latent, m.config.latent, rows, cache.copies());
  write_latent_star((fs::path(out) / "particles.star").string(),
                    group.order() > 1 ? expand_particle_set(set, group) : set, latent, score, m.config.latent, rows);
  log_info(latent_diagnostic_line(latent_diagnostic(latent, m.config.latent)));
  std::printf("wrote %s/latent.txt and %s/particles.star (%zu particles%s)\n", out.c_str(), out.c_str(), cache.count(),
              group.order() > 1 ? (", " + group.name + " copies").c_str() : "");
  return 0;
}

static RegisterCommand reg("embed", "latent points of any particle set through a trained encoder", run_embed);

}  // namespace cugmm::cli
