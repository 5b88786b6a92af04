#include "engine/latent_metrics.h"

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <string>

#include "core/error.h"

namespace cugmm {

namespace {

using RowMat = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Map = Eigen::Map<const RowMat>;

constexpr double kPi = 3.14159265358979323846;
// Eigen directions with less variance than this fraction of the largest are numerical rank deficiency,
// not signal: whitening them would turn rounding noise into unit-variance variables (CCA would find 1s).
constexpr double kRankTolerance = 1e-10;

void check(const Matrix& m, const std::string& what, size_t rows = 0, bool allow_minus_inf = false) {
  CUGMM_REQUIRE(m.rows > 0 && m.cols > 0, what + " is empty");
  CUGMM_REQUIRE(m.values.size() == m.rows * m.cols,
                what + " holds " + std::to_string(m.values.size()) + " values, not rows x cols = " +
                    std::to_string(m.rows) + " x " + std::to_string(m.cols));
  CUGMM_REQUIRE(rows == 0 || m.rows == rows,
                what + " has " + std::to_string(m.rows) + " rows, not one per particle (" + std::to_string(rows) + ")");
  for (double v : m.values)
    CUGMM_REQUIRE(std::isfinite(v) || (allow_minus_inf && v == -INFINITY), what + " holds a non-finite value");
}

void check(const std::vector<double>& v, const std::string& what, size_t n) {
  CUGMM_REQUIRE(v.size() == n, what + " has " + std::to_string(v.size()) + " values, not one per particle (" +
                                   std::to_string(n) + ")");
  for (double x : v) CUGMM_REQUIRE(std::isfinite(x), what + " holds a non-finite value");
}

Map map(const Matrix& m) { return Map(m.values.data(), Eigen::Index(m.rows), Eigen::Index(m.cols)); }

RowMat centred(const Matrix& m) {
  RowMat c = map(m);
  c.rowwise() -= c.colwise().mean();
  return c;
}

double pearson(const std::vector<double>& a, const std::vector<double>& b, const char* what) {
  const size_t n = a.size();
  double ma = std::accumulate(a.begin(), a.end(), 0.0) / n, mb = std::accumulate(b.begin(), b.end(), 0.0) / n;
  double sab = 0, saa = 0, sbb = 0;
  for (size_t i = 0; i < n; ++i) {
    sab += (a[i] - ma) * (b[i] - mb);
    saa += (a[i] - ma) * (a[i] - ma);
    sbb += (b[i] - mb) * (b[i] - mb);
  }
  CUGMM_REQUIRE(saa > 0 && sbb > 0, std::string(what) + ": a constant input has no correlation");
  return sab / std::sqrt(saa * sbb);
}

// Columns of the whitened centred data (N x rank, identity sample covariance), rank-deficient
// directions dropped.
RowMat whiten(const Matrix& m, const char* what) {
  RowMat c = centred(m);
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(c.transpose() * c / double(m.rows - 1));
  const Eigen::VectorXd& l = eig.eigenvalues();  // ascending
  CUGMM_REQUIRE(l(l.size() - 1) > 0, std::string(what) + " has no variance");
  Eigen::Index keep = 0;
  while (keep < l.size() && l(l.size() - 1 - keep) > kRankTolerance * l(l.size() - 1)) ++keep;
  Eigen::MatrixXd w = eig.eigenvectors().rightCols(keep) * l.tail(keep).cwiseSqrt().cwiseInverse().asDiagonal();
  return c * w;
}

// Bits to [0, 1) ourselves: std::uniform_real_distribution differs between standard libraries, and the
// metrics must give the same figure everywhere.
double uniform(std::mt19937_64& rng) { return double(rng() >> 11) * 0x1.0p-53; }

// Percentile with linear interpolation between order statistics.
double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  double pos = p * double(v.size() - 1);
  size_t i = size_t(pos);
  return i + 1 < v.size() ? v[i] + (pos - i) * (v[i + 1] - v[i]) : v.back();
}

Matrix take_rows(const Matrix& m, const std::vector<size_t>& idx) {
  Matrix r(idx.size(), m.cols);
  for (size_t i = 0; i < idx.size(); ++i)
    std::copy_n(m.values.begin() + idx[i] * m.cols, m.cols, r.values.begin() + i * m.cols);
  return r;
}

}  // namespace

