// How well a latent space recovers a known truth (DESIGN §7): one tool for the tests, the benchmark and the
// oracle reference, so every accuracy figure is computed the same way. Nothing here is chosen with the
// truth (no "best single dimension"): the latent is reduced by PCA, a mixture or CCA fitted without it.
//
// Metrics are signless where the latent's orientation is arbitrary (PC signs, mixture labels). Every
// function checks sizes and finiteness and throws cugmm::Error saying what is wrong.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

namespace cugmm {

// Row-major rows x cols doubles: latents (N x d), truths (N x m), log-likelihoods (N x S).
struct Matrix {
  size_t rows = 0, cols = 0;
  std::vector<double> values;
  Matrix() = default;
  Matrix(size_t r, size_t c, std::vector<double> v = {});  // v empty: zeros
  double operator()(size_t r, size_t c) const { return values[r * cols + c]; }
  double& operator()(size_t r, size_t c) { return values[r * cols + c]; }
  std::vector<double> column(size_t c) const;
};

// ---- principal components ----------------------------------------------------------------------------
struct Pca {
  Matrix components;            // d x d, row k = unit component k, by decreasing variance; sign: largest entry > 0
  std::vector<double> variance; // per component (sample variance, N - 1)
  std::vector<double> explained;// variance / total variance
  Matrix scores;                // N x d, (latent - mean) projected on the components
};
Pca pca(const Matrix& latent);

// ---- correlations ------------------------------------------------------------------------------------
std::vector<double> average_ranks(const std::vector<double>& x);  // 1-based; ties share their mean rank
double spearman(const std::vector<double>& a, const std::vector<double>& b);  // signed
// Fisher & Lee (1983) circular-circular correlation of two angle sets (radians), signed: +1 when b is a
// rotated a, -1 when reflected. O(N) closed form of the pairwise definition (see the .cpp).
double fisher_lee(const std::vector<double>& a, const std::vector<double>& b);
// Canonical correlations of latent (N x d) and truths (N x m), descending, min(rank d, rank m) of them.
std::vector<double> canonical_correlations(const Matrix& latent, const Matrix& truths);

// ---- Gaussian mixture --------------------------------------------------------------------------------
struct GmmOptions {
  int restarts = 5;           // k-means++ starts, after one split along each principal axis; the best
                              // final log-likelihood is kept
  int max_iterations = 300;
  double tolerance = 1e-9;    // stop when the mean log-likelihood gains less
  double regularisation = 1e-6;  // added to covariance diagonals, times the mean latent variance
  uint64_t seed = 1;
  // Extreme deconvolution (Bovy, Hogg & Roweis 2011) with one noise covariance for every point: d x d, empty
  // for none. The points are taken as x = z + n, n ~ N(0, noise), and the mixture is fitted to z: component k's
  // covariance of x is S_k + noise with S_k >= 0 (the EM of that paper, homoscedastic case). Empty: plain EM.
  Matrix noise;
};
struct GmmFit {
  std::vector<double> weights;    // K
  Matrix means;                   // K x d
  std::vector<Matrix> covariances;// K of d x d: the points' (with opt.noise: S_k + noise)
  std::vector<Matrix> deconvolved; // with opt.noise: K of d x d, S_k (the covariances of z); else empty
  Matrix responsibilities;        // N x K
  std::vector<int> labels;        // N, argmax of the responsibilities
  double log_likelihood = 0;      // mean per point
};
GmmFit fit_gmm(const Matrix& x, int components, const GmmOptions& opt = {});

// Fraction of points whose predicted class equals the truth under the best one-to-one relabelling of the
// predictions (brute force over permutations: at most 6 classes). Classes are 0..classes-1.
double matched_accuracy(const std::vector<int>& predicted, const std::vector<int>& truth, int classes);
// That relabelling: perm[p] is the truth class matched to predicted class p (the same brute force).
std::vector<int> best_matching(const std::vector<int>& predicted, const std::vector<int>& truth, int classes);

// ---- the metrics of DESIGN §7 ------------------------------------------------------------------------
double linear_motion_score(const Matrix& latent, const std::vector<double>& truth);  // |Spearman(PC1, truth)|
double rotation_score(const Matrix& latent, const std::vector<double>& angle);      // |Fisher-Lee(atan2(PC2, PC1), angle)|
// truth: class of each particle, 0 or 1 (stored as doubles so every metric takes the same truth row).
double composition_score(const Matrix& latent, const std::vector<double>& truth, const GmmOptions& opt = {});
std::vector<double> several_motions_score(const Matrix& latent, const Matrix& truths);  // canonical correlations

// ---- bootstrap ---------------------------------------------------------------------------------------
struct Interval {
  double value = 0, lo = 0, hi = 0;  // value on all particles; lo, hi: percentile 2.5% and 97.5%
};
struct BootstrapOptions {
  int resamples = 200;
  uint64_t seed = 1;
};
// Particles resampled with replacement; rows of latent and truths are kept together.
using ScalarMetric = std::function<double(const Matrix& latent, const std::vector<double>& truth)>;
using VectorMetric = std::function<std::vector<double>(const Matrix& latent, const Matrix& truths)>;
Interval bootstrap(const Matrix& latent, const std::vector<double>& truth, const ScalarMetric& metric,
                   const BootstrapOptions& opt = {});
std::vector<Interval> bootstrap(const Matrix& latent, const Matrix& truths, const VectorMetric& metric,
                                const BootstrapOptions& opt = {});  // one interval per element

// ---- oracle reference helpers ------------------------------------------------------------------------
// log_likelihood: N x S, particle i's log-likelihood of each of S grid states (any additive constant).
// Posterior with a flat prior over the grid: softmax of each row.
Matrix posterior_weights(const Matrix& log_likelihood);
enum class StateKind { linear, circular };
// Posterior-mean state per particle; states[s] is grid state s's value (radians when circular: the
// circular mean atan2(sum w sin, sum w cos)). For a grid over several variables, call once per variable
// with that variable's value at each grid state.
std::vector<double> posterior_mean(const Matrix& log_likelihood, const std::vector<double>& states, StateKind kind);
// N x classes: each particle's posterior probability of each class; state_class[s] in 0..classes-1.
Matrix posterior_classes(const Matrix& log_likelihood, const std::vector<int>& state_class, int classes);

}  // namespace cugmm
