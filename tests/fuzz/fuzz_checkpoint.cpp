// Checkpoints (nn/checkpoint.h). The trailing CRC-32 is recomputed, so inputs reach the JSON header and the
// array table behind it.
#include <vector>

#include "nn/checkpoint.h"
#include "fuzz_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<uint8_t> b(data, data + size);
  if (b.size() >= 4) {
    const uint32_t crc = cugmm::nn::crc32(0, b.data(), b.size() - 4);
    std::memcpy(b.data() + b.size() - 4, &crc, 4);
  }
  const std::string path = cugmm::fuzz::write_input(b.data(), b.size(), ".ckpt");
  cugmm::fuzz::expect_clean([&] { cugmm::nn::Checkpoint::load(path); });
  return 0;
}
