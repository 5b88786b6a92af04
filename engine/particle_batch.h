// Batches of particles from the cache as the projector takes them: each particle's view (pose, CTF with
// the run's CTF choice) and its coefficients on the loss band (a cache may hold more rings than the loss
// uses: coefficients are picked by their half-plane position, fft_index, which both bands share).
#pragma once
#include <cstddef>
#include <string>
#include <vector>

#include "cugmm/data.h"
#include "engine/particle_cache.h"
#include "engine/projector.h"

namespace cugmm {

namespace io { struct ParticleSet; }

// How the model is multiplied by the CTF: as the cache says per particle (auto: full CTF for raw particles,
// |CTF| where the optics group says phase-flipped, none without defocus values), or forced for all.
enum class CtfChoice { automatic, full, phase_flipped, none };
CtfChoice parse_ctf_choice(const std::string& s);  // "auto" | "full" | "flipped" | "none"
const char* ctf_choice_name(CtfChoice c);

// Throws when an optics group says its images are CTF-premultiplied (rlnCtfDataAreCtfPremultiplied = 1) and
// the CTF choice is automatic: such data need the model times CTF^2, which the projector does not offer yet,
// so training on them would fit the wrong thing silently. An explicit choice trains anyway.
void refuse_premultiplied(const io::ParticleSet& set, CtfChoice choice);

// A particle's pose in RELION's terms, Euler angles (degrees) and origin (Å): the library API's ParticlePose
// (include/cugmm/data.h), one type for the engine and its callers.

class ParticleBatcher {
 public:
  // Throws when the cache does not hold `band`'s coefficients.
  ParticleBatcher(const ParticleCache& cache, const FourierBand& band, CtfChoice ctf);
  const FourierBand& band() const { return band_; }
  // Host memory: views[n], data[n x band.size()]. `parallel`: over the host's threads (each particle its own
  // rows, so the result is the same). The CUDA path takes it: there the host's cores wait for the device
  // anyway. The CPU backend does not: its threads are busy with the step, and a parallel gather measured
  // <= 1 ms faster on the idle 2-core machine and slower under load (README, Performance).
  void gather(const size_t* index, int n, ParticleView* views, cfloat* data, bool parallel = false) const;
  ParticleView view(size_t i) const;
  // Poses used in place of the cache's (one per cache particle; empty: the cache's): `train --poses-from`.
  void set_poses(std::vector<ParticlePose> poses);
  // Every coefficient of ring r multiplied by scale[r] as it is gathered (rings 0..band.ring_max; empty: as
  // cached): the pooled score's data side (RingWeights::data_scale).
  void set_data_scale(std::vector<float> scale);
  // One of two interleaved halves of the band's coefficients, the other gathered as zeros: kHalfEven keeps
  // the coefficients with kx + ky even, kHalfOdd the odd ones, kAllCoefficients all (the default). The parity
  // is the same at k and -k, so each half is closed under Hermitian symmetry, and the two halves' noise is
  // independent (TrainConfig::feature_split).
  static constexpr int kAllCoefficients = 0, kHalfEven = 1, kHalfOdd = 2;
  void set_coefficient_half(int half);
  int coefficient_half() const { return half_; }

 private:
  const ParticleCache& cache_;
  FourierBand band_;
  CtfChoice ctf_;
  std::vector<int> take_;
  std::vector<ParticlePose> poses_;
  std::vector<float> scale_;
  int half_ = kAllCoefficients;
};

// The loss band for a cache: minres/maxres in Å (maxres <= 0 or finer than the cache: the cache's last ring).
FourierBand training_band(const ParticleCache& cache, double minres, double maxres);

}  // namespace cugmm
