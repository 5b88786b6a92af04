#include "engine/evenodd.h"

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.h"
#include "engine/reconstruct.h"
#include "io/particles.h"
#include "kernels/geometry.h"

namespace cugmm {

std::vector<int> particle_halves(const io::ParticleSet& set, bool* from_random_subset) {
  std::vector<int> rs;
  for (const auto& p : set.particles) rs.push_back(p.random_subset);
  const std::vector<int> h = split_halves(rs);  // the reconstruction's rule, so both split alike
  if (from_random_subset)
    *from_random_subset = !rs.empty() && std::all_of(rs.begin(), rs.end(), [](int v) { return v == 1 || v == 2; });
  return h;
}

double variance_explained(const Matrix& latent, const Matrix& regressors) {
  CUGMM_REQUIRE(latent.rows == regressors.rows && latent.rows > regressors.cols + 1,
                "variance_explained: " + std::to_string(latent.rows) + " latent rows for " +
                    std::to_string(regressors.rows) + " x " + std::to_string(regressors.cols) + " regressors");
  const Eigen::Index n = Eigen::Index(latent.rows), m = Eigen::Index(regressors.cols), d = Eigen::Index(latent.cols);
  Eigen::MatrixXd X(n, m + 1), Y(n, d);
  for (Eigen::Index i = 0; i < n; ++i) {
    X(i, 0) = 1;
    for (Eigen::Index j = 0; j < m; ++j) X(i, j + 1) = regressors(size_t(i), size_t(j));
    for (Eigen::Index j = 0; j < d; ++j) Y(i, j) = latent(size_t(i), size_t(j));
  }
  // Regressors in their own units (Å of defocus beside unit vectors): scale columns so the QR's rank
  // decision is not swayed by units.
  for (Eigen::Index j = 1; j <= m; ++j) {
    const double s = (X.col(j).array() - X.col(j).mean()).matrix().norm();
    if (s > 0) X.col(j) /= s;
  }
  const Eigen::MatrixXd B = X.colPivHouseholderQr().solve(Y);
  const double res = (Y - X * B).squaredNorm();
  const double tot = (Y.rowwise() - Y.colwise().mean()).squaredNorm();
  return tot > 0 ? std::max(0.0, 1 - res / tot) : 0;
}

Matrix defocus_regressors(const io::ParticleSet& set, const std::vector<size_t>& rows) {
  Matrix r(rows.size(), 1);
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto& c = set.particles[rows[i]].ctf;
    r(i, 0) = (c.defocus_u + c.defocus_v) / 2;
  }
  return r;
}

Matrix view_regressors(const io::ParticleSet& set, const std::vector<size_t>& rows) {
  Matrix r(rows.size(), 9);
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto& p = set.particles[rows[i]];
    const Mat3<double> A = euler_to_matrix(p.rot, p.tilt, p.psi);
    const double v[3] = {A(2, 0), A(2, 1), A(2, 2)};
    size_t c = 0;
    for (int a = 0; a < 3; ++a) r(i, c++) = v[a];
    for (int a = 0; a < 3; ++a)
      for (int b = a; b < 3; ++b) r(i, c++) = v[a] * v[b];
  }
  return r;
}

double relative_rmsd(const std::vector<double>& a, const std::vector<double>& b, bool flip) {
  CUGMM_REQUIRE(a.size() == b.size() && !a.empty(), "relative_rmsd: fields of different sizes");
  double aa = 0, bb = 0, ab = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    aa += a[i] * a[i];
    bb += b[i] * b[i];
    ab += a[i] * b[i];
  }
  if (aa + bb <= 0) return 0;
  const double s = flip && ab < 0 ? -1 : 1;
  return std::sqrt(std::max(0.0, aa + bb - 2 * s * ab) / ((aa + bb) / 2));
}

FieldMatch match_fields(const std::vector<std::vector<double>>& a, const std::vector<std::vector<double>>& b) {
  CUGMM_REQUIRE(a.size() == b.size() && !a.empty() && a.size() <= 6, "match_fields: 1 to 6 fields on each side");
  const size_t P = a.size();
  std::vector<double> cost(P * P);
  for (size_t i = 0; i < P; ++i)
    for (size_t j = 0; j < P; ++j) cost[i * P + j] = relative_rmsd(a[i], b[j]);
  std::vector<int> perm(P);
  std::iota(perm.begin(), perm.end(), 0);
  FieldMatch best;
  double best_sum = INFINITY;
  do {
    double s = 0;
    for (size_t i = 0; i < P; ++i) s += cost[i * P + size_t(perm[i])];
    if (s < best_sum) {
      best_sum = s;
      best.matched = perm;
    }
  } while (std::next_permutation(perm.begin(), perm.end()));
  for (size_t i = 0; i < P; ++i) best.rmsd.push_back(cost[i * P + size_t(best.matched[i])]);
  return best;
}

}  // namespace cugmm
