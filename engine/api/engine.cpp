// The library API (include/cugmm/engine.h): each call converts its arguments, makes the engine's job
// current on the calling thread (engine/api/session.h) and runs the same code as the `cugmm` command
// (engine/api/workflows.h and the engine functions the commands call). Whatever escapes is a cugmm::Error
// with the message the program prints (core/error.h user_message).
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "cugmm/engine.h"
#include "engine/api/convert.h"
#include "engine/api/import.h"
#include "engine/api/session.h"
#include "engine/api/workflows.h"
#include "engine/particle_poses.h"
#include "engine/render.h"
#include "engine/train_outputs.h"
#include "io/text.h"

namespace fs = std::filesystem;

namespace cugmm {

struct Particles::Impl {
  io::ParticleSet set;
  CacheOptions cache;  // particles, root, normalise
  WorkingGrid native;  // the finest optics group's box and pixel size
};

struct Run::Impl {
  std::shared_ptr<Engine::Impl> engine;  // the context the networks live on
  std::string dir;
  TrainedModel model;
  Gaussians neutral;
  std::vector<float> latent;
  std::vector<EpochStats> history;
};

namespace {

// Every exception as the program would report it.
template <class F>
auto guarded(F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const Error&) {
    throw;
  } catch (...) {
    throw Error(user_message(std::current_exception()));
  }
}

const Particles::Impl& require(const Particles& p) {
  if (!p.impl) throw Error("these Particles hold nothing (load or import them with an Engine first)");
  return *p.impl;
}

Run::Impl& require(const Run& r, const std::shared_ptr<Engine::Impl>& engine) {
  if (!r.impl) throw Error("this Run holds nothing (train or open one with an Engine first)");
  if (r.impl->engine != engine)
    throw Error("this Run belongs to another Engine: a run computes on the Engine that trained or opened it");
  return *r.impl;
}

Particles make_particles(const std::string& path, const std::string& root, bool normalise) {
  auto impl = std::make_shared<Particles::Impl>();
  io::ParticleReadOptions ropt;
  ropt.root = root;
  impl->set = io::read_particles(path, ropt);
  if (impl->set.particles.empty()) throw InputError(path, "", "holds no particles");
  impl->native = choose_working_grid(impl->set, 0);  // also fills in box sizes the file leaves unknown
  impl->cache.particles = path;
  impl->cache.root = root;
  impl->cache.normalise = normalise;
  Particles p;
  p.impl = impl;
  return p;
}

std::vector<EpochStats> history_of(const nlohmann::json& run) {
  std::vector<EpochStats> h;
  if (!run.contains("history")) return h;
  for (const nlohmann::json& e : run.at("history")) {
    EpochStats s;
    s.epoch = e.at("epoch");
    s.train_loss = e.at("train_loss");
    s.val_loss = e.at("val_loss").is_null() ? std::numeric_limits<double>::quiet_NaN() : e.at("val_loss").get<double>();
    h.push_back(s);
  }
  return h;
}

Run open_run_on(const std::shared_ptr<Engine::Impl>& engine, Context& cx, const std::string& dir) {
  auto impl = std::make_shared<Run::Impl>();
  impl->engine = engine;
  impl->dir = dir;
  impl->model = load_trained((fs::path(dir) / "model.ckpt").string(), cx);
  impl->neutral = from_model(impl->model.neutral);
  impl->latent = read_latent_txt((fs::path(dir) / "latent.txt").string(), impl->model.config.latent);
  const std::string rj = (fs::path(dir) / "run.json").string();
  std::ifstream in(rj);
  if (!in) throw InputError(rj, "", "cannot read");
  const nlohmann::json run = nlohmann::json::parse(in, nullptr, false);
  if (run.is_discarded()) throw InputError(rj, "", "not a JSON file");
  impl->history = history_of(run);
  // Seconds per epoch are in model.ckpt's history (run.json keeps the losses).
  const nlohmann::json& ck = impl->model.meta;
  if (ck.contains("history") && ck.at("history").is_array())
    for (size_t i = 0; i < impl->history.size() && i < ck.at("history").size(); ++i)
      impl->history[i].seconds = ck.at("history")[i].value("seconds", 0.0);
  Run r;
  r.impl = impl;
  return r;
}

}  // namespace

// ---- handles ----

size_t Particles::count() const { return require(*this).set.particles.size(); }
int Particles::box() const { return require(*this).native.box; }
double Particles::pixel_size() const { return require(*this).native.pixel; }
const std::string& Particles::star() const { return require(*this).cache.particles; }

const std::string& Run::directory() const { return impl->dir; }
int Run::latent_dim() const { return impl->model.config.latent; }
const Gaussians& Run::neutral() const { return impl->neutral; }
const std::vector<float>& Run::latent() const { return impl->latent; }
const std::vector<EpochStats>& Run::history() const { return impl->history; }

// ---- the engine ----

Engine::Engine(const EngineOptions& options) : p_(guarded([&] { return std::make_shared<Impl>(options); })) {}
Engine::~Engine() = default;

