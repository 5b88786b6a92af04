// `cugmm train` and Engine::train: the checks before any work, then the run and its directory.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>

#include "core/error.h"
#include "core/log.h"
#include "cugmm/version.h"
#include "engine/api/ranks.h"
#include "engine/api/workflows.h"
#include "engine/gaussian_mask.h"
#include "engine/symmetry.h"
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

std::string subtracted_cache_path(const std::string& cache_path) {
  return fs::path(cache_path).replace_extension(".subtracted.cugmm-cache").string();
}

void check_train_request(const TrainRequest& rq) {
  const FocusRequest& f = rq.focus;
  if (f.subtract != "neutral" && f.subtract != "none" && f.subtract != "decoded")
    throw Error("--subtract must be neutral, decoded RUN or none, not '" + quote_value(f.subtract) + "'");
  if ((f.subtract == "decoded") != !f.decoded_run.empty())
    throw Error(f.subtract == "decoded" ? "--subtract decoded needs the run directory: --subtract decoded RUN"
                                        : "--subtract " + f.subtract + " takes no run directory");
  if (f.focused() && rq.chose_gaussians)
    throw Error("--focus-mask chooses the Gaussians that move: give it without --mask or --gaussians");
  if (f.recentre && !f.subtracting()) throw Error("--recentre needs --focus-mask with --subtract neutral or decoded");
}

void prepare_decoded_subtraction(Context& cx, io::ParticleSet& set, TrainRequest& rq) {
  if (rq.focus.decoded_run.empty()) return;
  const SymmetryGroup group = make_symmetry_group(rq.config.symmetry);
  use_decoded_models(rq.focus_spec, cx, rq.focus.decoded_run, set, group.name, group.order(),
                     choose_working_grid(set, rq.cache.box), rq.full_model);
}

void select_first_unit(TrainConfig& cfg, const io::GaussianModel& model) {
  const SymmetryGroup group = make_symmetry_group(cfg.symmetry);
  std::vector<Vec3<double>> centres(model.size());
  for (size_t j = 0; j < model.size(); ++j) centres[j] = {model.x[j], model.y[j], model.z[j]};
  const std::vector<int> unit = asymmetric_units(group, centres);
  cfg.movable.assign(model.size(), 0);
  for (size_t j = 0; j < model.size(); ++j) cfg.movable[j] = unit[j] == 0;
  if (std::count(cfg.movable.begin(), cfg.movable.end(), 1) == 0)
    throw Error("--sym " + group.name + ": no Gaussian of the model lies in the first asymmetric unit; give --mask");
}

MemoryPlan prepare_training(io::ParticleSet& set, io::GaussianModel& model, const std::string& model_name,
                            TrainRequest& rq) {
  TrainConfig& cfg = rq.config;
  check_train_request(rq);
  refuse_premultiplied(set, cfg.ctf);
  const WorkingGrid native = choose_working_grid(set, 0);
  require_model_on_grid(model, model_name, native.box, native.pixel, set.source);
  rq.full_model = model;
  if (rq.focus.focused()) {
    SubtractionSpec& focus = rq.focus_spec;
    focus.inside = gaussians_in_mask(rq.focus.mask, model);
    focus.ctf = cfg.ctf;
    focus.recentre = rq.focus.recentre;
    focus.centre = mask_centre(rq.focus.mask, model);
    if (rq.focus.subtracting()) model = focused_model(model, focus);  // only the region is left in the particles
    else cfg.movable = focus.inside;
  }
  const size_t copies = make_symmetry_group(cfg.symmetry).order();
  // With --focus-mask the mask says what moves, --sym or not.
  if (copies > 1 && !rq.chose_gaussians && !rq.focus.focused()) select_first_unit(cfg, model);
  // With symmetry every particle counts once per operator; its copies share its validation split.
  const size_t n_all = set.particles.size() * copies;
  size_t n_val = 0;
  for (size_t i = 0; i < set.particles.size(); ++i) n_val += copies * is_validation(i, cfg.val_fraction);
  const size_t n_train = n_all - n_val;
  if (n_train < size_t(cfg.batch) || (cfg.val_fraction > 0 && n_val < 4))
    throw Error("too few particles: " + std::to_string(n_all) + " give " + std::to_string(n_train) +
                " for training and " + std::to_string(n_val) + " for validation (--val-fraction " +
                std::to_string(cfg.val_fraction) + "); training needs at least one batch (--batch " +
                std::to_string(cfg.batch) + ") and validation at least 4 (or --val-fraction 0)");
  const WorkingGrid grid = choose_working_grid(set, rq.cache.box);
  const int maxring = cfg.maxres > 0 ? std::min(grid.box / 2, int(grid.box * grid.pixel / cfg.maxres)) : grid.box / 2;
  size_t band_est = 0;
  for (int y = -grid.box / 2; y < grid.box / 2; ++y)
    for (int x = 0; x <= grid.box / 2; ++x) band_est += (x * x + y * y <= maxring * maxring);
  TrainConfig planned = cfg;  // as the Trainer will run it
  const std::string fallback = default_input_fallback(planned, int(model.size()), n_train);
  check_warm_start(planned, !rq.fixed_latent.empty(), fallback);
  return plan_memory(planned, int(model.size()), grid.box, band_est, n_all);
}

