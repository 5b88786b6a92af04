// Each particle's latent point as the posterior mean over z, rather than the encoder's point estimate
// (issue 14, direction 2). For particle i with encoder point e_i:
//
//   p(z | particle) ∝ exp(K s_i(z)) N(z; mu, Sigma)
//
// - s_i(z): the training score of the particle against the decoded model at z (engine/training_score.h, the
//   very call training makes), so whatever score training uses, this follows.
// - N(mu, Sigma): the prior, a Gaussian fitted to the encoder points of the whole set (the data set's latent
//   distribution).
// - K: log-likelihood per unit of score, from the data (below).
//
// Candidates: P antithetic pairs z = e_i ± w L u_p (L L^T = Sigma, u_p ~ N(0, I) from Philox keyed by the
// seed, the particle's index in the cache and p, so nothing depends on batch order or thread count), plus
// e_i itself. The posterior mean is the self-normalised importance-sampling average over the 2P pair samples
// with weights exp(K s) N(z; mu, Sigma) / q(z), q = N(e_i, w^2 Sigma) (e_i itself is not drawn from q and
// only enters the calibration of K).
//
// Why K = 4 sum_ip b_ip / sum_ip a_ip^2, with a = s(e + d) - s(e - d) and b = 2 s(e) - s(e + d) - s(e - d):
// if K s were the white-noise Gaussian log-likelihood l(z) = <D, M(z)>/sigma^2 - |M(z)|^2/(2 sigma^2) and e
// the true state, then to first order in d (M(e ± d) = M ± J d) the noise cancels from b, whose mean is
// |J d|^2/(K sigma^2), and only noise is left in a, whose variance is 4 |J d|^2/(K^2 sigma^2): so
// K = 4 E[b] / E[a^2]. This is the Fisher-information identity (a log-likelihood's noise variance equals twice
// its expected drop) measured on the data, with no assumption about how the score is normalised. Where the
// encoder point is off the truth, a also carries signal and K comes out smaller: the posterior is then wider,
// never overconfident. One K for the set (particles differ in SNR by view and defocus; a per-particle K
// would need many more evaluations).
//
// Cost per particle: 2P + 1 decoder rows and projections (the training step's forward projection), about
// 2P + 1 times `embed`'s; the decoder runs on the candidate rows of `batch` particles at once (one BLAS
// thread), the projector on one particle's 2P + 1 candidates per call. Deterministic: the same bits whatever
// --threads and batch (latent_posterior.cpp says how). Host memory: n x (2P + 1) x (d + 1) floats. On the
// run's Context: both backends.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/context.h"
#include "engine/latent_metrics.h"
#include "engine/particle_batch.h"
#include "engine/trainer.h"

namespace cugmm {

struct PosteriorOptions {
  int pairs = 16;          // antithetic pairs per particle: 2 x pairs + 1 evaluations
  double width = 0.5;      // proposal SD, in units of the prior's along each of its axes
  uint64_t seed = 1;
  int batch = 32;          // particles per chunk: batch x (2 pairs + 1) rows decoded at once (x 5G floats)
};

struct PosteriorLatent {
  std::vector<float> mean;       // n x d, cache order
  std::vector<float> ess;        // n: effective number of samples, (sum w)^2 / sum w^2, 1 .. 2 pairs
  double scale = 0;              // K
  std::vector<double> prior_mean, prior_cov;  // d, d x d
  int evaluations = 0;           // per particle
  double seconds = 0;
};

// encoder_latent: n x d in cache order (embed_particles / Trainer::embed). Throws when K cannot be measured
// (the score does not peak at the encoder's points: an untrained or collapsed run).
PosteriorLatent posterior_latent(const TrainedModel& m, Context& cx, const ParticleBatcher& batcher,
                                 const std::vector<float>& encoder_latent, const PosteriorOptions& o = {});

// The closest variant of a deconvolved latent (docs/accuracy.md round 10c; a measurement for bench_denoise, not
// a user option): the posterior mean under a deconvolved mixture prior (engine/latent_denoise.h: weights, means,
// deconvolved S_k) with the decoder's likelihood exp(K s(z)) in place of the encoder's Gaussian noise. Proposal:
// the exact posterior of z given the encoder point y under the encoder-noise model, sum_k r_k(y) N(b_k, B_k)
// with C_k = S_k + Sigma_n, b_k = m_k + S_k C_k^-1 (y - m_k), B_k = S_k - S_k C_k^-1 S_k, drawn in antithetic
// pairs about b_k (one component per pair, chosen with probability r_k). That proposal is prior x encoder
// likelihood / evidence, so the weights are exp(K s(z)) / N(y; z, Sigma_n). K (`scale`): posterior_latent's,
// measured on the same particles. Candidates, scoring and determinism as posterior_latent's.
PosteriorLatent mixture_posterior_latent(const TrainedModel& m, Context& cx, const ParticleBatcher& batcher,
                                         const std::vector<float>& encoder_latent, const GmmFit& prior,
                                         const Matrix& noise, double scale, const PosteriorOptions& o = {});

// The pieces, for tests. scores: n x (2P + 1), per particle [s(e), s(e + d_1), s(e - d_1), ...].
double likelihood_scale(const std::vector<float>& scores, size_t n, int pairs);
struct GaussianPrior {
  std::vector<double> mean, cov, chol, inv;  // d, d x d (row-major); chol lower, inv = cov^-1
};
GaussianPrior fit_gaussian_prior(const std::vector<float>& latent, int d);

// "encoder" or "posterior" (what `--latent-estimate` takes); throws naming the value otherwise.
bool parse_latent_estimate(const std::string& v);  // true: posterior

// Which latent point latent.txt holds for each particle (`--latent-estimate`, TrainSettings::latent_estimate):
// the encoder's, or (use_posterior) the posterior mean above.
struct LatentEstimate {
  bool use_posterior = false;
  PosteriorOptions posterior;
};
// With the posterior chosen: `latent` (the encoder's points, n x d, cache order) replaced by the posterior
// means, and what was done (K, ESS, timings, cost per particle) for run.json; null JSON otherwise.
nlohmann::json apply_latent_estimate(const LatentEstimate& e, const TrainedModel& m, Context& cx,
                                     const ParticleBatcher& batcher, std::vector<float>& latent);

}  // namespace cugmm
