// What the signal-subtraction tests compare a subtracted cache with: band coefficients of Gaussian models
// projected with the cache's own particle views (pose, shift, CTF) through the projector's render path.
#pragma once
#include <vector>

#include "core/context.h"
#include "engine/model_params.h"
#include "engine/particle_batch.h"
#include "engine/particle_cache.h"
#include "engine/projector.h"

namespace cugmm::test {

// rows: one model per particle of the cache (count x 5G, stride 5G) or one for all (stride 0); origin_zero
// replaces the views' shifts by 0. count x band.size() coefficients, particle after particle.
inline std::vector<cfloat> render_band_rows(Context& cx, const ParticleCache& cache, const float* rows, int G,
                                            size_t stride, bool origin_zero = false) {
  const FourierBand& band = cache.band();
  ParticleBatcher b(cache, band, CtfChoice::automatic);
  const size_t n = cache.count(), half = size_t(band.box) * (band.box / 2 + 1);
  std::vector<ParticleView> views(n);
  for (size_t i = 0; i < n; ++i) {
    views[i] = b.view(i);
    if (origin_zero) views[i].origin_x = views[i].origin_y = 0;
  }
  auto proj = make_projector(cx, band, G);
  std::vector<cfloat> planes(n * half), out(n * band.size());
  ProjectionBatch in;
  in.count = int(n);
  in.params = rows;
  in.params_stride = stride;
  in.views = views.data();
  proj->render_host(in, planes.data());
  for (size_t i = 0; i < n; ++i) band_gather(band, planes.data() + i * half, out.data() + i * band.size());
  return out;
}

// One model for every particle.
inline std::vector<cfloat> render_band(Context& cx, const ParticleCache& cache, const io::GaussianModel& model,
                                       bool origin_zero = false) {
  const std::vector<float> row = params_from_model(model);
  return render_band_rows(cx, cache, row.data(), int(model.size()), 0, origin_zero);
}

}  // namespace cugmm::test
