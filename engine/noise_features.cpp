#include "engine/noise_features.h"

#include <Eigen/Dense>

#include <algorithm>
#include <cmath>
#include <random>

#include "core/error.h"
#include "core/log.h"
#include "engine/training_score.h"

namespace cugmm {

std::vector<float> noise_features(Context& cx, const ParticleBatcher& batcher, const std::vector<float>& neutral,
                                  const std::vector<float>& ring_weights, bool pooled, const FeatureNorm& norm,
                                  const std::vector<size_t>& particles, size_t count, uint64_t seed, int batch) {
  const FourierBand& band = batcher.band();
  const size_t W = neutral.size();
  CUGMM_REQUIRE(W % 5 == 0 && W > 0 && norm.mean.size() == W && norm.sd.size() == W,
                "noise_features: a 5G parameter row and its normalisation");
  CUGMM_REQUIRE(!particles.empty(), "noise_features: an empty particle set");
  CUGMM_REQUIRE(cx.device() == Device::cpu, "noise_features: host buffers, a CPU context");
  auto projector = make_training_projector(cx, band, ring_weights, int(W / 5), pooled);
  std::vector<double> sd(size_t(band.num_rings()), 1.0);
  if (pooled)
    for (size_t r = 0; r < sd.size() && r < ring_weights.size(); ++r)
      if (ring_weights[r] > 0) sd[r] = 1 / std::sqrt(double(ring_weights[r]));
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> gauss;
  const size_t B = static_cast<size_t>(batch);
  std::vector<size_t> idx(B);
  std::vector<ParticleView> views(B);
  std::vector<cfloat> data(B * band.size());
  std::vector<float> score(B), grad(B * W), out(count * W);
  Progress progress("noise features", count);
  for (size_t first = 0; first < count; first += size_t(batch)) {
    const int b = int(std::min(size_t(batch), count - first));
    for (int i = 0; i < b; ++i) idx[size_t(i)] = particles[(first + size_t(i)) % particles.size()];
    batcher.gather(idx.data(), b, views.data(), data.data());
    for (int i = 0; i < b; ++i) {
      cfloat* d = data.data() + size_t(i) * band.size();
      for (size_t c = 0; c < band.size(); ++c) {
        const double s = sd[band.ring[c]];
        const int p = band.partner[c];
        if (p == int(c)) d[c] = cfloat(float(s * gauss(rng)), 0.f);  // a real coefficient
        else if (p >= 0 && size_t(p) < c) d[c] = std::conj(d[p]);
        else d[c] = cfloat(float(s * std::sqrt(0.5) * gauss(rng)), float(s * std::sqrt(0.5) * gauss(rng)));
      }
    }
    training_score(*projector, neutral.data(), 0, views.data(), data.data(), b, score.data(), grad.data());
    for (int i = 0; i < b; ++i)
      for (size_t c = 0; c < W; ++c) {
        const float g = grad[size_t(i) * W + c], s = norm.sd[c];
        out[(first + size_t(i)) * W + c] = s > 0 ? (g - norm.mean[c]) / s : 0.f;
      }
    progress.add(size_t(b));
  }
  progress.finish();
  return out;
}

}  // namespace cugmm

