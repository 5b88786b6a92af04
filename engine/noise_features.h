// The gradient features of NOISE-ONLY images (issue 14, docs/accuracy.md round 7c): what the features of
// engine/features.h would be if the particles held no signal, so their covariance is the noise part N of the
// features' covariance C_s + N. Ranking feature directions by C v = lambda N v (signal-to-noise) instead of
// by C alone (plain PCA) is what bench_accuracy_diagnostics --noise-whitened measures.
//
// Noise image i takes the view and CTF of particles[i mod n] (the batcher's cache indices) and complex Gaussian
// coefficients with the run's per-ring noise spectrum: the pooled score's u_r = 1 / sigma_r^2
// (engine/ring_weights.h inverse_noise); the per-ring FRC scores are blind to a ring's scale, so for them
// (pooled false) white noise is the same. Real on the self-conjugate coefficients and Hermitian across
// partners (FourierBand::partner), as a real image's transform is. Scored by the run's training projector at
// its neutral model and normalised with the run's column normalisation, exactly as the particles' features.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/context.h"
#include "engine/feature_transform.h"
#include "engine/features.h"
#include "engine/particle_batch.h"

namespace cugmm {

// count x 5G floats, row-major; deterministic for a seed; cx a CPU context (host buffers). Progress shown.
std::vector<float> noise_features(Context& cx, const ParticleBatcher& batcher, const std::vector<float>& neutral,
                                  const std::vector<float>& ring_weights, bool pooled, const FeatureNorm& norm,
                                  const std::vector<size_t>& particles, size_t count, uint64_t seed, int batch = 64);

// How many noise images measure N for a feature width (5G): twice the width, at least 3,000 (so that at
// small G N needs little shrinkage) and at most 6,000 (the streamed solver's capacitance matrix is count^2
// and the noise rows count x width; above 3,000 Gaussians N is then mostly its shrinkage target, the diagonal),
// and no more rows than kFitRowBytes holds (at least kFitMinRows): at G = 100,000 the rows are 2 MB each, and
// N is its diagonal whatever the count.
constexpr size_t kFitRowBytes = size_t(512) << 20, kFitMinRows = 256;
size_t noise_image_count(size_t width);
constexpr size_t kViewNuisanceMaxRows = 5000;
// How many of `particles` training rows view_neighbour_means uses at a width: at most kViewNuisanceMaxRows and
// the same row budget as the noise images.
size_t view_row_count(size_t width, size_t particles);

// How N_s^-1 is applied and the top k found (docs/accuracy.md round 7d). dense: N_s and the whitened
// second moment as width x width matrices, two symmetric eigensolvers (width^3; refused above
// kDenseNoiseMaxWidth). streamed: N_s = diag + the noise rows' low-rank part, inverted by Woodbury through
// the count x count capacitance matrix (one Cholesky), and a randomized subspace iteration on N_s^-1 C that
// streams the feature rows (kStreamedPasses passes, streamed_columns(k) columns), then Rayleigh-Ritz on the small generalized problem:
// nothing width x width. automatic: dense up to kDenseNoiseAutoWidth (5G = 2,000: where the default input was
// measured, docs/accuracy.md round 9; the streamed one there took other directions on 2 of 3 rotation seeds),
// else streamed.
enum class NoiseSolver { automatic, dense, streamed };
constexpr size_t kDenseNoiseMaxWidth = 8000, kDenseNoiseAutoWidth = 2000;
// The streamed solver's passes over the feature file and its subspace's columns for k components (3k, at least
// k + 10). Round 7d's 8 passes and 2k columns agreed with the dense path to 3 degrees on 25 components without
// the view rows, but with them the trailing components had not converged (53 degrees apart at 25 on the quick
// rotation set) and the training that follows took other directions (rotation 0.412 / 0.044 / 0.012 against
// the dense 0.361 / 0.328 / 0.375); 16 passes and 3k columns gave 0.368 / 0.319 / 0.365 (30 passes and 4k:
// 0.376 / 0.313 / 0.369). docs/accuracy.md round 9.
constexpr int kStreamedPasses = 16;
size_t streamed_columns(int k);
NoiseSolver parse_noise_solver(const std::string& name);  // auto, dense or streamed; throws naming the option
const char* noise_solver_name(NoiseSolver s);
// Which solver `automatic` uses at a width, and the host bytes it holds at its peak with `count` noise rows
// (the noise rows included) and k components: the memory plan states it (engine/trainer.h plan_memory).
NoiseSolver choose_noise_solver(NoiseSolver s, size_t width);
void require_dense_noise_width(size_t width);  // throws above kDenseNoiseMaxWidth, naming the option
// count: the noise rows plus any nuisance rows (fit_noise_whitened_pca), both enter the low-rank part.
size_t noise_solver_bytes(NoiseSolver s, size_t width, size_t count, int k);

// The view-dependent part of the feature rows, as rows whose covariance fit_noise_whitened_pca counts as noise.
// The features of a particle seen along a view hold a part that depends on the view alone (round 9: on the
// quick benchmark the top noise-whitened component, lambda ~19 on every system and seed, is predicted 70% by
// the mean of the 20 particles of nearest view and holds none of the truth; the latent of every failing seed
// follows it): most likely the neutral model's mismatch with the data's mean seen from that view. The states
// are taken as independent of the view, so what the view predicts is nuisance. For at most max_rows of `rows`
// (evenly spaced), each row's mean over the `neighbours` rows of nearest beam direction among them (itself
// left out), centred over them; `views` holds each of `rows`' beam directions (3 values per row, unit
// vectors). Its covariance is the view-dependent mean's plus 1/neighbours of the rows' own (a small, even
// overcount). Memory: two max_rows x width float arrays and one of doubles.
std::vector<float> view_neighbour_means(const RowSource& source, size_t width, const std::vector<size_t>& rows,
                                        const std::vector<double>& views, int neighbours = 20,
                                        size_t max_rows = kViewNuisanceMaxRows);

// The encoder's input transform ranked by signal-to-noise (`train --feature-pca K --feature-whiten noise`):
// the generalized eigenproblem C v = lambda N v, with C the second moment of the rows `rows` of `source`
// (column-centred by the feature file's normalisation) and N that of the noise rows (count x width, as
// noise_features returns them, centred here), shrunk towards its diagonal, N_s = (1 - a) N + a diag(N),
// because the width 5G may exceed the noise sample: a = shrink, or when shrink < 0 a = width / (width +
// noise rows) (little shrinkage once the sample is large: shrinking towards the diagonal misstates noise
// that is correlated across columns, which then leaks through the whitening; tests/test_noise_whitening).
// The basis is the top k generalized eigenvectors, N_s-normalised (v^T N_s v = 1: the rows whitened by the
// noise, then their top k principal components); variance holds lambda_k (1 where a direction holds only
// noise, so lambda - 1 is its signal-to-noise); with whiten each column is scaled to unit-variance scores.
// Both solvers give the same basis within the subspace iteration's tolerance (tests/test_noise_whitening).
// With `nuisance` rows (view_neighbour_means; empty: none) their covariance is added to N_s: directions the view
// predicts then rank as noise (`--feature-whiten noise+view`).
// How many lambda lie above the Marchenko-Pastur edge (1 + sqrt(width / rows))^2 of pure noise is logged,
// not used to choose k: N's own sampling error and the shrinkage move the edge (tests/test_noise_whitening:
// 3 of pure noise's 40 lambda beyond it), so k is given. Deterministic; columns without noise (zero in every
// noise row) get zero weight.
FeatureTransform fit_noise_whitened_pca(const RowSource& source, size_t width, const std::vector<size_t>& rows,
                                        std::vector<float> noise, int k, bool whiten, double shrink = -1,
                                        NoiseSolver solver = NoiseSolver::automatic,
                                        const std::vector<float>& nuisance = {});

}  // namespace cugmm
