// The files of a training run directory (README "Run directory"), written by `cugmm train` and, for any
// particle set, `cugmm embed`; read by `embed`, `decode` and later `analyze`:
//   latent.txt        one row per particle in input order: d latent coordinates (a '#' header line); with a
//                     symmetry expansion (--sym, n operators) one row per copy: row r*n + k is copy k+1 of
//                     particle r+1
//   particles.star    the input particle file with rlnCugmmLatent1..d and rlnCugmmFrc columns added; with --sym
//                     one row per copy as relion_particle_symmetry_expand writes it (expanded angles) with
//                     rlnCugmmSymmetryCopy 1..n
//   model.ckpt        networks, Adam state, normalisation, neutral model, settings (nn/checkpoint.h)
//   loss.txt, .png    training and validation loss per epoch
//   run.json          every parameter, version, device, timings, feature normalisation, latent diagnostic
//   features.cugmm-features   the encoder inputs (engine/features.h); particles.cugmm-cache (unless --cache)
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "engine/trainer.h"
#include "io/particles.h"

namespace cugmm {

// The output row of each of the cache's particles (copies included): source_row x copies + copy index.
std::vector<int64_t> output_rows(const ParticleCache& cache);
// latent: n x d, row i = particle i of the cache, whose output_rows entry says its row in the file; copies
// (the symmetry expansion's operators, 1 for none) is said in the header line.
void write_latent_txt(const std::string& path, const std::vector<float>& latent, int d,
                      const std::vector<int64_t>& source_row, size_t copies = 1);
// latent.txt back: one row per particle (input order), d columns; InputError naming the file and line for
// a row of another width or a non-finite value.
std::vector<float> read_latent_txt(const std::string& path, int d);
void write_latent_star(const std::string& path, const io::ParticleSet& set, const std::vector<float>& latent,
                       const std::vector<float>& score, int d, const std::vector<int64_t>& source_row);
void write_loss(const std::string& txt, const std::string& png, const std::vector<EpochRecord>& history);
// Variance per latent dimension, the PCA spectrum and its effective rank exp(entropy of the normalised
// spectrum): near 1 when the latent has collapsed onto a line, d when every direction is used equally.
nlohmann::json latent_diagnostic(const std::vector<float>& latent, int d);
std::string latent_diagnostic_line(const nlohmann::json& diag);

}  // namespace cugmm
