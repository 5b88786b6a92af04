#include "engine/simulate.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <random>

#include "core/error.h"
#include "io/text.h"
#include "core/log.h"
#include "core/memory.h"
#include "engine/model_params.h"
#include "engine/preprocess.h"
#include "engine/projector.h"
#include "engine/random_pose.h"
#include "engine/simulate_system.h"
#include "io/mrc.h"
#include "io/star.h"
#include "kernels/geometry.h"

namespace cugmm {


void check_simulation_options(const SimulationOptions& opt, int box, const std::string& name) {
  auto finite = [](double v) { return std::isfinite(v); };
  if (opt.count <= 0) throw Error("simulate: --count must be positive, not " + std::to_string(opt.count));
  if (!finite(opt.snr) || opt.snr < 0) throw Error("simulate: --snr must be a finite number >= 0 (0: no noise)");
  if (!finite(opt.defocus_min) || !finite(opt.defocus_max) || opt.defocus_min <= 0 || opt.defocus_max <= 0)
    throw Error("simulate: defocus values must be finite and positive (Å)");
  if (opt.defocus_min > opt.defocus_max)
    throw Error("simulate: --defocus-min (" + std::to_string(opt.defocus_min) + ") is above --defocus-max (" +
                std::to_string(opt.defocus_max) + ")");
  if (!finite(opt.max_shift) || opt.max_shift < 0 || opt.max_shift > box / 2)
    throw Error("simulate: --max-shift must be between 0 and half the box (" + std::to_string(box / 2) + " px)");
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos)
    throw Error("simulate: --name '" + quote_value(name) + "' must be a plain file name (no directories)");
  const size_t plane = checked_mul(size_t(box), size_t(box), "simulate: the image size");
  require_host_memory(checked_mul(checked_mul(plane, size_t(opt.count), "simulate: --count"), sizeof(float),
                                  "simulate: --count"),
                      "simulate: " + std::to_string(opt.count) + " images of " + std::to_string(box) + " px");
}

SimulatedSet simulate_in_memory(const std::vector<io::GaussianModel>& models, const SimulationOptions& opt) {
  CUGMM_REQUIRE(!models.empty() && opt.count > 0, "simulate_particles: no models or no particles");
  const int n = models[0].box_size;
  const double px = models[0].pixel_size;
  for (auto& m : models)
    CUGMM_REQUIRE(m.box_size == n && m.pixel_size == px && m.size() == models[0].size(),
                  "simulate_particles: the models must share box, pixel size and Gaussian count");
  check_simulation_options(opt, n, "particles");
  const int g = int(models[0].size());
  FourierBand band = make_fourier_band(n, px, 0, 0);
  Context cx(opt.device);  // this call is the run
  auto projector = make_projector(cx, band, g);

  std::mt19937_64 rng(opt.seed);
  std::uniform_real_distribution<double> uni(0, 1);
  SimulatedSet out;
  const size_t plane = size_t(n) * n, half = size_t(n) * (n / 2 + 1), row_len = size_t(5) * g;
  std::vector<std::vector<float>> rows;
  for (auto& m : models) rows.push_back(params_from_model(m));
  std::vector<ParticleView> views;
  for (int i = 0; i < opt.count; ++i) {
    int which = i % int(models.size());
    out.truth.push_back(which);
    SimulatedPose p;
    matrix_to_euler(random_rotation(rng), p.rot, p.tilt, p.psi);
    p.origin_x = (2 * uni(rng) - 1) * opt.max_shift * px;
    p.origin_y = (2 * uni(rng) - 1) * opt.max_shift * px;
    double mean_def = opt.defocus_min + (opt.defocus_max - opt.defocus_min) * uni(rng);
    p.ctf.defocus_u = mean_def + opt.astigmatism / 2;
    p.ctf.defocus_v = mean_def - opt.astigmatism / 2;
    p.ctf.defocus_angle = 360 * uni(rng) - 180;
    views.push_back(make_particle_view(p.rot, p.tilt, p.psi, p.origin_x, p.origin_y, p.ctf,
                                       opt.ctf ? CtfMode::full : CtfMode::none));
    out.poses.push_back(p);
  }

  // Projections in chunks, one parameter row per particle (the chunk mixes models).
  const int chunk = 128;
  out.images.assign(plane * opt.count, 0.f);
  std::vector<float>& images = out.images;
  std::vector<float> params(row_len * chunk);
  std::vector<cfloat> coeffs(half * chunk);
  Progress progress("simulate", size_t(opt.count));
  for (int first = 0; first < opt.count; first += chunk) {
    int m = std::min(chunk, opt.count - first);
    for (int i = 0; i < m; ++i) std::copy(rows[out.truth[first + i]].begin(), rows[out.truth[first + i]].end(),
                                          params.begin() + row_len * i);
    ProjectionBatch batch;
    batch.count = m;
    batch.params = params.data();
    batch.params_stride = row_len;
    batch.views = views.data() + first;
    projector->render_host(batch, coeffs.data());
    for (int i = 0; i < m; ++i) {
      float* im = images.data() + plane * (first + i);
      fourier_to_image(coeffs.data() + half * i, n, px, im);
      for (size_t p = 0; p < plane; ++p) im[p] *= float(px * px);  // mass per Å^2 -> mass per pixel
    }
    progress.add(size_t(m));
  }
  progress.finish();
  if (opt.snr > 0) {
    double sum = 0, sum2 = 0;
    for (float v : images) { sum += v; sum2 += double(v) * v; }
    double mean = sum / images.size(), var = sum2 / images.size() - mean * mean;
    std::normal_distribution<float> noise(0.f, float(std::sqrt(var / opt.snr)));
    for (float& v : images) v += noise(rng);
  }
  return out;
}

