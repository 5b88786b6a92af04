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
#include <vector>

#include "core/context.h"
#include "engine/feature_transform.h"
#include "engine/features.h"
#include "engine/particle_batch.h"

namespace cugmm {

// The widest feature row (5 x Gaussians) the dense noise-whitened fit accepts: two width^2 eigensolvers.
constexpr size_t kNoiseWhitenMaxWidth = 8000;

// count x 5G floats, row-major; deterministic for a seed; cx a CPU context (host buffers). Progress shown.
std::vector<float> noise_features(Context& cx, const ParticleBatcher& batcher, const std::vector<float>& neutral,
                                  const std::vector<float>& ring_weights, bool pooled, const FeatureNorm& norm,
                                  const std::vector<size_t>& particles, size_t count, uint64_t seed, int batch = 64);

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
                                        size_t max_rows = 5000);

// The encoder's input transform ranked by signal-to-noise (`train --feature-pca K --feature-whiten noise`):
// the generalized eigenproblem C v = lambda N v, with C the second moment of the rows `rows` of `source`
// (column-centred by the feature file's normalisation) and N that of the noise rows (count x width, as
// noise_features returns them, centred here), shrunk towards its diagonal, N_s = (1 - a) N + a diag(N),
// because the width 5G may exceed the noise sample: a = shrink, or when shrink < 0 a = width / (width +
// noise rows) (little shrinkage once the sample is large: shrinking towards the diagonal misstates noise
// that is correlated across columns, which then leaks through the whitening; tests/test_noise_whitening). The basis is N_s^-1/2 V_k: the rows whitened by
// the noise, then their top k principal components; variance holds lambda_k (1 where a direction holds only
// noise, so lambda - 1 is its signal-to-noise); with whiten each column is scaled to unit-variance scores.
// With `nuisance` rows (view_neighbour_means; empty: none) their covariance is added to N_s: directions the view
// predicts then rank as noise (`--feature-whiten noise+view`).
// How many lambda lie above the Marchenko-Pastur edge (1 + sqrt(width / rows))^2 of pure noise is logged,
// not used to choose k: N's own sampling error and the shrinkage move the edge (tests/test_noise_whitening:
// 3 of pure noise's 40 lambda beyond it), so k is given. Dense (width x width, two symmetric eigensolvers): refused above max_width.
// Deterministic; columns without information (sd 0: zero in every row) get zero weight.
FeatureTransform fit_noise_whitened_pca(const RowSource& source, size_t width, const std::vector<size_t>& rows,
                                        const std::vector<float>& noise, int k, bool whiten, double shrink = -1,
                                        size_t max_width = kNoiseWhitenMaxWidth,
                                        const std::vector<float>& nuisance = {});

}  // namespace cugmm
