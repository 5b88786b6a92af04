#include "nn/blas.h"

#include <cblas.h>

#include <mutex>
#include <thread>

namespace cugmm::nn {

void sgemm(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a, int lda, const float* b,
           int ldb, float beta, float* c, int ldc) {
  if (m == 0 || n == 0) return;
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, m, n, k,
              alpha, a, lda, b, ldb, beta, c, ldc);
}

void dgemm(bool trans_a, bool trans_b, int m, int n, int k, double alpha, const double* a, int lda,
           const double* b, int ldb, double beta, double* c, int ldc) {
  if (m == 0 || n == 0) return;
  cblas_dgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, m, n, k,
              alpha, a, lda, b, ldb, beta, c, ldc);
}

void set_blas_threads(int n) {
  if (n <= 0) n = static_cast<int>(std::thread::hardware_concurrency());
  openblas_set_num_threads(n > 0 ? n : 1);
}

const char* blas_threading() {
  switch (openblas_get_parallel()) {
    case 0: return "serial";
    case 1: return "pthread";
    case 2: return "openmp";
    default: return "unknown";
  }
}

std::string blas_info() {
  std::string cfg = openblas_get_config();
  while (!cfg.empty() && cfg.back() == ' ') cfg.pop_back();
  return cfg + " (" + blas_threading() + " build, core " + openblas_get_corename() + ")";
}

int blas_threads() { return openblas_get_num_threads(); }

namespace {
std::mutex g_serial_mutex;
int g_serial_depth = 0, g_serial_saved = 0;
}  // namespace

SerialBlas::SerialBlas() {
  std::lock_guard<std::mutex> lock(g_serial_mutex);
  if (g_serial_depth++ == 0) {
    g_serial_saved = blas_threads();
    set_blas_threads(1);
  }
}

SerialBlas::~SerialBlas() {
  std::lock_guard<std::mutex> lock(g_serial_mutex);
  if (--g_serial_depth == 0) set_blas_threads(g_serial_saved);
}

}  // namespace cugmm::nn
