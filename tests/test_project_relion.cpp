// Issue 4 item 7 (relion_project part): a model rendered to a map (cugmm render's engine) and projected by
// relion_project agrees with `cugmm project` of the same model, image by image: FRC >= 0.99 on every ring
// up to 0.8 Nyquist, without and with the CTF, and the same overall scale (mass per pixel on both sides).
#include <doctest/doctest.h>

#include <cmath>
#include <complex>
#include <random>
#include <string>
#include <vector>

#include "engine/fft.h"
#include "engine/particle_cache.h"
#include "engine/projector.h"
#include "engine/render.h"
#include "io/model.h"
#include "io/mrc.h"
#include "kernels/geometry.h"
#include "support.h"
#include "support_rings.h"

using namespace cugmm;

namespace {

// 36 Gaussians in a ~50 Å blob, s from 1.5 to 3 px, box 64 at 2 Å.
io::GaussianModel test_model() {
  std::mt19937 rng(2026);
  std::uniform_real_distribution<double> pos(-24, 24), amp(0.5, 2.0), wid(3.0, 6.0);
  io::GaussianModel m;
  m.box_size = 64;
  m.pixel_size = 2.0;
  while (m.size() < 36) {
    double x = pos(rng), y = pos(rng), z = pos(rng);
    if (x * x + y * y + z * z > 24 * 24) continue;
    m.x.push_back(float(x)); m.y.push_back(float(y)); m.z.push_back(float(z));
    m.amplitude.push_back(float(amp(rng)));
    m.width.push_back(float(wid(rng)));
  }
  return m;
}

enum class Ctf { none, full, flipped };

void compare_with_relion(Ctf mode) {
  const bool ctf = mode != Ctf::none;
  const int n = 64, views = 7;
  const double px = 2.0;
  std::string dir = test::scratch_dir(mode == Ctf::none ? "project_relion" : mode == Ctf::full ? "project_relion_ctf"
                                                                                             : "project_relion_flip");
  io::GaussianModel m = test_model();
  io::write_model(dir + "/model.txt", m);
  io::write_mrc(dir + "/model.mrc", render_volume(m), false);
  // No images exist: both programs need only the poses, CTFs and the optics table (box, pixel size).

  // rot, tilt, psi, origin x, y (Å), defocus U, V, angle.
  const double poses[views][8] = {{0, 0, 0, 0, 0, 12000, 11000, 20},          {30, 60, -20, 3.5, -2.25, 15000, 14500, 60},
                                  {100, 20, 70, -4, 1, 9000, 9000, 0},         {-45, 135, 10, 0.5, 6, 20000, 18000, -40},
                                  {200, 90, -150, -7, -3, 13000, 12500, 110},  {75, 170, 35, 5.3, 4.1, 17000, 16000, 5},
                                  {-120, 45, 160, 2, -6.5, 11000, 10200, -75}};
  std::string star =
      "\n# version 30001\n\ndata_optics\n\nloop_\n_rlnOpticsGroup #1\n_rlnOpticsGroupName #2\n_rlnImagePixelSize #3\n"
      "_rlnImageSize #4\n_rlnImageDimensionality #5\n_rlnVoltage #6\n_rlnSphericalAberration #7\n"
      "_rlnAmplitudeContrast #8\n_rlnCtfDataArePhaseFlipped #9\n1 opticsGroup1 2.0 64 2 300 2.7 0.1 " +
      std::string(mode == Ctf::flipped ? "1" : "0") + "\n\n\n# version 30001\n\ndata_particles\n\n"
      "loop_\n_rlnImageName #1\n_rlnAngleRot #2\n_rlnAngleTilt #3\n_rlnAnglePsi #4\n_rlnOriginXAngst #5\n"
      "_rlnOriginYAngst #6\n_rlnDefocusU #7\n_rlnDefocusV #8\n_rlnDefocusAngle #9\n_rlnOpticsGroup #10\n";
  for (int i = 0; i < views; ++i) {
    star += std::to_string(i + 1) + "@none.mrcs";
    for (double v : poses[i]) star += " " + std::to_string(v);
    star += " 1\n";
  }
  test::write_text(dir + "/parts.star", star);

  // Phase-flipped data: our --ctf takes |CTF| from the optics group's flag; relion_project is told.
  std::string flag = ctf ? " --ctf" : "";
  auto r = test::run("relion_project --i model.mrc --o proj --ang parts.star" + flag +
                         (mode == Ctf::flipped ? " --ctf_phase_flip" : ""), dir);
  REQUIRE_MESSAGE(r.status == 0, r.out);
  r = test::run(test::cugmm_exe() + " project --model model.txt --particles parts.star --out ours.mrcs --device cpu" + flag,
                dir);
  REQUIRE_MESSAGE(r.status == 0, r.out);

  io::Image rel = io::read_mrc(dir + "/proj.mrcs"), ours = io::read_mrc(dir + "/ours.mrcs");
  REQUIRE(rel.nx == n);
  REQUIRE(rel.nz == views);
  REQUIRE(ours.nx == n);
  REQUIRE(ours.nz == views);
  CHECK(ours.pixel_size == doctest::Approx(px));
  const int ring_limit = int(0.8 * n / 2);
  for (int v = 0; v < views; ++v) {
    const float* a = ours.data.data() + size_t(v) * n * n;
    const float* b = rel.data.data() + size_t(v) * n * n;
    std::vector<double> f = test::compare_rings(a, b, n).frc;
    double worst = 1;
    int worst_ring = 0;
    for (int ring = 1; ring <= ring_limit; ++ring)
      if (f[ring] < worst) { worst = f[ring]; worst_ring = ring; }
    // Overall scale: least-squares gain of relion's image against ours (both mass per pixel).
    double ab = 0, aa = 0;
    for (int i = 0; i < n * n; ++i) { ab += double(a[i]) * b[i]; aa += double(a[i]) * a[i]; }
    MESSAGE("view " << v << std::string(mode == Ctf::none ? "" : mode == Ctf::full ? " (CTF)" : " (|CTF|)") << ": lowest FRC " << worst << " at ring " << worst_ring
                    << ", relion / ours scale " << ab / aa);
    INFO("view " << v << std::string(mode == Ctf::none ? "" : mode == Ctf::full ? " (CTF)" : " (|CTF|)") << ": lowest FRC " << worst << " at ring " << worst_ring
                 << ", relion / ours scale " << ab / aa);
    CHECK(worst >= 0.99);
    CHECK(ab / aa == doctest::Approx(1.0).epsilon(0.05));
  }

  // The other side of the same conventions: relion_project's images as particles (its proj.star), through
  // the cache and the projector's FRC against the model. Noise-free images have no background to
  // normalise, so the cache keeps them as they are (the normalisation has its own test against RELION).
  CacheOptions co;
  co.particles = dir + "/proj.star";
  co.normalise = false;
  co.maxres = n * px / ring_limit;
  build_particle_cache(co, dir + "/proj.cugmm-cache");
  ParticleCache cache(dir + "/proj.cugmm-cache");
  REQUIRE(cache.count() == size_t(views));
  REQUIRE(cache.band().ring_max == ring_limit);
  const size_t g = m.size();
  std::vector<float> params;
  for (const auto* col : {&m.x, &m.y, &m.z, &m.amplitude, &m.width}) params.insert(params.end(), col->begin(), col->end());
  std::vector<ParticleView> pv;
  for (int v = 0; v < views; ++v) {
    const CachedParticle& p = cache.particle(size_t(v));
    CHECK(p.mode() == (mode == Ctf::flipped ? CtfMode::phase_flipped : CtfMode::full));
    pv.push_back(make_particle_view(p.rot, p.tilt, p.psi, p.origin_x, p.origin_y, p.ctf(), ctf ? p.mode() : CtfMode::none));
  }
  auto projector = make_projector(cpu_context(), cache.band(), int(g));
  ProjectionBatch in;
  in.count = views;
  in.params = params.data();
  in.views = pv.data();
  in.data = cache.coefficients(0);
  std::vector<float> score(views), frc(size_t(views) * cache.band().num_rings());
  ProjectionOutputs out;
  out.score = score.data();
  out.frc = frc.data();
  projector->run_host(in, out);
  for (int v = 0; v < views; ++v) {
    float lowest = 1;
    for (int ring = 1; ring <= ring_limit; ++ring) lowest = std::min(lowest, frc[size_t(v) * cache.band().num_rings() + ring]);
    INFO("cached relion particle " << v << ": score " << score[v] << ", lowest ring FRC " << lowest);
    CHECK(lowest >= 0.99);
  }
}

}  // namespace

