// The noise-whitened input transform (engine/noise_features.h fit_noise_whitened_pca; docs/accuracy.md rounds
// 7c, 7d): on rows of pure noise the whitened spectrum stays at the Marchenko-Pastur edge (both solvers); a
// weak direction planted under strongly anisotropic noise is the first generalized component although plain
// PCA ranks it below the loud noise directions; the streamed solver gives the dense one's eigenvalues and
// subspace, with fewer noise rows than columns too; at a width the dense solver refuses the streamed one finds
// the planted direction; a stronger direction that is a function of the view outranks a state unless the
// view-dependent mean is counted as noise (view_neighbour_means, round 9; both solvers); deterministic; bad k and
// widths refused.
#include <doctest/doctest.h>

#include <cmath>
#include <random>
#include <vector>

#include "core/error.h"
#include "engine/feature_transform.h"
#include "engine/noise_features.h"
#include "engine/trainer.h"
#include "tests/support.h"

using namespace cugmm;

namespace {

constexpr size_t D = 40;

// Noise with column SDs from 0.2 to 5 (log-spaced) plus one loud correlated direction (SD 4 along the sum
// of the 10 columns from width / 2): as anisotropic as the gradient features' noise.
struct Noise {
  std::mt19937 g;
  std::normal_distribution<double> n01;
  size_t width;
  std::vector<double> sd;
  explicit Noise(unsigned seed, size_t w = D) : g(seed), width(w), sd(w) {
    for (size_t c = 0; c < w; ++c) sd[c] = 0.2 * std::pow(25.0, double(c) / double(w - 1));
  }
  void row(float* x) {
    const double loud = 4 * n01(g) / std::sqrt(10.0);
    for (size_t c = 0; c < width; ++c) x[c] = float(sd[c] * n01(g) + (c >= width / 2 && c < width / 2 + 10 ? loud : 0.0));
  }
  std::vector<float> rows(size_t m) {
    std::vector<float> v(m * width);
    for (size_t i = 0; i < m; ++i) row(v.data() + i * width);
    return v;
  }
};

// The weak signal: unit direction over the five quietest columns (noise SD 0.2-0.3 there), amplitude SD 1.
std::vector<double> planted(size_t width = D) {
  std::vector<double> w(width, 0.0);
  for (size_t c = 0; c < 5; ++c) w[c] = (c % 2 ? -1.0 : 1.0) / std::sqrt(5.0);
  return w;
}

// Adds amplitude x direction to each row; the amplitudes (SD `sd`, seeded) are returned.
std::vector<double> plant(std::vector<float>& rows, const std::vector<double>& w, double sd, unsigned seed) {
  const size_t width = w.size(), n = rows.size() / width;
  std::vector<double> a(n);
  std::mt19937 g(seed);
  std::normal_distribution<double> n01;
  for (size_t i = 0; i < n; ++i) {
    a[i] = sd * n01(g);
    for (size_t c = 0; c < width; ++c) rows[i * width + c] += float(a[i] * w[c]);
  }
  return a;
}

RowSource source_of(const std::vector<float>& rows, size_t width = D) {
  return [&rows, width](const size_t* index, int n, float* out) {
    for (int i = 0; i < n; ++i)
      for (size_t c = 0; c < width; ++c) out[size_t(i) * width + c] = rows[index[i] * width + c];
  };
}

std::vector<size_t> all_rows(size_t m) {
  std::vector<size_t> v(m);
  for (size_t i = 0; i < m; ++i) v[i] = i;
  return v;
}

// |correlation| over the rows between component j's scores and the values a.
double score_corr(const FeatureTransform& f, const std::vector<float>& rows, int j, const std::vector<double>& a) {
  const size_t m = a.size(), width = rows.size() / m;
  double sx = 0, sy = 0, sxx = 0, syy = 0, sxy = 0;
  for (size_t i = 0; i < m; ++i) {
    double s = 0;
    for (size_t c = 0; c < width; ++c) s += double(rows[i * width + c]) * f.basis[c * size_t(f.k) + size_t(j)];
    sx += s, sy += a[i], sxx += s * s, syy += a[i] * a[i], sxy += s * a[i];
  }
  const double n = double(m), cov = sxy / n - sx / n * sy / n;
  return std::abs(cov) / std::sqrt((sxx / n - sx * sx / n / n) * (syy / n - sy * sy / n / n));
}

}  // namespace