TrainOutcome run_training(Context& cx, const io::ParticleSet& set, const io::GaussianModel& model,
                          const TrainRequest& rq, const std::string& out) {
  const TrainConfig& cfg = rq.config;
  const auto t0 = std::chrono::steady_clock::now();
  SingleComm single;
  Comm& comm = rq.comm ? *rq.comm : single;
  const bool writer = comm.rank() == 0;  // one rank writes the run's files
  const SymmetryGroup group = make_symmetry_group(cfg.symmetry);
  const size_t copies = group.order();
  CacheOptions co = rq.cache;
  co.maxres = cfg.maxres;
  const std::string cache_path =
      rq.cache_path.empty() ? (fs::path(out) / "particles.cugmm-cache").string() : rq.cache_path;
  ParticleCache cache = open_cache_on_ranks(comm, co, cache_path);
  if (cache.count() != set.particles.size()) throw Error("the particle cache does not hold every particle");
  nlohmann::json focus_report;
  if (rq.focus.subtracting()) {
    // Every rank would write the subtracted cache under one name: focused runs are single-process for now.
    if (comm.size() > 1) throw Error("--focus-mask --subtract runs in one process, not under mpirun");
  }
  if (copies > 1) cache.expand(group.name, group.operators);
  // With --sym each copy is subtracted in its own frame (a per-copy derived cache).
  if (rq.focus.subtracting())
    cache = subtracted_cache(cx, cache, rq.full_model, rq.focus_spec, subtracted_cache_path(cache_path), focus_report);
  Trainer trainer(cx, cache, model, cfg, out);
  trainer.set_comm(comm, rq.exchange);
  if (!rq.poses_from.empty()) {
    std::vector<ParticlePose> poses(cache.count());
    for (size_t i = 0; i < cache.count(); ++i) {
      const io::Particle& p = set.particles[size_t(cache.particle(i).source_row)];
      poses[i] = {p.rot, p.tilt, p.psi, p.origin_x, p.origin_y};
    }
    trainer.use_poses(std::move(poses));
    log_info("train: the poses of " + rq.poses_from);
  }
  if (!rq.fixed_latent.empty()) {
    if (copies > 1) throw Error("--fixed-latent with --sym " + cfg.symmetry + " is not supported (one point per particle)");
    std::vector<float> z = read_latent_txt(rq.fixed_latent, cfg.latent);
    if (z.size() != cache.count() * size_t(cfg.latent))
      throw InputError(rq.fixed_latent, "", "has " + std::to_string(z.size() / size_t(cfg.latent)) + " points, " +
                                                co.particles + " has " + std::to_string(cache.count()) + " particles");
    trainer.set_fixed_latent(std::move(z));
    log_info("train: the decoder on the latent points of " + rq.fixed_latent + ", the encoder fitted to them");
  }
  const std::string neutral_path = (fs::path(out) / "neutral.txt").string();
  if (writer) io::write_model(neutral_path, model);
  const int G = int(model.size());
  const char* device = device_name(cx.device());
  log_info("train: " + std::to_string(trainer.train_count()) + " particles, " + std::to_string(trainer.val_count()) +
           " for validation, " + std::to_string(G) + " Gaussians, on " + device +
           (comm.size() > 1 ? ", " + comm.describe() + ", global batch " + std::to_string(comm.size() * cfg.batch)
                            : std::string()));
  trainer.prepare_features(rq.resume);
  const std::string loss_txt = (fs::path(out) / "loss.txt").string(), loss_png = (fs::path(out) / "loss.png").string();
  TrainOutcome r;
  r.writer = writer;
  try {
    r.finished = trainer.train(rq.resume);
  } catch (...) {
    if (writer && !trainer.history().empty()) write_loss(loss_txt, loss_png, trainer.history());
    throw;
  }
  if (writer) write_loss(loss_txt, loss_png, trainer.history());
  r.history = trainer.history();
  if (!r.finished) return r;

  std::vector<float> score;
  const auto t_embed = std::chrono::steady_clock::now();
  trainer.embed(r.latent, score);
  if (!writer) return r;
  const std::vector<int64_t> rows = output_rows(cache);
  nlohmann::json estimate = {{"estimate", "encoder"}};
  if (rq.estimate.use_posterior) {  // both files only once the posterior has succeeded
    const std::vector<float> encoder_points = r.latent;
    const TrainedModel tm = load_trained(trainer.checkpoint_path(), cx);
    estimate = apply_latent_estimate(rq.estimate, tm, cx, trainer.batcher(), r.latent);
    write_latent_txt((fs::path(out) / "latent_encoder.txt").string(), encoder_points, cfg.latent, rows, cache.copies());
  }
  write_latent_txt((fs::path(out) / "latent.txt").string(), r.latent, cfg.latent, rows, cache.copies());
  write_latent_star((fs::path(out) / "particles.star").string(), copies > 1 ? expand_particle_set(set, group) : set,
                    r.latent, score, cfg.latent, rows);
  const double t_end = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  nlohmann::json diag = latent_diagnostic(r.latent, cfg.latent);
  log_info(latent_diagnostic_line(diag));

  nlohmann::json run;
  run["cugmm_version"] = version();
  run["command"] = "train";
  run["particles"] = fs::absolute(co.particles).string();
  run["model"] = fs::absolute(rq.model_source.empty() ? neutral_path : rq.model_source).string();
  if (!rq.poses_from.empty()) run["poses_from"] = fs::absolute(rq.poses_from).string();
  if (!rq.fixed_latent.empty()) run["fixed_latent"] = fs::absolute(rq.fixed_latent).string();
  if (cfg.warm_start > 0)  // TrainConfig::warm_start
    run["warm_start"] = {{"epochs", cfg.warm_start}, {"components", cfg.latent}, {"sd", kWarmStartSd},
                         {"points", "each particle's scores on the encoder's top input components, standardised over "
                                    "the training particles; the decoder trained on them, the encoder fitted to them"}};
  run["config"] = trainer.config().to_json();  // as run: after the dense-whitening fallback
  if (!trainer.feature_fallback().empty()) run["feature_fallback"] = trainer.feature_fallback();
  if (!cfg.movable.empty()) {
    std::vector<int> mv;
    for (size_t j = 0; j < cfg.movable.size(); ++j) if (cfg.movable[j]) mv.push_back(int(j));
    run["movable_gaussians"] = mv;
  }
  run["gaussians"] = G;
  if (copies > 1)
    run["symmetry"] = {{"group", group.name}, {"copies", copies}, {"particles", set.particles.size()},
                       {"movable", rq.focus.focused() ? "--focus-mask"
                                   : rq.chose_gaussians ? "--mask/--gaussians" : "first asymmetric unit"},
                       {"latent_rows", "particle-major: row r*copies + k is copy k+1 (rlnCugmmSymmetryCopy) of particle r+1"}};
  if (rq.focus.focused()) {
    const SubtractionSpec& focus = rq.focus_spec;
    focus_report["mask"] = fs::absolute(rq.focus.mask).string();
    focus_report["subtract"] = rq.focus.subtract;
    if (!rq.focus.decoded_run.empty()) focus_report["decoded_run"] = fs::absolute(rq.focus.decoded_run).string();
    focus_report["mask_centre_A"] = {focus.centre.x, focus.centre.y, focus.centre.z};
    focus_report["region_gaussians"] = std::count(focus.inside.begin(), focus.inside.end(), 1);
    run["focus"] = focus_report;
  }
  run["grid"] = {{"box", cache.box()}, {"pixel", cache.pixel_size()}, {"ring_min", trainer.batcher().band().ring_min},
                 {"ring_max", trainer.batcher().band().ring_max}};
  if (!trainer.ring_record().is_null()) run["score_ring_weights"] = trainer.ring_record();
  if (const FeatureTransform& ft = trainer.feature_transform(); ft.k > 0)
    run["feature_pca"] = {{"components", ft.k}, {"whitened", trainer.config().feature_pca_whiten},
                          {"variance", ft.variance}, {"total_variance", ft.total_variance}};
  if (trainer.config().feature_noise_whiten && trainer.feature_transform().k > 0)  // variance: signal-to-noise + 1
    run["feature_pca"]["ranked_by"] = trainer.config().feature_view_nuisance
                                          ? "signal-to-noise, the view-dependent mean counted as noise (round 9)"
                                          : "signal-to-noise (noise-only images' features as the noise covariance)";
  run["device"] = device;
  run["ranks"] = {{"count", comm.size()}, {"comm", comm.describe()}, {"global_batch", comm.size() * cfg.batch},
                  {"exchange_s_rank0", comm.exchange_seconds}, {"exchange_bytes_rank0", comm.exchange_bytes},
                  {"exchange", trainer.exchange_record()}};
  run["particles_count"] = cache.count();
  run["train_count"] = trainer.train_count();
  run["val_count"] = trainer.val_count();
  run["timings_s"] = {{"features", trainer.seconds_features}, {"input_transform", trainer.seconds_transform},
                      {"noise_images", trainer.seconds_noise_images},
                      {"training", trainer.seconds_training},
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
  run["latent_estimate"] = estimate;
  nlohmann::json hist = nlohmann::json::array();
  for (const auto& h : trainer.history())
    hist.push_back({{"epoch", h.epoch}, {"train_loss", h.train_loss}, {"val_loss", h.has_val ? nlohmann::json(h.val_loss) : nlohmann::json()}});
  run["history"] = hist;
  io::write_file_atomic((fs::path(out) / "run.json").string(), run.dump(2) + "\n");
  return r;
}

}  // namespace cugmm
