// `cugmm train`: particles + neutral model -> a latent point per particle and a decoder (engine/trainer.h),
// in a run directory (engine/train_outputs.h). Every input is checked before any work.
#include <chrono>
#include <csignal>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "cli/command.h"
#include "cli/files.h"
#include "cli/latent_estimate.h"
#include "cli/ranks.h"
#include "cli/train_options.h"
#include "cli/limits.h"
#include "core/error.h"
#include "core/log.h"
#include "engine/gaussian_mask.h"
#include "engine/particle_cache.h"
#include "engine/particle_poses.h"
#include "engine/signal_subtraction.h"
#include "engine/symmetry.h"
#include "engine/train_outputs.h"
#include "engine/trainer.h"
#include "io/atomic_file.h"
#include "io/model.h"
#include "io/mrc.h"
#include "io/particles.h"

namespace fs = std::filesystem;

namespace cugmm::cli {

namespace {

// SIGINT (Ctrl-C) and SIGUSR1: under mpirun, Open MPI forwards SIGUSR1 to every rank (a Ctrl-C to mpirun
// ends the job instead), so `kill -USR1 <mpirun>` stops a data-parallel run at a batch boundary.
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
  std::string model_path, out, cache_path, focus_mask, poses_from, exchange = "dense";
  std::vector<std::string> subtract_args = {"neutral"};
  bool resume = false, plan_only = false, recentre = false;
  c.text("--particles", co.particles, "particle STAR or cryoSPARC .cs file")->required();
  c.text("--model", model_path, "the neutral model (native, PDB or mmCIF) on the particles' grid")->required();
  c.text("--out", out, "run directory: latent.txt, particles.star, model.ckpt, loss.txt/.png, run.json")->required();
  c.text("--cache", cache_path, "particle cache (default: OUT/particles.cugmm-cache)");
  c.text("--poses-from", poses_from, "train with the poses of this particle file (e.g. `cugmm refine-pose`'s "
                                     "output), matched to --particles by rlnImageName");
  to.declare(c);
  c.text("--focus-mask", focus_mask, "focused analysis: only the Gaussians in this mask (MRC on the model's grid) "
                                     "move, and (--subtract neutral) the rest is subtracted from the particles");
  c.app.add_option("--subtract", subtract_args, "with --focus-mask: neutral (subtract the neutral model's projection "
                                                "outside the mask), decoded RUN (each particle's model decoded by the "
                                                "run RUN at its latent point) or none (keep the whole model, move "
                                                "only the mask's Gaussians)")
      ->expected(1, 2);
  c.flag("--recentre", recentre, "with --focus-mask and subtraction: translate the particles so the mask's centre "
                                 "is the box centre (the model moved with them)");
  LatentEstimateOptions le;
  le.declare(c);
  c.text("--exchange", exchange, "under mpirun, how each layer's gradients are added over the ranks: dense "
                                 "(all-reduce), low-rank (all-gather the layer's inputs and output gradients) or "
                                 "auto (the cheaper by a timing at the start, so the plan, and the last bits of the "
                                 "result, may differ between runs)");
  c.flag("--resume", resume, "continue the run in OUT from its checkpoint (same settings; --epochs may grow)");
  c.flag("--plan", plan_only, "print the memory plan and stop");
  c.device_options();
  if (c.parse()) return 0;
  to.finish(c);
  le.finish(cfg.seed, cfg.batch);
  const data_parallel::ExchangeMode exchange_mode = data_parallel::parse_exchange_mode(exchange);
  const std::string subtract = subtract_args[0], decoded_run = subtract_args.size() > 1 ? subtract_args[1] : "";
  const bool focused = !focus_mask.empty(), subtracting = focused && subtract != "none";
  if (subtract != "neutral" && subtract != "none" && subtract != "decoded")
    throw Error("--subtract must be neutral, decoded RUN or none, not '" + quote_value(subtract) + "'");
  if ((subtract == "decoded") != !decoded_run.empty())
    throw Error(subtract == "decoded" ? "--subtract decoded needs the run directory: --subtract decoded RUN"
                                      : "--subtract " + subtract + " takes no run directory");
  if (focused && (!to.mask.empty() || !to.gaussians.empty()))
    throw Error("--focus-mask chooses the Gaussians that move: give it without --mask or --gaussians");
  if (recentre && !subtracting) throw Error("--recentre needs --focus-mask with --subtract neutral or decoded");
  if (c.app.count("--subtract") > 0 && !focused) throw Error("--subtract needs --focus-mask");
  require_directory_name("--out", out);
  if (cache_path.empty()) cache_path = (fs::path(out) / "particles.cugmm-cache").string();
  require_extension("--cache", cache_path, {".cugmm-cache"});
  // The signal-subtracted particles: a derived cache beside the original (engine/signal_subtraction.h).
  const std::string sub_path = fs::path(cache_path).replace_extension(".subtracted.cugmm-cache").string();
  std::vector<std::string> names = {"latent.txt", "particles.star", "model.ckpt", "loss.txt", "loss.png", "run.json",
                                    "features.cugmm-features", "neutral.txt"};
  if (le.use_posterior) names.push_back("latent_encoder.txt");
  FileSpec files{{co.particles, model_path}, {cache_path}, {out}};
  if (subtracting) files.outputs.push_back(sub_path);
  if (focused) files.inputs.push_back(focus_mask);
  for (const char* f : {"model.ckpt", "latent.txt", "particles.star", "run.json"})
    if (!decoded_run.empty()) files.inputs.push_back((fs::path(decoded_run) / f).string());
  for (auto& n : names) files.outputs.push_back((fs::path(out) / n).string());
  for (const auto& f : to.inputs()) files.inputs.push_back(f);
  if (!poses_from.empty()) files.inputs.push_back(poses_from);
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
  // The cache holds the images of --particles (and their poses); --poses-from replaces the poses only.
  if (!poses_from.empty()) apply_poses(set, poses_from_file(set, poses_from, co.root));
  const WorkingGrid native = choose_working_grid(set, 0);
  io::GaussianModel model = io::load_any_model(model_path, native.box, native.pixel);
  require_model_on_grid(model, model_path, native.box, native.pixel, co.particles);
  const io::GaussianModel full_model = model;
  SubtractionSpec focus;
  if (focused) {
    focus.inside = gaussians_in_mask(focus_mask, model);
    focus.ctf = cfg.ctf;
    focus.recentre = recentre;
    focus.centre = mask_centre(focus_mask, model);
    if (subtracting) model = focused_model(model, focus);  // only the region is left in the particles
    else cfg.movable = focus.inside;
  }
  const int G = int(model.size());
  if (!focused) to.select_gaussians(model);  // with --focus-mask the mask says what moves, --sym or not
  // With --sym every particle counts once per operator; its copies share its validation split.
  const size_t copies = to.group.order(), n_all = set.particles.size() * copies;
  size_t n_val = 0;
  for (size_t i = 0; i < set.particles.size(); ++i) n_val += copies * is_validation(i, cfg.val_fraction);
  const size_t n_train = n_all - n_val;
  if (n_train < size_t(cfg.batch) || (cfg.val_fraction > 0 && n_val < 4))
    throw Error("too few particles: " + std::to_string(n_all) + " give " + std::to_string(n_train) +
                " for training and " + std::to_string(n_val) + " for validation (--val-fraction " +
                std::to_string(cfg.val_fraction) + "); training needs at least one batch (--batch " +
                std::to_string(cfg.batch) + ") and validation at least 4 (or --val-fraction 0)");
  const Device device = c.device();
  const WorkingGrid grid = choose_working_grid(set, co.box);
  Context cx(device);
  if (!decoded_run.empty())  // RUN checked against these particles before any work
    use_decoded_models(focus, cx, decoded_run, set, to.group.name, copies, grid, full_model);
  {
    const int maxring = cfg.maxres > 0 ? std::min(grid.box / 2, int(grid.box * grid.pixel / cfg.maxres)) : grid.box / 2;
    size_t band_est = 0;
    for (int y = -grid.box / 2; y < grid.box / 2; ++y)
      for (int x = 0; x <= grid.box / 2; ++x) band_est += (x * x + y * y <= maxring * maxring);
    MemoryPlan plan = plan_memory(cfg, G, grid.box, band_est, n_all);
    if (c.comm().rank() == 0)
      std::printf("memory plan on %s (G = %d, box %d, batch %d):\n%s\n", device_name(device), G, grid.box, cfg.batch,
                plan.text().c_str());
    if (plan_only) return 0;
    require_memory(plan, device);
  }
  check_files(files);

