// `cugmm refine-pose [RUN] --particles STAR|CS --out OUT.star`: every particle's angles and shifts refined
// against its own decoded model (engine/pose_refine.h): the run's encoder -> latent -> decoder (or the
// latent points of --latent), or one fixed model (--model) for a rigid particle. Writes the input's
// columns with the refined poses and the change per particle (rlnCugmmAngleChange in degrees,
// rlnCugmmShiftChange in Å), as RELION 3.1 STAR, and a picture of the changes (OUT.png).
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "cli/command.h"
#include "cli/files.h"
#include "core/error.h"
#include "core/log.h"
#include "engine/model_params.h"
#include "engine/particle_cache.h"
#include "engine/particle_poses.h"
#include "engine/pose_refine.h"
#include "engine/train_outputs.h"
#include "engine/trainer.h"
#include "io/model.h"
#include "io/particles.h"
#include "io/plot.h"
#include "io/text.h"

namespace fs = std::filesystem;

namespace cugmm::cli {

void require_model_on_grid(const io::GaussianModel& m, const std::string& model_path, int box, double pixel,
                           const std::string& particles);  // cli/cmd_train.cpp

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

std::string with_extension(const std::string& out, const std::string& ext) {
  return (fs::path(out).parent_path() / fs::path(out).stem()).string() + ext;
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
                         "training weighs them); frc: the plain mean over rings (default: snr, with RUN the run's)");
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
  if (cache_path.empty()) cache_path = with_extension(out, ".cugmm-cache");
  require_extension("--cache", cache_path, {".cugmm-cache"});
  po.bands = parse_bands(bands, "--bands");
  po.rotations = !shifts_only;
  if (!search.empty()) parse_deg_px(search, "--search", 30, 20, po.search_deg, po.search_px);
  parse_deg_px(max_change, "--max-change", 180, 1000, po.max_change_deg, po.max_change_px);
  const std::string ckpt = run.empty() ? "" : (fs::path(run) / "model.ckpt").string();
  const std::string png = with_extension(out, ".png"), features = with_extension(out, ".cugmm-features");
  FileSpec files{{co.particles}, {out, png, cache_path}, {}};
  if (!fs::path(out).parent_path().empty()) files.output_dirs.push_back(fs::path(out).parent_path().string());
  if (!run.empty()) files.inputs.push_back(ckpt);
  if (!model_path.empty()) files.inputs.push_back(model_path);
  if (!latent_path.empty()) files.inputs.push_back(latent_path);
  if (!run.empty() && latent_path.empty()) files.outputs.push_back(features);
  check_files(files, false);

  const Device device = c.device();
  Context cx(device);
  io::ParticleReadOptions ropt;
  ropt.root = co.root;
  io::ParticleSet set = io::read_particles(co.particles, ropt);
  refuse_overwriting(files.outputs, [&] {
    std::vector<std::string> stacks;
    for (const auto& p : set.particles) stacks.push_back(p.image_file);
    return stack_candidates(stacks, co.particles, co.root);
  }(), "a stack " + co.particles + " names");
  const WorkingGrid native = choose_working_grid(set, 0);

  // The model of each particle: a run's decoder at the particle's latent point, or one fixed model.
  std::unique_ptr<TrainedModel> m;
  io::GaussianModel fixed;
  int G = 0;
  if (!run.empty()) {
    m = std::make_unique<TrainedModel>(load_trained(ckpt, cx));
    if (std::abs(native.box * native.pixel - m->cache_box * m->cache_pixel) > 1e-3 * m->cache_box * m->cache_pixel)
      throw InputError(co.particles, "", "the particles' field of view (" + std::to_string(native.box) + " x " +
                                             io::format_number("%g", native.pixel) + " Å) differs from the run " +
                                             run + "'s (" + std::to_string(m->cache_box) + " x " +
                                             io::format_number("%g", m->cache_pixel) + " Å): not its particles");
    po.ctf = m->config.ctf;
    po.minres = c.app.count("--minres") > 0 ? minres : m->config.minres;
    co.box = m->cache_box;
    G = int(m->neutral_params.size() / 5);
  } else {
    fixed = io::load_any_model(model_path, native.box, native.pixel);
    require_model_on_grid(fixed, model_path, native.box, native.pixel, co.particles);
    po.ctf = parse_ctf_choice(ctf);
    po.minres = minres;
    G = int(fixed.size());
    if (G == 0) throw InputError(model_path, "", "the model has no Gaussians");
  }
  refuse_premultiplied(set, po.ctf);
  std::vector<float> latent;
  if (!latent_path.empty()) {
    latent = read_latent_txt(latent_path, m->config.latent);
    if (latent.size() != set.particles.size() * size_t(m->config.latent))
      throw InputError(latent_path, "", "holds " + std::to_string(latent.size() / size_t(m->config.latent)) +
                                            " latent points; " + co.particles + " has " +
                                            std::to_string(set.particles.size()) + " particles");
  }
  check_files(files);
  co.maxres = po.bands.back();
  ParticleCache cache = open_particle_cache(co, cache_path, true);
  if (cache.count() != set.particles.size()) throw Error("the particle cache does not hold every particle");