namespace cugmm {

std::vector<float> view_neighbour_means(const RowSource& source, size_t width, const std::vector<size_t>& rows,
                                        const std::vector<double>& views, int neighbours, size_t max_rows) {
  CUGMM_REQUIRE(views.size() == 3 * rows.size(), "view_neighbour_means: one beam direction per row");
  const size_t n = std::min(rows.size(), max_rows), K = size_t(neighbours);
  if (n <= K) throw Error("the view-dependent feature mean needs more than " + std::to_string(K) + " particles, not " +
                          std::to_string(n));
  std::vector<size_t> pick(n), index(n);  // positions in `rows`, evenly spaced; their row indices
  for (size_t i = 0; i < n; ++i) pick[i] = i * rows.size() / n, index[i] = rows[pick[i]];
  std::vector<float> x(n * width);
  const size_t chunk = 256;
  for (size_t first = 0; first < n; first += chunk)
    source(index.data() + first, int(std::min(chunk, n - first)), x.data() + first * width);
  Progress progress("view-dependent feature mean", n);
  std::vector<float> out(n * width, 0.f);
  std::vector<std::pair<double, size_t>> near(n);
  std::vector<double> sum(width);
  for (size_t i = 0; i < n; ++i) {
    const double* v = views.data() + 3 * pick[i];
    for (size_t q = 0; q < n; ++q) {
      const double* w = views.data() + 3 * pick[q];
      near[q] = {q == i ? 2.0 : -(v[0] * w[0] + v[1] * w[1] + v[2] * w[2]), q};  // itself last
    }
    std::nth_element(near.begin(), near.begin() + std::ptrdiff_t(K), near.end());
    std::fill(sum.begin(), sum.end(), 0.0);
    for (size_t q = 0; q < K; ++q) {
      const float* r = x.data() + near[q].second * width;
      for (size_t c = 0; c < width; ++c) sum[c] += r[c];
    }
    for (size_t c = 0; c < width; ++c) out[i * width + c] = float(sum[c] / double(K));
    progress.add(1);
  }
  progress.finish();
  std::vector<double> mean(width, 0.0);
  for (size_t i = 0; i < n; ++i)
    for (size_t c = 0; c < width; ++c) mean[c] += out[i * width + c] / double(n);
  for (size_t i = 0; i < n; ++i)
    for (size_t c = 0; c < width; ++c) out[i * width + c] -= float(mean[c]);
  return out;
}

FeatureTransform fit_noise_whitened_pca(const RowSource& source, size_t width, const std::vector<size_t>& rows,
                                        const std::vector<float>& noise, int k, bool whiten, double shrink,
                                        size_t max_width, const std::vector<float>& nuisance) {
  const size_t D = width, m = noise.size() / std::max<size_t>(1, D), n = rows.size();
  if (D > max_width)
    throw Error("--feature-whiten noise: the feature width " + std::to_string(D) + " (5 x Gaussians) is above " +
                std::to_string(max_width) + "; the noise covariance is dense (width^2), use fewer Gaussians");
  CUGMM_REQUIRE(noise.size() == m * D && m >= 2, "fit_noise_whitened_pca: noise rows of the features' width");
  if (k < 1 || k >= int(D) || size_t(k) >= n)
    throw Error("--feature-pca " + std::to_string(k) + ": the number of components must be at least 1 and below both the feature "
                "width (" + std::to_string(D) + ") and the particles it is fitted on (" + std::to_string(n) + ")");
  if (shrink < 0) shrink = double(D) / double(D + m);
  CUGMM_REQUIRE(shrink > 0 && shrink <= 1, "fit_noise_whitened_pca: shrinkage in (0, 1]");
  Progress progress("noise-whitened PCA", 4);
  // N: the noise rows' covariance (centred: their mean is not the particles').
  Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>> z(noise.data(),
                                                                                            Eigen::Index(m), Eigen::Index(D));
  Eigen::MatrixXd zc = z.cast<double>();
  zc.rowwise() -= zc.colwise().mean();
  Eigen::MatrixXd N = zc.transpose() * zc / double(m);
  zc.resize(0, 0);
  const Eigen::VectorXd diag = N.diagonal();
  N *= 1 - shrink;
  for (Eigen::Index c = 0; c < N.rows(); ++c) N(c, c) = diag(c) > 0 ? N(c, c) + shrink * diag(c) : 1.0;
  if (!nuisance.empty()) {  // the view-dependent mean's covariance counted as noise (rows already centred)
    const size_t q = nuisance.size() / D;
    CUGMM_REQUIRE(nuisance.size() == q * D && q >= 2, "fit_noise_whitened_pca: nuisance rows of the features' width");
    Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>> u(
        nuisance.data(), Eigen::Index(q), Eigen::Index(D));
    const Eigen::MatrixXd ud = u.cast<double>();
    Eigen::MatrixXd V = Eigen::MatrixXd::Zero(Eigen::Index(D), Eigen::Index(D));
    V.selfadjointView<Eigen::Lower>().rankUpdate(ud.transpose(), 1.0 / double(q));
    for (Eigen::Index c = 0; c < N.rows(); ++c)
      if (diag(c) > 0) N.col(c).tail(N.rows() - c) += V.col(c).tail(N.rows() - c);
    N = N.selfadjointView<Eigen::Lower>();
  }
  progress.add(1);
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> ne(N);
  N.resize(0, 0);
  const Eigen::VectorXd inv = ne.eigenvalues().cwiseMax(1e-12 * ne.eigenvalues().maxCoeff()).cwiseSqrt().cwiseInverse();
  Eigen::MatrixXd R = ne.eigenvectors() * inv.asDiagonal() * ne.eigenvectors().transpose();  // N_s^-1/2
  for (Eigen::Index c = 0; c < R.rows(); ++c)
    if (!(diag(c) > 0)) R.row(c).setZero(), R.col(c).setZero();
  progress.add(1);
  // C_w = R C R: the whitened rows' second moment, streamed in chunks of the feature rows.
  Eigen::MatrixXd C = Eigen::MatrixXd::Zero(Eigen::Index(D), Eigen::Index(D));
  const size_t chunk = 256;
  std::vector<float> x(chunk * D);
  double total = 0;
  for (size_t first = 0; first < n; first += chunk) {
    const int b = int(std::min(chunk, n - first));
    source(rows.data() + first, b, x.data());
    Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>> xb(x.data(), b,
                                                                                               Eigen::Index(D));
    const Eigen::MatrixXd xd = xb.cast<double>();
    total += xd.squaredNorm();
    C.selfadjointView<Eigen::Lower>().rankUpdate(xd.transpose());
  }
  C = C.selfadjointView<Eigen::Lower>();
  C = R * (C / double(n)) * R;
  progress.add(1);
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> ce(C);
  progress.add(1);
  progress.finish();
  const double edge = std::pow(1 + std::sqrt(double(D) / double(n)), 2);
  int above = 0;
  while (above < int(D) && ce.eigenvalues()(Eigen::Index(D) - 1 - above) > edge) ++above;
  FeatureTransform f;
  f.k = k;
  f.total_variance = total / double(n);
  f.basis.assign(D * size_t(k), 0.f);
  for (int j = 0; j < k; ++j) {
    const Eigen::Index col = Eigen::Index(D) - 1 - j;  // descending
    f.variance.push_back(std::max(0.0, ce.eigenvalues()(col)));
    Eigen::VectorXd b = R * ce.eigenvectors().col(col);
    Eigen::Index big = 0;  // a fixed sign (the largest entry positive), independent of the solver's choice
    b.cwiseAbs().maxCoeff(&big);
    double s = b(big) < 0 ? -1.0 : 1.0;
    if (whiten && f.variance.back() > 0) s /= std::sqrt(f.variance.back());
    for (size_t r = 0; r < D; ++r) f.basis[r * size_t(k) + size_t(j)] = float(s * b(Eigen::Index(r)));
  }
  log_info("noise-whitened feature PCA: " + std::to_string(k) + " components of " + std::to_string(D) + "; " +
           std::to_string(above) + " of signal-to-noise + 1 above the Marchenko-Pastur edge " + std::to_string(edge) +
           " (top " + std::to_string(f.variance[0]) + "; " + std::to_string(n) + " particles, " + std::to_string(m) +
           " noise images)");
  return f;
}

}  // namespace cugmm