  const auto t0 = std::chrono::steady_clock::now();
  co.maxres = cfg.maxres;
  ParticleCache cache = open_cache_on_ranks(c.comm(), co, cache_path);
  if (cache.count() != set.particles.size()) throw Error("the particle cache does not hold every particle");
  nlohmann::json focus_report;
  // Every rank would write the subtracted cache under one name: focused runs are single-process for now.
  if (subtracting && c.comm().size() > 1) throw Error("--focus-mask --subtract runs in one process, not under mpirun");
  if (copies > 1) cache.expand(to.group.name, to.group.operators);
  // With --sym each copy is subtracted in its own frame (a per-copy derived cache).
  if (subtracting) cache = subtracted_cache(cx, cache, full_model, focus, sub_path, focus_report);
  Comm& comm = c.comm();
  const bool writer = comm.rank() == 0;  // one rank writes the run's files
  Trainer trainer(cx, cache, model, cfg, out);
  trainer.set_comm(comm, exchange_mode);
  if (!poses_from.empty()) {
    std::vector<ParticlePose> poses(cache.count());
    for (size_t i = 0; i < cache.count(); ++i) {
      const io::Particle& p = set.particles[size_t(cache.particle(i).source_row)];
      poses[i] = {p.rot, p.tilt, p.psi, p.origin_x, p.origin_y};
    }
    trainer.use_poses(std::move(poses));
    log_info("train: the poses of " + poses_from);
  }
  if (writer) io::write_model((fs::path(out) / "neutral.txt").string(), model);
  log_info("train: " + std::to_string(trainer.train_count()) + " particles, " + std::to_string(trainer.val_count()) +
           " for validation, " + std::to_string(G) + " Gaussians, on " + device_name(device) +
           (comm.size() > 1 ? ", " + comm.describe() + ", global batch " + std::to_string(comm.size() * cfg.batch)
                            : std::string()));
  trainer.prepare_features(resume);
  auto prev = std::signal(SIGINT, on_sigint);
  auto prev_usr1 = std::signal(SIGUSR1, on_sigint);
  bool done;
  try {
    done = trainer.train(resume);
  } catch (...) {
    std::signal(SIGINT, prev);
    std::signal(SIGUSR1, prev_usr1);
    if (writer && !trainer.history().empty())
      write_loss((fs::path(out) / "loss.txt").string(), (fs::path(out) / "loss.png").string(), trainer.history());
    throw;
  }
  std::signal(SIGINT, prev);
  std::signal(SIGUSR1, prev_usr1);
  if (writer)
    write_loss((fs::path(out) / "loss.txt").string(), (fs::path(out) / "loss.png").string(), trainer.history());
  if (!done) return 130;