  // The rings weighted against the run's neutral model or the given model (engine/pose_refine.h).
  const bool snr = loss.empty() ? (run.empty() || m->config.snr_weighted) : loss == "snr";
  if (snr) po.weight_model = run.empty() ? params_from_model(fixed) : m->neutral_params;
  ParticleParams params;
  std::vector<float> by_cache;  // latent points in cache order
  const std::vector<float> fixed_row = run.empty() ? params_from_model(fixed) : std::vector<float>{};
  if (!run.empty()) {
    const int d = m->config.latent;
    if (latent_path.empty()) {
      std::vector<float> score;
      embed_cache(*m, cx, cache, ckpt, features, by_cache, score, po.batch);
    } else {
      by_cache.resize(cache.count() * size_t(d));
      for (size_t i = 0; i < cache.count(); ++i)
        std::copy_n(latent.begin() + cache.particle(i).source_row * d, d, by_cache.begin() + i * d);
    }
    params = [&, d](const size_t* index, int n, float* rows) {  // d by value: it ends with this block
      std::vector<float> z(size_t(n) * d);
      for (int i = 0; i < n; ++i) std::copy_n(by_cache.begin() + index[i] * d, d, z.begin() + size_t(i) * d);
      const std::vector<float> p = decode_points(*m, cx, z, n);
      std::copy(p.begin(), p.end(), rows);
    };
  } else {
    params = [&](const size_t*, int n, float* rows) {
      for (int i = 0; i < n; ++i) std::copy(fixed_row.begin(), fixed_row.end(), rows + size_t(i) * fixed_row.size());
    };
  }
  log_info("refine-pose: " + std::to_string(cache.count()) + " particles, " + std::to_string(G) + " Gaussians, bands " +
           bands + " Å (minres " + io::format_number("%g", po.minres) + " Å), " + (snr ? "SNR-weighted" : "plain FRC") +
           " score" +
           (search.empty() ? "" : ", local search " + search) + ", on " + device_name(device));
  const PoseRefineResult r = refine_poses(cx, cache, G, params, po);

  io::StarFile star = whole_set_star(set);
  io::StarBlock& t = particle_table(star);
  const int col_angle = t.add_column("rlnCugmmAngleChange"), col_shift = t.add_column("rlnCugmmShiftChange");
  for (size_t i = 0; i < cache.count(); ++i) {
    const size_t row = size_t(cache.particle(i).source_row);
    set_pose_columns(t, row, r.after[i]);
    t.rows[row][size_t(col_angle)] = io::format_number("%.4f", r.angle_change_deg[i]);
    t.rows[row][size_t(col_shift)] = io::format_number("%.4f", r.shift_change_a[i]);
  }
  io::write_star(out, star);
  double before = 0, after = 0;
  for (size_t i = 0; i < cache.count(); ++i) {
    before += r.score_before[i];
    after += r.score_after[i];
  }
  const double n = double(std::max<size_t>(1, cache.count()));
  io::Plot plot;
  std::vector<double> gain(cache.count());
  for (size_t i = 0; i < gain.size(); ++i) gain[i] = double(r.score_after[i]) - r.score_before[i];
  plot.title("refine-pose: change per particle").xlabel("angular change (degrees)").ylabel("shift change (Å)");
  plot.colorbar_label("score gain (finest band)");
  plot.add_colored_scatter("", r.angle_change_deg, r.shift_change_a, gain);
  plot.write(png);
  std::printf("refined %zu particles: RMS angular change %.3f degrees, RMS shift change %.3f Å; mean score %.5f -> "
              "%.5f (%s Å band)\nwrote %s and %s\n",
              cache.count(), rms(r.angle_change_deg), rms(r.shift_change_a), before / n, after / n,
              io::format_number("%g", po.bands.back()).c_str(), out.c_str(), png.c_str());
  return 0;
}

static RegisterCommand reg("refine-pose", "refine each particle's pose against its own decoded model",
                           run_refine_pose);

}  // namespace cugmm::cli
