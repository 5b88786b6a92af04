// The native model file (text: header line, one Gaussian per line).
#include "io/model.h"
#include "fuzz_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = cugmm::fuzz::write_input(data, size, ".txt");
  cugmm::fuzz::expect_clean([&] { cugmm::io::read_model(path); });
  return 0;
}
