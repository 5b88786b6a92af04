// Each particle's latent point denoised under a deconvolved prior (issue 14, docs/accuracy.md round 10c: the
// feasibility test of a `--latent-estimate denoised`, not built because the lid's states did not become two
// clusters even with the truth's Sigma_n; bench_denoise measures it). The encoder's point is taken as
// y = z + n, n ~ N(0, Sigma_n) the encoder's own noise (given by the caller). The data set's distribution of z
// is a Gaussian mixture fitted to the points by extreme deconvolution (Bovy, Hogg & Roweis 2011; fit_gmm with
// GmmOptions::noise): component k's covariance of y is S_k + Sigma_n. K is chosen by BIC up to a cap. Then
//
//   E[z | y] = sum_k r_k(y) [m_k + S_k (S_k + Sigma_n)^-1 (y - m_k)]
//
// (Bayes' posterior mean under that prior). The hope: a discrete state seen through the encoder's noise is a
// cloud as wide as the noise, which the posterior pulls towards its state's centre by S_k (S_k + Sigma_n)^-1,
// while wide components (continuous motions, S_k >> Sigma_n along them) are left nearly alone; in one
// dimension the posterior mean under Gaussian noise is monotone in y whatever the prior, so a motion's order
// along a line is kept. What round 10c found: the BIC mixture models a uniform slide by segments rather than
// the states, and the posterior then pulls points onto those segments across the states.
#pragma once
#include <nlohmann/json.hpp>
#include <vector>

#include "engine/latent_metrics.h"

namespace cugmm {

struct DenoiseOptions {
  int max_components = 6;  // the BIC's cap on K
  GmmOptions gmm;          // the mixture fit's starts and tolerances (its noise is set from Sigma_n)
};

struct DenoisedLatent {
  Matrix mean;              // n x d, E[z | y] per point
  GmmFit prior;             // the chosen mixture (deconvolved covariances in prior.deconvolved)
  int components = 0;       // K
  std::vector<double> bic;  // per K = 1 .. cap (lower is better); NaN where K could not be fitted
};

// y: n x d points, noise: d x d (Sigma_n, positive semi-definite). Throws cugmm::Error on bad sizes, a
// non-finite value or too few points (K >= 1 needs 2 points per component and more points than dimensions).
DenoisedLatent denoise_latent(const Matrix& y, const Matrix& noise, const DenoiseOptions& o = {});

// E[z | y] for each row of y under a deconvolved mixture (weights, means, deconvolved S_k) and the noise,
// with the responsibilities computed from N(y; m_k, S_k + noise). Also returns each point's log-likelihood
// mean in *mean_log_likelihood when given.
Matrix deconvolved_posterior_mean(const GmmFit& prior, const Matrix& noise, const Matrix& y,
                                  double* mean_log_likelihood = nullptr);

// The mixture and K for run.json: weights, means, deconvolved covariances, BIC per K, the noise.
nlohmann::json denoise_json(const DenoisedLatent& r, const Matrix& noise);

}  // namespace cugmm
