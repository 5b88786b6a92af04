// STAR: the parser, then the particle reader on top of it (optics, pixel sizes, image names; the stacks it
// names do not exist, so it stops at the first image, after every column has been interpreted).
#include "io/particles.h"
#include "io/star.h"
#include "fuzz_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = cugmm::fuzz::write_input(data, size, ".star");
  cugmm::fuzz::expect_clean([&] { cugmm::io::read_star(path); });
  cugmm::fuzz::expect_clean([&] { cugmm::io::read_particles(path, "", false); });
  return 0;
}