TEST_CASE("pure noise: the whitened spectrum stays at the Marchenko-Pastur edge") {
  Noise gen(11);
  const std::vector<float> noise = gen.rows(4000), rows = gen.rows(2000);
  const double edge = std::pow(1 + std::sqrt(double(D) / 2000.0), 2);  // 1.30
  for (NoiseSolver s : {NoiseSolver::dense, NoiseSolver::streamed}) {
    CAPTURE(noise_solver_name(s));
    const FeatureTransform f = fit_noise_whitened_pca(source_of(rows), D, all_rows(2000), noise, 3, false, -1, s);
    // Nothing far beyond the edge of pure noise (N's own sampling error widens it a little); a loud noise
    // direction that leaked through the whitening would stand near its raw variance (16), far above it.
    REQUIRE(f.k == 3);
    CHECK(f.variance[0] > 1.0);
    CHECK(f.variance[0] < edge * 1.1);
    CHECK(f.variance[2] > 1.0);
  }
}

TEST_CASE("a weak direction under anisotropic noise: first by signal-to-noise, buried by variance") {
  Noise gen(12);
  const std::vector<float> noise = gen.rows(4000);
  const std::vector<double> w = planted();
  const size_t n = 2000;
  std::vector<float> rows = gen.rows(n);
  const std::vector<double> a = plant(rows, w, 1.0, 3);
  const FeatureTransform f = fit_noise_whitened_pca(source_of(rows), D, all_rows(n), noise, 2, false);
  REQUIRE(f.k == 2);
  CHECK(f.variance[0] > 10);         // 1 + its signal-to-noise (~ 1 / 0.25^2 over the quiet columns)
  CHECK(f.variance[1] < 1.5);        // the next: noise, at the edge (1.30)
  CHECK(score_corr(f, rows, 0, a) > 0.95);
  // Plain PCA: its top 3 components are the loud noise; none follows the planted direction.
  const FeatureTransform p = fit_feature_pca(source_of(rows), D, all_rows(n), 3, false, 1);
  for (int j = 0; j < 3; ++j) CHECK(score_corr(p, rows, j, a) < 0.3);
  // Whitened to unit-variance scores: the same direction, the basis divided by sqrt(lambda).
  const FeatureTransform fw = fit_noise_whitened_pca(source_of(rows), D, all_rows(n), noise, 2, true);
  REQUIRE(fw.k == 2);
  CHECK(score_corr(fw, rows, 0, a) > 0.95);
  for (size_t c = 0; c < D; ++c)
    CHECK(fw.basis[c * 2] == doctest::Approx(f.basis[c * size_t(f.k)] / std::sqrt(f.variance[0])).epsilon(1e-4));
  // Deterministic.
  CHECK(fit_noise_whitened_pca(source_of(rows), D, all_rows(n), noise, 2, true).basis == fw.basis);
}

// The largest |entry| difference between the first j columns of two bases, relative to the largest entry.
double basis_difference(const FeatureTransform& a, const FeatureTransform& b, int j) {
  double diff = 0, big = 0;
  for (size_t r = 0; r < a.basis.size() / size_t(a.k); ++r)
    for (int c = 0; c < j; ++c) {
      diff = std::max(diff, double(std::abs(a.basis[r * size_t(a.k) + size_t(c)] - b.basis[r * size_t(b.k) + size_t(c)])));
      big = std::max(big, double(std::abs(a.basis[r * size_t(a.k) + size_t(c)])));
    }
  return diff / big;
}

