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

namespace cugmm {

std::vector<float> view_neighbour_means(const RowSource& source, size_t width, const std::vector<size_t>& rows,
                                        const std::vector<double>& views, int neighbours, size_t max_rows) {
  CUGMM_REQUIRE(views.size() == 3 * rows.size(), "view_neighbour_means: one beam direction per row");
  const size_t n = std::min(rows.size(), max_rows), K = size_t(neighbours);
  if (n <= K) throw Error("the view-dependent feature mean needs more than " + std::to_string(K) + " particles, not " +
                          std::to_string(n));
  std::vector<size_t> pick(n), index(n);  // positions in `rows`, evenly spaced; their row indices
  for (size_t i = 0; i < n; ++i) pick[i] = i * rows.size() / n, index[i] = rows[pick[i]];
  std::vector<float> x(n * width);
  const size_t chunk = 256;
  for (size_t first = 0; first < n; first += chunk)
    source(index.data() + first, int(std::min(chunk, n - first)), x.data() + first * width);
  Progress progress("view-dependent feature mean", n);
  std::vector<float> out(n * width, 0.f);
  std::vector<std::pair<double, size_t>> near(n);
  std::vector<double> sum(width);
  for (size_t i = 0; i < n; ++i) {
    const double* v = views.data() + 3 * pick[i];
    for (size_t q = 0; q < n; ++q) {
      const double* w = views.data() + 3 * pick[q];
      near[q] = {q == i ? 2.0 : -(v[0] * w[0] + v[1] * w[1] + v[2] * w[2]), q};  // itself last
    }
    std::nth_element(near.begin(), near.begin() + std::ptrdiff_t(K), near.end());
    std::fill(sum.begin(), sum.end(), 0.0);
    for (size_t q = 0; q < K; ++q) {
      const float* r = x.data() + near[q].second * width;
      for (size_t c = 0; c < width; ++c) sum[c] += r[c];
    }
    for (size_t c = 0; c < width; ++c) out[i * width + c] = float(sum[c] / double(K));
    progress.add(1);
  }
  progress.finish();
  std::vector<double> mean(width, 0.0);
  for (size_t i = 0; i < n; ++i)
    for (size_t c = 0; c < width; ++c) mean[c] += out[i * width + c] / double(n);
  for (size_t i = 0; i < n; ++i)
    for (size_t c = 0; c < width; ++c) out[i * width + c] -= float(mean[c]);
  return out;
}

}  // namespace cugmm
