// Philox4x32-10 (Salmon, Moraes, Dror, Shaw, SC'11): the one random generator of cugmm. It is a pure
// function of (counter, key), so a CPU loop and a CUDA kernel that ask for the same (seed, stream, index)
// get the same bits; nothing is carried from one draw to the next.
//
// Convention used everywhere: key = seed (two 32-bit halves); counter = (draw index lo, hi, stream lo, hi).
// One draw yields four 32-bit words, so element i of a stream uses draw i / 4, word i % 4.
// Streams name what the numbers are for (a layer's dropout at a step, an initialisation, latent noise).
#pragma once
#include <cmath>
#include <cstdint>

#include "kernels/hd.h"

namespace cugmm {

struct U32x4 {
  uint32_t v[4];
};

namespace philox_detail {
constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;  // round multipliers
constexpr uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;  // key schedule (golden ratio, sqrt(3) - 1)

CUGMM_HD void mulhilo(uint32_t a, uint32_t b, uint32_t& hi, uint32_t& lo) {
  uint64_t p = static_cast<uint64_t>(a) * b;
  hi = static_cast<uint32_t>(p >> 32);
  lo = static_cast<uint32_t>(p);
}
}  // namespace philox_detail

CUGMM_HD U32x4 philox4x32_10(U32x4 ctr, uint32_t k0, uint32_t k1) {
  using namespace philox_detail;
  for (int r = 0; r < 10; ++r) {
    uint32_t hi0, lo0, hi1, lo1;
    mulhilo(kM0, ctr.v[0], hi0, lo0);
    mulhilo(kM1, ctr.v[2], hi1, lo1);
    ctr = U32x4{{hi1 ^ ctr.v[1] ^ k0, lo1, hi0 ^ ctr.v[3] ^ k1, lo0}};
    k0 += kW0;
    k1 += kW1;
  }
  return ctr;
}

// Four words for draw `draw` of `stream` under `seed`.
CUGMM_HD U32x4 philox_draw(uint64_t seed, uint64_t stream, uint64_t draw) {
  U32x4 c{{static_cast<uint32_t>(draw), static_cast<uint32_t>(draw >> 32), static_cast<uint32_t>(stream),
           static_cast<uint32_t>(stream >> 32)}};
  return philox4x32_10(c, static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
}

// Element i of a stream: 32 random bits.
CUGMM_HD uint32_t philox_u32(uint64_t seed, uint64_t stream, uint64_t i) {
  return philox_draw(seed, stream, i >> 2).v[i & 3];
}

// Uniform in [0, 1) with 24 bits, exactly representable in float, so both backends agree bit for bit.
CUGMM_HD float uniform_from_word(uint32_t word) { return static_cast<float>(word >> 8) * (1.0f / 16777216.0f); }
CUGMM_HD float philox_uniform(uint64_t seed, uint64_t stream, uint64_t i) {
  return uniform_from_word(philox_u32(seed, stream, i));
}

// Standard normal for element i: Box-Muller on words (2i mod 4, 2i+1 mod 4) of draw i / 2. Computed in
// double and rounded once, so the CPU's and the GPU's log/cos (both within an ulp or two in double) give
// the same float except in vanishingly rare ties.
CUGMM_HD float philox_normal(uint64_t seed, uint64_t stream, uint64_t i) {
  U32x4 w = philox_draw(seed, stream, i >> 1);
  int lane = static_cast<int>(i & 1) * 2;
  // u1 in (0, 1] so the log is finite; u2 in [0, 1).
  double u1 = (static_cast<double>(w.v[lane]) + 1.0) * (1.0 / 4294967296.0);
  double u2 = static_cast<double>(w.v[lane + 1]) * (1.0 / 4294967296.0);
  return static_cast<float>(std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
}

}  // namespace cugmm
