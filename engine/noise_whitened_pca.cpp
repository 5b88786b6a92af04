// The noise-whitened input transform's two solvers (engine/noise_features.h fit_noise_whitened_pca;
// docs/accuracy.md rounds 7c and 7d): the same estimator N_s and the same generalized eigenvectors, found by
// dense eigensolvers (small widths) or by a streamed randomized subspace iteration (any width).
#include <Eigen/Dense>
#include <Eigen/Eigenvalues>

#include <algorithm>
#include <cmath>
#include <memory>

#include "core/error.h"
#include "core/log.h"
#include "engine/noise_features.h"
#include "kernels/philox.h"
#include "nn/blas.h"

namespace cugmm {

namespace {
size_t row_budget(size_t width) { return std::max(kFitMinRows, kFitRowBytes / (4 * std::max<size_t>(1, width))); }
}  // namespace

size_t noise_image_count(size_t width) {
  return std::min({size_t(6000), std::max<size_t>(3000, 2 * width), row_budget(width)});
}

size_t view_row_count(size_t width, size_t particles) {
  return std::min({particles, kViewNuisanceMaxRows, row_budget(width)});
}

NoiseSolver parse_noise_solver(const std::string& name) {
  if (name == "auto") return NoiseSolver::automatic;
  if (name == "dense") return NoiseSolver::dense;
  if (name == "streamed") return NoiseSolver::streamed;
  throw Error("--feature-whiten-solver must be auto, dense or streamed, not '" + name + "'");
}

const char* noise_solver_name(NoiseSolver s) {
  return s == NoiseSolver::dense ? "dense" : s == NoiseSolver::streamed ? "streamed" : "auto";
}

NoiseSolver choose_noise_solver(NoiseSolver s, size_t width) {
  if (s != NoiseSolver::automatic) return s;
  return width <= kDenseNoiseAutoWidth ? NoiseSolver::dense : NoiseSolver::streamed;
}

size_t streamed_columns(int k) { return size_t(k) + size_t(std::max(10, 2 * k)); }

void require_dense_noise_width(size_t width) {
  if (width > kDenseNoiseMaxWidth)
    throw Error("--feature-whiten-solver dense: the feature width " + std::to_string(width) + " (5 x Gaussians) is "
                "above " + std::to_string(kDenseNoiseMaxWidth) + " (the dense solver holds width^2 matrices); use the "
                "streamed one (auto)");
}

size_t noise_solver_bytes(NoiseSolver s, size_t width, size_t count, int k) {
  const size_t W = width, m = count, L = streamed_columns(k);
  if (choose_noise_solver(s, W) == NoiseSolver::dense)  // the rows, their centred copy in double, and at the
    return m * W * 12 + 6 * W * W * 8;                  // peak R, C, and two eigensolvers' vectors and workspace
  // The rows (scaled in place), the capacitance matrix in double and a block of its rows in float, a chunk of
  // 256 feature rows, and the subspace's few width x L blocks.
  return m * W * 4 + m * m * 8 + 512 * m * 4 + 256 * W * 4 + 8 * W * L * 8;
}

namespace {

using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// The top eigenpairs of C v = lambda N_s v, descending, v^T N_s v = 1; `above` of them beyond the MP edge
// (a lower bound when the solver computed only the leading ones: `all` false).
struct Eigenpairs {
  Eigen::VectorXd values;
  Eigen::MatrixXd vectors;  // width x values.size()
  double total = 0;         // the rows' mean squared norm
  bool all = true;
};

// Two width x width symmetric eigensolvers: N_s = E diag(e) E^T, R = N_s^-1/2, then the eigenvectors u of
// R C R give v = R u.
Eigenpairs solve_dense(const RowSource& source, size_t D, const std::vector<size_t>& rows, const std::vector<float>& noise,
                       double shrink, const std::vector<float>& nuisance) {
  const size_t m = noise.size() / D, n = rows.size();
  Progress progress("noise-whitened PCA (dense)", 4);
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
  if (!nuisance.empty()) {  // their covariance counted as noise (rows already centred), where there is noise
    const size_t q = nuisance.size() / D;
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
  Eigenpairs e;
  e.values = ce.eigenvalues().reverse();
  e.vectors = R * ce.eigenvectors().rowwise().reverse();
  e.total = total / double(n);
  return e;
}

// N_s = (1 - a) Z^T Z / m + a diag(N) (Z the centred noise rows) written as Dd^1/2 (I + Zs^T Zs) Dd^1/2 with
// Dd = a diag(N) and Zs = sqrt((1 - a) / m) Z Dd^-1/2 (m x width), so that by Woodbury
// N_s^-1 = Dd^-1/2 (I - Zs^T (I + Zs Zs^T)^-1 Zs) Dd^-1/2: one m x m Cholesky, two GEMMs per application.
// Nuisance rows U (q x width, centred) add U^T U / q: q more rows of Zs, sqrt(1 / q) U Dd^-1/2.
class LowRankNoise {
 public:
  LowRankNoise(std::vector<float> noise, size_t D, double a, const std::vector<float>& nuisance)
      : D_(D), m_(noise.size() / D), zs_(std::move(noise)) {
    std::vector<double> mean(D, 0.0), diag(D, 0.0);
    for (size_t i = 0; i < m_; ++i)
      for (size_t c = 0; c < D; ++c) mean[c] += zs_[i * D + c];
    for (double& v : mean) v /= double(m_);
    for (size_t i = 0; i < m_; ++i)
      for (size_t c = 0; c < D; ++c) diag[c] += (zs_[i * D + c] - mean[c]) * (zs_[i * D + c] - mean[c]);
    isqrt_.resize(D);
    quiet_.resize(D);
    for (size_t c = 0; c < D; ++c) {
      quiet_[c] = !(diag[c] > 0);  // no noise: N_s's entry 1 (as the dense path), and no weight
      isqrt_[c] = quiet_[c] ? 1.0 : 1 / std::sqrt(a * diag[c] / double(m_));
    }
    const double s = std::sqrt((1 - a) / double(m_));
    for (size_t i = 0; i < m_; ++i)
      for (size_t c = 0; c < D; ++c)
        zs_[i * D + c] = quiet_[c] ? 0.f : float((zs_[i * D + c] - mean[c]) * s * isqrt_[c]);
    const size_t q = nuisance.size() / D;
    zs_.resize((m_ + q) * D);
    for (size_t i = 0; i < q; ++i)
      for (size_t c = 0; c < D; ++c)
        zs_[(m_ + i) * D + c] = quiet_[c] ? 0.f : float(nuisance[i * D + c] * isqrt_[c] / std::sqrt(double(q)));
    m_ += q;
    // I + Zs Zs^T in double, its Gram part in float GEMMs of a block of rows at a time (no m x m float copy),
    // then factored in place (LLT<Ref>: no second m x m matrix).
    cap_.resize(Eigen::Index(m_), Eigen::Index(m_));
    const size_t block = 512;
    std::vector<float> g(block * m_);
    for (size_t r0 = 0; r0 < m_; r0 += block) {
      const size_t b = std::min(block, m_ - r0);
      nn::sgemm(false, true, int(b), int(m_), int(D), 1.f, zs_.data() + r0 * D, int(D), zs_.data(), int(D), 0.f,
                g.data(), int(m_));
      for (size_t i = 0; i < b; ++i)
        for (size_t c = 0; c < m_; ++c) cap_(Eigen::Index(r0 + i), Eigen::Index(c)) = g[i * m_ + c];
    }
    cap_.diagonal().array() += 1;
    llt_ = std::make_unique<Eigen::LLT<Eigen::Ref<Eigen::MatrixXd>>>(cap_);
    CUGMM_REQUIRE(llt_->info() == Eigen::Success, "noise-whitened PCA: the capacitance matrix is not positive definite");
  }

  // y (width x L) <- N_s^-1 y with the rows of columns without noise zeroed (they get no weight, as the dense
  // path's R), or N_s y when forward (N_s is 1 on those columns, so that Q^T N_s Q stays positive definite
  // even when a rank-deficient Q reaches them).
  void apply(RowMat& y, bool forward) const {
    const Eigen::Index L = y.cols();
    for (size_t r = 0; r < D_; ++r) y.row(Eigen::Index(r)) *= float(forward ? 1 / isqrt_[r] : isqrt_[r]);
    RowMat t(Eigen::Index(m_), L);
    nn::sgemm(false, false, int(m_), int(L), int(D_), 1.f, zs_.data(), int(D_), y.data(), int(L), 0.f, t.data(), int(L));
    if (!forward) t = llt_->solve(t.cast<double>()).cast<float>();
    nn::sgemm(true, false, int(D_), int(L), int(m_), forward ? 1.f : -1.f, zs_.data(), int(D_), t.data(), int(L), 1.f,
              y.data(), int(L));
    for (size_t r = 0; r < D_; ++r)
      y.row(Eigen::Index(r)) *= forward ? float(1 / isqrt_[r]) : quiet_[r] ? 0.f : float(isqrt_[r]);
  }

  void zero_quiet(RowMat& y) const {
    for (size_t r = 0; r < D_; ++r)
      if (quiet_[r]) y.row(Eigen::Index(r)).setZero();
  }

 private:
  size_t D_, m_;
  std::vector<float> zs_;
  std::vector<double> isqrt_;  // Dd^-1/2
  std::vector<char> quiet_;
  Eigen::MatrixXd cap_;  // I + Zs Zs^T, overwritten by its Cholesky factor
  std::unique_ptr<Eigen::LLT<Eigen::Ref<Eigen::MatrixXd>>> llt_;
};

// Subspace iteration on N_s^-1 C (the generalized problem's operator: its span converges to the top
// eigenvectors at the rate of the whitened problem's), Rayleigh-Ritz on the small pencil (Q^T C Q, Q^T N_s Q).
Eigenpairs solve_streamed(const RowSource& source, size_t D, const std::vector<size_t>& rows, std::vector<float> noise,
                          int k, double shrink, const std::vector<float>& nuisance) {
  const int passes = kStreamedPasses, L = int(std::min<size_t>(streamed_columns(k), std::min(D, rows.size())));
  Progress progress("noise-whitened PCA (streamed)", size_t(passes) + 2);
  const LowRankNoise N(std::move(noise), D, shrink, nuisance);
  progress.add(1);
  RowMat q(Eigen::Index(D), L), y(Eigen::Index(D), L);
  for (size_t r = 0; r < D; ++r)
    for (int c = 0; c < L; ++c) q(Eigen::Index(r), c) = philox_normal(0x6e77736f6c76ull, 0, r * size_t(L) + size_t(c));
  N.zero_quiet(q);
  orthonormalize(q.data(), D, L);
  Eigenpairs e;
  for (int p = 0; p < passes; ++p) {
    e.total = second_moment_times(source, D, rows, false, q.data(), L, y.data());
    N.apply(y, false);
    q = y;
    orthonormalize(q.data(), D, L);
    N.zero_quiet(q);  // exactly: the QR's rounding leaves ~1e-17 there
    progress.add(1);
  }
  second_moment_times(source, D, rows, false, q.data(), L, y.data());
  Eigen::MatrixXd qd = q.cast<double>();
  Eigen::MatrixXd a = qd.transpose() * y.cast<double>();
  y = q;
  N.apply(y, true);
  Eigen::MatrixXd b = qd.transpose() * y.cast<double>();
  a = 0.5 * (a + a.transpose()).eval();
  b = 0.5 * (b + b.transpose()).eval();
  Eigen::GeneralizedSelfAdjointEigenSolver<Eigen::MatrixXd> ge(a, b);  // ascending; y^T b y = 1
  progress.add(1);
  progress.finish();
  e.values = ge.eigenvalues().reverse();
  e.vectors = qd * ge.eigenvectors().rowwise().reverse();
  e.all = size_t(L) == D;
  return e;
}

}  // namespace

FeatureTransform fit_noise_whitened_pca(const RowSource& source, size_t width, const std::vector<size_t>& rows,
                                        std::vector<float> noise, int k, bool whiten, double shrink,
                                        NoiseSolver solver, const std::vector<float>& nuisance) {
  const size_t D = width, m = noise.size() / std::max<size_t>(1, D), n = rows.size();
  solver = choose_noise_solver(solver, D);
  if (solver == NoiseSolver::dense) require_dense_noise_width(D);
  CUGMM_REQUIRE(noise.size() == m * D && m >= 2, "fit_noise_whitened_pca: noise rows of the features' width");
  if (k < 1 || k >= int(D) || size_t(k) >= n)
    throw Error("--feature-pca " + std::to_string(k) + ": the number of components must be at least 1 and below both the feature "
                "width (" + std::to_string(D) + ") and the particles it is fitted on (" + std::to_string(n) + ")");
  if (shrink < 0) shrink = double(D) / double(D + m);
  CUGMM_REQUIRE(shrink > 0 && shrink <= 1, "fit_noise_whitened_pca: shrinkage in (0, 1]");
  CUGMM_REQUIRE(nuisance.size() % D == 0 && (nuisance.empty() || nuisance.size() >= 2 * D),
                "fit_noise_whitened_pca: nuisance rows of the features' width");
  const Eigenpairs e = solver == NoiseSolver::dense ? solve_dense(source, D, rows, noise, shrink, nuisance)
                                                    : solve_streamed(source, D, rows, std::move(noise), k, shrink, nuisance);
  const double edge = std::pow(1 + std::sqrt(double(D) / double(n)), 2);
  int above = 0;
  while (above < int(e.values.size()) && e.values(above) > edge) ++above;
  FeatureTransform f;
  f.k = k;
  f.total_variance = e.total;
  f.basis.assign(D * size_t(k), 0.f);
  for (int j = 0; j < k; ++j) {
    f.variance.push_back(std::max(0.0, e.values(j)));
    set_component(f, D, j, e.vectors.col(j).data(), f.variance.back(), whiten);
  }
  log_info("noise-whitened feature PCA: " + std::to_string(k) + " components of " + std::to_string(D) + " (" +
           noise_solver_name(solver) + " solver); " + (e.all || above < int(e.values.size()) ? "" : "at least ") +
           std::to_string(above) + " of signal-to-noise + 1 above the Marchenko-Pastur edge " + std::to_string(edge) +
           " (top " + std::to_string(f.variance[0]) + "; " + std::to_string(n) + " particles, " + std::to_string(m) +
           " noise images, " + std::to_string(nuisance.size() / D) + " view-dependent rows as noise, shrinkage " +
           std::to_string(shrink) + ")");
  return f;
}

}  // namespace cugmm
