// The particle cache (engine/particle_cache.h). The preamble's header checksum (the cache's own hash,
// engine/particle_cache_hash.h, of the JSON, then of the particle table) is recomputed where the preamble's
// own offsets allow, so inputs reach the JSON and the table; a cache that opens is then checked block by
// block, as open_particle_cache does.
#include <vector>

#include "engine/particle_cache.h"
#include "engine/particle_cache_hash.h"
#include "fuzz_file.h"

namespace {
// Preamble fields (engine/particle_cache.cpp): json_bytes at 16, table_offset at 24, count at 40,
// header_checksum at 56; the JSON starts at byte 128.
uint64_t field(const std::vector<uint8_t>& b, size_t at) {
  uint64_t v;
  std::memcpy(&v, b.data() + at, 8);
  return v;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<uint8_t> b(data, data + size);
  if (b.size() >= 128) {
    const uint64_t json = field(b, 16), table = field(b, 24), count = field(b, 40);
    if (json <= b.size() - 128 && table <= b.size() && count <= (b.size() - table) / sizeof(cugmm::CachedParticle)) {
      const uint64_t h = cugmm::particle_cache_hash(b.data() + table, count * sizeof(cugmm::CachedParticle),
                                                    cugmm::particle_cache_hash(b.data() + 128, json));
      std::memcpy(b.data() + 56, &h, 8);
    }
  }
  const std::string path = cugmm::fuzz::write_input(b.data(), b.size(), ".cugmm-cache");
  cugmm::fuzz::expect_clean([&] {
    cugmm::ParticleCache c(path);
    const long bad = c.first_damaged_block();
    if (bad >= 0) c.damage_report(bad);
    for (size_t i = 0; i < c.count(); ++i) c.particle(i).ctf();
  });
  return 0;
}
