// `cugmm refine-pose [RUN] --particles STAR|CS --out OUT.star`: every particle's angles and shifts refined
// against its own decoded model (engine/pose_refine.h): the run's encoder -> latent -> decoder (or the
// latent points of --latent), or one fixed model (--model) for a rigid particle. Writes the input's
// columns with the refined poses and the change per particle (rlnCugmmAngleChange in degrees,
// rlnCugmmShiftChange in Å), as RELION 3.1 STAR, and a picture of the changes (OUT.png). The job is the
// library API's (engine/api/workflows.h check_pose_refinement, run_pose_refinement), as Engine::refine_poses.
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "cli/command.h"
#include "cli/files.h"
#include "core/error.h"
#include "core/log.h"
#include "engine/api/session.h"
#include "engine/api/workflows.h"
#include "engine/particle_cache.h"
#include "engine/pose_refine.h"
#include "engine/train_outputs.h"
#include "engine/trainer.h"
#include "io/model.h"
#include "io/particles.h"
#include "io/text.h"

namespace fs = std::filesystem;

namespace cugmm::cli {

namespace {

// "DEG,PX" -> a rotation (degrees, 0..max_deg) and a shift (pixels, 0..max_px); Error naming the option.
void parse_deg_px(const std::string& text, const std::string& option, double max_deg, double max_px, double& deg,
                  double& px) {
  const size_t comma = text.find(',');
  char* end = nullptr;
  bool ok = comma != std::string::npos;
  if (ok) {
    deg = std::strtod(text.c_str(), &end);
    ok = end == text.c_str() + comma;
  }
  if (ok) {
    px = std::strtod(text.c_str() + comma + 1, &end);
    ok = *end == 0 && end != text.c_str() + comma + 1;
  }
  if (!ok || !std::isfinite(deg) || !std::isfinite(px) || deg < 0 || px < 0 || deg > max_deg || px > max_px)
    throw Error(option + ": '" + quote_value(text) + "' is not DEG,PX (degrees 0-" + io::format_number("%g", max_deg) +
                ", pixels 0-" + io::format_number("%g", max_px) + ")");
}

double rms(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x * x;
  return v.empty() ? 0 : std::sqrt(s / double(v.size()));
}

}  // namespace

static int run_refine_pose(Command& c) {
  std::string run, model_path, latent_path, out, cache_path, bands = "20,12,8,6,4,3", search, max_change = "10,5",
              ctf = "auto", loss;
  CacheOptions co;
  PoseRefineOptions po;
  double minres = kDefaultMinRes;
  c.text("RUN", run, "a `cugmm train` run directory: each particle's model is its decoded latent point");
  c.text("--model", model_path, "instead of RUN: one model for every particle (a rigid particle; native, PDB or mmCIF)");
  c.text("--latent", latent_path, "with RUN: the particles' latent points (latent.txt, input order) instead of "
                                  "the run's encoder");
  c.text("--particles", co.particles, "particle STAR or cryoSPARC .cs file (the output is STAR either way)")->required();
  c.text("--out", out, "the refined particles (.star); beside it OUT.png (the changes) and the cache")->required();
  c.text("--root", co.root, "directory that relative image paths are relative to");
  c.text("--cache", cache_path, "particle cache (default: OUT with .cugmm-cache for .star)");
  c.text("--bands", bands, "maxres of each stage, Å, coarse to fine");
  c.number("--minres", minres, "lowest resolution in the score, Å (with RUN, when not given: the run's)", 0, 1e4);
  c.text("--loss", loss, "snr: rings weighted by their measured signal against the model at the current poses (as "
                         "training weighs them); frc: the plain mean over rings (default: snr; frc for a RUN trained "
                         "with --loss frc)");
  c.text("--search", search, "DEG,PX: a local grid search first (rotations +-DEG about each axis, shifts +-PX)");
  c.text("--max-change", max_change, "DEG,PX: no pose moves farther than this from the input's (runaways held)");
  c.integer("--iterations", po.iterations, "gradient steps per band (at most)", 1, 10000);
  bool shifts_only = false;
  c.flag("--shifts-only", shifts_only, "refine the shifts alone (the angles kept)");
  c.integer("--batch", po.batch, "particles per batch", 1, 4096);
  c.text("--ctf", ctf, "with --model: auto (from the particle file), full, flipped or none (RUN: the run's)");
  c.device_options();
  if (c.parse()) return 0;
  if (run.empty() == model_path.empty()) throw Error("give a run directory (RUN) or --model, not both or neither");
  if (!latent_path.empty() && run.empty()) throw Error("--latent needs a run directory (RUN) to decode the points");
  if (!run.empty() && c.app.count("--ctf") > 0) throw Error("--ctf goes with --model; a run uses its own choice");
  if (!loss.empty() && loss != "snr" && loss != "frc") throw Error("--loss: '" + quote_value(loss) + "' is not snr or frc");
  require_extension("--out", out, {".star"});
  if (cache_path.empty()) cache_path = beside(out, ".cugmm-cache");
  require_extension("--cache", cache_path, {".cugmm-cache"});
  po.bands = parse_bands(bands, "--bands");
  po.rotations = !shifts_only;
  if (!search.empty()) parse_deg_px(search, "--search", 30, 20, po.search_deg, po.search_px);
  parse_deg_px(max_change, "--max-change", 180, 1000, po.max_change_deg, po.max_change_px);
  const std::string ckpt = run.empty() ? "" : (fs::path(run) / "model.ckpt").string();
  const std::string png = beside(out, ".png"), features = beside(out, ".cugmm-features");
  FileSpec files{{co.particles}, {out, png, cache_path}, {}};
  if (!fs::path(out).parent_path().empty()) files.output_dirs.push_back(fs::path(out).parent_path().string());
  if (!run.empty()) files.inputs.push_back(ckpt);
  if (!model_path.empty()) files.inputs.push_back(model_path);
  if (!latent_path.empty()) files.inputs.push_back(latent_path);
  if (!run.empty() && latent_path.empty()) files.outputs.push_back(features);
  check_files(files, false);

  EngineOptions eo;
  eo.device = device_name(c.device());
  Engine::Impl engine(eo);
  EngineCall call(engine);
  Context& cx = call.cx();
  io::ParticleReadOptions ropt;
  ropt.root = co.root;
  io::ParticleSet set = io::read_particles(co.particles, ropt);
  refuse_overwriting(files.outputs, [&] {
    std::vector<std::string> stacks;
    for (const auto& p : set.particles) stacks.push_back(p.image_file);
    return stack_candidates(stacks, co.particles, co.root);
  }(), "a stack " + co.particles + " names");

  // The model of each particle: a run's decoder at the particle's latent point, or one fixed model.
  PoseRequest rq;
  std::unique_ptr<TrainedModel> m;
  po.minres = minres;
  if (!run.empty()) {
    m = std::make_unique<TrainedModel>(load_trained(ckpt, cx));
    rq.run = m.get();
    rq.run_dir = run;
    rq.checkpoint = ckpt;
    if (latent_path.empty()) rq.features = features;
    else rq.latent = read_latent_txt(latent_path, m->config.latent);
    rq.latent_name = latent_path;
  } else {
    const WorkingGrid native = choose_working_grid(set, 0);
    rq.fixed = io::load_any_model(model_path, native.box, native.pixel);
    rq.model_name = model_path;
    rq.ctf = ctf;
  }
  rq.cache = co;
  rq.cache_path = cache_path;
  rq.options = po;
  rq.minres_given = c.app.count("--minres") > 0;
  rq.bands_text = bands;
  rq.search_text = search;
  rq.loss = loss;
  check_pose_refinement(set, rq);
  check_files(files);
  const PoseRefineResult r = run_pose_refinement(cx, set, rq, out, png);
  double before = 0, after = 0;
  for (size_t i = 0; i < set.particles.size(); ++i) {
    before += r.score_before[i];
    after += r.score_after[i];
  }
  const double n = double(std::max<size_t>(1, set.particles.size()));
  std::printf("refined %zu particles: RMS angular change %.3f degrees, RMS shift change %.3f Å; mean score %.5f -> "
              "%.5f (%s Å band)\nwrote %s and %s\n",
              set.particles.size(), rms(r.angle_change_deg), rms(r.shift_change_a), before / n, after / n,
              io::format_number("%g", po.bands.back()).c_str(), out.c_str(), png.c_str());
  return 0;
}

static RegisterCommand reg("refine-pose", "refine each particle's pose against its own decoded model",
                           run_refine_pose);

}  // namespace cugmm::cli
