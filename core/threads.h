// `--threads N` for the CPU backend (0 = all cores). OpenMP runs the loops over particles; the BLAS
// library is told the same count by nn/.
#pragma once

namespace cugmm {
void set_threads(int n);
int num_threads();
// CPU seconds (user + system) this process's threads have used so far: what a benchmark on a shared machine
// compares, where wall-clock time depends on the other processes' load.
double process_cpu_seconds();
// CPU seconds the calling thread has used so far (CLOCK_THREAD_CPUTIME_ID): beside process_cpu_seconds, how
// much of a phase ran on the main thread alone, i.e. what the other threads did not share.
double thread_cpu_seconds();
}  // namespace cugmm