Matrix::Matrix(size_t r, size_t c, std::vector<double> v) : rows(r), cols(c), values(std::move(v)) {
  if (values.empty()) values.assign(r * c, 0.0);
  CUGMM_REQUIRE(values.size() == r * c, "Matrix: " + std::to_string(values.size()) + " values for " +
                                            std::to_string(r) + " x " + std::to_string(c));
}

std::vector<double> Matrix::column(size_t c) const {
  std::vector<double> v(rows);
  for (size_t r = 0; r < rows; ++r) v[r] = (*this)(r, c);
  return v;
}

// ---- principal components ----------------------------------------------------------------------------

Pca pca(const Matrix& latent) {
  check(latent, "latent");
  CUGMM_REQUIRE(latent.rows >= 2, "latent: PCA needs at least 2 particles");
  const Eigen::Index d = Eigen::Index(latent.cols);
  RowMat c = centred(latent);
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(c.transpose() * c / double(latent.rows - 1));
  Eigen::MatrixXd v = eig.eigenvectors().rowwise().reverse();  // descending variance
  Eigen::VectorXd l = eig.eigenvalues().reverse().cwiseMax(0.0);
  CUGMM_REQUIRE(l.sum() > 0, "latent has no variance");
  for (Eigen::Index k = 0; k < d; ++k) {  // a fixed sign, so scores do not flip between runs or builds
    Eigen::Index big;
    v.col(k).cwiseAbs().maxCoeff(&big);
    if (v(big, k) < 0) v.col(k) *= -1;
  }
  Pca p;
  p.components = Matrix(latent.cols, latent.cols);
  Eigen::Map<RowMat>(p.components.values.data(), d, d) = v.transpose();
  p.variance.assign(l.data(), l.data() + d);
  for (double x : p.variance) p.explained.push_back(x / l.sum());
  p.scores = Matrix(latent.rows, latent.cols);
  Eigen::Map<RowMat>(p.scores.values.data(), c.rows(), d) = c * v;
  return p;
}

// ---- correlations ------------------------------------------------------------------------------------

std::vector<double> average_ranks(const std::vector<double>& x) {
  std::vector<size_t> order(x.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return x[a] < x[b]; });
  std::vector<double> rank(x.size());
  for (size_t i = 0; i < order.size();) {
    size_t j = i;
    while (j + 1 < order.size() && x[order[j + 1]] == x[order[i]]) ++j;
    double mean = 0.5 * double(i + j) + 1;  // ranks i+1 .. j+1 shared
    for (size_t k = i; k <= j; ++k) rank[order[k]] = mean;
    i = j + 1;
  }
  return rank;
}

double spearman(const std::vector<double>& a, const std::vector<double>& b) {
  check(a, "spearman: first input", a.size());
  check(b, "spearman: second input", a.size());
  CUGMM_REQUIRE(a.size() >= 2, "spearman: needs at least 2 values");
  return pearson(average_ranks(a), average_ranks(b), "spearman");
}

