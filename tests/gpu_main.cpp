// GPU tests: where no usable GPU exists they say so and exit 77, which CTest reports as skipped.
#define DOCTEST_CONFIG_IMPLEMENT
#include "support.h"

#include <cstdio>

#include "core/device.h"

int main(int argc, char** argv) {
  if (!cugmm::cuda_available()) {
    std::printf("skipped: no usable GPU (%s)\n", cugmm::cuda_info().reason.c_str());
    return 77;
  }
  return cugmm::test::run_tests(argc, argv);
}
