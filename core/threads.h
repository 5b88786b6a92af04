// `--threads N` for the CPU backend (0 = all cores). OpenMP runs the loops over particles; the BLAS
// library is told the same count by nn/.
#pragma once

namespace cugmm {
void set_threads(int n);
int num_threads();
// CPU seconds (user + system) this process's threads have used so far: what a benchmark on a shared machine
// compares, where wall-clock time depends on the other processes' load.
double process_cpu_seconds();
}  // namespace cugmm