// Pairwise definition: rho = sum_{i<j} sin(a_i - a_j) sin(b_i - b_j) / sqrt(sum sin^2(a_i - a_j) sum sin^2(b_i - b_j)).
// Expanding sin(a_i - a_j) = sa_i ca_j - ca_i sa_j, the double sum over all i, j (twice the i<j sum,
// diagonal terms are 0) factorises into sums over single points:
//   sum_{i<j} sin(a_i - a_j) sin(b_i - b_j) = S(sa sb) S(ca cb) - S(sa cb) S(ca sb)
//   sum_{i<j} sin^2(a_i - a_j)              = S(sa sa) S(ca ca) - S(sa ca)^2
// with S(.) the sum over points: O(N) instead of O(N^2).
double fisher_lee(const std::vector<double>& a, const std::vector<double>& b) {
  check(a, "fisher_lee: first input", a.size());
  check(b, "fisher_lee: second input", a.size());
  CUGMM_REQUIRE(a.size() >= 2, "fisher_lee: needs at least 2 angles");
  double ss = 0, cc = 0, sc = 0, cs = 0, saa = 0, caa = 0, scaa = 0, sbb = 0, cbb = 0, scbb = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    double sa = std::sin(a[i]), ca = std::cos(a[i]), sb = std::sin(b[i]), cb = std::cos(b[i]);
    ss += sa * sb; cc += ca * cb; sc += sa * cb; cs += ca * sb;
    saa += sa * sa; caa += ca * ca; scaa += sa * ca;
    sbb += sb * sb; cbb += cb * cb; scbb += sb * cb;
  }
  double da = saa * caa - scaa * scaa, db = sbb * cbb - scbb * scbb;
  CUGMM_REQUIRE(da > 0 && db > 0, "fisher_lee: angles all equal modulo pi have no circular correlation");
  return (ss * cc - sc * cs) / std::sqrt(da * db);
}

// Whitened bases of both sides; the singular values of their cross-covariance are the canonical
// correlations (Eigen returns them sorted descending).
std::vector<double> canonical_correlations(const Matrix& latent, const Matrix& truths) {
  check(latent, "latent");
  check(truths, "truths", latent.rows);
  CUGMM_REQUIRE(latent.rows > latent.cols + truths.cols,
                "canonical correlations need more particles than latent dimensions plus truths (otherwise they "
                "are 1 by construction)");
  RowMat zx = whiten(latent, "latent"), zy = whiten(truths, "truths");
  Eigen::MatrixXd cross = zx.transpose() * zy / double(latent.rows - 1);
  Eigen::JacobiSVD<Eigen::MatrixXd> svd(cross);
  std::vector<double> r;
  for (Eigen::Index k = 0; k < svd.singularValues().size(); ++k) r.push_back(std::min(1.0, svd.singularValues()(k)));
  return r;
}

// ---- Gaussian mixture --------------------------------------------------------------------------------

namespace {

struct Em {
  const Map* points;  // a pointer, not a reference: the best restart is kept by assignment
  int k;
  double reg;
  Eigen::MatrixXd noise;  // 0 x 0: plain EM; else extreme deconvolution with this noise (GmmOptions::noise)
  Eigen::VectorXd w;
  RowMat mu;
  std::vector<Eigen::MatrixXd> cov;     // of the points: S_j + noise when deconvolving
  std::vector<Eigen::MatrixXd> signal;  // S_j when deconvolving
  RowMat resp;  // N x K

