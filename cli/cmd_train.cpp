// `cugmm train`: particles + neutral model -> a latent point per particle and a decoder (engine/trainer.h),
// in a run directory (engine/train_outputs.h). Every input is checked before any work. The run itself is
// the library API's (engine/api/workflows.h prepare_training, run_training), so `cugmm train` and
// Engine::train agree.
#include <csignal>
#include <cstdio>
#include <filesystem>

#include "cli/command.h"
#include "cli/files.h"
#include "cli/latent_estimate.h"
#include "cli/train_options.h"
#include "cli/limits.h"
#include "core/error.h"
#include "core/log.h"
#include "engine/api/session.h"
#include "engine/api/workflows.h"
#include "engine/data_parallel.h"
#include "engine/particle_batch.h"
#include "engine/particle_cache.h"
#include "engine/particle_poses.h"
#include "engine/trainer.h"
#include "io/model.h"
#include "io/particles.h"

namespace fs = std::filesystem;

namespace cugmm::cli {

namespace {

// SIGINT (Ctrl-C) and SIGUSR1 stop the run at a batch boundary: under mpirun, Open MPI forwards SIGUSR1 to
// every rank (a Ctrl-C to mpirun ends the job instead), so `kill -USR1 <mpirun>` stops a data-parallel run.
Engine::Impl* g_engine = nullptr;  // the run they stop (a lock-free store: safe in a signal handler)
extern "C" void on_sigint(int) {
  if (g_engine) g_engine->job.cancel = true;
}

}  // namespace

static int run_train(Command& c) {
  TrainOptions to;
  CacheOptions& co = to.cache;
  TrainRequest rq;
  TrainConfig& cfg = to.config;
  std::string model_path, out, cache_path;
  bool plan_only = false;
  c.text("--particles", co.particles, "particle STAR or cryoSPARC .cs file")->required();
  c.text("--model", model_path, "the neutral model (native, PDB or mmCIF) on the particles' grid")->required();
  c.text("--out", out, "run directory: latent.txt, particles.star, model.ckpt, loss.txt/.png, run.json")->required();
  c.text("--cache", cache_path, "particle cache (default: OUT/particles.cugmm-cache)");
  c.text("--poses-from", rq.poses_from, "train with the poses of this particle file (e.g. `cugmm refine-pose`'s "
                                        "output), matched to --particles by rlnImageName");
  to.declare(c);
  c.text("--fixed-latent", rq.fixed_latent, "auto-decoding: train the decoder on these latent points (a latent.txt, "
                                            "one row per particle, e.g. a run's posterior means) instead of the "
                                            "encoder's, and fit the encoder to predict them (docs/accuracy.md round 8)");
  c.text("--focus-mask", rq.focus.mask, "focused analysis: only the Gaussians in this mask (MRC on the model's "
                                        "grid) move, and (--subtract neutral) the rest is subtracted from the particles");
  std::vector<std::string> subtract_args = {"neutral"};
  c.app.add_option("--subtract", subtract_args, "with --focus-mask: neutral (subtract the neutral model's projection "
                                                "outside the mask), decoded RUN (each particle's model decoded by the "
                                                "run RUN at its latent point) or none (keep the whole model, move "
                                                "only the mask's Gaussians)")
      ->expected(1, 2);
  c.flag("--recentre", rq.focus.recentre, "with --focus-mask and subtraction: translate the particles so the mask's "
                                          "centre is the box centre (the model moved with them)");
  LatentEstimateOptions le;
  le.declare(c);
  std::string exchange = "dense";
  c.text("--exchange", exchange, "under mpirun, how each layer's gradients are added over the ranks: dense "
                                 "(all-reduce), low-rank (all-gather the layer's inputs and output gradients) or "
                                 "auto (the cheaper by a timing at the start, so the plan, and the last bits of the "
                                 "result, may differ between runs)");
  c.flag("--resume", rq.resume, "continue the run in OUT from its checkpoint (same settings; --epochs may grow)");
  c.flag("--plan", plan_only, "print the memory plan and stop");
  c.device_options();
  if (c.parse()) return 0;
  to.finish(c);
  le.finish(cfg.seed, cfg.batch);
  rq.exchange = data_parallel::parse_exchange_mode(exchange);
  rq.focus.subtract = subtract_args[0];
  rq.focus.decoded_run = subtract_args.size() > 1 ? subtract_args[1] : "";
  rq.chose_gaussians = !to.mask.empty() || !to.gaussians.empty();
  rq.config = cfg;  // the symmetry's name for the checks (the selection below completes it)
  check_train_request(rq);
  if (c.app.count("--subtract") > 0 && !rq.focus.focused()) throw Error("--subtract needs --focus-mask");
  require_directory_name("--out", out);
  if (cache_path.empty()) cache_path = (fs::path(out) / "particles.cugmm-cache").string();
  require_extension("--cache", cache_path, {".cugmm-cache"});
  std::vector<std::string> names = {"latent.txt", "particles.star", "model.ckpt", "loss.txt", "loss.png", "run.json",
                                    "features.cugmm-features", "neutral.txt"};
  if (le.use_posterior) names.push_back("latent_encoder.txt");
  FileSpec files{{co.particles, model_path}, {cache_path}, {out}};
  if (rq.focus.subtracting()) files.outputs.push_back(subtracted_cache_path(cache_path));
  if (rq.focus.focused()) files.inputs.push_back(rq.focus.mask);
  for (const char* f : {"model.ckpt", "latent.txt", "particles.star", "run.json"})
    if (!rq.focus.decoded_run.empty()) files.inputs.push_back((fs::path(rq.focus.decoded_run) / f).string());
  for (auto& n : names) files.outputs.push_back((fs::path(out) / n).string());
  for (const auto& f : to.inputs()) files.inputs.push_back(f);
  if (!rq.poses_from.empty()) files.inputs.push_back(rq.poses_from);
  if (!rq.fixed_latent.empty()) files.inputs.push_back(rq.fixed_latent);
  check_files(files, false);
  if (rq.resume && !fs::exists(fs::path(out) / "model.ckpt"))
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
  if (!rq.poses_from.empty()) apply_poses(set, poses_from_file(set, rq.poses_from, co.root));
  const WorkingGrid native = choose_working_grid(set, 0);
  io::GaussianModel model = io::load_any_model(model_path, native.box, native.pixel);
  require_model_on_grid(model, model_path, native.box, native.pixel, co.particles);
  // --mask or --gaussians (focus and symmetry: prepare_training); with --focus-mask the mask says what moves.
  if (!rq.focus.focused()) to.select_gaussians(model);
  rq.config = cfg;
  rq.cache = co;
  rq.cache_path = cache_path;
  rq.model_source = model_path;
  rq.estimate = le;
  rq.comm = &c.comm();
  const MemoryPlan plan = prepare_training(set, model, model_path, rq);
  const Device device = c.device();
  EngineOptions eo;
  eo.device = device_name(device);
  Engine::Impl engine(eo);
  EngineCall call(engine);
  prepare_decoded_subtraction(call.cx(), set, rq);  // RUN checked against these particles before any work
  if (c.comm().rank() == 0)
    std::printf("memory plan on %s (G = %d, box %d, batch %d):\n%s\n", device_name(device), int(model.size()),
                choose_working_grid(set, co.box).box, cfg.batch, plan.text().c_str());
  if (plan_only) return 0;
  require_memory(plan, device);
  check_files(files);

  g_engine = &engine;
  auto prev = std::signal(SIGINT, on_sigint);
  auto prev_usr1 = std::signal(SIGUSR1, on_sigint);
  auto restore = [&] {
    std::signal(SIGINT, prev);
    std::signal(SIGUSR1, prev_usr1);
    g_engine = nullptr;
  };
  TrainOutcome o;
  try {
    o = run_training(call.cx(), set, model, rq, out);
  } catch (const Cancelled&) {  // a stop before or after the epochs (during them the trainer returns)
    restore();
    log_warn("stopped: " + out + " is incomplete (rerun the same command; with --resume once model.ckpt exists)");
    return 130;
  } catch (...) {
    restore();
    throw;
  }
  restore();
  if (!o.finished) return 130;
  if (!o.writer) return 0;
  std::printf("wrote %s (latent.txt, particles.star, model.ckpt, loss.txt, loss.png, run.json)\n", out.c_str());
  return 0;
}

static RegisterCommand reg("train", "train the encoder and decoder: a latent point per particle", run_train);

}  // namespace cugmm::cli
