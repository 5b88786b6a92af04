// Inverted dropout with the mask drawn from Philox instead of stored: forward and backward regenerate
// the same keep decision from (seed, stream, element index), so the mask costs no memory and a CPU run
// and a GPU run drop the same units.
#pragma once
#include <cstdint>

#include "kernels/hd.h"
#include "kernels/philox.h"

namespace cugmm {

// The one predicate forward and backward share, on element i's Philox word (philox_u32). A loop over whole
// draws (four words each: the CPU backend) calls dropout_keep_word on each word of one philox_draw.
CUGMM_HD bool dropout_keep_word(float p, uint32_t word) { return uniform_from_word(word) >= p; }
CUGMM_HD bool dropout_keep(float p, uint64_t seed, uint64_t stream, uint64_t i) {
  return dropout_keep_word(p, philox_u32(seed, stream, i));
}

// Forward: x -> x / (1 - p) or 0. Backward is the same map applied to the cotangent.
template <class T>
CUGMM_HD T dropout_scale(T x, float p, bool keep) {
  return keep ? x / T(1 - p) : T(0);
}
template <class T>
CUGMM_HD T dropout_apply(T x, float p, uint64_t seed, uint64_t stream, uint64_t i) {
  return dropout_scale(x, p, dropout_keep(p, seed, stream, i));
}

}  // namespace cugmm
