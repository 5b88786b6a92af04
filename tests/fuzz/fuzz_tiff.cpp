// TIFF through libtiff: every page as one image.
#include "io/tiff.h"
#include "fuzz_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = cugmm::fuzz::write_input(data, size, ".tif");
  cugmm::fuzz::expect_clean([&] { cugmm::io::read_tiff(path); });
  return 0;
}
