// Signal subtraction (engine/signal_subtraction.h, issue 18 item 2): on noise-free particles of a known model,
// subtracting the projection of the Gaussians outside the region leaves exactly the region's projection (the
// projector's own Fourier convention, CTF included, one per-ring scale), recentring leaves the projection of the
// recentred region model at origin 0, the derived cache is reused when made the same way and is never taken
// for a cache of the particle file, and the symmetry expansion of a cache is index-level. Under a symmetry
// expansion each copy k is subtracted in its own frame (pose A R_k) into a per-copy cache; with per-particle
// (decoded) models each particle's own outside is subtracted.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <complex>
#include <filesystem>
#include <string>
#include <vector>

#include "core/context.h"
#include "engine/model_params.h"
#include "engine/particle_batch.h"
#include "engine/particle_cache.h"
#include "engine/preprocess.h"
#include "engine/projector.h"
#include "engine/signal_subtraction.h"
#include "engine/simulate.h"
#include "engine/symmetry.h"
#include "kernels/philox.h"
#include "band_render.h"
#include "support.h"

using namespace cugmm;
using test::render_band;

namespace {

io::GaussianModel two_lobes(int box, double pixel) {
  io::GaussianModel m;
  m.box_size = box;
  m.pixel_size = pixel;
  const int G = 24;
  m.resize(G);
  for (int j = 0; j < G; ++j) {
    const double side = j < G / 2 ? -1 : 1;  // a lobe at -x (outside) and one at +x (the region)
    m.x[j] = float(side * 12 + 5 * (2 * philox_uniform(9, 0, 3 * j) - 1));
    m.y[j] = float(6 * (2 * philox_uniform(9, 0, 3 * j + 1) - 1));
    m.z[j] = float(6 * (2 * philox_uniform(9, 0, 3 * j + 2) - 1));
    m.amplitude[j] = float(1 + philox_uniform(9, 1, j));
    m.width[j] = float(2.5 * pixel);
  }
  return m;
}

// |a - b| / |b| over the rings up to 0.8 Nyquist (beyond, the splat aliases: engine/projector.h).
double relative_error(const ParticleCache& cache, const std::vector<cfloat>& b) {
  const FourierBand& band = cache.band();
  double e = 0, s = 0;
  for (size_t i = 0; i < cache.count(); ++i)
    for (size_t k = 0; k < band.size(); ++k) {
      if (band.ring[k] > 0.8 * band.box / 2) continue;
      e += std::norm(cache.coefficients(i)[k] - b[i * band.size() + k]);
      s += std::norm(b[i * band.size() + k]);
    }
  return std::sqrt(e / s);
}

// A C3 trimer of lobes: the lobe at +x (unit 0 of engine/symmetry.h) and its images by the other operators.
io::GaussianModel c3_lobes(int box, double pixel) {
  const io::GaussianModel lobe = two_lobes(box, pixel);
  const SymmetryGroup g = make_symmetry_group("C3");
  io::GaussianModel m;
  m.box_size = box;
  m.pixel_size = pixel;
  const size_t L = lobe.size() / 2;  // the +x lobe: Gaussians L..2L-1
  m.resize(3 * L);
  for (size_t k = 0; k < 3; ++k)
    for (size_t j = 0; j < L; ++j) {
      const Vec3<double> c = mul(g.operators[k], Vec3<double>{lobe.x[L + j], lobe.y[L + j], lobe.z[L + j]});
      m.x[k * L + j] = float(c.x);
      m.y[k * L + j] = float(c.y);
      m.z[k * L + j] = float(c.z);
      m.amplitude[k * L + j] = lobe.amplitude[L + j];
      m.width[k * L + j] = lobe.width[L + j];
    }
  return m;
}

struct Fixture {
  std::string dir;
  io::GaussianModel model;
  CacheOptions co;
  Fixture(const std::string& name, io::GaussianModel m = two_lobes(48, 2.0)) : dir(test::scratch_dir(name)), model(std::move(m)) {
    SimulationOptions so;
    so.count = 40;
    so.snr = 0;  // noise-free: the subtraction must leave exactly the region
    so.max_shift = 3;
    co.particles = simulate_particles({model}, so, dir).star;
    co.normalise = false;  // keep the projector's scale (no background to normalise by)
  }
};

}  // namespace

