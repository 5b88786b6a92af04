// `cugmm train` and Engine::train: the checks before any work, then the run and its directory.
#include <chrono>
#include <cmath>
#include <filesystem>

#include "core/error.h"
#include "core/log.h"
#include "cugmm/version.h"
#include "engine/api/workflows.h"
#include "engine/particle_batch.h"
#include "engine/train_outputs.h"
#include "io/atomic_file.h"

namespace fs = std::filesystem;

namespace cugmm {

namespace {

nlohmann::json column_stats(const std::vector<float>& v) {
  double lo = INFINITY, hi = -INFINITY, s = 0;
  size_t k = 0;
  for (float x : v) if (std::isfinite(x)) { lo = std::min(lo, double(x)); hi = std::max(hi, double(x)); s += x; ++k; }
  return nlohmann::json{{"min", lo}, {"max", hi}, {"mean", k ? s / k : 0.0}, {"finite", k}};
}

}  // namespace

void require_model_on_grid(const io::GaussianModel& m, const std::string& model_name, int box, double pixel,
                           const std::string& particles) {
  if (m.box_size != box || std::abs(m.pixel_size - pixel) > 1e-3 * pixel)
    throw InputError(model_name, "", "the model is for a box of " + std::to_string(m.box_size) + " pixels of " +
                                         std::to_string(m.pixel_size) + " Å; the particles in " + particles +
                                         " have " + std::to_string(box) + " pixels of " + std::to_string(pixel) +
                                         " Å");
}

MemoryPlan check_training(io::ParticleSet& set, const io::GaussianModel& model, const std::string& model_name,
                          const TrainConfig& cfg, int box) {
  refuse_premultiplied(set, cfg.ctf);
  const WorkingGrid native = choose_working_grid(set, 0);
  require_model_on_grid(model, model_name, native.box, native.pixel, set.source);
  size_t n_val = 0;
  for (size_t i = 0; i < set.particles.size(); ++i) n_val += is_validation(i, cfg.val_fraction);
  const size_t n_train = set.particles.size() - n_val;
  if (n_train < size_t(cfg.batch) || (cfg.val_fraction > 0 && n_val < 4))
    throw Error("too few particles: " + std::to_string(set.particles.size()) + " give " + std::to_string(n_train) +
                " for training and " + std::to_string(n_val) + " for validation (--val-fraction " +
                std::to_string(cfg.val_fraction) + "); training needs at least one batch (--batch " +
                std::to_string(cfg.batch) + ") and validation at least 4 (or --val-fraction 0)");
  const WorkingGrid grid = choose_working_grid(set, box);
  const int maxring = cfg.maxres > 0 ? std::min(grid.box / 2, int(grid.box * grid.pixel / cfg.maxres)) : grid.box / 2;
  size_t band_est = 0;
  for (int y = -grid.box / 2; y < grid.box / 2; ++y)
    for (int x = 0; x <= grid.box / 2; ++x) band_est += (x * x + y * y <= maxring * maxring);
  return plan_memory(cfg, int(model.size()), grid.box, band_est, set.particles.size());
}

TrainOutcome run_training(Context& cx, const io::ParticleSet& set, const io::GaussianModel& model,
                          const TrainRequest& rq, const std::string& out) {
  const TrainConfig& cfg = rq.config;
  const auto t0 = std::chrono::steady_clock::now();
  CacheOptions co = rq.cache;
  co.maxres = cfg.maxres;
  const std::string cache_path =
      rq.cache_path.empty() ? (fs::path(out) / "particles.cugmm-cache").string() : rq.cache_path;
  ParticleCache cache = open_particle_cache(co, cache_path, true);
  if (cache.count() != set.particles.size()) throw Error("the particle cache does not hold every particle");
  Trainer trainer(cx, cache, model, cfg, out);
  const std::string neutral_path = (fs::path(out) / "neutral.txt").string();
  io::write_model(neutral_path, model);
  const int G = int(model.size());
  const char* device = device_name(cx.device());
  log_info("train: " + std::to_string(trainer.train_count()) + " particles, " + std::to_string(trainer.val_count()) +
           " for validation, " + std::to_string(G) + " Gaussians, on " + device);
  trainer.prepare_features(rq.resume);
  const std::string loss_txt = (fs::path(out) / "loss.txt").string(), loss_png = (fs::path(out) / "loss.png").string();
  TrainOutcome r;
  try {
    r.finished = trainer.train(rq.resume);
  } catch (...) {
    if (!trainer.history().empty()) write_loss(loss_txt, loss_png, trainer.history());
    throw;
  }
  write_loss(loss_txt, loss_png, trainer.history());
  r.history = trainer.history();
  if (!r.finished) return r;

  std::vector<float> score;
  const auto t_embed = std::chrono::steady_clock::now();
  trainer.embed(r.latent, score);
  std::vector<int64_t> rows(cache.count());
  for (size_t i = 0; i < cache.count(); ++i) rows[i] = cache.particle(i).source_row;
  write_latent_txt((fs::path(out) / "latent.txt").string(), r.latent, cfg.latent, rows);
  write_latent_star((fs::path(out) / "particles.star").string(), set, r.latent, score, cfg.latent, rows);
  const double t_end = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  nlohmann::json diag = latent_diagnostic(r.latent, cfg.latent);
  log_info(latent_diagnostic_line(diag));

  nlohmann::json run;
  run["cugmm_version"] = version();
  run["command"] = "train";
  run["particles"] = fs::absolute(co.particles).string();
  run["model"] = fs::absolute(rq.model_source.empty() ? neutral_path : rq.model_source).string();
  run["config"] = cfg.to_json();
  if (!cfg.movable.empty()) {
    std::vector<int> mv;
    for (size_t j = 0; j < cfg.movable.size(); ++j) if (cfg.movable[j]) mv.push_back(int(j));
    run["movable_gaussians"] = mv;
  }
  run["gaussians"] = G;
  run["grid"] = {{"box", cache.box()}, {"pixel", cache.pixel_size()}, {"ring_min", trainer.batcher().band().ring_min},
                 {"ring_max", trainer.batcher().band().ring_max}};
  run["device"] = device;
  run["particles_count"] = cache.count();
  run["train_count"] = trainer.train_count();
  run["val_count"] = trainer.val_count();
  run["timings_s"] = {{"features", trainer.seconds_features}, {"training", trainer.seconds_training},
                      {"embed", std::chrono::duration<double>(std::chrono::steady_clock::now() - t_embed).count()},
                      {"total", t_end}};
  run["particle_steps_per_s_last_epoch"] = trainer.particle_steps_per_s;
  const FeatureNorm& nm = trainer.norm();
  run["feature_normalisation"] = {{"file", "features.cugmm-features"},
                                  {"precision", feature_precision_name(cfg.feature_precision)},
                                  {"column_mean", column_stats(nm.mean)}, {"column_sd", column_stats(nm.sd)},
                                  {"full_arrays", "model.ckpt: norm.mean, norm.sd"}};
  run["memory_plan"] = nlohmann::json::array();
  for (const auto& it : trainer.memory_plan().items) run["memory_plan"].push_back({{"what", it.what}, {"bytes", it.bytes}});
  run["latent_diagnostic"] = diag;
  nlohmann::json hist = nlohmann::json::array();
  for (const auto& h : trainer.history())
    hist.push_back({{"epoch", h.epoch}, {"train_loss", h.train_loss}, {"val_loss", h.has_val ? nlohmann::json(h.val_loss) : nlohmann::json()}});
  run["history"] = hist;
  io::write_file_atomic((fs::path(out) / "run.json").string(), run.dump(2) + "\n");
  return r;
}

}  // namespace cugmm
