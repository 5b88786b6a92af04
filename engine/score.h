// How well a model explains each particle: the FRC score of engine/projector.h (mean FRC over the band's
// rings), per particle, with the particle's pose and CTF from the cache. `cugmm score` and the demo use it;
// training reports the same number.
#pragma once
#include <vector>

#include "core/device.h"
#include "engine/particle_cache.h"
#include "engine/projector.h"
#include "io/model.h"

namespace cugmm {

struct ScoreResult {
  std::vector<float> score;       // per particle
  std::vector<double> mean_frc;   // per ring 0..ring_max, averaged over particles (0 below ring_min)
  double mean_score = 0;
  int ring_min = 1;               // the first ring the score counts
};

// minres/maxres in Å as make_fourier_band takes them (minres <= 0: from ring 1; maxres <= 0 or beyond what
// the cache holds: the cache's last ring). batch > 0 particles are projected at a time.
ScoreResult score_particles(const ParticleCache& cache, const io::GaussianModel& model, Device device,
                            double minres = kDefaultMinRes, double maxres = 0, int batch = 256);

}  // namespace cugmm