TEST_CASE("cugmm project matches relion_project of the rendered model (no CTF)") {
  if (!test::oracle("relion_project")) return;
  compare_with_relion(Ctf::none);
}

TEST_CASE("cugmm project --ctf matches relion_project --ctf of the rendered model") {
  if (!test::oracle("relion_project")) return;
  compare_with_relion(Ctf::full);
}

TEST_CASE("cugmm project --ctf on phase-flipped particles matches relion_project --ctf --ctf_phase_flip") {
  if (!test::oracle("relion_project")) return;
  compare_with_relion(Ctf::flipped);
}

TEST_CASE("cugmm project takes PDB and mmCIF pseudo-atoms as the model") {
  // The pseudo-atom files keep positions (map frame) and widths; amplitudes become occupancies relative to
  // the largest, so the projections agree up to one overall factor.
  const int n = 64;
  std::string dir = test::scratch_dir("project_pseudo_atoms");
  io::GaussianModel m = test_model();
  // PDB's B field stops at 999.99 Å^2, i.e. s = 3.56 Å: stay below it so that the .pdb is lossless too.
  for (float& w : m.width) w = 3.0f + 0.1f * std::fmod(w, 5.0f);
  io::write_model(dir + "/model.txt", m);
  io::write_pseudo_atoms(dir + "/model.pdb", m);
  io::write_pseudo_atoms(dir + "/model.cif", m);
  test::write_text(dir + "/parts.star",
                   "data_optics\nloop_\n_rlnOpticsGroup\n_rlnImagePixelSize\n_rlnImageSize\n_rlnImageDimensionality\n"
                   "1 2.0 64 2\n\ndata_particles\nloop_\n_rlnImageName\n_rlnAngleRot\n_rlnAngleTilt\n_rlnAnglePsi\n"
                   "_rlnOriginXAngst\n_rlnOriginYAngst\n_rlnOpticsGroup\n1@none.mrcs 10 70 -30 2.5 -1 1\n"
                   "2@none.mrcs 190 30 80 -3 4 1\n");
  double max_amp = 0;
  for (float a : m.amplitude) max_amp = std::max(max_amp, double(a));
  io::Image ref;
  for (const char* f : {"model.txt", "model.pdb", "model.cif"}) {
    auto r = test::run(test::cugmm_exe() + " project --model " + f + " --particles parts.star --out p.mrcs", dir);
    REQUIRE_MESSAGE(r.status == 0, r.out);
    io::Image im = io::read_mrc(dir + "/p.mrcs");
    REQUIRE(im.nz == 2);
    REQUIRE(im.nx == n);
    if (ref.data.empty()) { ref = im; continue; }
    double worst = 0, peak = 0;
    for (size_t i = 0; i < im.data.size(); ++i) {
      peak = std::max(peak, double(std::fabs(ref.data[i])));
      worst = std::max(worst, std::fabs(im.data[i] * max_amp - ref.data[i]));
    }
    // PDB keeps occupancies to 2 decimals (amplitudes to 0.5% of the largest); mmCIF keeps more.
    const bool pdb = std::string(f) == "model.pdb";
    INFO(std::string(f) << ": largest difference " << worst / peak << " of the peak");
    CHECK(worst < (pdb ? 1e-2 : 1e-3) * peak);
  }
}
