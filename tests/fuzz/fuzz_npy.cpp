// .npy: the array header (dtype description, shape, byte order) and its data.
#include "io/npy.h"
#include "fuzz_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = cugmm::fuzz::write_input(data, size, ".npy");
  cugmm::fuzz::expect_clean([&] { cugmm::io::read_npy(path); });
  return 0;
}
