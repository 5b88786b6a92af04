#include "engine/particle_batch.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "io/particles.h"

namespace cugmm {

CtfChoice parse_ctf_choice(const std::string& s) {
  if (s == "auto") return CtfChoice::automatic;
  if (s == "full") return CtfChoice::full;
  if (s == "flipped") return CtfChoice::phase_flipped;
  if (s == "none") return CtfChoice::none;
  throw Error("--ctf must be auto, full, flipped or none, not '" + s + "'");
}

const char* ctf_choice_name(CtfChoice c) {
  switch (c) {
    case CtfChoice::automatic: return "auto";
    case CtfChoice::full: return "full";
    case CtfChoice::phase_flipped: return "flipped";
    case CtfChoice::none: return "none";
  }
  return "?";
}

void refuse_premultiplied(const io::ParticleSet& set, CtfChoice choice) {
  if (choice != CtfChoice::automatic) return;
  for (const char* block : {"optics", "particles", ""}) {
    const io::StarBlock* b = set.star.find(block);
    if (!b) continue;
    const int col = b->column("rlnCtfDataAreCtfPremultiplied");
    if (col < 0) continue;
    for (const auto& row : b->rows)
      if (size_t(col) < row.size() && (row[size_t(col)] == "1" || row[size_t(col)] == "1.0"))
        throw InputError(set.source, "", "the images are CTF-premultiplied (rlnCtfDataAreCtfPremultiplied = 1): "
                                         "the model would need CTF^2, which cugmm does not model yet; give "
                                         "--ctf full, flipped or none to train on them anyway");
  }
}

FourierBand training_band(const ParticleCache& cache, double minres, double maxres) {
  const FourierBand& stored = cache.band();
  const double cache_maxres = stored.ring_resolution(stored.ring_max);
  if (maxres <= 0 || maxres < cache_maxres) maxres = cache_maxres;  // never beyond what the cache holds
  return make_fourier_band(cache.box(), cache.pixel_size(), minres, maxres);
}

ParticleBatcher::ParticleBatcher(const ParticleCache& cache, const FourierBand& band, CtfChoice ctf)
    : cache_(cache), band_(band), ctf_(ctf) {
  const FourierBand& stored = cache.band();
  std::vector<int> pos(size_t(cache.box()) * (cache.box() / 2 + 1), -1);
  for (size_t i = 0; i < stored.size(); ++i) pos[stored.fft_index[i]] = int(i);
  take_.resize(band.size());
  for (size_t i = 0; i < band.size(); ++i) {
    take_[i] = pos[band.fft_index[i]];
    if (take_[i] < 0) throw Error("the particle cache " + cache.path() + " does not hold the requested band");
  }
}

ParticleView ParticleBatcher::view(size_t i) const {
  const CachedParticle& p = cache_.particle(i);
  CtfMode mode = p.mode();
  if (ctf_ == CtfChoice::full) mode = CtfMode::full;
  if (ctf_ == CtfChoice::phase_flipped) mode = CtfMode::phase_flipped;
  if (ctf_ == CtfChoice::none) mode = CtfMode::none;
  if (!poses_.empty()) {
    const ParticlePose& q = poses_[i];
    return make_particle_view(q.rot, q.tilt, q.psi, q.origin_x, q.origin_y, p.ctf(), mode);
  }
  return make_particle_view(p.rot, p.tilt, p.psi, p.origin_x, p.origin_y, p.ctf(), mode);
}

void ParticleBatcher::set_poses(std::vector<ParticlePose> poses) {
  CUGMM_REQUIRE(poses.empty() || poses.size() == cache_.count(), "set_poses: one pose per cache particle");
  poses_ = std::move(poses);
}

void ParticleBatcher::gather(const size_t* index, int n, ParticleView* views, cfloat* data, bool parallel) const {
  const size_t nb = band_.size();
#pragma omp parallel for if (parallel) schedule(static)
  for (int i = 0; i < n; ++i) {
    views[i] = view(index[i]);
    const cfloat* src = cache_.coefficients(index[i]);
    cfloat* dst = data + size_t(i) * nb;
    for (size_t k = 0; k < nb; ++k) dst[k] = src[take_[k]];
    if (!scale_.empty())
      for (size_t k = 0; k < nb; ++k) dst[k] *= scale_[band_.ring[k]];
    if (half_ != kAllCoefficients) {
      const int keep = half_ == kHalfEven ? 0 : 1;
      for (size_t k = 0; k < nb; ++k)
        if (((band_.kx[k] + band_.ky[k]) & 1) != keep) dst[k] = cfloat(0.f, 0.f);
    }
  }
}

void ParticleBatcher::set_coefficient_half(int half) {
  CUGMM_REQUIRE(half == kAllCoefficients || half == kHalfEven || half == kHalfOdd,
                "ParticleBatcher: coefficient half " + std::to_string(half));
  half_ = half;
}

void ParticleBatcher::set_data_scale(std::vector<float> scale) {
  CUGMM_REQUIRE(scale.empty() || scale.size() == size_t(band_.num_rings()),
                "ParticleBatcher: the data scale has " + std::to_string(scale.size()) + " rings, the band " +
                    std::to_string(band_.num_rings()));
  scale_ = std::move(scale);
}

}  // namespace cugmm
