// Batch-norm per element, given per-column statistics that each backend reduces its own way.
//   forward:  xhat = (x - mean) * rstd,  y = gamma * xhat + beta,  rstd = 1 / sqrt(var + eps)
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
CUGMM_HD T bn_fwd(T x, T mean, T rstd, T gamma, T beta) { return gamma * ((x - mean) * rstd) + beta; }

template <class T>
CUGMM_HD T bn_bwd_train(T v_y, T xhat, T gamma, T rstd, T sum_vy, T sum_vy_xhat, T rows) {
  return gamma * rstd / rows * (rows * v_y - sum_vy - xhat * sum_vy_xhat);
}

template <class T>
CUGMM_HD T bn_bwd_infer(T v_y, T gamma, T rstd) { return gamma * rstd * v_y; }

// Running statistics (PyTorch's convention): r <- (1 - m) r + m * batch, the variance unbiased.
template <class T>
CUGMM_HD T bn_running(T running, T batch, T momentum) { return (T(1) - momentum) * running + momentum * batch; }

}  // namespace cugmm
