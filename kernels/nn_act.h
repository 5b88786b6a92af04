// Activations and their derivatives, once for both backends. The derivative is written in terms of the
// activation's OUTPUT y, so a layer can run in place and backward needs nothing but y: ReLU-type
// derivatives test y > 0, the same predicate as forward's x > 0 (y > 0 exactly when x > 0).
#pragma once
#include <cmath>

#include "kernels/hd.h"

namespace cugmm {

enum class Act : int { identity = 0, relu = 1, leaky_relu = 2, sigmoid = 3, tanh = 4 };

template <class T>
CUGMM_HD T act_fwd(Act a, T x, T slope) {
  switch (a) {
    case Act::relu: return x > T(0) ? x : T(0);
    case Act::leaky_relu: return x > T(0) ? x : slope * x;
    case Act::sigmoid: return T(1) / (T(1) + std::exp(-x));
    case Act::tanh: return std::tanh(x);
    default: return x;
  }
}

// v_x = v_y * dy/dx, from y. Leaky ReLU needs slope > 0 so that the sign of y is the sign of x.
template <class T>
CUGMM_HD T act_bwd(Act a, T y, T v_y, T slope) {
  switch (a) {
    case Act::relu: return y > T(0) ? v_y : T(0);
    case Act::leaky_relu: return y > T(0) ? v_y : slope * v_y;
    case Act::sigmoid: return v_y * y * (T(1) - y);
    case Act::tanh: return v_y * (T(1) - y * y);
    default: return v_y;
  }
}

// act(0) == 0 exactly: what a zero-anchored residual path needs (see nn/sequential.h).
inline bool act_keeps_zero(Act a) { return a != Act::sigmoid; }

}  // namespace cugmm
