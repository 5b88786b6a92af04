// The CPU backend's batched layer operations, templated on the scalar: float in production, double in
// the finite-difference tests, so the code the tests check is the code that runs. Every per-element
// formula comes from kernels/nn_*.h, which the CUDA kernels (nn/ops_cuda.cu) call too. Matrices are
// row-major, batch x features. Column reductions sum the rows in order, so results are deterministic.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernels/nn_act.h"
#include "kernels/nn_adam.h"
#include "kernels/nn_batchnorm.h"
#include "kernels/nn_dropout.h"
#include "nn/blas.h"

namespace cugmm::nn::cpu {

inline void gemm(bool ta, bool tb, int m, int n, int k, float alpha, const float* a, int lda, const float* b, int ldb,
                 float beta, float* c, int ldc) {
  sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
inline void gemm(bool ta, bool tb, int m, int n, int k, double alpha, const double* a, int lda, const double* b,
                 int ldb, double beta, double* c, int ldc) {
  dgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

// Column blocks keep the inner loop contiguous (vectorisable) while each thread owns whole columns.
constexpr int kColBlock = 256;
// Below this many elements a parallel region costs more than the loop (the 512-wide MLP layers).
constexpr size_t kParallelMin = size_t(1) << 15;

// The fp32 Adam step (kernels/nn_adam.h adam_step) over n elements on one thread, vectorised for the CPU
// (nn/adam_cpu.cpp); returns how many gradient elements were not finite (those left unchanged).
size_t adam_f32_span(float* p, const float* g, float* m, float* v, size_t n, const AdamScalars& s);

// y[r, c] += b[c]
template <class T>
void add_rows(T* y, const T* b, int rows, int cols) {
#pragma omp parallel for schedule(static) if (size_t(rows) * cols >= kParallelMin)
  for (int r = 0; r < rows; ++r) {
    T* yr = y + static_cast<size_t>(r) * cols;
    for (int c = 0; c < cols; ++c) yr[c] += b[c];
  }
}

// out[c] = sum_r v[r, c]
template <class T>
void col_sums(const T* v, T* out, int rows, int cols) {
#pragma omp parallel for schedule(static) if (size_t(rows) * cols >= kParallelMin)
  for (int c0 = 0; c0 < cols; c0 += kColBlock) {
    int c1 = c0 + kColBlock < cols ? c0 + kColBlock : cols;
    for (int c = c0; c < c1; ++c) out[c] = T(0);
    for (int r = 0; r < rows; ++r)
      for (int c = c0; c < c1; ++c) out[c] += v[static_cast<size_t>(r) * cols + c];
  }
}

// Dense layer, W out x in (row-major), b out or null:  y = x W^T + b.
template <class T>
void dense_fwd(const T* x, const T* w, const T* b, T* y, int rows, int in, int out) {
  gemm(false, true, rows, out, in, T(1), x, in, w, in, T(0), y, out);
  if (b) add_rows(y, b, rows, out);
}

// v_w = v_y^T x, v_b = column sums of v_y (when v_b), v_x = v_y W (when v_x: an input that needs no
// gradient costs nothing).
template <class T>
void dense_bwd(const T* x, const T* w, const T* v_y, T* v_w, T* v_b, T* v_x, int rows, int in, int out) {
  if (v_w) gemm(true, false, out, in, rows, T(1), v_y, out, x, in, T(0), v_w, in);
  if (v_b) col_sums(v_y, v_b, rows, out);
  if (v_x) gemm(false, false, rows, in, out, T(1), v_y, out, w, in, T(0), v_x, in);
}

template <class T>
void act_fwd(Act a, T slope, T* y, size_t n) {
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (size_t i = 0; i < n; ++i) y[i] = cugmm::act_fwd(a, y[i], slope);
}

template <class T>
void act_bwd(Act a, T slope, const T* y, T* v, size_t n) {
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (size_t i = 0; i < n; ++i) v[i] = cugmm::act_bwd(a, y[i], v[i], slope);
}

// Forward (x = activations) and backward (x = cotangents) are the same masked scaling. One Philox draw
// serves four elements (philox_u32(i) is word i % 4 of draw i / 4): the same masks as dropout_apply per
// element, at a quarter of the Philox rounds, which dominated the 512-wide layers' elementwise time.
template <class T>
void dropout(float p, uint64_t seed, uint64_t stream, const T* x, T* y, size_t n, uint64_t first = 0) {
  // Elements are numbered globally from `first` (a rank's share of the global batch draws what one process
  // would): the draws covering [first, first + n).
  const long long d0 = (long long)(first / 4), d1 = (long long)((first + n + 3) / 4);
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (long long d = d0; d < d1; ++d) {
    const U32x4 w = philox_draw(seed, stream, uint64_t(d));
    for (int k = 0; k < 4; ++k) {
      const uint64_t g = 4 * uint64_t(d) + k;
      if (g < first || g >= first + n) continue;
      y[g - first] = dropout_scale(x[g - first], p, dropout_keep_word(p, w.v[k]));
    }
  }
}

// y = gamma * xhat + beta with per-column statistics.
template <class T>
void bn_apply(const T* x, T* y, const T* gamma, const T* beta, const T* mean, const T* rstd, int rows, int cols) {
  size_t n = static_cast<size_t>(rows) * cols;
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (size_t i = 0; i < n; ++i) {
    size_t c = i % cols;
    y[i] = bn_fwd(x[i], mean[c], rstd[c], gamma[c], beta[c]);
  }
}

// Column c's sums over the rows, in row order: of x, of the squared deviations from `mean`, and
// backward's two (v_beta's and v_gamma's terms).
template <class T>
T bn_col_sum(const T* x, int rows, int cols, int c) {
  T s = 0;
  for (int r = 0; r < rows; ++r) s += x[static_cast<size_t>(r) * cols + c];
  return s;
}
template <class T>
T bn_col_sq_dev(const T* x, T mean, int rows, int cols, int c) {
  T s = 0;
  for (int r = 0; r < rows; ++r) s += bn_sq_dev(x[static_cast<size_t>(r) * cols + c], mean);
  return s;
}
template <class T>
void bn_col_bwd_sums(const T* x, const T* v_y, T mean, T rstd, int rows, int cols, int c, T& s1, T& s2) {
  s1 = 0;
  s2 = 0;
  for (int r = 0; r < rows; ++r) {
    size_t i = static_cast<size_t>(r) * cols + c;
    T t1, t2;
    bn_bwd_terms(v_y[i], x[i], mean, rstd, t1, t2);
    s1 += t1;
    s2 += t2;
  }
}

// Training forward: batch statistics (biased variance) into mean/rstd, which backward reuses; the
// running statistics move towards them (unbiased variance). Each column's rows are summed in order.
template <class T>
void bn_fwd_train(const T* x, T* y, const T* gamma, const T* beta, T* mean, T* rstd, T* run_mean, T* run_var,
                  T momentum, T eps, int rows, int cols) {
#pragma omp parallel for schedule(static) if (size_t(rows) * cols >= kParallelMin)
  for (int c = 0; c < cols; ++c) {
    const T mu = bn_mean(bn_col_sum(x, rows, cols, c), rows);
    const T ss = bn_col_sq_dev(x, mu, rows, cols, c);
    mean[c] = mu;
    bn_stats(mu, ss, rows, eps, momentum, rstd[c], run_mean[c], run_var[c]);
  }
  bn_apply(x, y, gamma, beta, mean, rstd, rows, cols);
}

// Inference forward with the running statistics; mean/rstd receive them so backward is the same call.
template <class T>
void bn_fwd_infer(const T* x, T* y, const T* gamma, const T* beta, const T* run_mean, const T* run_var, T* mean,
                  T* rstd, T eps, int rows, int cols) {
  for (int c = 0; c < cols; ++c) {
    mean[c] = run_mean[c];
    rstd[c] = bn_rstd(run_var[c], eps);
  }
  bn_apply(x, y, gamma, beta, mean, rstd, rows, cols);
}

// Backward with the statistics forward saved. train = false: inference mode, where mean and rstd are
// the running ones and so constants.
template <class T>
void bn_bwd(bool train, const T* x, const T* v_y, const T* gamma, const T* mean, const T* rstd, T* v_x, T* v_gamma,
            T* v_beta, int rows, int cols) {
#pragma omp parallel for schedule(static) if (size_t(rows) * cols >= kParallelMin)
  for (int c = 0; c < cols; ++c) {
    T s1, s2;
    bn_col_bwd_sums(x, v_y, mean[c], rstd[c], rows, cols, c, s1, s2);
    v_beta[c] = s1;
    v_gamma[c] = s2;
    if (!v_x) continue;
    for (int r = 0; r < rows; ++r) {
      size_t i = static_cast<size_t>(r) * cols + c;
      v_x[i] = bn_bwd_x(train, v_y[i], x[i], mean[c], rstd[c], gamma[c], s1, s2, rows);
    }
  }
}

// The same two functions over a batch split across ranks (nn/ops.h BnSync): each pass's column sums are
// added over the ranks (`sum`, in place) before they are used, `total` is the rows of all ranks, `scratch`
// 2 x cols values. Each rank sums its rows in order, as above.
template <class T, class Sum>
void bn_fwd_train_synced(const T* x, T* y, const T* gamma, const T* beta, T* mean, T* rstd, T* run_mean, T* run_var,
                         T momentum, T eps, int rows, int cols, int total, T* scratch, const Sum& sum) {
  T* ss = scratch;
#pragma omp parallel for schedule(static) if (size_t(rows) * cols >= kParallelMin)
  for (int c = 0; c < cols; ++c) mean[c] = bn_col_sum(x, rows, cols, c);
  sum(mean, size_t(cols));
  for (int c = 0; c < cols; ++c) mean[c] = bn_mean(mean[c], total);
#pragma omp parallel for schedule(static) if (size_t(rows) * cols >= kParallelMin)
  for (int c = 0; c < cols; ++c) ss[c] = bn_col_sq_dev(x, mean[c], rows, cols, c);
  sum(ss, size_t(cols));
  for (int c = 0; c < cols; ++c) bn_stats(mean[c], ss[c], total, eps, momentum, rstd[c], run_mean[c], run_var[c]);
  bn_apply(x, y, gamma, beta, mean, rstd, rows, cols);
}

template <class T, class Sum>
void bn_bwd_synced(const T* x, const T* v_y, const T* gamma, const T* mean, const T* rstd, T* v_x, T* v_gamma,
                   T* v_beta, int rows, int cols, int total, T* scratch, const Sum& sum) {
#pragma omp parallel for schedule(static) if (size_t(rows) * cols >= kParallelMin)
  for (int c = 0; c < cols; ++c) {
    T s1, s2;
    bn_col_bwd_sums(x, v_y, mean[c], rstd[c], rows, cols, c, s1, s2);
    v_beta[c] = scratch[c] = s1;
    v_gamma[c] = scratch[cols + c] = s2;
  }
  if (!v_x) return;  // every rank skips alike (the same network)
  sum(scratch, 2 * size_t(cols));
  size_t n = static_cast<size_t>(rows) * cols;
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (size_t i = 0; i < n; ++i) {
    size_t c = i % cols;
    v_x[i] = bn_bwd_x(true, v_y[i], x[i], mean[c], rstd[c], gamma[c], scratch[c], scratch[cols + c], total);
  }
}

// Fixed chunks summed in order: the same total whatever the thread count (a resumed run must match).
template <class T>
double sum_squares(const T* x, size_t n) {
  constexpr size_t kChunk = 1 << 16;
  size_t chunks = (n + kChunk - 1) / kChunk;
  std::vector<double> part(chunks);
#pragma omp parallel for schedule(static) if (chunks > 1)
  for (size_t b = 0; b < chunks; ++b) {
    double s = 0;
    for (size_t i = b * kChunk; i < n && i < (b + 1) * kChunk; ++i) s += static_cast<double>(x[i]) * x[i];
    part[b] = s;
  }
  double s = 0;
  for (double p : part) s += p;
  return s;
}

}  // namespace cugmm::nn::cpu