  // Weighted means and covariances from the responsibilities; the 10 eps keeps an emptied component finite.
  // Deconvolving, with G = S C^-1 (C = S + noise) each point's expected z is mu + G (x - mu) and its covariance
  // S - G S, so the new mean is mu + G (xbar - mu) and the new S = G V G^T + S - G S (V: the points' weighted
  // covariance about xbar); the first step, from hard labels with no S yet, takes V - noise clipped to >= 0.
  void m_step() {
    const Map& x = *points;
    Eigen::VectorXd nk = resp.colwise().sum().transpose().array() + 10 * std::numeric_limits<double>::epsilon();
    w = nk / double(x.rows());
    const RowMat xbar = (resp.transpose() * x).array().colwise() / nk.array();
    const bool deconvolve = noise.size() > 0, first = signal.empty();
    if (!deconvolve || first) mu = xbar;
    cov.resize(size_t(k));
    if (deconvolve) signal.resize(size_t(k));
    for (int j = 0; j < k; ++j) {
      RowMat c = x.rowwise() - xbar.row(j);
      Eigen::MatrixXd v = c.transpose() * resp.col(j).asDiagonal() * c / nk(j);
      if (!deconvolve) {
        cov[size_t(j)] = v;
        cov[size_t(j)].diagonal().array() += reg;
        continue;
      }
      Eigen::MatrixXd& s = signal[size_t(j)];
      if (first) {
        Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es(v - noise);
        s = es.eigenvectors() * es.eigenvalues().cwiseMax(0.0).asDiagonal() * es.eigenvectors().transpose();
      } else {
        const Eigen::MatrixXd g = (s + noise).llt().solve(s).transpose();  // S C^-1 (both symmetric)
        mu.row(j) += (g * (xbar.row(j) - mu.row(j)).transpose()).transpose();
        s = g * v * g.transpose() + s - g * s;
        s = 0.5 * (s + s.transpose());
      }
      s.diagonal().array() += reg;
      cov[size_t(j)] = s + noise;
    }
  }
  // Responsibilities from the parameters; returns the mean log-likelihood per point.
  double e_step() {
    const Map& x = *points;
    const Eigen::Index n = x.rows(), d = x.cols();
    RowMat logp(n, k);
    for (int j = 0; j < k; ++j) {
      Eigen::LLT<Eigen::MatrixXd> llt(cov[j]);
      CUGMM_REQUIRE(llt.info() == Eigen::Success, "fit_gmm: a covariance is not positive definite");
      Eigen::MatrixXd y = llt.matrixL().solve((x.rowwise() - mu.row(j)).transpose());
      double logdet = 2 * llt.matrixLLT().diagonal().array().log().sum();
      logp.col(j) = (-0.5 * (d * std::log(2 * kPi) + logdet) + std::log(w(j))) -
                    0.5 * y.colwise().squaredNorm().transpose().array();
    }
    Eigen::VectorXd top = logp.rowwise().maxCoeff();
    Eigen::VectorXd lse = top.array() + (logp.colwise() - top).array().exp().rowwise().sum().log();
    resp = (logp.colwise() - lse).array().exp();
    return lse.mean();
  }
};

// k-means++ seeding then a few Lloyd steps: hard labels that start EM in a sensible basin.
std::vector<int> kmeans_init(const Map& x, int k, std::mt19937_64& rng) {
  const Eigen::Index n = x.rows();
  RowMat centre(k, x.cols());
  centre.row(0) = x.row(Eigen::Index(rng() % uint64_t(n)));
  Eigen::VectorXd d2 = (x.rowwise() - centre.row(0)).rowwise().squaredNorm();
  for (int j = 1; j < k; ++j) {
    double total = d2.sum(), u = uniform(rng) * total, acc = 0;
    Eigen::Index pick = n - 1;
    for (Eigen::Index i = 0; i < n; ++i)
      if ((acc += d2(i)) > u) { pick = i; break; }
    centre.row(j) = x.row(pick);
    d2 = d2.cwiseMin((x.rowwise() - centre.row(j)).rowwise().squaredNorm());
  }
  std::vector<int> label(size_t(n), 0);
  for (int it = 0; it < 10; ++it) {
    for (Eigen::Index i = 0; i < n; ++i) (centre.rowwise() - x.row(i)).rowwise().squaredNorm().minCoeff(&label[i]);
    for (int j = 0; j < k; ++j) {
      Eigen::RowVectorXd sum = Eigen::RowVectorXd::Zero(x.cols());
      int count = 0;
      for (Eigen::Index i = 0; i < n; ++i)
        if (label[i] == j) { sum += x.row(i); ++count; }
      if (count > 0) centre.row(j) = sum / count;
    }
  }
  return label;
}

// Labels from a 1-D k-means along principal axis `axis` of x (centres start at the quantiles). Clusters
// separated along a low-variance axis (a presence/absence split beside a wide continuous motion) are found
// from such a start, where Euclidean k-means++ seeding would split the wide axis instead.
std::vector<int> axis_init(const Map& x, int k, int axis) {
  const Eigen::Index n = x.rows();
  const RowMat c = x.rowwise() - x.colwise().mean();
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es(c.transpose() * c);
  const Eigen::VectorXd p = c * es.eigenvectors().col(Eigen::Index(c.cols() - 1 - axis));
  std::vector<double> sorted(p.data(), p.data() + n);
  std::sort(sorted.begin(), sorted.end());
  std::vector<double> centre(static_cast<size_t>(k));
  for (int j = 0; j < k; ++j) centre[size_t(j)] = sorted[size_t((j + 0.5) / k * double(n))];
  std::vector<int> label(size_t(n), 0);
  for (int it = 0; it < 20; ++it) {
    for (Eigen::Index i = 0; i < n; ++i) {
      int best = 0;
      for (int j = 1; j < k; ++j)
        if (std::fabs(p(i) - centre[size_t(j)]) < std::fabs(p(i) - centre[size_t(best)])) best = j;
      label[size_t(i)] = best;
    }
    for (int j = 0; j < k; ++j) {
      double sum = 0;
      int count = 0;
      for (Eigen::Index i = 0; i < n; ++i)
        if (label[size_t(i)] == j) { sum += p(i); ++count; }
      if (count) centre[size_t(j)] = sum / count;
    }
  }
  return label;
}

}  // namespace

