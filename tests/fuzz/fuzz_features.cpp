// The gradient-feature file (engine/features.h). The trailing FNV-1a checksum is recomputed so inputs reach
// the preamble's sizes and the JSON header; a file that opens is then read row by row.
#include <vector>

#include "engine/features.h"
#include "fuzz_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<uint8_t> b(data, data + size);
  if (b.size() >= 8) {
    const uint64_t h = cugmm::fuzz::fnv1a(b.data(), b.size() - 8);
    std::memcpy(b.data() + b.size() - 8, &h, 8);
  }
  const std::string path = cugmm::fuzz::write_input(b.data(), b.size(), ".cugmm-features");
  cugmm::fuzz::expect_clean([&] {
    cugmm::FeatureFile f(path, nlohmann::json());
    std::vector<float> row(f.width());
    for (size_t i = 0; i < f.count() && i < 64; ++i) f.gather(&i, 1, row.data());
  });
  return 0;
}
