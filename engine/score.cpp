#include "engine/score.h"

#include <algorithm>

#include "core/error.h"
#include "core/log.h"
#include "engine/model_params.h"

namespace cugmm {

ScoreResult score_particles(const ParticleCache& cache, const io::GaussianModel& model, Device device,
                            double minres, double maxres, int batch) {
  CUGMM_REQUIRE(model.size() > 0, "score_particles: the model has no Gaussians");
  CUGMM_REQUIRE(batch > 0, "score_particles: the batch size must be positive");
  const FourierBand& stored = cache.band();
  double cache_maxres = stored.ring_resolution(stored.ring_max);
  if (maxres <= 0 || maxres < cache_maxres) maxres = cache_maxres;  // never beyond what the cache holds
  FourierBand band = make_fourier_band(cache.box(), cache.pixel_size(), minres, maxres);
  // The cache may hold more rings than the score uses: pick the band's coefficients by their position in
  // the half-plane (fft_index), which both share.
  std::vector<int> pos(size_t(cache.box()) * (cache.box() / 2 + 1), -1);
  for (size_t i = 0; i < stored.size(); ++i) pos[stored.fft_index[i]] = int(i);
  std::vector<int> take(band.size());
  for (size_t i = 0; i < band.size(); ++i) {
    take[i] = pos[band.fft_index[i]];
    CUGMM_REQUIRE(take[i] >= 0, "the particle cache " + cache.path() + " does not hold the requested band");
  }

  const size_t n = cache.count();
  Context cx(device);  // this call is the run
  auto projector = make_projector(cx, band, int(model.size()));
  std::vector<float> params = params_from_model(model);
  ScoreResult r;
  r.score.resize(n);
  r.ring_min = band.ring_min;
  r.mean_frc.assign(size_t(band.num_rings()), 0.0);
  std::vector<ParticleView> views(static_cast<size_t>(batch));
  std::vector<cfloat> data(size_t(batch) * band.size());
  std::vector<float> frc(size_t(batch) * band.num_rings());
  Progress progress("score", n);
  for (size_t first = 0; first < n; first += size_t(batch)) {
    int m = int(std::min(size_t(batch), n - first));
    for (int i = 0; i < m; ++i) {
      const CachedParticle& p = cache.particle(first + i);
      views[i] = make_particle_view(p.rot, p.tilt, p.psi, p.origin_x, p.origin_y, p.ctf(), p.mode());
      const cfloat* src = cache.coefficients(first + i);
      cfloat* dst = data.data() + size_t(i) * band.size();
      for (size_t k = 0; k < band.size(); ++k) dst[k] = src[take[k]];
    }
    ProjectionBatch in;
    in.count = m;
    in.params = params.data();
    in.params_stride = 0;
    in.views = views.data();
    in.data = data.data();
    ProjectionOutputs out;
    out.score = r.score.data() + first;
    out.frc = frc.data();
    projector->run_host(in, out);
    for (int i = 0; i < m; ++i)
      for (int ring = 0; ring < band.num_rings(); ++ring) r.mean_frc[ring] += frc[size_t(i) * band.num_rings() + ring];
    progress.add(size_t(m));
  }
  progress.finish();
  double total = 0;
  for (float s : r.score) total += s;
  r.mean_score = n ? total / n : 0;
  for (double& v : r.mean_frc) v /= std::max<size_t>(n, 1);
  return r;
}

}  // namespace cugmm
