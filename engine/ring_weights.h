// The SNR-weighted score's ring weights (kernels/frc.h snr_ring_weight) and the pooled score's inverse noise
// variances (kernels/frc.h pooled_sums), estimated from the data: the
// neutral model's FRC per ring over (up to `max_particles` of) the training particles, its mean and spread
// per ring, and the weights v_r ~ n_r x mean FRC_r of the rings whose mean is significant. Training scores
// with them (and its features are the gradient of that score); the run stores them so embed scores alike.
#pragma once
#include <cstddef>
#include <functional>
#include <vector>

#include "core/context.h"
#include "engine/particle_batch.h"

namespace cugmm {

struct RingWeights {
  std::vector<float> weight;     // per ring 0..ring_max, summing to 1 (0 below ring_min and where no signal)
  std::vector<double> mean_frc;  // the neutral model's mean FRC per ring (0 below ring_min)
  // Per ring 0..ring_max, summing to 1: 1 / sigma_r^2, the particles' noise variance per coefficient of ring r
  // (their power beyond the neutral model's best per-ring fit, |D|^2 (1 - FRC^2), averaged): the pooled
  // score's coefficient weights (kernels/frc.h pooled_sums, `train --loss white`).
  std::vector<float> inverse_noise;
  // Per ring 0..ring_max: the neutral model's gain g_r (median 1; 0 where the ring holds no significant signal),
  // and what the pooled score uses so that it scores g_r M against the particles: the particles' coefficients
  // times data_scale_r = 1 / g_r (ParticleBatcher::set_data_scale) and the coefficient weights
  // pooled_weights_r ~ u_r g_r^2 (summing to 1; 0 where g_r is). Why: docs/accuracy.md round 7b.
  std::vector<float> model_gain, data_scale, pooled_weights;
  size_t particles = 0;          // how many particles the estimate used
};

// Throws cugmm::Error when no ring holds a significant signal (the neutral model does not match the
// particles at all: the wrong model, box or pixel size). at_pose (when given) sets particle i's view to the
// pose to measure at (pose refinement's current poses) in place of the cache's.
using ViewPose = std::function<void(size_t particle, ParticleView& view)>;
RingWeights estimate_ring_weights(Context& cx, const ParticleBatcher& batcher, const std::vector<float>& neutral,
                                  const std::vector<size_t>& particles, size_t max_particles = 2000,
                                  const ViewPose& at_pose = nullptr);

// The weights with every ring finer than `resolution` Å set to 0 and the rest renormalised (the coarse
// band training starts with); unchanged when that would leave nothing.
std::vector<float> coarse_ring_weights(const FourierBand& band, const std::vector<float>& weight, double resolution);

}  // namespace cugmm
