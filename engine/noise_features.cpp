#include "engine/noise_features.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "core/error.h"
#include "core/log.h"
#include "engine/training_score.h"

namespace cugmm {

std::vector<float> noise_features(Context& cx, const ParticleBatcher& batcher, const std::vector<float>& neutral,
                                  const std::vector<float>& ring_weights, bool pooled, const FeatureNorm& norm,
                                  const std::vector<size_t>& particles, size_t count, uint64_t seed, int batch) {
  const FourierBand& band = batcher.band();
  const size_t W = neutral.size();
  CUGMM_REQUIRE(W % 5 == 0 && W > 0 && norm.mean.size() == W && norm.sd.size() == W,
                "noise_features: a 5G parameter row and its normalisation");
  CUGMM_REQUIRE(!particles.empty(), "noise_features: an empty particle set");
  CUGMM_REQUIRE(cx.device() == Device::cpu, "noise_features: host buffers, a CPU context");
  auto projector = make_training_projector(cx, band, ring_weights, int(W / 5), pooled);
  std::vector<double> sd(size_t(band.num_rings()), 1.0);
  if (pooled)
    for (size_t r = 0; r < sd.size() && r < ring_weights.size(); ++r)
      if (ring_weights[r] > 0) sd[r] = 1 / std::sqrt(double(ring_weights[r]));
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> gauss;
  const size_t B = static_cast<size_t>(batch);
  std::vector<size_t> idx(B);
  std::vector<ParticleView> views(B);
  std::vector<cfloat> data(B * band.size());
  std::vector<float> score(B), grad(B * W), out(count * W);
  Progress progress("noise features", count);
  for (size_t first = 0; first < count; first += size_t(batch)) {
    const int b = int(std::min(size_t(batch), count - first));
    for (int i = 0; i < b; ++i) idx[size_t(i)] = particles[(first + size_t(i)) % particles.size()];
    batcher.gather(idx.data(), b, views.data(), data.data());
    for (int i = 0; i < b; ++i) {
      cfloat* d = data.data() + size_t(i) * band.size();
      for (size_t c = 0; c < band.size(); ++c) {
        const double s = sd[band.ring[c]];
        const int p = band.partner[c];
        if (p == int(c)) d[c] = cfloat(float(s * gauss(rng)), 0.f);  // a real coefficient
        else if (p >= 0 && size_t(p) < c) d[c] = std::conj(d[p]);
        else d[c] = cfloat(float(s * std::sqrt(0.5) * gauss(rng)), float(s * std::sqrt(0.5) * gauss(rng)));
      }
    }
    training_score(*projector, neutral.data(), 0, views.data(), data.data(), b, score.data(), grad.data());
    for (int i = 0; i < b; ++i)
      for (size_t c = 0; c < W; ++c) {
        const float g = grad[size_t(i) * W + c], s = norm.sd[c];
        out[(first + size_t(i)) * W + c] = s > 0 ? (g - norm.mean[c]) / s : 0.f;
      }
    progress.add(size_t(b));
  }
  progress.finish();
  return out;
}

}  // namespace cugmm
