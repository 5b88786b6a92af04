// Focused analysis with signal subtraction (issue 18 item 2), as RELION's particle subtraction does it: from
// each particle the projection of the neutral model's Gaussians OUTSIDE a mask is subtracted, with the
// particle's pose and CTF through the projector's own render path (engine/projector.h render_host, band
// convention of engine/fourier_band.h), so the data hold only the region and the latent describes it alone.
// With `--subtract decoded RUN` each particle's own model is used instead of the neutral one: RUN's decoder at
// the particle's latent point (use_decoded_models), so an outside that moves is subtracted where it is.
//
// Symmetry expansion: the mask describes the region in the model's frame (the first asymmetric unit's). Copy
// k of a particle has the pose A R_k and sees the model rotated by R_k, so its subtraction renders the
// outside with the pose A R_k: what remains is the region as copy k sees it. Each copy then has its own
// image, so the derived cache of an expanded source is per-copy (engine/particle_cache.h): n times the
// source's size on disk, said in the log before it is written.
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
// Measured choice (README "Symmetry expansion and focused analysis"): the subtraction is done once into a derived particle cache
// written beside the original (engine/particle_cache.h write_derived_cache) rather than on the fly in the
// batcher: it costs one pass of two renders per particle (or copy), where on the fly it would cost a render
// per particle (or copy) per epoch (and features) on the host; the price is the disk (n-fold for n copies).
#pragma once
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/context.h"
#include "engine/particle_batch.h"
#include "engine/particle_cache.h"
#include "io/model.h"
#include "io/particles.h"
#include "kernels/geometry.h"

namespace cugmm {

constexpr size_t kScaleParticles = 4096;  // enough for a per-ring scale to ~1% at SNR 0.05 on 64+ rings

// Each particle's own whole model: fills n rows of 5G parameters (the full model's Gaussians, in its order)
// for the output rows rows[0..n) (engine/train_outputs.h output_rows: particle row x copies + copy).
using ModelRows = std::function<void(const int64_t* rows, size_t n, float* params)>;

struct SubtractionSpec {
  std::vector<char> inside;       // G flags: the region (kept); the others are subtracted
  CtfChoice ctf = CtfChoice::automatic;
  bool recentre = false;
  Vec3<double> centre{0, 0, 0};   // Å from the box centre: the mask's centre (used with recentre)
  ModelRows decoded;              // --subtract decoded: each particle's model; empty: the neutral model
  nlohmann::json decoded_from;    // what `decoded` comes from (part of the derived cache's key)
};

// --subtract decoded RUN: spec.decoded from RUN's decoder at each particle's latent point in RUN/latent.txt,
// matched to `set` (expanded into `group`'s copies when not C1) by rlnImageName and, with --sym,
// rlnCugmmSymmetryCopy through RUN/particles.star. Everything is checked here, before any work: InputError
// naming the file (and the particle) when RUN is not a complete run, was trained on other particles (a
// particle without a row there, other row counts), for another model (Gaussian count, box, positions),
// another working grid or another --sym, or is a focused run whose decoder describes only its region. The
// decoder runs on cx (kept by reference).
void use_decoded_models(SubtractionSpec& spec, Context& cx, const std::string& run, const io::ParticleSet& set,
                        const std::string& group, size_t copies, const WorkingGrid& grid,
                        const io::GaussianModel& full);

// The region's Gaussians (inside), moved by -centre when spec.recentre: the model to train on the result.
io::GaussianModel focused_model(const io::GaussianModel& full, const SubtractionSpec& spec);

// The derived cache at `out`, made from `source` (a cache of the particle file, expanded or not) and the
// model `full` per `spec`, reused when the one there was made the same way (same source cache, expansion,
// model or decoded models, region, CTF choice and centre). `report` gets the per-ring scale, the counts, the
// bytes written and the seconds.
ParticleCache subtracted_cache(Context& cx, const ParticleCache& source, const io::GaussianModel& full,
                               const SubtractionSpec& spec, const std::string& out, nlohmann::json& report);

}  // namespace cugmm