  std::vector<float> latent, score;
  const auto t_embed = std::chrono::steady_clock::now();
  trainer.embed(latent, score);
  if (!writer) return 0;
  const std::vector<int64_t> rows = output_rows(cache);
  nlohmann::json estimate = {{"estimate", "encoder"}};
  if (le.use_posterior) {  // both files only once the posterior has succeeded
    const std::vector<float> encoder_points = latent;
    const TrainedModel tm = load_trained(trainer.checkpoint_path(), cx);
    estimate = apply_latent_estimate(le, tm, cx, trainer.batcher(), latent);
    write_latent_txt((fs::path(out) / "latent_encoder.txt").string(), encoder_points, cfg.latent, rows, cache.copies());
  }
  write_latent_txt((fs::path(out) / "latent.txt").string(), latent, cfg.latent, rows, cache.copies());
  write_latent_star((fs::path(out) / "particles.star").string(), copies > 1 ? expand_particle_set(set, to.group) : set,
                    latent, score, cfg.latent, rows);
  const double t_end = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  nlohmann::json diag = latent_diagnostic(latent, cfg.latent);
  log_info(latent_diagnostic_line(diag));

  nlohmann::json run;
  run["cugmm_version"] = "0.1.0";
  run["command"] = "train";
  run["particles"] = fs::absolute(co.particles).string();
  run["model"] = fs::absolute(model_path).string();
  if (!poses_from.empty()) run["poses_from"] = fs::absolute(poses_from).string();
  run["config"] = cfg.to_json();
  if (!cfg.movable.empty()) {
    std::vector<int> mv;
    for (size_t j = 0; j < cfg.movable.size(); ++j) if (cfg.movable[j]) mv.push_back(int(j));
    run["movable_gaussians"] = mv;
  }
  run["gaussians"] = G;
  if (copies > 1)
    run["symmetry"] = {{"group", to.group.name}, {"copies", copies}, {"particles", set.particles.size()},
                       {"movable", focused ? "--focus-mask" : to.mask.empty() && to.gaussians.empty() ? "first asymmetric unit" : "--mask/--gaussians"},
                       {"latent_rows", "particle-major: row r*copies + k is copy k+1 (rlnCugmmSymmetryCopy) of particle r+1"}};
  if (focused) {
    focus_report["mask"] = fs::absolute(focus_mask).string();
    focus_report["subtract"] = subtract;
    if (!decoded_run.empty()) focus_report["decoded_run"] = fs::absolute(decoded_run).string();
    focus_report["mask_centre_A"] = {focus.centre.x, focus.centre.y, focus.centre.z};
    focus_report["region_gaussians"] = std::count(focus.inside.begin(), focus.inside.end(), 1);
    run["focus"] = focus_report;
  }
  run["grid"] = {{"box", cache.box()}, {"pixel", cache.pixel_size()}, {"ring_min", trainer.batcher().band().ring_min},
                 {"ring_max", trainer.batcher().band().ring_max}};
  if (!trainer.ring_record().is_null()) run["score_ring_weights"] = trainer.ring_record();
  run["device"] = device_name(device);
  run["ranks"] = {{"count", comm.size()}, {"comm", comm.describe()}, {"global_batch", comm.size() * cfg.batch},
                  {"exchange_s_rank0", comm.exchange_seconds}, {"exchange_bytes_rank0", comm.exchange_bytes},
                  {"exchange", trainer.exchange_record()}};
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
  run["latent_estimate"] = estimate;
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
