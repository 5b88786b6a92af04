// Bounds of the options that size work. They are far beyond real use (cryo-EM boxes are <= ~1,024 px,
// data sets <= ~10^7 particles) and keep every product of them within 64 bits; what is within them but
// does not fit this machine is refused by core/memory.h's require_host_memory before any work.
#pragma once

namespace cugmm::cli {
constexpr long long kMaxBox = 8192;             // pixels
constexpr long long kMaxCount = 1'000'000'000;  // particles
}  // namespace cugmm::cli
