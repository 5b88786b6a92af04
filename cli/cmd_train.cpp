// `cugmm train`: particles + neutral model -> a latent point per particle and a decoder (engine/trainer.h),
// in a run directory (engine/train_outputs.h). Every input is checked before any work.
#include <chrono>
#include <csignal>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "cli/command.h"
#include "cli/files.h"
#include "cli/train_options.h"
#include "cli/limits.h"
#include "core/error.h"
#include "core/log.h"
#include "engine/particle_cache.h"
#include "engine/train_outputs.h"
#include "engine/trainer.h"
#include "io/atomic_file.h"
#include "io/model.h"
#include "io/mrc.h"
#include "io/particles.h"

namespace fs = std::filesystem;

namespace cugmm::cli {

namespace {

extern "C" void on_sigint(int) { stop_requested() = true; }

}  // namespace

// The model must be made for the particles' grid (box and pixel size of the finest optics group).
void require_model_on_grid(const io::GaussianModel& m, const std::string& model_path, int box, double pixel,
                           const std::string& particles) {
  if (m.box_size != box || std::abs(m.pixel_size - pixel) > 1e-3 * pixel)
    throw InputError(model_path, "", "the model is for a box of " + std::to_string(m.box_size) + " pixels of " +
                                         std::to_string(m.pixel_size) + " Å; the particles in " + particles +
                                         " have " + std::to_string(box) + " pixels of " + std::to_string(pixel) +
                                         " Å");
}

static int run_train(Command& c) {
  TrainOptions to;
  TrainConfig& cfg = to.config;
  CacheOptions& co = to.cache;
  std::string model_path, out, cache_path;
  bool resume = false, plan_only = false;
  c.text("--particles", co.particles, "particle STAR or cryoSPARC .cs file")->required();
  c.text("--model", model_path, "the neutral model (native, PDB or mmCIF) on the particles' grid")->required();
  c.text("--out", out, "run directory: latent.txt, particles.star, model.ckpt, loss.txt/.png, run.json")->required();
  c.text("--cache", cache_path, "particle cache (default: OUT/particles.cugmm-cache)");
  to.declare(c);
  c.flag("--resume", resume, "continue the run in OUT from its checkpoint (same settings; --epochs may grow)");
  c.flag("--plan", plan_only, "print the memory plan and stop");
  c.device_options();
  if (c.parse()) return 0;
  to.finish(c);
  require_directory_name("--out", out);
  if (cache_path.empty()) cache_path = (fs::path(out) / "particles.cugmm-cache").string();
  require_extension("--cache", cache_path, {".cugmm-cache"});
  std::vector<std::string> names = {"latent.txt", "particles.star", "model.ckpt", "loss.txt", "loss.png", "run.json",
                                    "features.cugmm-features", "neutral.txt"};
  FileSpec files{{co.particles, model_path}, {cache_path}, {out}};
  for (auto& n : names) files.outputs.push_back((fs::path(out) / n).string());
  for (const auto& f : to.inputs()) files.inputs.push_back(f);
  check_files(files, false);
  if (resume && !fs::exists(fs::path(out) / "model.ckpt"))
    throw Error("--resume: " + (fs::path(out) / "model.ckpt").string() + " does not exist");

  // Inputs, before any work: the particles' grid, the model on it, the selection, the split.
  io::ParticleReadOptions ropt;
  ropt.root = co.root;
  io::ParticleSet set = io::read_particles(co.particles, ropt);
  std::vector<std::string> stacks;
  for (const auto& p : set.particles) stacks.push_back(p.image_file);
  refuse_overwriting(files.outputs, stack_candidates(stacks, co.particles, co.root), "a stack " + co.particles + " names");
  refuse_premultiplied(set, cfg.ctf);
  const WorkingGrid native = choose_working_grid(set, 0);
  io::GaussianModel model = io::load_any_model(model_path, native.box, native.pixel);
  require_model_on_grid(model, model_path, native.box, native.pixel, co.particles);
  const int G = int(model.size());
  to.select_gaussians(model);
  size_t n_val = 0;
  for (size_t i = 0; i < set.particles.size(); ++i) n_val += is_validation(i, cfg.val_fraction);
  const size_t n_train = set.particles.size() - n_val;
  if (n_train < size_t(cfg.batch) || (cfg.val_fraction > 0 && n_val < 4))
    throw Error("too few particles: " + std::to_string(set.particles.size()) + " give " + std::to_string(n_train) +
                " for training and " + std::to_string(n_val) + " for validation (--val-fraction " +
                std::to_string(cfg.val_fraction) + "); training needs at least one batch (--batch " +
                std::to_string(cfg.batch) + ") and validation at least 4 (or --val-fraction 0)");
  const Device device = c.device();
  const WorkingGrid grid = choose_working_grid(set, co.box);
  {
    const int maxring = cfg.maxres > 0 ? std::min(grid.box / 2, int(grid.box * grid.pixel / cfg.maxres)) : grid.box / 2;
    size_t band_est = 0;
    for (int y = -grid.box / 2; y < grid.box / 2; ++y)
      for (int x = 0; x <= grid.box / 2; ++x) band_est += (x * x + y * y <= maxring * maxring);
    MemoryPlan plan = plan_memory(cfg, G, grid.box, band_est, set.particles.size());
    std::printf("memory plan on %s (G = %d, box %d, batch %d):\n%s\n", device_name(device), G, grid.box, cfg.batch,
                plan.text().c_str());
    if (plan_only) return 0;
    require_memory(plan, device);
  }
  check_files(files);

  const auto t0 = std::chrono::steady_clock::now();
  co.maxres = cfg.maxres;
  ParticleCache cache = open_particle_cache(co, cache_path, true);
  if (cache.count() != set.particles.size()) throw Error("the particle cache does not hold every particle");
  Context cx(device);
  Trainer trainer(cx, cache, model, cfg, out);
  io::write_model((fs::path(out) / "neutral.txt").string(), model);
  log_info("train: " + std::to_string(trainer.train_count()) + " particles, " + std::to_string(trainer.val_count()) +
           " for validation, " + std::to_string(G) + " Gaussians, on " + device_name(device));
  trainer.prepare_features(resume);
  auto prev = std::signal(SIGINT, on_sigint);
  bool done;
  try {
    done = trainer.train(resume);
  } catch (...) {
    std::signal(SIGINT, prev);
    if (!trainer.history().empty())
      write_loss((fs::path(out) / "loss.txt").string(), (fs::path(out) / "loss.png").string(), trainer.history());
    throw;
  }
  std::signal(SIGINT, prev);
  write_loss((fs::path(out) / "loss.txt").string(), (fs::path(out) / "loss.png").string(), trainer.history());
  if (!done) return 130;

  std::vector<float> latent, score;
  const auto t_embed = std::chrono::steady_clock::now();
  trainer.embed(latent, score);
  std::vector<int64_t> rows(cache.count());
  for (size_t i = 0; i < cache.count(); ++i) rows[i] = cache.particle(i).source_row;
  write_latent_txt((fs::path(out) / "latent.txt").string(), latent, cfg.latent, rows);
  write_latent_star((fs::path(out) / "particles.star").string(), set, latent, score, cfg.latent, rows);
  const double t_end = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  nlohmann::json diag = latent_diagnostic(latent, cfg.latent);
  log_info(latent_diagnostic_line(diag));

  nlohmann::json run;
  run["cugmm_version"] = "0.1.0";
  run["command"] = "train";
  run["particles"] = fs::absolute(co.particles).string();
  run["model"] = fs::absolute(model_path).string();
  run["config"] = cfg.to_json();
  if (!cfg.movable.empty()) {
    std::vector<int> mv;
    for (size_t j = 0; j < cfg.movable.size(); ++j) if (cfg.movable[j]) mv.push_back(int(j));
    run["movable_gaussians"] = mv;
  }
  run["gaussians"] = G;
  run["grid"] = {{"box", cache.box()}, {"pixel", cache.pixel_size()}, {"ring_min", trainer.batcher().band().ring_min},
                 {"ring_max", trainer.batcher().band().ring_max}};
  if (!trainer.ring_record().is_null()) run["score_ring_weights"] = trainer.ring_record();
  run["device"] = device_name(device);
  run["particles_count"] = cache.count();
  run["train_count"] = trainer.train_count();
  run["val_count"] = trainer.val_count();
  run["timings_s"] = {{"features", trainer.seconds_features}, {"training", trainer.seconds_training},
                      {"embed", std::chrono::duration<double>(std::chrono::steady_clock::now() - t_embed).count()},
                      {"total", t_end}};
  run["particle_steps_per_s_last_epoch"] = trainer.particle_steps_per_s;
  const FeatureNorm& nm = trainer.norm();
  auto stats = [](const std::vector<float>& v) {
    double lo = INFINITY, hi = -INFINITY, s = 0;
    size_t k = 0;
    for (float x : v) if (std::isfinite(x)) { lo = std::min(lo, double(x)); hi = std::max(hi, double(x)); s += x; ++k; }
    return nlohmann::json{{"min", lo}, {"max", hi}, {"mean", k ? s / k : 0.0}, {"finite", k}};
  };
  run["feature_normalisation"] = {{"file", "features.cugmm-features"},
                                  {"precision", feature_precision_name(cfg.feature_precision)},
                                  {"column_mean", stats(nm.mean)}, {"column_sd", stats(nm.sd)},
                                  {"full_arrays", "model.ckpt: norm.mean, norm.sd"}};
  run["memory_plan"] = nlohmann::json::array();
  for (const auto& it : trainer.memory_plan().items) run["memory_plan"].push_back({{"what", it.what}, {"bytes", it.bytes}});
  run["latent_diagnostic"] = diag;
  nlohmann::json hist = nlohmann::json::array();
  for (const auto& r : trainer.history())
    hist.push_back({{"epoch", r.epoch}, {"train_loss", r.train_loss}, {"val_loss", r.has_val ? nlohmann::json(r.val_loss) : nlohmann::json()}});
  run["history"] = hist;
  io::write_file_atomic((fs::path(out) / "run.json").string(), run.dump(2) + "\n");
  std::printf("wrote %s (latent.txt, particles.star, model.ckpt, loss.txt, loss.png, run.json)\n", out.c_str());
  return 0;
}

static RegisterCommand reg("train", "train the encoder and decoder: a latent point per particle", run_train);

}  // namespace cugmm::cli