TEST_CASE("the streamed solver gives the dense one's eigenvalues and basis") {
  // Two planted directions (the quietest five columns, SD 1; five middle columns, SD 1.5) under the noise,
  // with more noise rows than columns (N_s close to N) and with fewer (N_s mostly its diagonal; the low-rank
  // part is then genuinely low rank, what the streamed solver's Woodbury inverse is for).
  struct Case {
    size_t width, noise_rows, rows;
  };
  for (Case cs : {Case{D, 4000, 2000}, Case{300, 200, 1500}}) {
    CAPTURE(cs.width);
    CAPTURE(cs.noise_rows);
    Noise gen(21, cs.width);
    const std::vector<float> noise = gen.rows(cs.noise_rows);
    std::vector<float> rows = gen.rows(cs.rows);
    plant(rows, planted(cs.width), 1.0, 4);
    std::vector<double> w2(cs.width, 0.0);
    for (size_t c = 0; c < 5; ++c) w2[cs.width / 4 + c] = 1 / std::sqrt(5.0);
    plant(rows, w2, 1.5, 5);
    const int k = 6;
    const FeatureTransform d = fit_noise_whitened_pca(source_of(rows, cs.width), cs.width, all_rows(cs.rows), noise, k,
                                                      false, -1, NoiseSolver::dense);
    const FeatureTransform s = fit_noise_whitened_pca(source_of(rows, cs.width), cs.width, all_rows(cs.rows), noise, k,
                                                      false, -1, NoiseSolver::streamed);
    REQUIRE(d.k == k);
    REQUIRE(s.k == k);
    MESSAGE("dense " << d.variance[0] << " " << d.variance[1] << " " << d.variance[2] << " " << d.variance[5]
                     << "; streamed " << s.variance[0] << " " << s.variance[1] << " " << s.variance[2] << " "
                     << s.variance[5] << "; basis difference " << basis_difference(d, s, 2));
    CHECK(d.variance[1] > 3 * d.variance[2]);  // two signal directions stand clear of the noise
    // The signal components: the same eigenvalues and the same N_s-normalised vectors.
    for (int j = 0; j < 2; ++j) CHECK(s.variance[size_t(j)] == doctest::Approx(d.variance[size_t(j)]).epsilon(1e-4));
    CHECK(basis_difference(d, s, 2) < 1e-3);
    // The noise bulk's leading eigenvalues, where a subspace iteration converges slowest (a flat spectrum):
    // Ritz values, so never above the dense ones, and within 8% of them (measured: 1-5%).
    for (int j = 2; j < k; ++j) {
      CHECK(s.variance[size_t(j)] <= d.variance[size_t(j)] * (1 + 1e-6));
      CHECK(s.variance[size_t(j)] > 0.92 * d.variance[size_t(j)]);
    }
    CHECK(s.total_variance == doctest::Approx(d.total_variance).epsilon(1e-6));
  }
}

TEST_CASE("a column without noise or signal gets no weight from either solver, and they still agree") {
  Noise gen(22);
  std::vector<float> noise = gen.rows(4000), rows = gen.rows(2000);
  plant(rows, planted(), 1.0, 7);
  for (std::vector<float>* v : {&noise, &rows})
    for (size_t i = 0; i < v->size() / D; ++i) (*v)[i * D + 7] = 0.f;  // a feature the normalisation zeroed
  const FeatureTransform d = fit_noise_whitened_pca(source_of(rows), D, all_rows(2000), noise, 3, false, -1, NoiseSolver::dense);
  const FeatureTransform s = fit_noise_whitened_pca(source_of(rows), D, all_rows(2000), noise, 3, false, -1, NoiseSolver::streamed);
  for (int j = 0; j < 3; ++j) {
    CHECK(d.basis[7 * 3 + size_t(j)] == 0.f);
    CHECK(s.basis[7 * 3 + size_t(j)] == 0.f);
  }
  CHECK(s.variance[0] == doctest::Approx(d.variance[0]).epsilon(1e-4));
  CHECK(basis_difference(d, s, 1) < 1e-3);
}

