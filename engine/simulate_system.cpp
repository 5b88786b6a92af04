#include "engine/simulate_system.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <sstream>

#include "core/error.h"
#include "core/log.h"
#include "engine/atom_map.h"
#include "engine/fft.h"
#include "engine/random_pose.h"
#include "engine/reconstruct.h"
#include "engine/system_imager.h"
#include "io/atomic_file.h"
#include "io/mrc.h"
#include "io/particles.h"
#include "io/star.h"
#include "io/text.h"

namespace cugmm {

namespace {

// A generator per (seed, particle, purpose): draws do not depend on the order particles are made in.
std::mt19937_64 rng_for(uint64_t seed, size_t i, uint64_t purpose) {
  uint64_t z = seed * 0x9E3779B97F4A7C15ull + i * 0xBF58476D1CE4E5B9ull + purpose * 0x94D049BB133111EBull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return std::mt19937_64(z ^ (z >> 31));
}

void check_options(const HeteroSystem& s, const TruthSimOptions& o) {
  auto bad = [](const std::string& what) { throw Error("simulate: " + what); };
  if (o.count < 2) bad("--count must be at least 2 (two half-sets)");
  if (o.box < 16 || o.box % 2) bad("--box must be even and at least 16");
  if (!(o.pixel > 0) || !std::isfinite(o.pixel)) bad("--angpix must be a positive number");
  if (!std::isfinite(o.snr)) bad("--snr must be a number (<= 0: no noise)");
  if (!(o.noise_bfactor >= 0) || !std::isfinite(o.noise_bfactor)) bad("--noise-bfactor must be >= 0");
  if (!(o.scale_sd >= 0) || o.scale_sd > 2) bad("--scale-sd must be between 0 and 2");
  if (!(o.junk_fraction >= 0 && o.junk_fraction < 1)) bad("--junk must be in [0, 1)");
  if (!(o.defocus_min > 0) || !(o.defocus_max >= o.defocus_min) || !std::isfinite(o.defocus_max))
    bad("--defocus-min/--defocus-max must be positive with min <= max");
  if (!(o.astigmatism >= 0) || o.astigmatism > 2 * o.defocus_min) bad("--astigmatism must be in [0, 2 x defocus-min]");
  if (!(o.bfactor >= 0) || !std::isfinite(o.bfactor)) bad("--bfactor must be >= 0");
  if (o.optics_groups < 1 || o.optics_groups > 64) bad("--optics-groups must be 1 to 64");
  if (!(o.pose_error_deg >= 0) || o.pose_error_deg > 45) bad("--pose-error must be in [0, 45] degrees");
  if (!(o.shift_error_px >= 0) || o.shift_error_px > o.box / 4.0) bad("--shift-error must be in [0, box/4] pixels");
  if (!(o.max_shift_px >= 0) || o.max_shift_px > o.box / 4.0) bad("--max-shift must be in [0, box/4] pixels");
  if (o.oversample < 1 || o.oversample > 4) bad("--oversample must be 1 to 4");
  if (o.true_maps < 0 || o.true_maps > 1000) bad("--true-maps must be 0 to 1000");
  if (o.name.empty() || o.name.find('/') != std::string::npos || o.name == "." || o.name == "..")
    bad("--name must be a plain file name");
  if (s.motions.empty()) bad("the system has no motion");
}

// Optics of group g: even groups a 300 kV scope with Cs 2.7 mm, odd ones 200 kV with Cs 2.0 mm, so merged
// sets exercise per-group CTFs.
CtfParams group_optics(int g) {
  CtfParams c;
  c.voltage = g % 2 ? 200 : 300;
  c.cs = g % 2 ? 2.0 : 2.7;
  c.amp_contrast = 0.1;
  return c;
}

void write_truth_csv(const std::string& path, const HeteroSystem& s, const TruthSimOptions& o,
                     const std::vector<ParticleTruth>& t) {
  std::ostringstream out;
  out << "index";
  for (const Motion& m : s.motions) out << "," << m.name;
  out << ",junk,scale,rot,tilt,psi,origin_x_A,origin_y_A,pose_error_deg,shift_error_A\n";
  for (size_t i = 0; i < t.size(); ++i) {
    out << i + 1;
    for (double v : t[i].state) out << "," << io::format_fixed(v);
    double rot, tilt, psi;
    matrix_to_euler(t[i].view, rot, tilt, psi);
    out << "," << int(t[i].junk) << "," << io::format_fixed(t[i].scale) << "," << io::format_fixed(rot) << ","
        << io::format_fixed(tilt) << "," << io::format_fixed(psi) << "," << io::format_fixed(t[i].origin_x) << ","
        << io::format_fixed(t[i].origin_y) << "," << io::format_fixed(rad2deg(geodesic_angle(t[i].view, t[i].star_view)))
        << "," << io::format_fixed(std::hypot(t[i].star_origin_x - t[i].origin_x, t[i].star_origin_y - t[i].origin_y))
        << "\n";
  }
  (void)o;
  io::write_file_atomic(path, out.str());
}

}  // namespace

std::vector<float> noise_filter(int n, double pixel, double bfactor, double& mean_square) {
  const int w = n / 2 + 1;
  std::vector<float> filter(size_t(n) * w, 1.f);
  double sum = 0;
  for (int row = 0; row < n; ++row)
    for (int kx = 0; kx < w; ++kx) {
      const int ky = row > n / 2 ? row - n : row;
      const double k2 = (double(kx) * kx + double(ky) * ky) / (n * pixel * n * pixel);
      const float f = float(std::exp(-bfactor * k2 / 4));
      filter[size_t(row) * w + kx] = f;
      sum += (kx == 0 || kx == n / 2 ? 1.0 : 2.0) * f * f;
    }
  mean_square = sum / (double(n) * n);
  return filter;
}

io::StarBlock optics_block(double pixel, int box, const std::vector<CtfParams>& groups) {
  io::StarBlock optics;
  optics.name = "optics";
  optics.columns = {"rlnOpticsGroup", "rlnOpticsGroupName", "rlnImagePixelSize", "rlnImageSize",
                    "rlnImageDimensionality", "rlnVoltage", "rlnSphericalAberration", "rlnAmplitudeContrast"};
  for (size_t g = 0; g < groups.size(); ++g)
    optics.rows.push_back({std::to_string(g + 1), "opticsGroup" + std::to_string(g + 1), io::format_fixed(pixel),
                           std::to_string(box), "2", io::format_fixed(groups[g].voltage), io::format_fixed(groups[g].cs),
                           io::format_fixed(groups[g].amp_contrast)});
  return optics;
}

ParticleTruth draw_particle(const HeteroSystem& system, const TruthSimOptions& o, size_t i) {
  std::mt19937_64 rng = rng_for(o.seed, i, 1);
  std::uniform_real_distribution<double> uni(0, 1);
  ParticleTruth t;
  for (const Motion& m : system.motions)
    t.state.push_back(m.kind == Motion::Kind::present ? double(uni(rng) < m.fraction) : m.lo + (m.hi - m.lo) * uni(rng));
  t.junk = uni(rng) < o.junk_fraction;
  t.scale = std::exp(std::normal_distribution<double>(0, 1)(rng) * o.scale_sd);
  t.view = random_rotation(rng);
  const double px = o.pixel;
  t.origin_x = (2 * uni(rng) - 1) * o.max_shift_px * px;
  t.origin_y = (2 * uni(rng) - 1) * o.max_shift_px * px;
  t.optics_group = int(i % size_t(o.optics_groups));
  t.ctf = group_optics(t.optics_group);
  const double mean_def = o.defocus_min + (o.defocus_max - o.defocus_min) * uni(rng);
  const double astig = o.astigmatism * uni(rng);
  t.ctf.defocus_u = mean_def + astig / 2;
  t.ctf.defocus_v = mean_def - astig / 2;
  t.ctf.defocus_angle = 360 * uni(rng) - 180;
  t.ctf.bfactor = o.bfactor;
  // The STAR pose: A' = exp([w]x) A with w ~ N(0, sigma^2 I); |w| has RMS sigma sqrt(3).
  double angle = 0;
  t.star_view = mul(random_small_rotation(rng, deg2rad(o.pose_error_deg) / std::sqrt(3.0), angle), t.view);
  std::normal_distribution<double> shift_err(0, o.shift_error_px * px);
  t.star_origin_x = t.origin_x + shift_err(rng);
  t.star_origin_y = t.origin_y + shift_err(rng);
  return t;
}

SimulatedTruth simulate_system(const HeteroSystem& system, const TruthSimOptions& o, const std::string& out_dir,
                               std::vector<float>* images_out) {
  check_options(system, o);
  namespace fs = std::filesystem;
  fs::create_directories(out_dir);
  const int n = o.box, w = n / 2 + 1;
  const size_t plane = size_t(n) * n;
  SystemImager imager(system, n, o.pixel, o.oversample);

  SimulatedTruth res;
  for (const Motion& m : system.motions) res.motion_names.push_back(m.name);
  std::vector<ParticleTruth> truth(size_t(o.count));
  for (size_t i = 0; i < truth.size(); ++i) truth[i] = draw_particle(system, o, i);

  // Noise-free images, then the noise level the SNR asks for.
  std::vector<float> images(plane * size_t(o.count), 0.f);
  Progress progress("simulate", size_t(o.count));
#pragma omp parallel for schedule(dynamic, 4)
  for (int i = 0; i < o.count; ++i) {
    const ParticleTruth& t = truth[size_t(i)];
    if (!t.junk) {
      float* im = images.data() + plane * size_t(i);
      imager.projector().project(t.view, t.origin_x, t.origin_y, imager.motions(t.state), t.ctf,
                                 o.ctf ? CtfMode::full : CtfMode::none, im);
      for (size_t p = 0; p < plane; ++p) im[p] *= float(t.scale);
    }
#pragma omp critical(simulate_progress)
    progress.add(1);
  }
  progress.finish();
  double var_sum = 0;
  size_t real = 0;
  for (int i = 0; i < o.count; ++i) {
    if (truth[size_t(i)].junk) continue;
    const float* im = images.data() + plane * size_t(i);
    double s = 0, s2 = 0;
    for (size_t p = 0; p < plane; ++p) { s += im[p]; s2 += double(im[p]) * im[p]; }
    var_sum += s2 / plane - (s / plane) * (s / plane);
    ++real;
  }
  CUGMM_REQUIRE(real > 0, "simulate: every particle is junk; lower --junk");
  res.noise_sigma = o.snr > 0 ? std::sqrt(var_sum / double(real) / o.snr) : 0;
  if (o.snr > 0) {
    // Coloured noise: white noise filtered by exp(-B k^2 / 4), rescaled to the same per-pixel variance.
    double mean_f2 = 1;
    const std::vector<float> filter = noise_filter(n, o.pixel, o.noise_bfactor, mean_f2);
    const float sigma = float(res.noise_sigma / std::sqrt(mean_f2));
#pragma omp parallel
    {
      std::vector<float> noise(plane);
      std::vector<cfloat> half(size_t(n) * w);
#pragma omp for schedule(static)
      for (int i = 0; i < o.count; ++i) {
        std::mt19937_64 rng = rng_for(o.seed, size_t(i), 2);
        std::normal_distribution<float> g(0.f, sigma);
        for (float& v : noise) v = g(rng);
        if (o.noise_bfactor > 0) {
          fft2_r2c(n, n, noise.data(), half.data());
          for (size_t k = 0; k < half.size(); ++k) half[k] *= filter[k] / float(plane);
          fft2_c2r(n, n, half.data(), noise.data());
        }
        float* im = images.data() + plane * size_t(i);
        for (size_t p = 0; p < plane; ++p) im[p] += noise[p];
      }
    }
  }

  // RELION files: the stack, the truth, and the STAR (written last: its presence means complete).
  res.stack = (fs::path(out_dir) / (o.name + ".mrcs")).string();
  res.star = (fs::path(out_dir) / (o.name + ".star")).string();
  res.truth_csv = (fs::path(out_dir) / (o.name + "_truth.csv")).string();
  fs::remove(res.star);
  io::write_mrc(res.stack, images.data(), n, n, o.count, float(o.pixel), true);
  write_truth_csv(res.truth_csv, system, o, truth);
  io::StarFile star;
  star.version = 30001;
  std::vector<CtfParams> groups;
  for (int g = 0; g < o.optics_groups; ++g) groups.push_back(group_optics(g));
  const io::StarBlock optics = optics_block(o.pixel, n, groups);
  io::StarBlock parts;
  parts.name = "particles";
  parts.columns = {"rlnImageName", "rlnAngleRot", "rlnAngleTilt", "rlnAnglePsi", "rlnOriginXAngst",
                   "rlnOriginYAngst", "rlnOpticsGroup", "rlnRandomSubset"};
  // Without a CTF in the images there must be no defocus in the STAR file: readers take rlnDefocusU as
  // "these images carry a CTF".
  if (o.ctf) {
    for (const char* c : {"rlnDefocusU", "rlnDefocusV", "rlnDefocusAngle"}) parts.columns.push_back(c);
    if (o.bfactor > 0) parts.columns.push_back("rlnCtfBfactor");
  }
  const std::string stack_name = fs::path(res.stack).filename().string();
  double err2 = 0, shift2 = 0;
  for (size_t i = 0; i < truth.size(); ++i) {
    const ParticleTruth& t = truth[i];
    double rot, tilt, psi;
    matrix_to_euler(t.star_view, rot, tilt, psi);
    std::vector<std::string> row = {std::to_string(i + 1) + "@" + stack_name, io::format_fixed(rot),
                                    io::format_fixed(tilt), io::format_fixed(psi), io::format_fixed(t.star_origin_x),
                                    io::format_fixed(t.star_origin_y), std::to_string(t.optics_group + 1),
                                    std::to_string(i % 2 + 1)};
    if (o.ctf) {
      for (double v : {t.ctf.defocus_u, t.ctf.defocus_v, t.ctf.defocus_angle}) row.push_back(io::format_fixed(v));
      if (o.bfactor > 0) row.push_back(io::format_fixed(o.bfactor));
    }
    parts.rows.push_back(row);
    const double e = geodesic_angle(t.view, t.star_view);
    err2 += e * e;
    shift2 += (std::pow(t.star_origin_x - t.origin_x, 2) + std::pow(t.star_origin_y - t.origin_y, 2)) / 2;
    res.state.push_back(t.state);
    res.junk.push_back(t.junk);
    res.scale.push_back(t.scale);
  }
  res.pose_error_rms_deg = rad2deg(std::sqrt(err2 / double(truth.size())));
  res.shift_error_rms_px = std::sqrt(shift2 / double(truth.size())) / o.pixel;
  star.blocks = {optics, parts};
  // The STAR goes to a staging name so the consensus reconstruction can read it before it is final.
  const std::string staging = (fs::path(out_dir) / ("." + o.name + ".staging.star")).string();
  io::write_star(staging, star);
  struct RemoveOnFailure {
    std::string path;
    ~RemoveOnFailure() { if (!path.empty()) std::filesystem::remove(path); }
  } guard{staging};

  if (o.consensus) {
    io::ParticleSet set = io::read_particles(staging);
    std::vector<size_t> rows(set.particles.size());
    for (size_t i = 0; i < rows.size(); ++i) rows[i] = i;
    ReconstructOptions ro;
    ro.ctf = o.ctf ? CtfMode::full : CtfMode::none;
    HalfMaps maps = reconstruct_halves(set, rows, Device::cpu, ro);
    res.consensus = (fs::path(out_dir) / "consensus.mrc").string();
    io::write_mrc((fs::path(out_dir) / "consensus_half1.mrc").string(), maps.half1.data(), n, n, n, float(o.pixel), false);
    io::write_mrc((fs::path(out_dir) / "consensus_half2.mrc").string(), maps.half2.data(), n, n, n, float(o.pixel), false);
    io::write_mrc(res.consensus, maps.full.data(), n, n, n, float(o.pixel), false);
  }
  if (o.true_maps > 0) {
    std::ostringstream csv;
    csv << "file";
    for (const Motion& m : system.motions) csv << "," << m.name;
    csv << "\n";
    for (int k = 0; k < o.true_maps; ++k) {
      const double f = o.true_maps == 1 ? 0.5 : double(k) / (o.true_maps - 1);
      std::vector<double> state;
      for (const Motion& m : system.motions)
        state.push_back(m.kind == Motion::Kind::present ? double(f >= 0.5)
                        : m.circular()                  ? m.lo + (m.hi - m.lo) * k / o.true_maps
                                                        : m.lo + (m.hi - m.lo) * f);
      char name[32];
      std::snprintf(name, sizeof name, "true_state_%03d.mrc", k + 1);
      io::write_mrc((fs::path(out_dir) / name).string(),
                    render_atom_map(atoms_at_state(system, state), nullptr, n, o.pixel, imager.atom_shift(), o.oversample),
                    false);
      csv << name;
      for (double v : state) csv << "," << io::format_fixed(v);
      csv << "\n";
    }
    io::write_file_atomic((fs::path(out_dir) / "true_states.csv").string(), csv.str());
  }

  nlohmann::json j;
  j["system"] = system.name;
  j["atoms"] = system.atoms.atoms.size();
  nlohmann::json jm = nlohmann::json::array();
  for (const Motion& m : system.motions)
    jm.push_back({{"name", m.name},
                  {"type", m.kind == Motion::Kind::rotate ? "rotate" : m.kind == Motion::Kind::translate ? "translate" : "present"},
                  {"range", {m.lo, m.hi}}, {"fraction", m.fraction}, {"axis", {m.axis.x, m.axis.y, m.axis.z}},
                  {"point", {m.point.x, m.point.y, m.point.z}}});
  j["motions"] = jm;
  j["options"] = {{"count", o.count}, {"box", o.box}, {"pixel", o.pixel}, {"snr", o.snr},
                  {"noise_bfactor", o.noise_bfactor}, {"scale_sd", o.scale_sd}, {"junk_fraction", o.junk_fraction},
                  {"ctf", o.ctf}, {"defocus", {o.defocus_min, o.defocus_max}}, {"astigmatism", o.astigmatism},
                  {"bfactor", o.bfactor}, {"optics_groups", o.optics_groups}, {"pose_error_deg", o.pose_error_deg},
                  {"shift_error_px", o.shift_error_px}, {"max_shift_px", o.max_shift_px}, {"seed", o.seed},
                  {"oversample", o.oversample}};
  j["noise_sigma"] = res.noise_sigma;
  j["pose_error_rms_deg"] = res.pose_error_rms_deg;
  j["shift_error_rms_px"] = res.shift_error_rms_px;
  j["files"] = {{"particles", fs::path(res.star).filename().string()}, {"stack", stack_name},
                {"truth", fs::path(res.truth_csv).filename().string()}};
  io::write_file_atomic((fs::path(out_dir) / "simulation.json").string(), j.dump(2) + "\n");
  fs::rename(staging, res.star);
  guard.path.clear();
  if (images_out) *images_out = std::move(images);
  return res;
}

PoseErrors pose_errors(const HeteroSystem& system, const TruthSimOptions& opt, const std::vector<ParticlePose>& poses) {
  double a = 0, s = 0;
  for (size_t i = 0; i < poses.size(); ++i) {
    const ParticleTruth t = draw_particle(system, opt, i);
    const ParticlePose& p = poses[i];
    a += std::pow(rad2deg(geodesic_angle(t.view, euler_to_matrix(p.rot, p.tilt, p.psi))), 2);
    s += std::pow(p.origin_x - t.origin_x, 2) + std::pow(p.origin_y - t.origin_y, 2);
  }
  const double n = double(std::max<size_t>(1, poses.size()));
  return {std::sqrt(a / n), std::sqrt(s / n) / opt.pixel};
}

TruthSimOptions pose_refinement_set(int count) {
  TruthSimOptions o;
  o.count = count;
  o.box = 128;
  o.pixel = 1.5;
  o.snr = 0.1;
  o.pose_error_deg = 3;
  o.shift_error_px = 1.5;
  o.consensus = false;
  o.seed = 3;
  return o;
}

}  // namespace cugmm
