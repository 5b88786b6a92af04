// The checksum of the particle cache (engine/particle_cache.cpp), in a header of its own so that the
// cache's fuzz target (tests/fuzz/fuzz_particle_cache.cpp) recomputes exactly what the reader checks: a
// byte-wise FNV-1a there had made every mutated input stop at "header checksum mismatch".
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace cugmm {

// A 64-bit FNV-1a variant over 8-byte words (the tail byte-wise): fast enough to run over every
// coefficient while it is written, and any corruption flips it. `h` chains one call onto the last.
inline uint64_t particle_cache_hash(const void* p, size_t n, uint64_t h = 1469598103934665603ull) {
  const unsigned char* b = static_cast<const unsigned char*>(p);
  const uint64_t prime = 1099511628211ull;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, b + i, 8);
    h = (h ^ w) * prime;
  }
  for (; i < n; ++i) h = (h ^ b[i]) * prime;
  return h;
}

}  // namespace cugmm