TEST_CASE("above the dense solver's width: the streamed one finds a planted weak direction") {
  // 5G = 9,000 (1,800 Gaussians), refused by the dense solver; 1,500 noise rows (N_s mostly its diagonal),
  // 3,000 particles.
  const size_t W = 9000, m = 1500, n = 3000;
  Noise gen(31, W);
  const std::vector<float> noise = gen.rows(m);
  std::vector<float> rows = gen.rows(n);
  const std::vector<double> a = plant(rows, planted(W), 2.0, 6);
  CHECK_THROWS_WITH_AS(fit_noise_whitened_pca(source_of(rows, W), W, all_rows(n), noise, 3, false, -1, NoiseSolver::dense),
                       doctest::Contains("feature width 9000 (5 x Gaussians) is above 8000"), Error);
  const FeatureTransform f = fit_noise_whitened_pca(source_of(rows, W), W, all_rows(n), noise, 3, false);
  const double edge = std::pow(1 + std::sqrt(double(W) / double(n)), 2);  // 7.46
  MESSAGE("lambda " << f.variance[0] << " " << f.variance[1] << " " << f.variance[2] << ", edge " << edge);
  CHECK(f.variance[0] > 5 * edge);
  CHECK(f.variance[1] < edge * 1.5);  // noise (measured 1.21 x the edge: N_s is mostly diagonal at this shrinkage)
  CHECK(score_corr(f, rows, 0, a) > 0.95);
  // Plain PCA ranks it below the loud noise.
  const FeatureTransform p = fit_feature_pca(source_of(rows, W), W, all_rows(n), 3, false, 1);
  for (int j = 0; j < 3; ++j) CHECK(score_corr(p, rows, j, a) < 0.3);
}

TEST_CASE("a direction the view predicts ranks as noise with the view-dependent mean counted as noise") {
  Noise gen(14);
  const std::vector<float> noise = gen.rows(4000);
  const std::vector<double> w = planted();
  std::vector<double> u(D, 0.0);  // the view artefact: a direction over quiet columns 5-9, orthogonal to w
  for (size_t c = 5; c < 10; ++c) u[c] = 1 / std::sqrt(5.0);
  const size_t n = 3000;
  std::vector<float> rows = gen.rows(n);
  std::vector<double> a(n), f(n), views(3 * n);
  std::mt19937 g(5);
  std::normal_distribution<double> n01;
  for (size_t i = 0; i < n; ++i) {
    double v[3] = {n01(g), n01(g), n01(g)};  // a uniform beam direction
    const double len = std::sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
    for (int q = 0; q < 3; ++q) views[3 * i + size_t(q)] = v[q] / len;
    // Smooth in the view but not quadratic (as the neutral model's mismatch seen from each view), SD ~3:
    // louder than the planted state (SD 1), which does not depend on the view.
    f[i] = 4 * std::sin(3 * views[3 * i]) * views[3 * i + 2];
    a[i] = n01(g);
    for (size_t c = 0; c < D; ++c) rows[i * D + c] += float(a[i] * w[c] + f[i] * u[c]);
  }
  const FeatureTransform plain = fit_noise_whitened_pca(source_of(rows), D, all_rows(n), noise, 2, false);
  CHECK(score_corr(plain, rows, 0, f) > 0.9);  // the view artefact first
  CHECK(score_corr(plain, rows, 0, a) < 0.2);
  const std::vector<float> means = view_neighbour_means(source_of(rows), D, all_rows(n), views);
  CHECK(means.size() == n * D);
  for (NoiseSolver solver : {NoiseSolver::dense, NoiseSolver::streamed}) {
    CAPTURE(noise_solver_name(solver));
    const FeatureTransform nv = fit_noise_whitened_pca(source_of(rows), D, all_rows(n), noise, 2, false, -1, solver, means);
    CHECK(score_corr(nv, rows, 0, a) > 0.9);  // the state first
    CHECK(score_corr(nv, rows, 0, f) < 0.3);
    CHECK(nv.variance[0] > 5);                // still far above the noise (the state itself is not counted)
  }
  // Fewer rows than neighbours: refused.
  CHECK_THROWS_WITH_AS(view_neighbour_means(source_of(rows), D, all_rows(10),
                                            std::vector<double>(views.begin(), views.begin() + 30)),
                       doctest::Contains("more than 20 particles"), Error);
}

