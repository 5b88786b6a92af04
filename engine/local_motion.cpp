#include "engine/local_motion.h"

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace cugmm {

LocalMotions local_motions(const Matrix& latent, const std::vector<char>& inside, const DecodeFn& decode,
                           const LocalMotionOptions& opt) {
  const size_t G = inside.size(), d = latent.cols;
  const size_t g_in = size_t(std::count(inside.begin(), inside.end(), 1));
  CUGMM_REQUIRE(g_in > 0 && g_in < G, "local motions: the domain must hold some Gaussians but not all (" +
                                          std::to_string(g_in) + " of " + std::to_string(G) + ")");
  CUGMM_REQUIRE(latent.rows >= 2 && d >= 1, "local motions: needs at least 2 latent points");
  CUGMM_REQUIRE(opt.max_points >= 1 && opt.step > 0 && opt.eps_rel > 0, "local motions: bad options");
  // The step in latent units: a fraction of the RMS spread per dimension.
  const std::vector<double> mean = [&] {
    std::vector<double> m(d, 0.0);
    for (size_t i = 0; i < latent.rows; ++i)
      for (size_t c = 0; c < d; ++c) m[c] += latent(i, c) / double(latent.rows);
    return m;
  }();
  double spread = 0;
  for (size_t i = 0; i < latent.rows; ++i)
    for (size_t c = 0; c < d; ++c) spread += std::pow(latent(i, c) - mean[c], 2);
  spread = std::sqrt(spread / double(latent.rows * d));
  CUGMM_REQUIRE(spread > 0, "local motions: the latent points have no spread");
  const double h = opt.step * spread;

  const size_t n = std::min(opt.max_points, latent.rows);
  Eigen::MatrixXd m_in = Eigen::MatrixXd::Zero(Eigen::Index(d), Eigen::Index(d)), m_out = m_in;
  // A few sample points per decode call: each needs 2d decodes of 5G floats.
  const size_t chunk = std::max<size_t>(1, 4096 / (2 * d));
  for (size_t s0 = 0; s0 < n; s0 += chunk) {
    const size_t s1 = std::min(n, s0 + chunk);
    std::vector<float> z;
    for (size_t s = s0; s < s1; ++s) {
      const size_t row = s * latent.rows / n;
      for (size_t k = 0; k < d; ++k)
        for (int sign : {1, -1})
          for (size_t c = 0; c < d; ++c) z.push_back(float(latent(row, c) + (c == k ? sign * h : 0.0)));
    }
    const int rows = int(z.size() / d);
    const std::vector<float> p = decode(z, rows);
    CUGMM_REQUIRE(p.size() == size_t(rows) * 5 * G, "local motions: the decoder returned the wrong size");
    for (size_t s = s0; s < s1; ++s) {
      // J: 3G x d, column k = (decode(z + h e_k) - decode(z - h e_k)) / 2h, positions only.
      Eigen::MatrixXd jin(Eigen::Index(3 * g_in), Eigen::Index(d)), jout(Eigen::Index(3 * (G - g_in)), Eigen::Index(d));
      for (size_t k = 0; k < d; ++k) {
        const float* plus = p.data() + ((s - s0) * 2 * d + 2 * k) * 5 * G;
        const float* minus = plus + 5 * G;
        Eigen::Index a = 0, b = 0;
        for (size_t axis = 0; axis < 3; ++axis)
          for (size_t j = 0; j < G; ++j) {
            const double v = (double(plus[axis * G + j]) - double(minus[axis * G + j])) / (2 * h);
            if (inside[j]) jin(a++, Eigen::Index(k)) = v;
            else jout(b++, Eigen::Index(k)) = v;
          }
      }
      m_in += jin.transpose() * jin / double(g_in);
      m_out += jout.transpose() * jout / double(G - g_in);
    }
  }
  m_in /= double(n);
  m_out /= double(n);
  LocalMotions r;
  r.points = n;
  r.eps = opt.eps_rel * std::max(m_out.trace(), 1e-12 * m_in.trace()) / double(d);
  CUGMM_REQUIRE(r.eps > 0, "local motions: the decoder does not move any Gaussian");
  Eigen::MatrixXd b = m_out + r.eps * Eigen::MatrixXd::Identity(Eigen::Index(d), Eigen::Index(d));
  Eigen::GeneralizedSelfAdjointEigenSolver<Eigen::MatrixXd> es(m_in, b);
  CUGMM_REQUIRE(es.info() == Eigen::Success, "local motions: the generalised eigenproblem did not converge");
  r.directions = Matrix(d, d);
  for (size_t k = 0; k < d; ++k) {
    const Eigen::Index col = Eigen::Index(d - 1 - k);  // Eigen sorts ascending
    r.eigenvalues.push_back(es.eigenvalues()(col));
    Eigen::VectorXd v = es.eigenvectors().col(col).normalized();
    Eigen::Index big;
    v.cwiseAbs().maxCoeff(&big);
    if (v(big) < 0) v = -v;
    for (size_t c = 0; c < d; ++c) r.directions(k, c) = v(Eigen::Index(c));
  }
  r.m_in = Matrix(d, d);
  r.m_out = Matrix(d, d);
  for (size_t a = 0; a < d; ++a)
    for (size_t c = 0; c < d; ++c) {
      r.m_in(a, c) = m_in(Eigen::Index(a), Eigen::Index(c));
      r.m_out(a, c) = m_out(Eigen::Index(a), Eigen::Index(c));
    }
  return r;
}

Displacement mean_displacement(const std::vector<float>& a, const std::vector<float>& b, const std::vector<char>& inside) {
  const size_t G = inside.size();
  CUGMM_REQUIRE(a.size() == 5 * G && b.size() == 5 * G, "mean_displacement: rows of 5G parameters");
  Displacement r;
  size_t nin = 0, nout = 0;
  for (size_t j = 0; j < G; ++j) {
    const double e = std::hypot(double(a[j]) - b[j], double(a[G + j]) - b[G + j], double(a[2 * G + j]) - b[2 * G + j]);
    if (inside[j]) { r.inside += e; ++nin; }
    else { r.outside += e; ++nout; }
  }
  if (nin) r.inside /= double(nin);
  if (nout) r.outside /= double(nout);
  return r;
}

}  // namespace cugmm
