// Focused analysis with signal subtraction (issue 18 item 2), as RELION's particle subtraction does it: from
// each particle the projection of the neutral model's Gaussians OUTSIDE a mask is subtracted, with the
// particle's pose and CTF through the projector's own render path (engine/projector.h render_host, band
// convention of engine/fourier_band.h), so the data hold only the region and the latent describes it alone.
//
// Scale: the particles are normalised to unit background noise, the model carries the map's units, and the
// Gaussian model's radial envelope differs from the data's (B-factor, detector): the outside projection is
// multiplied by a per-ring scale s_r fitted by least squares of the WHOLE model's projection to the data
// over (up to kScaleParticles of) the particles: s_r = sum w Re(M conj D) / sum w |M|^2.
//
// Recentring: with a centre m (the mask's, Å from the box centre), each subtracted particle is translated by
// t = o - (A m)_xy (its coefficients times exp(-2 pi i k.t)) and its origin set to 0, so the region's centre
// sits at the box centre; the model trained on them must then be the region's Gaussians moved by -m
// (recentred_model), which projects exactly onto them.
//
// Measured choice (README "Focused analysis"): the subtraction is done once into a derived particle cache
// written beside the original (engine/particle_cache.h write_derived_cache) rather than on the fly in the
// batcher: it costs one pass of two renders per particle, where on the fly it would cost a render per
// particle per epoch (and features) on the host.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/context.h"
#include "engine/particle_batch.h"
#include "engine/particle_cache.h"
#include "io/model.h"
#include "kernels/geometry.h"

namespace cugmm {

constexpr size_t kScaleParticles = 4096;  // enough for a per-ring scale to ~1% at SNR 0.05 on 64+ rings

struct SubtractionSpec {
  std::vector<char> inside;       // G flags: the region (kept); the others are subtracted
  CtfChoice ctf = CtfChoice::automatic;
  bool recentre = false;
  Vec3<double> centre{0, 0, 0};   // Å from the box centre: the mask's centre (used with recentre)
};

// The region's Gaussians (inside), moved by -centre when spec.recentre: the model to train on the result.
io::GaussianModel focused_model(const io::GaussianModel& full, const SubtractionSpec& spec);

// The derived cache at `out`, made from `source` (unexpanded) and the model `full` per `spec`, reused when
// the one there was made the same way (same source cache, model, region, CTF choice and centre). `report`
// gets the per-ring scale, the counts and the seconds.
ParticleCache subtracted_cache(Context& cx, const ParticleCache& source, const io::GaussianModel& full,
                               const SubtractionSpec& spec, const std::string& out, nlohmann::json& report);

}  // namespace cugmm