GmmFit fit_gmm(const Matrix& x, int components, const GmmOptions& opt) {
  check(x, "fit_gmm: latent");
  CUGMM_REQUIRE(components >= 1, "fit_gmm: needs at least 1 component");
  CUGMM_REQUIRE(x.rows >= size_t(components) * 2, "fit_gmm: fewer than 2 particles per component");
  CUGMM_REQUIRE(opt.restarts >= 1 && opt.max_iterations >= 1 && opt.regularisation > 0,
                "fit_gmm: restarts and iterations must be >= 1 and regularisation > 0");
  Map xm = map(x);
  RowMat c = centred(x);
  // Scaled by the data's own variance, so the fit does not depend on the latent's units.
  double scale = c.colwise().squaredNorm().sum() / double(x.rows - 1) / double(x.cols);
  CUGMM_REQUIRE(scale > 0, "fit_gmm: latent has no variance");
  Eigen::MatrixXd noise;
  if (!opt.noise.values.empty()) {
    check(opt.noise, "fit_gmm: noise covariance", x.cols);
    CUGMM_REQUIRE(opt.noise.cols == x.cols, "fit_gmm: the noise covariance is not d x d");
    noise = Eigen::Map<const RowMat>(opt.noise.values.data(), Eigen::Index(x.cols), Eigen::Index(x.cols));
    noise = 0.5 * (noise + noise.transpose());
    CUGMM_REQUIRE(Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd>(noise).eigenvalues().minCoeff() >= 0,
                  "fit_gmm: the noise covariance is not positive semi-definite");
  }
  std::mt19937_64 rng(opt.seed);
  Em best{&xm, components, 0, noise, {}, {}, {}, {}, {}};
  double best_ll = -INFINITY;
  // Starts: a 1-D split along each principal axis, then k-means++ seedings; the best likelihood wins.
  const int axes = int(x.cols);
  for (int r = 0; r < axes + opt.restarts; ++r) {
    Em em{&xm, components, opt.regularisation * scale, noise, {}, {}, {}, {}, {}};
    std::vector<int> label = r < axes ? axis_init(xm, components, r) : kmeans_init(xm, components, rng);
    // A start that leaves a component empty cannot be fitted: skip it.
    std::vector<int> used(size_t(components), 0);
    for (int l : label) used[size_t(l)] = 1;
    if (std::find(used.begin(), used.end(), 0) != used.end()) continue;
    em.resp = RowMat::Zero(xm.rows(), components);
    for (size_t i = 0; i < label.size(); ++i) em.resp(Eigen::Index(i), label[i]) = 1;
    em.m_step();
    double ll = em.e_step();
    for (int it = 1; it < opt.max_iterations; ++it) {
      em.m_step();
      double next = em.e_step();
      bool done = next - ll < opt.tolerance;
      ll = next;
      if (done) break;
    }
    if (ll > best_ll) { best_ll = ll; best = std::move(em); }
  }
  CUGMM_REQUIRE(std::isfinite(best_ll), "fit_gmm: no start gave every component a point");
  GmmFit fit;
  const size_t d = x.cols, k = size_t(components);
  fit.weights.assign(best.w.data(), best.w.data() + k);
  fit.means = Matrix(k, d, std::vector<double>(best.mu.data(), best.mu.data() + k * d));
  for (const Eigen::MatrixXd& cv : best.cov) fit.covariances.emplace_back(d, d, std::vector<double>(cv.data(), cv.data() + d * d));
  for (const Eigen::MatrixXd& s : best.signal) fit.deconvolved.emplace_back(d, d, std::vector<double>(s.data(), s.data() + d * d));
  fit.responsibilities = Matrix(x.rows, k, std::vector<double>(best.resp.data(), best.resp.data() + x.rows * k));
  fit.labels.resize(x.rows);
  for (size_t i = 0; i < x.rows; ++i) best.resp.row(Eigen::Index(i)).maxCoeff(&fit.labels[i]);
  fit.log_likelihood = best_ll;
  return fit;
}

