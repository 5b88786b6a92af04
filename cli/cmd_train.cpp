// `cugmm train`: particles + neutral model -> a latent point per particle and a decoder (engine/trainer.h),
// in a run directory (engine/train_outputs.h). Every input is checked before any work. The run itself is
// the library API's (engine/api/workflows.h run_training), so `cugmm train` and Engine::train agree.
#include <csignal>
#include <cstdio>
#include <filesystem>

#include "cli/command.h"
#include "cli/files.h"
#include "cli/train_options.h"
#include "cli/limits.h"
#include "core/error.h"
#include "core/log.h"
#include "engine/api/session.h"
#include "engine/api/workflows.h"
#include "engine/particle_batch.h"
#include "engine/particle_cache.h"
#include "engine/trainer.h"
#include "io/model.h"
#include "io/particles.h"

namespace fs = std::filesystem;

namespace cugmm::cli {

namespace {

Engine::Impl* g_engine = nullptr;  // the run Ctrl-C stops (a lock-free store: safe in a signal handler)
extern "C" void on_sigint(int) {
  if (g_engine) g_engine->job.cancel = true;
}

}  // namespace

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
  to.select_gaussians(model);
  EngineOptions eo;
  eo.device = device_name(c.device());
  Engine::Impl engine(eo);
  const MemoryPlan plan = check_training(set, model, model_path, cfg, co.box);
  std::printf("memory plan on %s (G = %d, box %d, batch %d):\n%s\n", eo.device.c_str(), int(model.size()),
              choose_working_grid(set, co.box).box, cfg.batch, plan.text().c_str());
  if (plan_only) return 0;
  require_memory(plan, engine.device);
  check_files(files);

  EngineCall call(engine);
  TrainRequest rq{co, cache_path, model_path, cfg, resume};
  g_engine = &engine;
  auto prev = std::signal(SIGINT, on_sigint);
  TrainOutcome o;
  try {
    o = run_training(call.cx(), set, model, rq, out);
  } catch (const Cancelled&) {  // Ctrl-C before or after the epochs (during them the trainer returns)
    std::signal(SIGINT, prev);
    g_engine = nullptr;
    log_warn("stopped: " + out + " is incomplete (rerun the same command; with --resume once model.ckpt exists)");
    return 130;
  } catch (...) {
    std::signal(SIGINT, prev);
    g_engine = nullptr;
    throw;
  }
  std::signal(SIGINT, prev);
  g_engine = nullptr;
  if (!o.finished) return 130;
  std::printf("wrote %s (latent.txt, particles.star, model.ckpt, loss.txt, loss.png, run.json)\n", out.c_str());
  return 0;
}

static RegisterCommand reg("train", "train the encoder and decoder: a latent point per particle", run_train);

}  // namespace cugmm::cli
