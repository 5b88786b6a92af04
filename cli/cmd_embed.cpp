// `cugmm embed RUN --particles STAR|CS --out DIR`: any particle set through a trained run's encoder
// (engine/trainer.h embed_particles), with the run's feature normalisation: latent.txt and particles.star
// as `cugmm train` writes them. The job is the library API's (engine/api/workflows.h), as Engine::embed.
#include <cstdio>
#include <filesystem>

#include "cli/command.h"
#include "cli/files.h"
#include "cli/latent_estimate.h"
#include "core/error.h"
#include "core/log.h"
#include "engine/api/session.h"
#include "engine/api/workflows.h"
#include "engine/particle_cache.h"
#include "engine/symmetry.h"
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
  // A focused run (train --focus-mask, --subtract neutral) was trained on subtracted particles: these are
  // subtracted the same way (its run.json names the whole model, the mask and the recentring).
  const nlohmann::json focus = focused_run(run);
  if (!focus.is_null()) {
    files.inputs.push_back(focus["model"].get<std::string>());
    files.inputs.push_back(focus.value("mask", ""));
    for (const char* f : {"model.ckpt", "latent.txt", "particles.star", "run.json"})
      if (focus.contains("decoded_run")) files.inputs.push_back((fs::path(focus["decoded_run"].get<std::string>()) / f).string());
    files.outputs.push_back(subtracted_cache_path(cache_path));
  }
  if (le.use_posterior) files.outputs.push_back((fs::path(out) / "latent_encoder.txt").string());
  check_files(files, false);
  EngineOptions eo;
  eo.device = device_name(c.device());
  Engine::Impl engine(eo);
  EngineCall call(engine);
  TrainedModel m = load_trained(ckpt, call.cx());
  io::ParticleReadOptions ropt;
  ropt.root = co.root;
  io::ParticleSet set = io::read_particles(co.particles, ropt);
  check_embedding(m, set, co.particles);
  check_files(files);
  EmbedRequest rq;
  rq.cache = co;
  rq.checkpoint = ckpt;
  rq.cache_path = cache_path;
  rq.batch = batch;
  rq.focus = focus;
  rq.estimate = le;
  rq.comm = &c.comm();
  const EmbedOutcome o = run_embedding(m, call.cx(), set, rq, out);
  if (!o.writer) return 0;
  const SymmetryGroup group = make_symmetry_group(m.config.symmetry);
  std::printf("wrote %s/latent.txt and %s/particles.star (%zu particles%s)\n", out.c_str(), out.c_str(), o.rows,
              group.order() > 1 ? (", " + group.name + " copies").c_str() : "");
  return 0;
}

static RegisterCommand reg("embed", "latent points of any particle set through a trained encoder", run_embed);

}  // namespace cugmm::cli
