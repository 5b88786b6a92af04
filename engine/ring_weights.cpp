#include "engine/ring_weights.h"

#include <algorithm>
#include <cmath>
#include <complex>

#include "core/error.h"
#include "engine/preprocess.h"
#include "kernels/frc.h"

namespace cugmm {

RingWeights estimate_ring_weights(Context& cx, const ParticleBatcher& batcher, const std::vector<float>& neutral,
                                  const std::vector<size_t>& particles, size_t max_particles,
                                  const ViewPose& at_pose) {
  const FourierBand& band = batcher.band();
  const int nr = band.num_rings(), G = int(neutral.size() / 5);
  CUGMM_REQUIRE(!particles.empty(), "estimate_ring_weights: no particles");
  // Evenly spread over the set (not its first rows, which may come from one micrograph).
  const size_t n = std::min(particles.size(), max_particles);
  std::vector<size_t> use(n);
  for (size_t i = 0; i < n; ++i) use[i] = particles[i * particles.size() / n];
  auto projector = make_projector(cx, band, G);
  const int chunk = 256;
  std::vector<ParticleView> views(chunk);
  std::vector<cfloat> data(size_t(chunk) * band.size());
  std::vector<float> score(chunk), frc(size_t(chunk) * nr);
  std::vector<double> sum(size_t(nr), 0.0), sum2(size_t(nr), 0.0), noise(size_t(nr), 0.0),
      dd(static_cast<size_t>(nr), 0.0), num(size_t(nr), 0.0), mm(size_t(nr), 0.0);
  // The model's coefficients (rendered on the half-plane, a few particles at a time to bound the memory).
  const int render_chunk = 16;
  const size_t plane = size_t(band.box) * size_t(band.box / 2 + 1);
  std::vector<cfloat> planes(size_t(render_chunk) * plane), model(band.size());
  for (size_t first = 0; first < n; first += chunk) {
    const int m = int(std::min<size_t>(chunk, n - first));
    batcher.gather(use.data() + first, m, views.data(), data.data());
    if (at_pose)
      for (int i = 0; i < m; ++i) at_pose(use[first + size_t(i)], views[size_t(i)]);
    const ProjectionBatch in{m, neutral.data(), 0, views.data(), data.data()};  // one shared row
    ProjectionOutputs o;
    o.score = score.data();
    o.frc = frc.data();
    projector->run_host(in, o);
    for (int i0 = 0; i0 < m; i0 += render_chunk) {
      const int mr = std::min(render_chunk, m - i0);
      projector->render_host({mr, neutral.data(), 0, views.data() + i0, nullptr}, planes.data());
      for (int i = 0; i < mr; ++i) {
        band_gather(band, planes.data() + size_t(i) * plane, model.data());
        accumulate_ring_fit(band, model.data(), data.data() + size_t(i0 + i) * band.size(), num.data(), mm.data());
      }
    }
    for (int i = 0; i < m; ++i) {
      std::fill(dd.begin(), dd.end(), 0.0);
      for (size_t b = 0; b < band.size(); ++b)
        dd[band.ring[b]] += band.weight[b] * std::norm(std::complex<double>(data[size_t(i) * band.size() + b]));
      for (int r = 0; r < nr; ++r) {
        const double f = frc[size_t(i) * nr + r];
        sum[size_t(r)] += f;
        sum2[size_t(r)] += f * f;
        noise[size_t(r)] += dd[size_t(r)] * (1 - f * f);  // |D|^2 beyond its best fit by the model, scale free
      }
    }
  }
  std::vector<double> coefficients(size_t(nr), 0.0);
  for (size_t b = 0; b < band.size(); ++b) coefficients[band.ring[b]] += band.weight[b];
  RingWeights w;
  w.particles = n;
  w.mean_frc.assign(size_t(nr), 0.0);
  w.weight.assign(size_t(nr), 0.f);
  double total = 0;
  for (int r = band.ring_min; r < nr; ++r) {
    const double mean = sum[size_t(r)] / double(n);
    const double var = std::max(0.0, sum2[size_t(r)] / double(n) - mean * mean);
    w.mean_frc[size_t(r)] = mean;
    const double v = snr_ring_weight(mean, std::sqrt(var), double(n), coefficients[size_t(r)], 3.0);
    w.weight[size_t(r)] = float(v);
    total += v;
  }
  // The inverse noise variance per coefficient of each ring (the pooled score's u_r), normalised.
  w.inverse_noise.assign(size_t(nr), 0.f);
  double inv_total = 0;
  for (int r = band.ring_min; r < nr; ++r) {
    const double sigma2 = noise[size_t(r)] / (double(n) * coefficients[size_t(r)]);
    if (sigma2 > 0 && std::isfinite(sigma2)) w.inverse_noise[size_t(r)] = float(1 / sigma2);
    inv_total += w.inverse_noise[size_t(r)];
  }
  if (!(inv_total > 0)) throw Error("the particles hold no power in the band: are they blank?");
  for (float& v : w.inverse_noise) v = float(v / inv_total);
  // The model's gain per ring, g_r = sum num_r / sum mm_r: the neutral model's radial power profile against
  // the particles' (the least-squares per-ring scale of the model, pooled over particles). Scoring g_r M
  // instead of M (a view-independent radial filter, so it changes no particle's relative fit) takes from the
  // pooled score the gain a per-particle deformation would otherwise get by reshaping each view's
  // projection towards the data's radial profile (docs/accuracy.md round 7b). The identity that puts it on
  // the data side: with data D_r / g_r and weights u_r g_r^2, A, B and D of pooled_sums are those of g M.
  // The gain is measured only where the ring's mean FRC is significant (w.weight > 0: snr_ring_weight); a ring
  // without measurable signal (num/mm is noise over little model power there, near a CTF zero or beyond the
  // signal) is left out of the score (weight 0, data 0).
  w.model_gain.assign(size_t(nr), 0.f);
  w.data_scale.assign(size_t(nr), 0.f);
  w.pooled_weights.assign(size_t(nr), 0.f);
  std::vector<double> gains;
  for (int r = band.ring_min; r < nr; ++r)
    if (w.weight[size_t(r)] > 0 && num[size_t(r)] > 0 && mm[size_t(r)] > 0) gains.push_back(num[size_t(r)] / mm[size_t(r)]);
  if (gains.empty())
    throw Error("the neutral model's FRC against the particles is not significantly above 0 in any ring of the "
                "band: is it the model of these particles (box, pixel size, pose convention)?");
  std::nth_element(gains.begin(), gains.begin() + long(gains.size() / 2), gains.end());
  const double gain_median = gains[gains.size() / 2];  // the scale is free (the score is a cosine): median 1
  double pooled_total = 0;
  for (int r = band.ring_min; r < nr; ++r)
    if (w.weight[size_t(r)] > 0 && num[size_t(r)] > 0 && mm[size_t(r)] > 0) {
      const double g = num[size_t(r)] / mm[size_t(r)] / gain_median;
      w.model_gain[size_t(r)] = float(g);
      w.data_scale[size_t(r)] = float(1 / g);
      w.pooled_weights[size_t(r)] = float(double(w.inverse_noise[size_t(r)]) * g * g);
      pooled_total += w.pooled_weights[size_t(r)];
    }
  for (float& v : w.pooled_weights) v = float(v / pooled_total);
  if (!(total > 0))
    throw Error("the neutral model's FRC against the particles is not significantly above 0 in any ring of the "
                "band: is it the model of these particles (box, pixel size, pose convention)?");
  for (float& v : w.weight) v = float(v / total);
  return w;
}

std::vector<float> coarse_ring_weights(const FourierBand& band, const std::vector<float>& weight, double resolution) {
  std::vector<float> c(weight.size(), 0.f);
  double total = 0;
  for (size_t r = 0; r < weight.size(); ++r)
    if (r > 0 && band.ring_resolution(int(r)) >= resolution) {
      c[r] = weight[r];
      total += weight[r];
    }
  if (!(total > 0)) return weight;
  for (float& v : c) v = float(v / total);
  return c;
}

}  // namespace cugmm
