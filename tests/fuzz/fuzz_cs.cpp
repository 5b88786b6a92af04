// cryoSPARC .cs (a structured .npy) to a STAR table, with and without poses required.
#include "io/cs.h"
#include "fuzz_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = cugmm::fuzz::write_input(data, size, ".cs");
  cugmm::fuzz::expect_clean([&] { cugmm::io::cs_to_star(path, false); });
  cugmm::fuzz::expect_clean([&] { cugmm::io::cs_to_star(path, true); });
  return 0;
}
