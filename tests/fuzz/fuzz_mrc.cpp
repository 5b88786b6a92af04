// MRC: the header alone (what `info` reads) and the whole file as float32.
#include "io/mrc.h"
#include "fuzz_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = cugmm::fuzz::write_input(data, size, ".mrcs");
  cugmm::fuzz::expect_clean([&] { cugmm::io::read_mrc_header(path); });
  cugmm::fuzz::expect_clean([&] { cugmm::io::read_mrc(path); });
  return 0;
}
