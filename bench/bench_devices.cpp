// Records the machine a benchmark run used; the other benchmarks add their figures beside it.
#include <cstdio>

#include "common.h"

int main(int argc, char** argv) {
  std::string out = argc > 1 ? argv[1] : "bench_devices.json";
  auto m = cugmm::bench::machine();
  std::printf("%s\n", m.dump(2).c_str());
  cugmm::bench::write_json(out, m);
  return 0;
}
