#include "engine/feature_transform.h"

#include <Eigen/Dense>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.h"
#include "core/log.h"
#include "kernels/philox.h"
#include "nn/blas.h"

namespace cugmm {

void zero_unread_kinds(float* rows, size_t n, size_t width, const bool reads[3]) {
  const size_t G = width / 5;
  for (size_t c = 0; c < width; ++c) {
    const size_t kind = std::min<size_t>(c / G, 4);
    if (reads[kind < 3 ? 0 : kind - 2]) continue;
    for (size_t i = 0; i < n; ++i) rows[i * width + c] = 0.f;
  }
}

void scale_rows_to_unit_rms(float* rows, size_t n, size_t width) {
  for (size_t r = 0; r < n; ++r) {
    float* x = rows + r * width;
    double ss = 0;
    for (size_t c = 0; c < width; ++c) ss += double(x[c]) * x[c];
    if (!(ss > 0)) continue;
    const float s = float(1.0 / std::sqrt(ss / double(width)));
    for (size_t c = 0; c < width; ++c) x[c] *= s;
  }
}

namespace {

using Mat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

}  // namespace

void orthonormalize(float* y, size_t width, int L) {
  // Thin QR in double: the power iteration's columns are nearly parallel after a few passes, where float
  // Gram-Schmidt would lose them.
  Eigen::Map<Mat> m(y, Eigen::Index(width), L);
  const Eigen::MatrixXd yd = m.cast<double>();
  Eigen::HouseholderQR<Eigen::MatrixXd> qr(yd);
  m = (qr.householderQ() * Eigen::MatrixXd::Identity(yd.rows(), yd.cols())).cast<float>();
}

double second_moment_times(const RowSource& source, size_t width, const std::vector<size_t>& rows, bool row_rms,
                           const float* q, int L, float* y) {
  const size_t D = width, m = rows.size(), chunk = 256;
  std::vector<float> x(chunk * D), t(chunk * size_t(L));
  std::fill(y, y + D * size_t(L), 0.f);
  double total = 0;
  for (size_t first = 0; first < m; first += chunk) {
    const int n = int(std::min(chunk, m - first));
    source(rows.data() + first, n, x.data());
    if (row_rms) scale_rows_to_unit_rms(x.data(), size_t(n), D);
    for (size_t i = 0; i < size_t(n) * D; ++i) total += double(x[i]) * x[i];
    nn::sgemm(false, false, n, L, int(D), 1.f, x.data(), int(D), q, L, 0.f, t.data(), L);
    nn::sgemm(true, false, int(D), L, n, 1.f / float(m), x.data(), int(D), t.data(), L, 1.f, y, L);
  }
  return total / double(std::max<size_t>(1, m));
}

void set_component(FeatureTransform& f, size_t width, int j, const double* v, double variance, bool whiten) {
  size_t big = 0;  // a fixed sign (the largest entry positive), so the basis does not depend on the solver's choice
  for (size_t r = 1; r < width; ++r)
    if (std::abs(v[r]) > std::abs(v[big])) big = r;
  double s = v[big] < 0 ? -1.0 : 1.0;
  if (whiten && variance > 0) s /= std::sqrt(variance);
  for (size_t r = 0; r < width; ++r) f.basis[r * size_t(f.k) + size_t(j)] = float(s * v[r]);
}

std::vector<float> component_scores(const RowSource& source, size_t width, const std::vector<size_t>& rows,
                                    const FeatureTransform& t, int k) {
  CUGMM_REQUIRE(t.k > 0 && k >= 1 && k <= t.k && t.basis.size() == width * size_t(t.k),
                "component_scores: k within the transform's components");
  const size_t chunk = 256;
  std::vector<float> x(chunk * width), out(rows.size() * size_t(k));
  for (size_t first = 0; first < rows.size(); first += chunk) {
    const int n = int(std::min(chunk, rows.size() - first));
    source(rows.data() + first, n, x.data());
    if (t.row_rms) scale_rows_to_unit_rms(x.data(), size_t(n), width);
    // The basis is width x t.k (row-major): its first k columns with the leading dimension t.k.
    nn::sgemm(false, false, n, k, int(width), 1.f, x.data(), int(width), t.basis.data(), t.k, 0.f,
              out.data() + first * size_t(k), k);
  }
  return out;
}

std::vector<float> encoder_input_table(const FeatureFile& features, const FeatureTransform& t) {
  if (t.k == 0) return {};
  // component_scores' own chunks (256 rows), cache order: training, a resumed run and embed build the very
  // same table.
  const size_t n = features.count(), chunk = 4096;
  std::vector<float> table(n * size_t(t.k));
  Progress progress("input components", n);
  for (size_t first = 0; first < n; first += chunk) {
    std::vector<size_t> rows(std::min(chunk, n - first));
    std::iota(rows.begin(), rows.end(), first);
    const std::vector<float> part = component_scores(
        [&](const size_t* index, int m, float* out) { features.gather(index, m, out); }, features.width(), rows, t, t.k);
    std::copy(part.begin(), part.end(), table.begin() + std::ptrdiff_t(first * size_t(t.k)));
    progress.add(rows.size());
  }
  progress.finish();
  return table;
}

FeatureTransform fit_feature_pca(const RowSource& source, size_t width, const std::vector<size_t>& rows, int k,
                                 bool row_rms, uint64_t seed, bool whiten, size_t max_rows) {
  const size_t D = width;
  // Evenly spaced rows, at most max_rows: the components of a large set are settled long before its end.
  std::vector<size_t> use;
  const size_t stride = std::max<size_t>(1, (rows.size() + max_rows - 1) / std::max<size_t>(1, max_rows));
  for (size_t i = 0; i < rows.size(); i += stride) use.push_back(rows[i]);
  const size_t m = use.size();
  if (k < 1 || size_t(k) >= D || size_t(k) >= m)
    throw Error("--feature-pca " + std::to_string(k) + ": the number of components must be at least 1 and below both "
                "the feature width (" + std::to_string(D) + ") and the particles it is fitted on (" +
                std::to_string(m) + ")");
  // Oversampled by 10 columns (the randomized range finder's usual margin) and 4 power passes: the trailing
  // components of a slowly decaying spectrum are then accurate to a few percent.
  const int L = int(std::min<size_t>(size_t(k) + 10, std::min(D, m)));
  const int passes = 4;
  Mat q(D, L);
  for (size_t r = 0; r < D; ++r)
    for (int c = 0; c < L; ++c) q(r, c) = philox_normal(seed ^ 0x706361ull, 0, r * size_t(L) + size_t(c));
  orthonormalize(q.data(), D, L);

  double total = 0;
  // The rows' second moment times q: one streamed pass.
  auto moment_times = [&](const Mat& qq) {
    Mat y(D, L);
    total = second_moment_times(source, D, use, row_rms, qq.data(), L, y.data());
    return y;
  };
  Progress progress("feature PCA", size_t(passes) + 1);
  for (int p = 0; p < passes; ++p) {
    q = moment_times(q);
    orthonormalize(q.data(), D, L);
    progress.add(1);
  }
  // Rayleigh-Ritz on the subspace: the small symmetric matrix q^T C q, its eigenvectors rotated back.
  const Mat cq = moment_times(q);
  progress.add(1);
  progress.finish();
  Eigen::MatrixXd small = (q.transpose().cast<double>() * cq.cast<double>());
  small = 0.5 * (small + small.transpose());
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(small);
  const Eigen::MatrixXd v = q.cast<double>() * eig.eigenvectors();  // ascending eigenvalues

  FeatureTransform f;
  f.row_rms = row_rms;
  f.k = k;
  f.total_variance = total;
  f.basis.assign(D * size_t(k), 0.f);
  for (int j = 0; j < k; ++j) {
    const int col = L - 1 - j;  // descending
    f.variance.push_back(std::max(0.0, eig.eigenvalues()(col)));
    set_component(f, D, j, v.col(col).data(), f.variance.back(), whiten);
  }
  double kept = 0;
  for (double e : f.variance) kept += e;
  log_info("feature PCA: " + std::to_string(k) + " components of " + std::to_string(D) + " hold " +
           std::to_string(f.total_variance > 0 ? kept / f.total_variance : 0.0) + " of the features' variance (" +
           std::to_string(m) + " particles)");
  return f;
}

FeatureTransform fit_feature_pca(const FeatureFile& features, const std::vector<size_t>& rows, int k, bool row_rms,
                                 uint64_t seed, bool whiten, size_t max_rows) {
  return fit_feature_pca([&](const size_t* index, int n, float* out) { features.gather(index, n, out); },
                         features.width(), rows, k, row_rms, seed, whiten, max_rows);
}

}  // namespace cugmm
