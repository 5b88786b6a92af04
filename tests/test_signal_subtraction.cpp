// Signal subtraction (engine/signal_subtraction.h, issue 18 item 2): on noise-free particles of a known model,
// subtracting the projection of the Gaussians outside the region leaves exactly the region's projection (the
// projector's own Fourier convention, CTF included, one per-ring scale), recentring leaves the projection of the
// recentred region model at origin 0, the derived cache is reused when made the same way and is never taken
// for a cache of the particle file, and the symmetry expansion of a cache is index-level.
#include <doctest/doctest.h>

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
#include "support.h"

using namespace cugmm;

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

// Band coefficients of `model` for the cache's particles with their views (origin replaced when asked).
std::vector<cfloat> render_band(Context& cx, const ParticleCache& cache, const io::GaussianModel& model,
                                bool origin_zero) {
  const FourierBand& band = cache.band();
  ParticleBatcher b(cache, band, CtfChoice::automatic);
  const size_t n = cache.count(), half = size_t(band.box) * (band.box / 2 + 1);
  std::vector<ParticleView> views(n);
  for (size_t i = 0; i < n; ++i) {
    views[i] = b.view(i);
    if (origin_zero) views[i].origin_x = views[i].origin_y = 0;
  }
  const std::vector<float> row = params_from_model(model);
  auto proj = make_projector(cx, band, int(model.size()));
  std::vector<cfloat> planes(n * half), out(n * band.size());
  ProjectionBatch in;
  in.count = int(n);
  in.params = row.data();
  in.views = views.data();
  proj->render_host(in, planes.data());
  for (size_t i = 0; i < n; ++i) band_gather(band, planes.data() + i * half, out.data() + i * band.size());
  return out;
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

struct Fixture {
  std::string dir;
  io::GaussianModel model;
  CacheOptions co;
  Fixture(const std::string& name) : dir(test::scratch_dir(name)), model(two_lobes(48, 2.0)) {
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
