// Particles from the caller's arrays (Engine::import_particles) and the built-in example in memory
// (Engine::make_example). Arrays become an MRC stack and a RELION 3.1 STAR file in a directory of the
// caller's choosing: training streams particles from a memory-mapped cache on disk in any case, and the
// files make an imported set usable by every `cugmm` command (embed, analyze, reconstruct).
#include <cmath>
#include <filesystem>

#include "core/error.h"
#include "core/memory.h"
#include "engine/api/import.h"
#include "engine/example_model.h"
#include "engine/preprocess.h"
#include "engine/simulate.h"
#include "io/mrc.h"
#include "io/star.h"
#include "io/text.h"

namespace fs = std::filesystem;

namespace cugmm {

namespace {

std::string exact(double v) { return io::format_number("%.17g", v); }  // round-trips every double

void require_finite(double v, const std::string& what, size_t i) {
  if (!std::isfinite(v))
    throw Error("ParticleArrays: particle " + std::to_string(i + 1) + ": " + what + " is not a finite number");
}

}  // namespace

ImportedFiles import_particle_arrays(const ParticleArrays& a, const std::string& dir) {
  if (a.count == 0) throw Error("ParticleArrays: no particles (count is 0)");
  if (a.box < 4 || a.box % 2 != 0 || a.box > 32768)
    throw Error("ParticleArrays: box " + std::to_string(a.box) + " must be even, 4 to 32768 pixels");
  if (!std::isfinite(a.pixel_size) || !(a.pixel_size > 0))
    throw Error("ParticleArrays: pixel_size must be a positive number (Å), not " + std::to_string(a.pixel_size));
  if ((a.images == nullptr) == (a.fourier == nullptr)) throw Error("ParticleArrays: give images or fourier (one of them)");
  if (!a.poses) throw Error("ParticleArrays: poses are required");
  for (double v : {a.voltage, a.cs, a.amp_contrast})
    if (!std::isfinite(v)) throw Error("ParticleArrays: voltage, cs and amp_contrast must be finite numbers");
  const size_t n = size_t(a.box), plane = checked_mul(n, n, "ParticleArrays: box");
  const size_t pixels = checked_mul(plane, a.count, "ParticleArrays: count");
  for (size_t i = 0; i < a.count; ++i) {
    const ParticlePose& p = a.poses[i];
    for (double v : {p.rot, p.tilt, p.psi}) require_finite(v, "an Euler angle", i);
    require_finite(p.origin_x, "origin_x", i);
    require_finite(p.origin_y, "origin_y", i);
    if (a.ctf) {
      const ParticleCtf& c = a.ctf[i];
      for (double v : {c.defocus_u, c.defocus_v, c.defocus_angle, c.phase_shift, c.bfactor, c.scale})
        require_finite(v, "a CTF value", i);
    }
    if (a.random_subset && a.random_subset[i] != 1 && a.random_subset[i] != 2)
      throw Error("ParticleArrays: particle " + std::to_string(i + 1) + ": random_subset " +
                  std::to_string(a.random_subset[i]) + " is not 1 or 2");
  }
  std::vector<float> from_fourier;
  const float* images = a.images;
  if (a.fourier) {  // to images in the same convention; the cache transforms them back (no normalisation)
    require_host_memory(checked_mul(pixels, sizeof(float), "ParticleArrays"), "ParticleArrays: the images");
    from_fourier.resize(pixels);
    const size_t half = n * (n / 2 + 1);
    for (size_t i = 0; i < a.count; ++i)
      fourier_to_image(reinterpret_cast<const cfloat*>(a.fourier) + i * half, a.box, a.pixel_size,
                       from_fourier.data() + i * plane);
    images = from_fourier.data();
  }
  for (size_t k = 0; k < pixels; ++k)
    if (!std::isfinite(images[k]))
      throw Error("ParticleArrays: particle " + std::to_string(k / plane + 1) + ": a pixel is NaN or infinite");

  fs::create_directories(dir);
  ImportedFiles f;
  f.stack = (fs::path(dir) / "particles.mrcs").string();
  f.star = (fs::path(dir) / "particles.star").string();
  f.normalise = a.fourier == nullptr;
  io::StarBlock optics;
  optics.name = "optics";
  optics.columns = {"rlnOpticsGroup", "rlnOpticsGroupName", "rlnImagePixelSize", "rlnImageSize",
                    "rlnImageDimensionality", "rlnVoltage", "rlnSphericalAberration", "rlnAmplitudeContrast",
                    "rlnCtfDataArePhaseFlipped"};
  optics.rows.push_back({"1", "opticsGroup1", exact(a.pixel_size), std::to_string(a.box), "2", exact(a.voltage),
                         exact(a.cs), exact(a.amp_contrast), a.phase_flipped ? "1" : "0"});
  io::StarBlock parts;
  parts.name = "particles";
  parts.columns = {"rlnImageName", "rlnAngleRot", "rlnAngleTilt", "rlnAnglePsi", "rlnOriginXAngst", "rlnOriginYAngst",
                   "rlnOpticsGroup"};
  if (a.ctf)
    for (const char* c : {"rlnDefocusU", "rlnDefocusV", "rlnDefocusAngle", "rlnPhaseShift", "rlnCtfBfactor",
                          "rlnCtfScalefactor"})
      parts.columns.push_back(c);
  if (a.random_subset) parts.columns.push_back("rlnRandomSubset");
  for (size_t i = 0; i < a.count; ++i) {
    const ParticlePose& p = a.poses[i];
    std::vector<std::string> row = {std::to_string(i + 1) + "@particles.mrcs", exact(p.rot), exact(p.tilt), exact(p.psi),
                                    exact(p.origin_x), exact(p.origin_y), "1"};
    if (a.ctf) {
      const ParticleCtf& c = a.ctf[i];
      for (double v : {c.defocus_u, c.defocus_v, c.defocus_angle, c.phase_shift, c.bfactor, c.scale}) row.push_back(exact(v));
    }
    if (a.random_subset) row.push_back(std::to_string(a.random_subset[i]));
    parts.rows.push_back(std::move(row));
  }
  io::StarFile star;
  star.version = 30001;
  star.blocks = {optics, parts};
  io::write_mrc(f.stack, images, a.box, a.box, long(a.count), float(a.pixel_size), true);
  io::write_star(f.star, star);  // last: a STAR file present means its stack is complete
  return f;
}

ExampleData make_example_data(const ExampleSettings& s) {
  const ExampleMolecule mol = make_example_molecule(s.box, s.pixel_size, s.hinge_degrees);
  SimulationOptions opt;
  opt.count = s.count;
  opt.snr = s.snr;
  opt.ctf = s.ctf;
  opt.seed = s.seed;
  const SimulatedSet sim = simulate_in_memory({mol.open, mol.closed}, opt);
  ExampleData d;
  d.neutral = from_model(mol.open);
  d.images = sim.images;
  d.truth = sim.truth;
  d.box = s.box;
  d.pixel_size = s.pixel_size;
  for (const SimulatedPose& p : sim.poses) {
    d.poses.push_back({p.rot, p.tilt, p.psi, p.origin_x, p.origin_y});
    if (s.ctf) d.ctf.push_back({p.ctf.defocus_u, p.ctf.defocus_v, p.ctf.defocus_angle, p.ctf.phase_shift, p.ctf.bfactor, p.ctf.scale});
  }
  return d;
}

}  // namespace cugmm

cugmm::ParticleArrays cugmm::ExampleData::arrays() const {
  ParticleArrays a;
  a.count = poses.size();
  a.box = box;
  a.pixel_size = pixel_size;
  a.images = images.data();
  a.poses = poses.data();
  a.ctf = ctf.empty() ? nullptr : ctf.data();
  return a;  // voltage, Cs, amplitude contrast: the defaults the simulation used (CtfParams)
}
