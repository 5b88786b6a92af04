// `--threads N` for the CPU backend (0 = all cores). OpenMP runs the loops over particles; the BLAS
// library is told the same count by nn/.
#pragma once

namespace cugmm {
void set_threads(int n);
int num_threads();
}  // namespace cugmm