TEST_CASE("subtracting the outside leaves the region's projection (CTF, shifts, one scale); recentring at origin 0") {
  Fixture f("subtraction");
  ParticleCache cache = open_particle_cache(f.co, f.dir + "/p.cugmm-cache", true);
  Context cx;
  SubtractionSpec spec;
  spec.inside.resize(f.model.size());
  for (size_t j = 0; j < f.model.size(); ++j) spec.inside[j] = j >= f.model.size() / 2;
  nlohmann::json report;
  {
    ParticleCache sub = subtracted_cache(cx, cache, f.model, spec, f.dir + "/p.subtracted.cugmm-cache", report);
    REQUIRE(sub.count() == cache.count());
    CHECK(report["reused"] == false);
    // The data are the model's projection times one constant (simulate_particles writes mass per pixel, the
    // band convention is per Å^2: pixel^2 = 4): the same scale on every ring.
    const std::vector<double> scale = report["ring_scale"].get<std::vector<double>>();
    CHECK(std::fabs(scale[2] / 4 - 1) < 1e-3);
    for (size_t r = 1; r < scale.size(); ++r) CHECK(std::fabs(scale[r] / scale[2] - 1) < 1e-2);
    std::vector<cfloat> region = render_band(cx, cache, model_subset(f.model, spec.inside), false);
    for (cfloat& v : region) v *= 4.f;
    CHECK(relative_error(sub, region) < 3e-3);
    // Without the subtraction the data are far from the region alone (the test can fail).
    CHECK(relative_error(cache, region) > 0.5);
    // Records: the same particles and poses.
    for (size_t i = 0; i < cache.count(); ++i) {
      CHECK(sub.particle(i).source_row == cache.particle(i).source_row);
      CHECK(sub.particle(i).origin_x == cache.particle(i).origin_x);
    }
    // Never taken for a cache of the particle file.
    CHECK(test::contains(sub.stale_reason(f.co), "derived"));
  }
  // Made the same way: reused; recentred: another derivation, remade.
  ParticleCache again = subtracted_cache(cx, cache, f.model, spec, f.dir + "/p.subtracted.cugmm-cache", report);
  CHECK(report["reused"] == true);
  spec.recentre = true;
  spec.centre = {12, 1, -2};
  ParticleCache rc = subtracted_cache(cx, cache, f.model, spec, f.dir + "/p.subtracted.cugmm-cache", report);
  CHECK(report["reused"] == false);
  for (size_t i = 0; i < rc.count(); ++i) CHECK(rc.particle(i).origin_x == 0);
  std::vector<cfloat> centred = render_band(cx, cache, focused_model(f.model, spec), true);
  for (cfloat& v : centred) v *= 4.f;
  CHECK(relative_error(rc, centred) < 3e-3);
  // A focus that holds every Gaussian, or none, has nothing to do.
  spec.inside.assign(f.model.size(), 1);
  CHECK_THROWS_WITH_AS(subtracted_cache(cx, cache, f.model, spec, f.dir + "/x.cugmm-cache", report),
                       doctest::Contains("nothing to subtract"), Error);
}

TEST_CASE("symmetry expansion of a cache: copies share the source's coefficients, poses are A R_k") {
  Fixture f("expansion");
  ParticleCache cache = open_particle_cache(f.co, f.dir + "/p.cugmm-cache", true);
  const size_t n = cache.count();
  const SymmetryGroup g = make_symmetry_group("D3");
  cache.expand(g.name, g.operators);
  REQUIRE(cache.count() == 6 * n);
  CHECK(cache.copies() == 6);
  CHECK(cache.symmetry() == "D3");
  for (size_t i = 0; i < cache.count(); ++i) {
    CHECK(cache.source_index(i) == i / 6);
    CHECK(cache.copy_index(i) == i % 6);
    CHECK(cache.coefficients(i) == cache.coefficients(6 * (i / 6)));
    CHECK(cache.particle(i).source_row == int64_t(i / 6));
    const Mat3<double> want = mul(cache.particle(6 * (i / 6)).rotation(), g.operators[i % 6]);
    const Mat3<double> got = cache.particle(i).rotation();
    double d = 0;
    for (int k = 0; k < 9; ++k) d = std::max(d, std::fabs(want.m[k] - got.m[k]));
    CHECK(d < 1e-9);
  }
  cache.expand("C1", {g.operators[0]});
  CHECK(cache.count() == n);
}

