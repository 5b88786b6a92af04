// What every fuzz target shares: the input as a file (the readers take paths, as users give them), a clean
// refusal (cugmm::Error, which the program prints as one line) told apart from a defect, and the checksums
// some formats carry, recomputed so the fuzzer reaches the parsing behind them instead of stopping there.
#pragma once
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>

#include "core/error.h"

namespace cugmm::fuzz {

// A private directory per process under $TMPDIR (libFuzzer's -fork/-jobs workers run side by side), removed
// when the process exits normally; a crash leaves it, and scripts/fuzz.sh removes the TMPDIR it made.
inline void remove_scratch_dir();
inline const std::string& scratch_dir() {
  // Never destroyed: the exit handler below reads it, and a static's destructor would run first.
  static const std::string* dir = [] {
    const char* tmp = std::getenv("TMPDIR");
    auto* t = new std::string(std::string(tmp && *tmp ? tmp : "/tmp") + "/cugmm-fuzz-XXXXXX");
    if (!::mkdtemp(t->data())) std::abort();
    std::atexit(remove_scratch_dir);
    return t;
  }();
  return *dir;
}
inline void remove_scratch_dir() {
  std::error_code ec;
  std::filesystem::remove_all(scratch_dir(), ec);
}

// The bytes under a name with `ext` (readers pick the format by extension), replacing the last input.
inline std::string write_input(const uint8_t* data, size_t size, const std::string& ext) {
  const std::string path = scratch_dir() + "/input" + ext;
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) std::abort();
  if (size && std::fwrite(data, 1, size, f) != size) std::abort();
  std::fclose(f);
  return path;
}

// A reader may refuse an input only with cugmm::Error (a message naming the file and what is wrong). Any
// other exception escapes: libFuzzer reports it as a crash and keeps the input, since the program would
// print a bare exception text for it.
template <class F>
void expect_clean(F&& read) {
  try {
    read();
  } catch (const cugmm::Error&) {
  }
}

// FNV-1a 64, as the feature file computes it (the particle cache has its own: engine/particle_cache_hash.h).
inline uint64_t fnv1a(const void* p, size_t n, uint64_t h = 1469598103934665603ull) {
  const unsigned char* b = static_cast<const unsigned char*>(p);
  for (size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 1099511628211ull;
  return h;
}

}  // namespace cugmm::fuzz
