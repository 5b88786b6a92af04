// What `cugmm evenodd` measures (issue 15 item 4): two independent trainings, one per half of the
// particles, and how far they agree. Each comparison has a pass threshold, named here once with its reason
// (README "Reproducibility: cugmm evenodd"):
//   latent       canonical correlations of the two encoders' latents of every particle (both halves);
//   trajectory   each half's PC paths decoded, PCs matched (permutation and sign), the RMSD of the two
//                Gaussian displacement fields relative to their RMS size;
//   clusters     each encoder's latent of every particle clustered, the labels matched, the fraction that
//                agrees (their reconstructions' FSC is reported beside it);
//   nuisance     R^2 of a linear regression of each half's latent on defocus and on the view direction: a
//                latent that two halves reproduce because it encodes the view or the defocus is caught here.
#pragma once
#include <cstddef>
#include <vector>

#include "engine/latent_metrics.h"

namespace cugmm {

namespace io { struct ParticleSet; }

constexpr double kEvenOddMinCanonical = 0.8;    // first canonical correlation: the main latent axis is shared
constexpr double kEvenOddMaxTrajectory = 0.5;   // relative RMSD: 0 identical, ~1.41 unrelated fields
constexpr double kEvenOddMinClusterAgree = 0.8; // matched labels (chance is 1/k for balanced clusters)
constexpr double kEvenOddMaxNuisanceR2 = 0.5;   // at most half the latent variance explained by defocus + view

// 1 or 2 per particle: rlnRandomSubset when every particle has it (1 or 2), else even rows 1, odd rows 2
// (engine/reconstruct.h split_halves).
std::vector<int> particle_halves(const io::ParticleSet& set, bool* from_random_subset = nullptr);

// The fraction of the latent's total variance (summed over its dimensions) that a least-squares fit on
// the regressors (N x m, an intercept added) explains; Eigen's column-pivoting QR, so collinear
// regressors are harmless.
double variance_explained(const Matrix& latent, const Matrix& regressors);
// Regressors per particle: mean defocus (Å); the view (beam direction in the model frame, the third row of
// the rotation) and its products v_i v_j, so a latent that depends on the view evenly (v and -v) is seen.
Matrix defocus_regressors(const io::ParticleSet& set, const std::vector<size_t>& rows);
Matrix view_regressors(const io::ParticleSet& set, const std::vector<size_t>& rows);

// sqrt(sum |a - b|^2) / sqrt((sum |a|^2 + sum |b|^2) / 2) for two displacement fields of the same Gaussians
// (3G each); with `flip`, b's sign is chosen to minimise it (a PC's sign is arbitrary).
double relative_rmsd(const std::vector<double>& a, const std::vector<double>& b, bool flip = true);

// Two sets of P displacement fields (one per PC): the one-to-one matching (brute force over permutations,
// P <= 6) that minimises the summed relative RMSD; matched[p] is b's field matched to a's p-th.
struct FieldMatch {
  std::vector<int> matched;
  std::vector<double> rmsd;  // per a-field
};
FieldMatch match_fields(const std::vector<std::vector<double>>& a, const std::vector<std::vector<double>>& b);

}  // namespace cugmm
