// The CPU's matrix products go through CBLAS (Debian's OpenBLAS). Row-major throughout, as nn/ stores
// activations batch x features.
#pragma once
#include <string>

namespace cugmm::nn {

// C = alpha * op(A) op(B) + beta * C; A is m x k after op, B is k x n after op, all row-major.
void sgemm(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a, int lda, const float* b,
           int ldb, float beta, float* c, int ldc);

// The same in double: the CPU layer maths is templated on the scalar so tests check it in double.
void dgemm(bool trans_a, bool trans_b, int m, int n, int k, double alpha, const double* a, int lda,
           const double* b, int ldb, double beta, double* c, int ldc);

// Tells OpenBLAS how many threads to use (0 = all cores); --threads calls it with OpenMP's count.
void set_blas_threads(int n);
int blas_threads();

// Single-threaded BLAS for a scope: callers that run many small GEMMs in their own OpenMP loop (one per
// thread) would otherwise oversubscribe the cores with OpenBLAS's pthreads. OpenBLAS's count is one per
// process, so scopes on several threads (two engines) are counted: the first saves it, the last restores it.
class SerialBlas {
 public:
  SerialBlas();
  ~SerialBlas();
  SerialBlas(const SerialBlas&) = delete;
  SerialBlas& operator=(const SerialBlas&) = delete;
};

// Which BLAS ran, for benchmarks and logs: "OpenBLAS 0.3.21 ... (OpenMP build, core SkylakeX)".
// The build matters (cmake/cugmmDependencies.cmake): the OpenMP one shares libgomp's pool with cugmm's
// loops; the pthread one competes with it. The core type is the kernel OpenBLAS picked for this CPU
// (OPENBLAS_CORETYPE overrides it).
std::string blas_info();
// "openmp", "pthread" or "serial": the threading of the OpenBLAS that is loaded.
const char* blas_threading();

}  // namespace cugmm::nn