std::vector<int> best_matching(const std::vector<int>& predicted, const std::vector<int>& truth, int classes) {
  CUGMM_REQUIRE(classes >= 1 && classes <= 6, "matched_accuracy: 1 to 6 classes (brute force over permutations)");
  CUGMM_REQUIRE(!truth.empty() && predicted.size() == truth.size(),
                "matched_accuracy: " + std::to_string(predicted.size()) + " predictions for " +
                    std::to_string(truth.size()) + " truths");
  std::vector<long> confusion(size_t(classes * classes), 0);  // [predicted][true]
  for (size_t i = 0; i < truth.size(); ++i) {
    CUGMM_REQUIRE(predicted[i] >= 0 && predicted[i] < classes && truth[i] >= 0 && truth[i] < classes,
                  "matched_accuracy: a class outside 0.." + std::to_string(classes - 1));
    ++confusion[size_t(predicted[i] * classes + truth[i])];
  }
  std::vector<int> perm(static_cast<size_t>(classes)), best_perm;
  std::iota(perm.begin(), perm.end(), 0);
  long best = -1;
  do {
    long hits = 0;
    for (int p = 0; p < classes; ++p) hits += confusion[size_t(p * classes + perm[size_t(p)])];
    if (hits > best) {
      best = hits;
      best_perm = perm;
    }
  } while (std::next_permutation(perm.begin(), perm.end()));
  return best_perm;
}

double matched_accuracy(const std::vector<int>& predicted, const std::vector<int>& truth, int classes) {
  const std::vector<int> perm = best_matching(predicted, truth, classes);
  size_t hits = 0;
  for (size_t i = 0; i < truth.size(); ++i) hits += perm[size_t(predicted[i])] == truth[i];
  return double(hits) / double(truth.size());
}

// ---- the metrics of DESIGN §7 ------------------------------------------------------------------------

double linear_motion_score(const Matrix& latent, const std::vector<double>& truth) {
  check(truth, "truth", latent.rows);
  return std::fabs(spearman(pca(latent).scores.column(0), truth));
}

double rotation_score(const Matrix& latent, const std::vector<double>& angle) {
  CUGMM_REQUIRE(latent.cols >= 2, "rotation score: the latent needs at least 2 dimensions");
  check(angle, "angle", latent.rows);
  Pca p = pca(latent);
  std::vector<double> phase(latent.rows);
  for (size_t i = 0; i < latent.rows; ++i) phase[i] = std::atan2(p.scores(i, 1), p.scores(i, 0));
  return std::fabs(fisher_lee(phase, angle));
}

double composition_score(const Matrix& latent, const std::vector<double>& truth, const GmmOptions& opt) {
  check(truth, "truth", latent.rows);
  std::vector<int> cls(truth.size());
  for (size_t i = 0; i < truth.size(); ++i) {
    CUGMM_REQUIRE(truth[i] == 0 || truth[i] == 1, "composition truth: each particle's class must be 0 or 1");
    cls[i] = int(truth[i]);
  }
  return matched_accuracy(fit_gmm(latent, 2, opt).labels, cls, 2);
}

std::vector<double> several_motions_score(const Matrix& latent, const Matrix& truths) {
  return canonical_correlations(latent, truths);
}

// ---- bootstrap ---------------------------------------------------------------------------------------

