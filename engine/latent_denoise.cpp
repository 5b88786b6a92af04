#include "engine/latent_denoise.h"

#include <Eigen/Dense>
#include <cmath>
#include <limits>

#include "core/error.h"

namespace cugmm {

namespace {
using RowMat = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
Eigen::MatrixXd eig(const Matrix& m) {
  return Eigen::Map<const RowMat>(m.values.data(), Eigen::Index(m.rows), Eigen::Index(m.cols));
}
}  // namespace

DenoisedLatent denoise_latent(const Matrix& y, const Matrix& noise, const DenoiseOptions& o) {
  CUGMM_REQUIRE(y.rows > y.cols && y.cols > 0 && y.values.size() == y.rows * y.cols,
                "denoise_latent: needs more points than dimensions");
  CUGMM_REQUIRE(noise.rows == y.cols && noise.cols == y.cols && noise.values.size() == y.cols * y.cols,
                "denoise_latent: the noise covariance is not d x d");
  CUGMM_REQUIRE(o.max_components >= 1, "denoise_latent: the cap on K must be at least 1");
  const size_t n = y.rows, d = y.cols;
  GmmOptions g = o.gmm;
  g.noise = noise;
  DenoisedLatent r;
  double best = std::numeric_limits<double>::infinity();
  // Free parameters of a K-component full-covariance mixture: K - 1 weights, K d means, K d (d + 1) / 2.
  for (int k = 1; k <= o.max_components; ++k) {
    if (n < 2 * size_t(k)) {
      r.bic.push_back(std::numeric_limits<double>::quiet_NaN());
      continue;
    }
    GmmFit f = fit_gmm(y, k, g);
    const double p = double(k - 1) + double(k) * double(d) + double(k) * double(d * (d + 1) / 2);
    const double bic = -2.0 * double(n) * f.log_likelihood + p * std::log(double(n));
    r.bic.push_back(bic);
    if (bic < best) {
      best = bic;
      r.components = k;
      r.prior = std::move(f);
    }
  }
  r.mean = deconvolved_posterior_mean(r.prior, noise, y);
  return r;
}

Matrix deconvolved_posterior_mean(const GmmFit& prior, const Matrix& noise, const Matrix& y, double* mean_ll) {
  const size_t n = y.rows, d = y.cols, K = prior.weights.size();
  CUGMM_REQUIRE(K >= 1 && prior.deconvolved.size() == K && prior.means.rows == K && prior.means.cols == d,
                "deconvolved_posterior_mean: the mixture does not match the points");
  const Eigen::MatrixXd sn = eig(noise);
  const Eigen::Map<const RowMat> ym(y.values.data(), Eigen::Index(n), Eigen::Index(d));
  RowMat logp = RowMat::Zero(Eigen::Index(n), Eigen::Index(K));
  std::vector<RowMat> shrunk(K);
  for (size_t k = 0; k < K; ++k) {
    const Eigen::MatrixXd s = eig(prior.deconvolved[k]), c = s + sn;
    const Eigen::LLT<Eigen::MatrixXd> llt(c);
    CUGMM_REQUIRE(llt.info() == Eigen::Success, "deconvolved_posterior_mean: S_k + noise is not positive definite");
    const Eigen::RowVectorXd m = Eigen::Map<const Eigen::RowVectorXd>(&prior.means.values[k * d], Eigen::Index(d));
    const RowMat centred = ym.rowwise() - m;
    const Eigen::MatrixXd white = llt.matrixL().solve(centred.transpose());
    const double logdet = 2 * llt.matrixLLT().diagonal().array().log().sum();
    logp.col(Eigen::Index(k)) = (std::log(prior.weights[k]) - 0.5 * (double(d) * std::log(2 * M_PI) + logdet)) -
                                0.5 * white.colwise().squaredNorm().transpose().array();
    const Eigen::MatrixXd gain = llt.solve(s).transpose();  // S (S + noise)^-1
    shrunk[k] = (centred * gain.transpose()).rowwise() + m;
  }
  const Eigen::VectorXd top = logp.rowwise().maxCoeff();
  const Eigen::VectorXd lse = top.array() + (logp.colwise() - top).array().exp().rowwise().sum().log();
  if (mean_ll) *mean_ll = lse.mean();
  RowMat z = RowMat::Zero(Eigen::Index(n), Eigen::Index(d));
  for (size_t k = 0; k < K; ++k) {
    const Eigen::VectorXd r = (logp.col(Eigen::Index(k)) - lse).array().exp();
    z += r.asDiagonal() * shrunk[k];
  }
  return Matrix(n, d, std::vector<double>(z.data(), z.data() + n * d));
}

nlohmann::json denoise_json(const DenoisedLatent& r, const Matrix& noise) {
  nlohmann::json comps = nlohmann::json::array();
  for (int k = 0; k < r.components; ++k) {
    const size_t d = r.prior.means.cols;
    comps.push_back({{"weight", r.prior.weights[size_t(k)]},
                     {"mean", std::vector<double>(r.prior.means.values.begin() + long(size_t(k) * d),
                                                  r.prior.means.values.begin() + long(size_t(k + 1) * d))},
                     {"covariance_deconvolved", r.prior.deconvolved[size_t(k)].values}});
  }
  nlohmann::json bic = nlohmann::json::array();
  for (double b : r.bic) bic.push_back(std::isfinite(b) ? nlohmann::json(b) : nlohmann::json(nullptr));
  return {{"components", r.components}, {"bic", bic}, {"mixture", comps}, {"noise_covariance", noise.values}};
}

}  // namespace cugmm
