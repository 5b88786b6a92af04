#include "engine/api/convert.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "engine/api/workflows.h"
#include "engine/particle_cache.h"
#include "engine/symmetry.h"
#include "kernels/ctf.h"

namespace cugmm {

io::GaussianModel to_model(const Gaussians& g) {
  const size_t n = g.x.size();
  if (g.y.size() != n || g.z.size() != n || g.amplitude.size() != n || g.width.size() != n)
    throw Error("Gaussians: x, y, z, amplitude and width must have the same length");
  io::GaussianModel m;
  m.box_size = g.box;
  m.pixel_size = g.pixel_size;
  m.x = g.x; m.y = g.y; m.z = g.z; m.amplitude = g.amplitude; m.width = g.width;
  return m;
}

Gaussians from_model(const io::GaussianModel& m) {
  Gaussians g;
  g.box = m.box_size;
  g.pixel_size = m.pixel_size;
  g.x = m.x; g.y = m.y; g.z = m.z; g.amplitude = m.amplitude; g.width = m.width;
  return g;
}

ParticleArrays::ParticleArrays() {
  const CtfParams optics;  // the readers' defaults for a group that gives none
  voltage = optics.voltage;
  cs = optics.cs;
  amp_contrast = optics.amp_contrast;
}

namespace {

// Every field from TrainConfig's JSON (its key names), so both structs read the same defaults.
void fill(TrainSettings& s, const TrainConfig& c) {
  const nlohmann::json j = c.to_json();
  s.latent = j.at("latent"); s.hidden = j.at("hidden"); s.depth = j.at("depth"); s.leaky = j.at("leaky");
  s.dropout = j.at("dropout"); s.lr = j.at("lr"); s.lr_half_life = j.at("lr_half_life"); s.l2 = j.at("l2"); s.l2_auto = j.at("l2_auto"); s.noise = j.at("noise");
  s.reg_width = j.at("reg_width"); s.reg_mass = j.at("reg_mass"); s.latent_reg = j.at("latent_reg");
  s.bf16_moments = j.at("bf16_moments"); s.epochs = j.at("epochs"); s.batch = j.at("batch");
  s.minres = j.at("minres"); s.maxres = j.at("maxres"); s.seed = j.at("seed"); s.val_fraction = j.at("val_fraction");
  s.move_positions = j.at("move_positions"); s.move_amplitudes = j.at("move_amplitudes");
  s.move_widths = j.at("move_widths"); s.ctf = j.at("ctf"); s.feature_precision = j.at("feature_precision");
  s.loss_every = j.at("loss_every"); s.explode = j.at("explode"); s.symmetry = j.at("symmetry");
  s.snr_weighted = j.at("snr_weighted"); s.pooled = j.at("pooled"); s.radial_gain = j.at("radial_gain"); s.align_shifts = j.at("align_shifts");
  s.rigid_free = j.at("rigid_free");
  s.feature_pca = j.at("feature_pca"); s.feature_pca_whiten = j.at("feature_pca_whiten");
  s.feature_noise_whiten = j.at("feature_noise_whiten"); s.feature_noise_solver = j.at("feature_noise_solver");
  s.feature_view_nuisance = j.at("feature_view_nuisance");
  s.feature_row_rms = j.at("feature_row_rms"); s.input_dropout = j.at("input_dropout");
  s.feature_split = j.at("feature_split");
  s.encoder_reads_positions = j.at("encoder_reads_positions");
  s.encoder_reads_amplitudes = j.at("encoder_reads_amplitudes");
  s.encoder_reads_widths = j.at("encoder_reads_widths");
  s.coarse_epochs = j.at("coarse_epochs"); s.coarse_res = j.at("coarse_res");
  s.positions_first = j.at("positions_first");
  s.position_unit = j.at("position_unit");
  s.warm_start = j.at("warm_start");
  s.movable_gaussians.clear();
  for (size_t g = 0; g < c.movable.size(); ++g)
    if (c.movable[g]) s.movable_gaussians.push_back(int(g));
  s.box = CacheOptions{}.box;
  s.resume = false;
  const FocusRequest focus;
  s.subtract = focus.subtract;
  s.recentre = focus.recentre;
  const PosteriorOptions posterior;
  s.latent_estimate = "encoder";
  s.posterior_pairs = posterior.pairs;
  s.posterior_width = posterior.width;
}

template <class T>
void require_range(const char* name, T v, double lo, double hi, bool lo_open = false) {
  if (!std::isfinite(double(v)) || double(v) < lo || double(v) > hi || (lo_open && double(v) == lo))
    throw Error(std::string("TrainSettings::") + name + ": " + std::to_string(v) + " is out of range (" +
                (lo_open ? "above " : "") + std::to_string(lo) + " to " + std::to_string(hi) + ")");
}

}  // namespace

TrainSettings::TrainSettings() { fill(*this, TrainConfig{}); }

TrainSettings TrainSettings::paper() { return from_config(paper_recipe()); }

TrainSettings from_config(const TrainConfig& c) {
  TrainSettings s;
  fill(s, c);
  return s;
}

FitSettings::FitSettings() {
  const FitMapOptions o;
  res = o.res;
  threshold = o.threshold;
  ngauss = o.ngauss;
  seed = o.seed;
}

nlohmann::json settings_json(const TrainSettings& s) {
  return {{"latent", s.latent}, {"hidden", s.hidden}, {"depth", s.depth}, {"leaky", s.leaky}, {"dropout", s.dropout},
          {"lr", s.lr}, {"lr_half_life", s.lr_half_life}, {"l2", s.l2}, {"l2_auto", s.l2_auto}, {"noise", s.noise}, {"reg_width", s.reg_width}, {"reg_mass", s.reg_mass},
          {"bf16_moments", s.bf16_moments}, {"epochs", s.epochs}, {"batch", s.batch}, {"minres", s.minres},
          {"maxres", s.maxres}, {"seed", s.seed}, {"val_fraction", s.val_fraction},
          {"move_positions", s.move_positions}, {"move_amplitudes", s.move_amplitudes},
          {"move_widths", s.move_widths}, {"ctf", s.ctf}, {"feature_precision", s.feature_precision},
          {"loss_every", s.loss_every}, {"explode", s.explode}, {"latent_reg", s.latent_reg},
          {"symmetry", s.symmetry}, {"snr_weighted", s.snr_weighted}, {"pooled", s.pooled}, {"radial_gain", s.radial_gain},
          {"align_shifts", s.align_shifts}, {"rigid_free", s.rigid_free}, {"feature_pca", s.feature_pca},
          {"feature_pca_whiten", s.feature_pca_whiten},
          {"feature_noise_whiten", s.feature_noise_whiten && s.feature_pca > 0},
          {"feature_view_nuisance", s.feature_view_nuisance && s.feature_noise_whiten && s.feature_pca > 0},
          {"feature_noise_solver", s.feature_noise_solver},
          {"feature_row_rms", s.feature_row_rms},
          {"input_dropout", s.input_dropout}, {"feature_split", s.feature_split},
          {"encoder_reads_positions", s.encoder_reads_positions},
          {"encoder_reads_amplitudes", s.encoder_reads_amplitudes}, {"encoder_reads_widths", s.encoder_reads_widths},
          {"coarse_epochs", s.coarse_epochs}, {"coarse_res", s.coarse_res}, {"positions_first", s.positions_first}, {"position_unit", s.position_unit}, {"warm_start", s.warm_start},
          {"frozen_gaussians", 0}};
}

TrainConfig to_config(const TrainSettings& s, int G) {
  // The program's option ranges (cli/train_options.cpp), for callers that bypass its parser.
  require_range("latent", s.latent, 1, 64);
  require_range("hidden", s.hidden, 1, 16384);
  require_range("depth", s.depth, 1, 16);
  require_range("epochs", s.epochs, 1, 100000);
  require_range("batch", s.batch, 2, 4096);
  require_range("minres", s.minres, 0, 1e4);
  require_range("maxres", s.maxres, 0, 1e4);
  require_range("val_fraction", s.val_fraction, 0, 0.5);
  require_range("lr", s.lr, 0, 1, true);
  require_range("lr_half_life", s.lr_half_life, 0, 1e6);
  require_range("l2", s.l2, 0, 10);
  require_range("noise", s.noise, 0, 10);
  require_range("reg_width", s.reg_width, 0, 1e6);
  require_range("reg_mass", s.reg_mass, 0, 1e6);
  require_range("latent_reg", s.latent_reg, 0, 1e6);
  require_range("dropout", s.dropout, 0, 0.9);
  require_range("input_dropout", s.input_dropout, 0, 0.9);
  require_range("feature_pca", s.feature_pca, 0, 1000000);
  require_range("explode", s.explode, -1, 1e30);
  require_range("loss_every", s.loss_every, 1, 1000000);
  require_range("box", s.box, 0, 32768);
  require_range("coarse_epochs", s.coarse_epochs, 0, 100000);
  require_range("coarse_res", s.coarse_res, 0, 1e4, true);
  require_range("positions_first", s.positions_first, 0, 100000);
  require_range("position_unit", s.position_unit, 0, 1e3);
  require_range("warm_start", s.warm_start, 0, 100000);
  require_range("posterior_pairs", s.posterior_pairs, 1, 4096);
  require_range("posterior_width", s.posterior_width, 0, 100, true);
  if (s.minres > 0 && s.maxres > 0 && s.minres <= s.maxres)
    throw Error("TrainSettings: minres must be a lower resolution (more Å) than maxres");
  if (s.feature_pca_whiten && s.feature_pca == 0)
    throw Error("TrainSettings: feature_pca_whiten needs feature_pca (the number of components)");
  if (s.feature_noise_solver != "auto" && s.feature_noise_solver != "dense" && s.feature_noise_solver != "streamed")
    throw Error("TrainSettings: feature_noise_solver must be auto, dense or streamed");
  if (s.pooled && s.snr_weighted)
    throw Error("TrainSettings: pooled and snr_weighted are two scores (--loss white or snr); set one at most");
  if (s.radial_gain && !s.pooled)
    throw Error("TrainSettings: radial_gain is the pooled score's model gain (--loss gain); set pooled too");
  if (s.positions_first > 0 && !s.move_positions)
    throw Error("TrainSettings: positions_first needs move_positions");
  if (!s.move_positions && !s.move_amplitudes && !s.move_widths)
    throw Error("TrainSettings: nothing may move (move_positions, move_amplitudes and move_widths are all false)");
  if (!s.encoder_reads_positions && !s.encoder_reads_amplitudes && !s.encoder_reads_widths)
    throw Error("TrainSettings: the encoder reads nothing (encoder_reads_positions, _amplitudes and _widths are all "
                "false)");
  TrainConfig c = TrainConfig::from_json(settings_json(s));
  c.symmetry = make_symmetry_group(s.symmetry).name;
  if (!s.movable_gaussians.empty()) {
    c.movable.assign(size_t(G), 0);
    for (int g : s.movable_gaussians) {
      if (g < 0 || g >= G)
        throw Error("TrainSettings::movable_gaussians: " + std::to_string(g) + " is not a Gaussian of the model (0 to " +
                    std::to_string(G - 1) + ")");
      c.movable[size_t(g)] = 1;
    }
  }
  return c;
}

PoseSettings::PoseSettings() {
  const PoseRefineOptions o;
  bands = o.bands;
  minres = std::nan("");
  search_deg = o.search_deg;
  search_px = o.search_px;
  max_change_deg = o.max_change_deg;
  max_change_px = o.max_change_px;
  iterations = o.iterations;
  batch = o.batch;
  shifts_only = !o.rotations;
  ctf = "auto";
}

PoseRefineOptions to_pose_options(const PoseSettings& s) {
  auto range = [](const char* name, double v, double lo, double hi) {
    if (!std::isfinite(v) || v < lo || v > hi)
      throw Error(std::string("PoseSettings::") + name + ": " + std::to_string(v) + " is out of range (" +
                  std::to_string(lo) + " to " + std::to_string(hi) + ")");
  };
  PoseRefineOptions o;
  std::string bands;  // checked as the command checks its --bands
  for (double b : s.bands) bands += (bands.empty() ? "" : ",") + std::to_string(b);
  o.bands = parse_bands(bands, "PoseSettings::bands");
  if (!std::isnan(s.minres)) range("minres", s.minres, 0, 1e4), o.minres = s.minres;
  range("search_deg", s.search_deg, 0, 30);
  range("search_px", s.search_px, 0, 20);
  range("max_change_deg", s.max_change_deg, 0, 180);
  range("max_change_px", s.max_change_px, 0, 1000);
  range("iterations", s.iterations, 1, 10000);
  range("batch", s.batch, 1, 4096);
  o.search_deg = s.search_deg;
  o.search_px = s.search_px;
  o.max_change_deg = s.max_change_deg;
  o.max_change_px = s.max_change_px;
  o.iterations = s.iterations;
  o.batch = s.batch;
  o.rotations = !s.shifts_only;
  return o;
}

FitMapOptions to_fit_options(const FitSettings& s) {
  FitMapOptions o;
  o.map_path = s.map;
  o.half1_path = s.half1;
  o.half2_path = s.half2;
  o.mask_path = s.mask;
  o.init_path = s.init;
  o.res = s.res;
  o.threshold = s.threshold;
  o.ngauss = s.ngauss;
  o.seed = s.seed;
  if (s.map.empty()) throw Error("FitSettings::map: no map given");
  if (s.half1.empty() != s.half2.empty()) throw Error("FitSettings: give both half-maps or neither");
  if (!std::isfinite(s.res) || s.res < 0) throw Error("FitSettings::res must be a finite number >= 0");
  if (s.ngauss < 0) throw Error("FitSettings::ngauss must be >= 0");
  return o;
}

}  // namespace cugmm
