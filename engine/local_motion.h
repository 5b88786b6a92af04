// Localised motions (issue 15 item 2; the paper's spliceosome analysis): the latent directions that move
// the Gaussians of a domain most relative to the rest. With J(z) the decoder's position Jacobian
// (3G x d, d(centre)/dz) and J_in / J_out its rows for Gaussians inside / outside the domain,
//   M_in  = mean over sample points of J_in^T J_in  / G_in     (mean squared motion of a domain Gaussian
//   M_out = mean over sample points of J_out^T J_out / G_out    per unit latent step, as quadratic forms)
// and the directions are the generalised eigenvectors of M_in v = lambda (M_out + eps I) v, largest lambda
// first: lambda is the ratio of the domain's mean squared displacement to the rest's along v.
// eps = eps_rel * trace(M_out) / d keeps the problem definite when the rest does not move at all.
//
// The Jacobian is taken by central differences of the decoder (its inference forward is a ReLU network:
// piecewise linear, so a step of a few hundredths of the latent spread averages over at most a few kinks).
// The eigenproblem is solved by Eigen's GeneralizedSelfAdjointEigenSolver.
#pragma once
#include <functional>
#include <vector>

#include "engine/latent_metrics.h"

namespace cugmm {

// n latent points (n x d, row-major floats) -> n rows of 5G Gaussian parameters [x y z a s] (decode_points).
using DecodeFn = std::function<std::vector<float>(const std::vector<float>& z, int n)>;

struct LocalMotionOptions {
  size_t max_points = 256;   // particles' latent points the Jacobian is averaged over (evenly spaced rows)
  double step = 0.02;        // finite-difference step, times the latent's RMS spread per dimension
  double eps_rel = 1e-3;
};

struct LocalMotions {
  std::vector<double> eigenvalues;  // d, decreasing
  Matrix directions;                // d x d, row k = unit latent direction k (sign: largest entry > 0)
  Matrix m_in, m_out;               // d x d
  double eps = 0;
  size_t points = 0;                // latent points averaged over
};

// `inside`: one flag per Gaussian (some in, some out).
LocalMotions local_motions(const Matrix& latent, const std::vector<char>& inside, const DecodeFn& decode,
                           const LocalMotionOptions& opt = {});

// Mean displacement (Å) of the Gaussians inside and outside between two parameter rows (5G each).
struct Displacement {
  double inside = 0, outside = 0;
};
Displacement mean_displacement(const std::vector<float>& a, const std::vector<float>& b, const std::vector<char>& inside);

}  // namespace cugmm