TEST_CASE("bad k, widths and solver names are refused") {
  Noise gen(13);
  const std::vector<float> noise = gen.rows(100), rows = gen.rows(100);
  for (NoiseSolver s : {NoiseSolver::dense, NoiseSolver::streamed})
    for (int k : {0, -1, 40})
      CHECK_THROWS_WITH_AS(fit_noise_whitened_pca(source_of(rows), D, all_rows(100), noise, k, false, -1, s),
                           doctest::Contains("must be at least 1 and below"), Error);
  CHECK_THROWS_WITH_AS(parse_noise_solver("sparse"), doctest::Contains("must be auto, dense or streamed"), Error);
  CHECK_NOTHROW(require_dense_noise_width(kDenseNoiseMaxWidth));  // what the trainer checks before any work
  CHECK_THROWS_WITH_AS(require_dense_noise_width(kDenseNoiseMaxWidth + 5), doctest::Contains("is above 8000"), Error);
  CHECK(choose_noise_solver(NoiseSolver::automatic, kDenseNoiseAutoWidth) == NoiseSolver::dense);
  CHECK(choose_noise_solver(NoiseSolver::automatic, kDenseNoiseAutoWidth + 5) == NoiseSolver::streamed);
}

TEST_CASE("the memory plan states the solver's host memory, and a run that cannot hold it is refused") {
  TrainConfig c;
  c.feature_pca = 25;
  c.feature_noise_whiten = true;
  const int G = 100000;  // 5G = 500,000: noise and view rows of 2 MB each, the streamed solver
  const MemoryPlan p = plan_memory(c, G, 256, 25736, 100000);
  CHECK(p.transform_solver == "streamed");
  // The row budget: 268 noise rows and as many view rows (512 MiB each), not 6,000 and 5,000 (45 GB).
  CHECK(noise_image_count(500000) == 268);
  CHECK(view_row_count(500000, 100000) == 268);
  CHECK(noise_image_count(2000) == 4000);  // small widths keep their noise sample
  CHECK(view_row_count(2000, 1800) == 1800);
  CHECK(p.transform_host == noise_solver_bytes(NoiseSolver::streamed, 500000, 536, 25) + 2 * 268 * size_t(500000) * 4);
  CHECK(p.transform_host > size_t(2) * 1000 * 1000 * 1000);  // the rows: 2 x 268 x 500,000 floats, and more
  CHECK(p.transform_host < size_t(6) << 30);  // the rows and the subspace's few 500,000 x 75 blocks
  CHECK(test::contains(p.text(), "while the noise-whitened input is fitted (streamed solver), host memory"));
  c.feature_noise_solver = "dense";  // asked for: stated (and refused by the fit, above kDenseNoiseMaxWidth)
  CHECK(plan_memory(c, G, 256, 25736, 100000).transform_solver == "dense");
  c.feature_noise_whiten = false;
  CHECK(plan_memory(c, G, 256, 25736, 100000).transform_host == 0);
  // Ten times the Gaussians: more than this machine holds, refused before any work, naming the solver's part.
  c.feature_noise_whiten = true;
  c.feature_noise_solver = "auto";
  CHECK_THROWS_WITH_AS(require_memory(plan_memory(c, 10 * G, 64, 2000, 1000), Device::cpu),
                       doctest::Contains("noise-whitened input is fitted (streamed solver)"), Error);
}