TEST_CASE("--sym with a focus: copy k keeps the region's projection at pose A R_k, in a per-copy cache") {
  Fixture f("subtraction_sym", c3_lobes(48, 2.0));
  ParticleCache cache = open_particle_cache(f.co, f.dir + "/p.cugmm-cache", true);
  const size_t n = cache.count();
  const SymmetryGroup g = make_symmetry_group("C3");
  Context cx;
  SubtractionSpec spec;
  std::vector<Vec3<double>> centres;
  for (size_t j = 0; j < f.model.size(); ++j) centres.push_back({f.model.x[j], f.model.y[j], f.model.z[j]});
  const std::vector<int> unit = asymmetric_units(g, centres);
  spec.inside.resize(f.model.size());
  for (size_t j = 0; j < f.model.size(); ++j) spec.inside[j] = unit[j] == 0;
  REQUIRE(std::count(spec.inside.begin(), spec.inside.end(), 1) * 3 == long(f.model.size()));
  cache.expand(g.name, g.operators);
  nlohmann::json report;
  const std::string out = f.dir + "/p.subtracted.cugmm-cache";
  {
    ParticleCache sub = subtracted_cache(cx, cache, f.model, spec, out, report);
    REQUIRE(sub.count() == 3 * n);
    CHECK(sub.per_copy());
    CHECK(sub.copies() == 3);
    CHECK(sub.symmetry() == "C3");
    CHECK(report["bytes"].get<double>() >= double(3 * n * cache.band().size() * sizeof(cfloat)));
    // Copy k of particle p: the region's projection at pose A R_k (what the expanded records hold).
    std::vector<cfloat> region = render_band(cx, cache, model_subset(f.model, spec.inside), false);
    for (cfloat& v : region) v *= 4.f;
    CHECK(relative_error(sub, region) < 3e-3);
    for (size_t i = 0; i < sub.count(); ++i) {
      CHECK(sub.source_index(i) == i / 3);
      CHECK(sub.copy_index(i) == i % 3);
      CHECK(sub.particle(i).rot == cache.particle(i).rot);
      CHECK(sub.particle(i).psi == cache.particle(i).psi);
    }
    // The copies' images differ (one shared image, as an unsubtracted expansion has, would fail the check
    // above): copy 2's image is far from copy 1's.
    const FourierBand& band = sub.band();
    double d = 0, s = 0;
    for (size_t p = 0; p < n; ++p)
      for (size_t k = 0; k < band.size(); ++k) {
        d += std::norm(sub.coefficients(3 * p + 1)[k] - sub.coefficients(3 * p)[k]);
        s += std::norm(sub.coefficients(3 * p)[k]);
      }
    CHECK(std::sqrt(d / s) > 0.5);
    // Opened again it is already expanded: by its own group nothing changes, by another it is refused.
    sub.expand(g.name, g.operators);
    CHECK(sub.count() == 3 * n);
    const SymmetryGroup c2 = make_symmetry_group("C2");
    CHECK_THROWS_WITH_AS(sub.expand(c2.name, c2.operators), doctest::Contains("holds the C3 copies"), Error);
  }
  ParticleCache again = subtracted_cache(cx, cache, f.model, spec, out, report);
  CHECK(report["reused"] == true);
  CHECK(again.count() == 3 * n);
  // The unexpanded subtraction is another derivation: remade, one image per particle.
  cache.expand("C1", {g.operators[0]});
  ParticleCache plain = subtracted_cache(cx, cache, f.model, spec, out, report);
  CHECK(report["reused"] == false);
  CHECK(plain.count() == n);
  CHECK(!plain.per_copy());
}

TEST_CASE("per-particle (decoded) models: each particle's own outside is subtracted") {
  Fixture f("subtraction_decoded");
  ParticleCache cache = open_particle_cache(f.co, f.dir + "/p.cugmm-cache", true);
  Context cx;
  SubtractionSpec spec;
  const size_t G = f.model.size();
  spec.inside.resize(G);
  for (size_t j = 0; j < G; ++j) spec.inside[j] = j >= G / 2;
  std::vector<char> outside(G);
  for (size_t j = 0; j < G; ++j) outside[j] = !spec.inside[j];
  // Particle i's model: the outside lobe moved by 0.7 (i % 5) Å along x (its region as the neutral's).
  auto model_of = [&](size_t i) {
    io::GaussianModel m = f.model;
    for (size_t j = 0; j < G; ++j)
      if (outside[j]) m.x[j] += float(0.7 * double(i % 5));
    return m;
  };
  spec.decoded = [&](const int64_t* rows, size_t n, float* out) {  // unexpanded: output row = particle
    for (size_t i = 0; i < n; ++i) {
      const std::vector<float> row = params_from_model(model_of(size_t(rows[i])));
      std::copy(row.begin(), row.end(), out + i * row.size());
    }
  };
  spec.decoded_from = {{"test", "shifted outside"}};
  nlohmann::json report;
  ParticleCache sub = subtracted_cache(cx, cache, f.model, spec, f.dir + "/p.subtracted.cugmm-cache", report);
  const std::vector<double> scale = report["ring_scale"].get<std::vector<double>>();
  const FourierBand& band = cache.band();
  double e = 0, s = 0, e_neutral = 0;
  const std::vector<cfloat> neutral_out = render_band(cx, cache, model_subset(f.model, outside), false);
  for (size_t i = 0; i < cache.count(); ++i) {
    // One particle's own outside (render_band renders every particle with one model: take row i).
    const std::vector<cfloat> mine = render_band(cx, cache, model_subset(model_of(i), outside), false);
    for (size_t k = 0; k < band.size(); ++k) {
      const cfloat want = cache.coefficients(i)[k] - float(scale[band.ring[k]]) * mine[i * band.size() + k];
      const cfloat other = cache.coefficients(i)[k] - float(scale[band.ring[k]]) * neutral_out[i * band.size() + k];
      e += std::norm(sub.coefficients(i)[k] - want);
      e_neutral += std::norm(sub.coefficients(i)[k] - other);
      s += std::norm(want);
    }
  }
  CHECK(std::sqrt(e / s) < 1e-5);
  CHECK(std::sqrt(e_neutral / s) > 0.05);  // the neutral outside would have given other images
  CHECK(sub.derivation()["models"] == spec.decoded_from);
}
