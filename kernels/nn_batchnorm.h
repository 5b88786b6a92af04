// Batch-norm, once for both backends: the per-element terms each backend sums over a column (in its own
// fixed order: the CPU row by row, CUDA in row chunks then chunk by chunk), and the per-column and
// per-element steps that turn those sums into statistics, outputs and gradients.
//   forward:  xhat = (x - mean) * rstd,  y = gamma * xhat + beta,  rstd = 1 / sqrt(var + eps)
//             mean = sum(x) / B, var = sum((x - mean)^2) / B  (two passes: no cancellation of
//             sum(x^2) - B mean^2 when |mean| >> std)
//   backward (training, mean and var from this batch of B rows):
//     v_x = gamma * rstd / B * (B * v_y - sum(v_y) - xhat * sum(v_y * xhat))
//   backward (inference, running statistics are constants): v_x = gamma * rstd * v_y
// with v_gamma = sum(v_y * xhat) and v_beta = sum(v_y) in both.
#pragma once
#include <cmath>

#include "kernels/hd.h"

namespace cugmm {

template <class T>
CUGMM_HD T bn_rstd(T var, T eps) { return T(1) / std::sqrt(var + eps); }

template <class T>
CUGMM_HD T bn_xhat(T x, T mean, T rstd) { return (x - mean) * rstd; }

template <class T>
CUGMM_HD T bn_fwd(T x, T mean, T rstd, T gamma, T beta) { return gamma * bn_xhat(x, mean, rstd) + beta; }

// Running statistics (PyTorch's convention): r <- (1 - m) r + m * batch, the variance unbiased.
template <class T>
CUGMM_HD T bn_running(T running, T batch, T momentum) { return (T(1) - momentum) * running + momentum * batch; }

// Pass 1 sums x per column; the mean is that sum over the rows.
template <class T>
CUGMM_HD T bn_mean(T sum_x, int rows) { return sum_x / T(rows); }

// Pass 2 sums this term per column.
template <class T>
CUGMM_HD T bn_sq_dev(T x, T mean) {
  T d = x - mean;
  return d * d;
}

// From pass 2's sum: rstd of the batch (biased variance) and the running statistics' update
// (unbiased variance; a single row has none, so its biased one stands in).
template <class T>
CUGMM_HD void bn_stats(T mean, T sum_sq_dev, int rows, T eps, T momentum, T& rstd, T& run_mean, T& run_var) {
  T var = sum_sq_dev / T(rows);
  rstd = bn_rstd(var, eps);
  run_mean = bn_running(run_mean, mean, momentum);
  run_var = bn_running(run_var, rows > 1 ? sum_sq_dev / T(rows - 1) : var, momentum);
}

// Backward's two column sums, term by term: v_beta = sum(t_beta), v_gamma = sum(t_gamma).
template <class T>
CUGMM_HD void bn_bwd_terms(T v_y, T x, T mean, T rstd, T& t_beta, T& t_gamma) {
  t_beta = v_y;
  t_gamma = v_y * bn_xhat(x, mean, rstd);
}

// The input gradient from the column sums (sum_vy = v_beta, sum_vy_xhat = v_gamma).
template <class T>
CUGMM_HD T bn_bwd_x(bool train, T v_y, T x, T mean, T rstd, T gamma, T sum_vy, T sum_vy_xhat, int rows) {
  if (!train) return gamma * rstd * v_y;
  T b = T(rows);
  return gamma * rstd / b * (b * v_y - sum_vy - bn_xhat(x, mean, rstd) * sum_vy_xhat);
}

}  // namespace cugmm
