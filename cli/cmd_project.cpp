// `cugmm project`: the model's projections for the particles' poses (and CTFs), as an MRC stack that can be
// set beside the particles. The grid is the particle cache's working grid (finest optics group, or --box),
// the coefficients come from the projector (engine/projector.h) and reach real space by the inverse of
// the engine/fourier_band.h convention: images in mass per pixel, comparable to relion_project of
// `cugmm render`'s map.
#include <algorithm>
#include <cstdio>
#include <vector>

#include "cli/command.h"
#include "cli/files.h"
#include "cli/limits.h"
#include "core/memory.h"
#include "core/error.h"
#include "core/log.h"
#include "engine/model_params.h"
#include "engine/particle_cache.h"
#include "engine/preprocess.h"
#include "engine/projector.h"
#include "io/model.h"
#include "io/mrc.h"
#include "io/particles.h"

namespace cugmm::cli {

static int run_project(Command& c) {
  std::string model_path, particles, out, root;
  bool ctf = false;
  int box = 0, model_box = 0;
  double model_angpix = 0;
  c.text("--model", model_path, "native model file, or PDB/mmCIF pseudo-atoms")->required();
  c.text("--particles", particles, "particle STAR or cryoSPARC .cs file (poses, CTFs)")->required();
  c.text("--out", out, "output stack (.mrcs)")->required();
  c.flag("--ctf", ctf, "apply each particle's CTF (|CTF| where its optics group is phase-flipped)");
  c.text("--root", root, "directory that relative image paths are relative to");
  c.integer("--box", box, "working box in pixels (0: the finest optics group's)", 0, kMaxBox);
  c.integer("--model-box", model_box, "box of the pseudo-atom model's map frame (0: the working box)", 0, kMaxBox);
  c.number("--model-angpix", model_angpix, "pixel size of that frame in Å (0: the working pixel size)", 0, 1e4);
  c.device_options();
  if (c.parse()) return 0;
  if (box != 0 && (box < 4 || box % 2))
    throw Error("--box must be even and at least 4 (or 0: the data's own), not " + std::to_string(box));
  require_extension("--out", out, {".mrcs", ".mrc"});
  check_files({{model_path, particles}, {out}, {}});

  // The images themselves are not needed, only their grid: when the STAR gives every box size, the stacks
  // need not be there.
  io::ParticleReadOptions ropt;
  ropt.root = root;
  ropt.check_images = false;
  io::ParticleSet set = io::read_particles(particles, ropt);
  for (const io::OpticsGroup& g : set.optics)
    if (g.box_size <= 0) {
      ropt.check_images = true;
      set = io::read_particles(particles, ropt);
      break;
    }
  if (ctf && !set.has_ctf) throw Error("--ctf: " + particles + " gives no defocus values");
  std::vector<std::string> stacks;
  for (const io::Particle& p : set.particles)
    if (stacks.empty() || stacks.back() != p.image_file) stacks.push_back(p.image_file);
  refuse_overwriting({out}, stack_candidates(stacks, particles, root), "a stack " + particles + " names");
  const WorkingGrid grid = choose_working_grid(set, box);
  const size_t plane_bytes = checked_mul(checked_mul(size_t(grid.box), size_t(grid.box), "--box"), sizeof(float), "--box");
  require_host_memory(checked_mul(plane_bytes, set.particles.size(), "the projections"),
                      std::to_string(set.particles.size()) + " projections of " + std::to_string(grid.box) + " px");
  const Device device = c.device();
  io::GaussianModel m = io::load_any_model(model_path, model_box > 0 ? model_box : grid.box,
                                           model_angpix > 0 ? model_angpix : grid.pixel);
  CUGMM_REQUIRE(m.size() > 0, "the model " + model_path + " has no Gaussians");
  const size_t g = m.size(), n = set.particles.size();
  const std::vector<float> params = params_from_model(m);

  const FourierBand band = make_fourier_band(grid.box, grid.pixel, 0, 0);  // everything up to Nyquist
  ProjectorOptions popt;
  Context cx(device);
  auto projector = make_projector(cx, band, int(g), popt);
  const int chunk = std::max(1, popt.max_batch);
  const size_t plane = size_t(grid.box) * grid.box, half = size_t(grid.box) * (grid.box / 2 + 1);
  std::vector<float> images(n * plane);
  std::vector<cfloat> halves(size_t(chunk) * half);
  std::vector<ParticleView> views(chunk);
  Progress progress("projecting", n);
  for (size_t first = 0; first < n; first += chunk) {
    const int count = int(std::min<size_t>(chunk, n - first));
    for (int i = 0; i < count; ++i) {
      const io::Particle& p = set.particles[first + i];
      CtfMode mode = !ctf ? CtfMode::none
                          : set.optics[p.optics].phase_flipped ? CtfMode::phase_flipped : CtfMode::full;
      views[i] = make_particle_view(p.rot, p.tilt, p.psi, p.origin_x, p.origin_y, p.ctf, mode);
    }
    ProjectionBatch in;
    in.count = count;
    in.params = params.data();
    in.params_stride = 0;
    in.views = views.data();
    projector->render_host(in, halves.data());
#pragma omp parallel for schedule(static)
    for (int i = 0; i < count; ++i)
      fourier_to_image(halves.data() + size_t(i) * half, grid.box, grid.pixel, images.data() + (first + i) * plane);
    // fourier_to_image gives mass per Å^2; a pixel holds that times its area.
    const float area = float(grid.pixel * grid.pixel);
    for (size_t k = first * plane; k < (first + count) * plane; ++k) images[k] *= area;
    progress.add(size_t(count));
  }
  progress.finish();
  io::write_mrc(out, images.data(), grid.box, grid.box, int(n), float(grid.pixel), true);
  std::printf("%s: %zu projections, %d px at %.4f Å%s, on %s\n", out.c_str(), n, grid.box, grid.pixel,
              ctf ? ", with CTF" : "", device_name(device));
  return 0;
}

static RegisterCommand reg("project", "the model's projections for the particles' poses (and CTFs) as a stack",
                           run_project);

}  // namespace cugmm::cli