std::string Engine::device() const { return p_->name(); }
void Engine::cancel() { p_->job.cancel = true; }

Particles Engine::load_particles(const std::string& path, const std::string& root) {
  return guarded([&] {
    EngineCall call(*p_);
    return make_particles(path, root, true);
  });
}

Particles Engine::import_particles(const ParticleArrays& arrays, const std::string& directory) {
  return guarded([&] {
    EngineCall call(*p_);
    const ImportedFiles f = import_particle_arrays(arrays, directory);
    return make_particles(f.star, "", f.normalise);
  });
}

Gaussians Engine::load_model(const std::string& path, int box, double pixel_size) {
  return guarded([&] { return from_model(io::load_any_model(path, box, pixel_size)); });
}

void Engine::save_model(const std::string& path, const Gaussians& model) {
  guarded([&] {
    const io::GaussianModel m = to_model(model);
    const std::string ext = io::lower_extension(path);
    if (ext == ".txt" || ext == ".gmm") io::write_model(path, m);
    else if (ext == ".pdb" || ext == ".cif") io::write_pseudo_atoms(path, m);
    else if (ext == ".cmm") io::write_cmm(path, m);
    else throw Error(path + ": the extension says no model format (.txt, .gmm, .pdb, .cif or .cmm)");
  });
}

ExampleData Engine::make_example(const ExampleSettings& settings) {
  return guarded([&] {
    EngineCall call(*p_);
    return make_example_data(settings);
  });
}

FitResult Engine::fit_map(const FitSettings& settings, const std::string& out_dir) {
  return guarded([&] {
    EngineCall call(*p_);
    FitMapOptions o = to_fit_options(settings);
    const FitMapInputs in = load_fit_map_inputs(o);
    if (!out_dir.empty()) {
      // As `cugmm fit-map`: the fit's state kept in out_dir while it runs, so a stopped fit resumes.
      o.checkpoint = (fs::path(out_dir) / "fit-map.ckpt").string();
      fs::create_directories(out_dir);
      fs::remove(fs::path(out_dir) / "fit.json");  // until it is rewritten, the directory is an unfinished run
    }
    const FitMapResult r = cugmm::fit_map(in, o, call.cx());
    if (!out_dir.empty()) write_fit_map_outputs(out_dir, in, r);
    FitResult f;
    f.model = from_model(r.model);
    f.res_fsc05 = r.res_fsc05;
    f.res_fsc0143 = r.res_fsc0143;
    f.reached = r.reached;
    f.verdict = r.verdict;
    f.warnings = r.warnings;
    return f;
  });
}

Run Engine::train(const Particles& particles, const Gaussians& neutral, const TrainSettings& settings,
                  const std::string& run_dir) {
  return guarded([&] {
    EngineCall call(*p_);
    const Particles::Impl& pi = require(particles);
    io::GaussianModel model = to_model(neutral);
    TrainRequest rq;
    rq.config = to_config(settings, int(model.size()));
    rq.cache = pi.cache;
    rq.cache.box = settings.box;
    rq.resume = settings.resume;
    rq.chose_gaussians = !settings.movable_gaussians.empty();
    rq.poses_from = settings.poses_from;
    rq.fixed_latent = settings.fixed_latent;
    rq.focus.mask = settings.focus_mask;
    rq.focus.subtract = settings.subtract;
    rq.focus.recentre = settings.recentre;
    rq.focus.decoded_run = settings.decoded_run;
    rq.estimate.use_posterior = parse_latent_estimate(settings.latent_estimate);
    rq.estimate.posterior.pairs = settings.posterior_pairs;
    rq.estimate.posterior.width = settings.posterior_width;
    rq.estimate.posterior.seed = rq.config.seed;
    rq.estimate.posterior.batch = rq.config.batch;
    io::ParticleSet set = pi.set;
    if (!rq.poses_from.empty()) apply_poses(set, poses_from_file(set, rq.poses_from, pi.cache.root));
    const MemoryPlan plan = prepare_training(set, model, "the neutral model", rq);
    prepare_decoded_subtraction(call.cx(), set, rq);
    require_memory(plan, p_->device);
    if (settings.resume && !fs::exists(fs::path(run_dir) / "model.ckpt"))
      throw Error("resume: " + (fs::path(run_dir) / "model.ckpt").string() + " does not exist");
    fs::create_directories(run_dir);
    const TrainOutcome o = run_training(call.cx(), set, model, rq, run_dir);
    if (!o.finished) throw Cancelled();
    return open_run_on(p_, call.cx(), run_dir);
  });
}

Run Engine::open_run(const std::string& run_dir) {
  return guarded([&] {
    EngineCall call(*p_);
    return open_run_on(p_, call.cx(), run_dir);
  });
}

