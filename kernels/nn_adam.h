// The Adam step for one parameter, shared by the CPU loop and the CUDA kernel, and the bfloat16 storage
// the low-memory mode keeps the two moments in.
//
//   g  <- g * grad_scale + wd * p          (clipping scale, then coupled L2: the loss has wd/2 |w|^2)
//   m  <- b1 m + (1 - b1) g,   v <- b2 v + (1 - b2) g^2
//   p  <- p - lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

#include "kernels/hd.h"
#include "kernels/philox.h"

namespace cugmm {

struct AdamScalars {
  float lr;         // already multiplied by the group's factor
  float beta1, beta2, eps;
  float bc1, bc2;   // 1 - beta1^t, 1 - beta2^t (bias correction at step t >= 1)
  float wd;         // L2 coefficient of the group
  float grad_scale; // 1, or clip_norm / |g| when the global gradient norm exceeds clip_norm
};

template <class T>
CUGMM_HD void adam_step(T& p, T g, T& m, T& v, const AdamScalars& s) {
  g = g * T(s.grad_scale) + T(s.wd) * p;
  m = T(s.beta1) * m + (T(1) - T(s.beta1)) * g;
  v = T(s.beta2) * v + (T(1) - T(s.beta2)) * g * g;
  T mhat = m / T(s.bc1), vhat = v / T(s.bc2);
  p -= T(s.lr) * mhat / (std::sqrt(vhat) + T(s.eps));
}

CUGMM_HD uint32_t f32_bits(float f) {
#ifdef __CUDA_ARCH__
  return __float_as_uint(f);
#else
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
#endif
}

CUGMM_HD float bits_f32(uint32_t b) {
#ifdef __CUDA_ARCH__
  return __uint_as_float(b);
#else
  float f;
  std::memcpy(&f, &b, 4);
  return f;
#endif
}

// A gradient element that is NaN or infinite is not applied: both backends leave its p, m and v as they were
// and report it (the CPU loop counts it, the CUDA kernel sets kFlagNonFiniteGradient), so one bad gradient
// stops the run with the weights and the optimizer state still finite.
CUGMM_HD bool finite_f32(float f) { return (f32_bits(f) & 0x7f800000u) != 0x7f800000u; }

CUGMM_HD float bf16_to_f32(uint16_t h) { return bits_f32(static_cast<uint32_t>(h) << 16); }

// Stochastic rounding to bfloat16: adding 16 random bits below the kept mantissa rounds the magnitude up
// with probability equal to the dropped fraction, so the rounding is unbiased. Round-to-nearest would
// freeze v: with beta2 = 0.999 a step changes v by 0.1%, under half a bf16 ulp (0.4%).
CUGMM_HD uint16_t f32_to_bf16_stochastic(float f, uint32_t random) {
  uint32_t b = f32_bits(f);
  if ((b & 0x7f800000u) == 0x7f800000u) return static_cast<uint16_t>(b >> 16);  // inf / nan stay
  uint32_t r = b + (random & 0xffffu);
  if ((r & 0x7f800000u) == 0x7f800000u) r = b;  // never round a finite value up to infinity
  return static_cast<uint16_t>(r >> 16);
}

// The low-memory step: moments stored as bfloat16, widened for the update, rounded back stochastically
// with 16 random bits each, both from the element's 32-bit Philox word `r`.
CUGMM_HD void adam_step_bf16(float& p, float g, uint16_t& m16, uint16_t& v16, const AdamScalars& s, uint32_t r) {
  float m = bf16_to_f32(m16), v = bf16_to_f32(v16);
  adam_step(p, g, m, v, s);
  m16 = f32_to_bf16_stochastic(m, r);
  v16 = f32_to_bf16_stochastic(v, r >> 16);
}

// Element i's word is word i % 4 of Philox draw i / 4 of stream `step` (so every step rounds afresh):
// one draw serves the four elements of a quad, where a draw per element cost ten rounds for one word.
// The words are those of philox_u32(seed, step, i), whichever backend or loop order asks.
constexpr uint64_t kAdamQuad = 4;
CUGMM_HD U32x4 adam_bf16_words(uint64_t seed, uint64_t step, uint64_t quad) { return philox_draw(seed, step, quad); }

}  // namespace cugmm