SimulatedParticles simulate_particles(const std::vector<io::GaussianModel>& models, const SimulationOptions& opt,
                                      const std::string& out_dir, const std::string& name) {
  CUGMM_REQUIRE(!models.empty() && opt.count > 0, "simulate_particles: no models or no particles");
  check_simulation_options(opt, models[0].box_size, name);
  std::filesystem::create_directories(out_dir);
  const SimulatedSet sim = simulate_in_memory(models, opt);
  const int n = models[0].box_size;
  const double px = models[0].pixel_size;
  SimulatedParticles out;
  out.truth = sim.truth;
  out.stack = out_dir + "/" + name + ".mrcs";
  out.star = out_dir + "/" + name + ".star";
  io::StarFile star;
  star.version = 30001;
  const io::StarBlock optics = optics_block(px, n, {CtfParams{}});
  io::StarBlock parts;
  parts.name = "particles";
  parts.columns = {"rlnImageName", "rlnAngleRot", "rlnAngleTilt", "rlnAnglePsi", "rlnOriginXAngst",
                   "rlnOriginYAngst", "rlnDefocusU", "rlnDefocusV", "rlnDefocusAngle", "rlnOpticsGroup",
                   "rlnClassNumber"};
  // Without a CTF in the images there must be no defocus in the STAR file: readers take rlnDefocusU as
  // "these images carry a CTF" and would model (score) or correct (reconstruct) one that is not there.
  const int first_ctf_column = 6, ctf_columns = 3;
  const std::string stack_name = std::filesystem::path(out.stack).filename().string();
  for (int i = 0; i < opt.count; ++i) {
    const SimulatedPose& p = sim.poses[size_t(i)];
    parts.rows.push_back({std::to_string(i + 1) + "@" + stack_name, io::format_fixed(p.rot), io::format_fixed(p.tilt),
                          io::format_fixed(p.psi), io::format_fixed(p.origin_x), io::format_fixed(p.origin_y),
                          io::format_fixed(p.ctf.defocus_u), io::format_fixed(p.ctf.defocus_v),
                          io::format_fixed(p.ctf.defocus_angle), "1", std::to_string(sim.truth[size_t(i)] + 1)});
    if (!opt.ctf) {
      auto& r = parts.rows.back();
      r.erase(r.begin() + first_ctf_column, r.begin() + first_ctf_column + ctf_columns);
    }
  }
  if (!opt.ctf)
    parts.columns.erase(parts.columns.begin() + first_ctf_column,
                        parts.columns.begin() + first_ctf_column + ctf_columns);
  star.blocks = {optics, parts};
  io::write_mrc(out.stack, sim.images.data(), n, n, opt.count, float(px), true);
  io::write_star(out.star, star);  // last: a STAR file present means its stack is complete
  return out;
}

}  // namespace cugmm