std::vector<Interval> bootstrap(const Matrix& latent, const Matrix& truths, const VectorMetric& metric,
                                const BootstrapOptions& opt) {
  check(latent, "latent");
  check(truths, "truths", latent.rows);
  CUGMM_REQUIRE(opt.resamples >= 2, "bootstrap: needs at least 2 resamples");
  std::vector<double> value = metric(latent, truths);
  std::vector<std::vector<double>> samples(value.size());
  std::mt19937_64 rng(opt.seed);
  std::vector<size_t> idx(latent.rows);
  for (int b = 0; b < opt.resamples; ++b) {
    for (size_t& i : idx) i = size_t(rng() % latent.rows);
    std::vector<double> v = metric(take_rows(latent, idx), take_rows(truths, idx));
    CUGMM_REQUIRE(v.size() == value.size(), "bootstrap: the metric's length changed on a resample");
    for (size_t k = 0; k < v.size(); ++k) samples[k].push_back(v[k]);
  }
  std::vector<Interval> r;
  for (size_t k = 0; k < value.size(); ++k)
    r.push_back({value[k], percentile(samples[k], 0.025), percentile(samples[k], 0.975)});
  return r;
}

Interval bootstrap(const Matrix& latent, const std::vector<double>& truth, const ScalarMetric& metric,
                   const BootstrapOptions& opt) {
  check(truth, "truth", latent.rows);
  VectorMetric wrapped = [&](const Matrix& l, const Matrix& t) { return std::vector<double>{metric(l, t.values)}; };
  return bootstrap(latent, Matrix(truth.size(), 1, truth), wrapped, opt)[0];
}

// ---- oracle reference helpers ------------------------------------------------------------------------

// -inf is allowed: a state the particle cannot show (zero likelihood) is a fact, not an error.
Matrix posterior_weights(const Matrix& log_likelihood) {
  check(log_likelihood, "log-likelihoods", 0, true);
  Matrix w = log_likelihood;
  for (size_t i = 0; i < w.rows; ++i) {
    double* row = w.values.data() + i * w.cols;
    double top = *std::max_element(row, row + w.cols);
    CUGMM_REQUIRE(std::isfinite(top), "log-likelihoods: particle " + std::to_string(i) + " has no possible state");
    double sum = 0;
    for (size_t s = 0; s < w.cols; ++s) sum += row[s] = std::exp(row[s] - top);  // max-shifted: no overflow
    for (size_t s = 0; s < w.cols; ++s) row[s] /= sum;
  }
  return w;
}

std::vector<double> posterior_mean(const Matrix& log_likelihood, const std::vector<double>& states, StateKind kind) {
  CUGMM_REQUIRE(states.size() == log_likelihood.cols,
                "posterior mean: " + std::to_string(states.size()) + " grid states for " +
                    std::to_string(log_likelihood.cols) + " log-likelihood columns");
  check(states, "grid states", log_likelihood.cols);
  Matrix w = posterior_weights(log_likelihood);
  std::vector<double> mean(w.rows);
  for (size_t i = 0; i < w.rows; ++i) {
    double m = 0, s = 0, c = 0;
    for (size_t k = 0; k < w.cols; ++k) {
      m += w(i, k) * states[k];
      s += w(i, k) * std::sin(states[k]);
      c += w(i, k) * std::cos(states[k]);
    }
    mean[i] = kind == StateKind::linear ? m : std::atan2(s, c);
  }
  return mean;
}

Matrix posterior_classes(const Matrix& log_likelihood, const std::vector<int>& state_class, int classes) {
  CUGMM_REQUIRE(classes >= 1, "posterior classes: needs at least 1 class");
  CUGMM_REQUIRE(state_class.size() == log_likelihood.cols,
                "posterior classes: " + std::to_string(state_class.size()) + " state classes for " +
                    std::to_string(log_likelihood.cols) + " log-likelihood columns");
  for (int c : state_class)
    CUGMM_REQUIRE(c >= 0 && c < classes, "posterior classes: a state's class is outside 0.." + std::to_string(classes - 1));
  Matrix w = posterior_weights(log_likelihood);
  Matrix p(w.rows, size_t(classes));
  for (size_t i = 0; i < w.rows; ++i)
    for (size_t s = 0; s < w.cols; ++s) p(i, size_t(state_class[s])) += w(i, s);
  return p;
}

}  // namespace cugmm