Embedding Engine::embed(const Run& run, const Particles& particles, const std::string& out_dir) {
  return guarded([&] {
    EngineCall call(*p_);
    const Run::Impl& r = require(run, p_);
    const Particles::Impl& pi = require(particles);
    io::ParticleSet set = pi.set;
    check_embedding(r.model, set, pi.cache.particles);
    fs::create_directories(out_dir);
    EmbedRequest rq;
    rq.cache = pi.cache;
    rq.checkpoint = (fs::path(r.dir) / "model.ckpt").string();
    rq.cache_path = (fs::path(out_dir) / "particles.cugmm-cache").string();
    rq.focus = focused_run(r.dir);
    EmbedOutcome o = run_embedding(r.model, call.cx(), set, rq, out_dir);
    Embedding e;
    e.latent = std::move(o.latent);
    e.score = std::move(o.score);
    return e;
  });
}

std::vector<Gaussians> Engine::decode(const Run& run, const std::vector<float>& points) {
  return guarded([&] {
    EngineCall call(*p_);
    std::vector<Gaussians> out;
    for (const io::GaussianModel& m : decode_models(require(run, p_).model, call.cx(), points)) out.push_back(from_model(m));
    return out;
  });
}

Volume Engine::decode_map(const Run& run, const std::vector<float>& point) {
  return guarded([&] {
    EngineCall call(*p_);
    const Run::Impl& r = require(run, p_);
    if (point.size() != size_t(r.model.config.latent))
      throw Error("decode_map: one latent point of " + std::to_string(r.model.config.latent) + " numbers (got " +
                  std::to_string(point.size()) + ")");
    const io::Image im = render_volume(decode_models(r.model, call.cx(), point).at(0));
    Volume v;
    v.box = im.nx;
    v.pixel_size = im.pixel_size;
    v.data = im.data;
    return v;
  });
}

namespace {

// Engine::refine_poses with the model of each particle set in `rq` (a run's or one model).
PoseRefinement refine_with(EngineCall& call, const Particles& particles, const PoseSettings& settings,
                           PoseRequest& rq, const std::string& out_star) {
  const Particles::Impl& pi = require(particles);
  if (fs::path(out_star).extension() != ".star")
    throw Error("refine_poses: " + out_star + ": the refined particles are written as STAR (a .star name)");
  rq.options = to_pose_options(settings);
  if (!settings.loss.empty() && settings.loss != "snr" && settings.loss != "frc")
    throw Error("PoseSettings::loss: '" + settings.loss + "' is not snr or frc (or empty: the default)");
  rq.loss = settings.loss;
  rq.minres_given = !std::isnan(settings.minres);
  rq.cache = pi.cache;
  rq.cache_path = beside(out_star, ".cugmm-cache");
  io::ParticleSet set = pi.set;
  check_pose_refinement(set, rq);
  if (!fs::path(out_star).parent_path().empty()) fs::create_directories(fs::path(out_star).parent_path());
  const PoseRefineResult r = run_pose_refinement(call.cx(), set, rq, out_star, beside(out_star, ".png"));
  PoseRefinement p;
  // The table names the input's images as it did: found against its root or, without one, its directory.
  const std::string root = pi.cache.root.empty() ? fs::path(pi.cache.particles).parent_path().string() : pi.cache.root;
  p.particles = make_particles(out_star, root, pi.cache.normalise);
  p.before = r.before;
  p.after = r.after;
  p.angle_change = r.angle_change_deg;
  p.shift_change = r.shift_change_a;
  p.score_before = r.score_before;
  p.score_after = r.score_after;
  return p;
}

}  // namespace

PoseRefinement Engine::refine_poses(const Run& run, const Particles& particles, const PoseSettings& settings,
                                    const std::string& out_star) {
  return guarded([&] {
    EngineCall call(*p_);
    const Run::Impl& r = require(run, p_);
    if (settings.ctf != "auto") throw Error("PoseSettings::ctf goes with one model; a run uses its own choice");
    PoseRequest rq;
    rq.run = &r.model;
    rq.run_dir = r.dir;
    rq.checkpoint = (fs::path(r.dir) / "model.ckpt").string();
    rq.features = beside(out_star, ".cugmm-features");
    rq.latent = settings.latent;
    rq.latent_name = "PoseSettings::latent";
    return refine_with(call, particles, settings, rq, out_star);
  });
}

PoseRefinement Engine::refine_poses(const Gaussians& model, const Particles& particles, const PoseSettings& settings,
                                    const std::string& out_star) {
  return guarded([&] {
    EngineCall call(*p_);
    if (!settings.latent.empty()) throw Error("PoseSettings::latent goes with a run, not with one model");
    PoseRequest rq;
    rq.fixed = to_model(model);
    rq.model_name = "the model";
    rq.ctf = settings.ctf;
    return refine_with(call, particles, settings, rq, out_star);
  });
}

Analysis Engine::analyze(const Run& run, const AnalysisSettings& settings, const std::string& out_dir) {
  return guarded([&] {
    EngineCall call(*p_);
    const Run::Impl& r = require(run, p_);
    const AnalysisInputs in = prepare_analysis(r.dir, r.model, r.latent, settings);
    if (!out_dir.empty()) fs::create_directories(out_dir);  // once every input has been checked
    return run_analysis(call.cx(), in, settings, out_dir);
  });
}

}  // namespace cugmm
