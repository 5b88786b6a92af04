// CUDA launchers for nn/ops.h: cuBLAS for the products, and small kernels that loop over the same
// per-element functions (kernels/nn_*.h) as the CPU backend. Everything runs on the default stream.
// Column reductions give one thread per column and sum rows in order, as the CPU does: deterministic,
// coalesced (neighbouring threads read neighbouring columns), and no float atomics.
#include <cublas_v2.h>

#include <algorithm>
#include <vector>

#include "core/cuda_buffer.h"
#include "nn/cublas_check.h"
#include "kernels/nn_act.h"
#include "kernels/nn_adam.h"
#include "kernels/nn_batchnorm.h"
#include "kernels/nn_dropout.h"
#include "kernels/philox.h"
#include "nn/ops_cuda.h"

namespace cugmm::nn::cuda {
namespace {

constexpr int kThreads = 256;

int blocks_for(size_t n) {
  size_t b = (n + kThreads - 1) / kThreads;
  return static_cast<int>(std::min<size_t>(b, 65535u * 16u));
}

cublasHandle_t handle() {
  // One per host thread; FP32 maths by default (TF32 only where an accuracy benchmark allows it).
  thread_local cublasHandle_t h = [] {
    cublasHandle_t c;
    CUGMM_CHECK(cublasCreate(&c));
    return c;
  }();
  return h;
}

#define CUGMM_GRID_LOOP(i, n) \
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < (n); i += size_t(blockDim.x) * gridDim.x)

__global__ void add_rows_k(float* y, const float* b, int cols, size_t n) {
  CUGMM_GRID_LOOP(i, n) y[i] += b[i % cols];
}

__global__ void col_sums_k(const float* v, float* out, int rows, int cols) {
  int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= cols) return;
  float s = 0;
  for (int r = 0; r < rows; ++r) s += v[size_t(r) * cols + c];
  out[c] = s;
}

__global__ void act_fwd_k(Act a, float slope, float* y, size_t n) {
  CUGMM_GRID_LOOP(i, n) y[i] = cugmm::act_fwd(a, y[i], slope);
}

__global__ void act_bwd_k(Act a, float slope, const float* y, float* v, size_t n) {
  CUGMM_GRID_LOOP(i, n) v[i] = cugmm::act_bwd(a, y[i], v[i], slope);
}

__global__ void dropout_k(float p, uint64_t seed, uint64_t stream, const float* x, float* y, size_t n) {
  CUGMM_GRID_LOOP(i, n) y[i] = dropout_apply(x[i], p, seed, stream, i);
}

__global__ void bn_stats_k(const float* x, float* mean, float* rstd, float* run_mean, float* run_var,
                           float momentum, float eps, int rows, int cols) {
  int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= cols) return;
  float s = 0;
  for (int r = 0; r < rows; ++r) s += x[size_t(r) * cols + c];
  float mu = s / float(rows), ss = 0;
  for (int r = 0; r < rows; ++r) {
    float d = x[size_t(r) * cols + c] - mu;
    ss += d * d;
  }
  float var = ss / float(rows);
  mean[c] = mu;
  rstd[c] = bn_rstd(var, eps);
  run_mean[c] = bn_running(run_mean[c], mu, momentum);
  run_var[c] = bn_running(run_var[c], rows > 1 ? ss / float(rows - 1) : var, momentum);
}

__global__ void bn_running_k(const float* run_mean, const float* run_var, float* mean, float* rstd, float eps,
                             int cols) {
  int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= cols) return;
  mean[c] = run_mean[c];
  rstd[c] = bn_rstd(run_var[c], eps);
}

__global__ void bn_apply_k(const float* x, float* y, const float* gamma, const float* beta, const float* mean,
                           const float* rstd, int cols, size_t n) {
  CUGMM_GRID_LOOP(i, n) {
    size_t c = i % cols;
    y[i] = bn_fwd(x[i], mean[c], rstd[c], gamma[c], beta[c]);
  }
}

__global__ void bn_bwd_k(bool train, const float* x, const float* v_y, const float* gamma, const float* mean,
                         const float* rstd, float* v_x, float* v_gamma, float* v_beta, int rows, int cols) {
  int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= cols) return;
  float s1 = 0, s2 = 0;
  for (int r = 0; r < rows; ++r) {
    size_t i = size_t(r) * cols + c;
    s1 += v_y[i];
    s2 += v_y[i] * ((x[i] - mean[c]) * rstd[c]);
  }
  v_beta[c] = s1;
  v_gamma[c] = s2;
  if (!v_x) return;
  for (int r = 0; r < rows; ++r) {
    size_t i = size_t(r) * cols + c;
    float xhat = (x[i] - mean[c]) * rstd[c];
    v_x[i] = train ? bn_bwd_train(v_y[i], xhat, gamma[c], rstd[c], s1, s2, float(rows))
                   : bn_bwd_infer(v_y[i], gamma[c], rstd[c]);
  }
}

// Fixed grid, block sums in a fixed tree, partials added on the host in order: deterministic.
constexpr int kSumBlocks = 512;
__global__ void sum_squares_k(const float* x, size_t n, double* part) {
  __shared__ double sh[kThreads];
  double s = 0;
  CUGMM_GRID_LOOP(i, n) s += double(x[i]) * x[i];
  sh[threadIdx.x] = s;
  __syncthreads();
  for (int w = kThreads / 2; w > 0; w /= 2) {
    if (threadIdx.x < w) sh[threadIdx.x] += sh[threadIdx.x + w];
    __syncthreads();
  }
  if (threadIdx.x == 0) part[blockIdx.x] = sh[0];
}

__global__ void add_normal_k(float* x, size_t n, float sigma, uint64_t seed, uint64_t stream) {
  CUGMM_GRID_LOOP(i, n) x[i] += sigma * philox_normal(seed, stream, i);
}

// Up to kSegs parameter groups per launch, passed by value: one flat pass over all parameters, each
// element finding its group's lr factor and wd by a binary search over the group ends.
constexpr int kSegs = 32;
struct SegTable {
  int n;
  size_t begin;  // of the first group; the groups are contiguous and in order
  size_t end[kSegs];
  float lr[kSegs], wd[kSegs];
};

__device__ AdamScalars seg_scalars(const SegTable& t, size_t i, AdamScalars s) {
  int lo = 0, hi = t.n - 1;
  while (lo < hi) {
    int mid = (lo + hi) / 2;
    if (i < t.end[mid]) hi = mid; else lo = mid + 1;
  }
  s.lr *= t.lr[lo];
  s.wd = t.wd[lo];
  return s;
}

__global__ void adam_f32_k(float* p, const float* g, float* m, float* v, SegTable t, AdamScalars s) {
  CUGMM_GRID_LOOP(k, t.end[t.n - 1] - t.begin) {
    size_t i = t.begin + k;
    adam_step(p[i], g[i], m[i], v[i], seg_scalars(t, i, s));
  }
}

__global__ void adam_bf16_k(float* p, const float* g, uint16_t* m, uint16_t* v, SegTable t, AdamScalars s,
                            uint64_t seed, uint64_t step) {
  CUGMM_GRID_LOOP(k, t.end[t.n - 1] - t.begin) {
    size_t i = t.begin + k;
    adam_step_bf16(p[i], g[i], m[i], v[i], seg_scalars(t, i, s), seed, step, i);
  }
}

// Splits the group list into launch-sized tables (one launch for any realistic network).
template <class Launch>
void for_tables(const std::vector<AdamSegment>& segs, Launch launch) {
  for (size_t a = 0; a < segs.size(); a += kSegs) {
    SegTable t{};
    t.n = static_cast<int>(std::min<size_t>(kSegs, segs.size() - a));
    t.begin = segs[a].begin;
    for (int j = 0; j < t.n; ++j) {
      const AdamSegment& s = segs[a + j];
      if (j > 0 && s.begin != t.end[j - 1]) throw Error("Adam parameter groups must be contiguous and in order");
      t.end[j] = s.end;
      t.lr[j] = s.lr_scale;
      t.wd[j] = s.wd;
    }
    size_t n = t.end[t.n - 1] - t.begin;
    if (n) launch(t, n);
  }
}

int col_blocks(int cols) { return (cols + kThreads - 1) / kThreads; }

}  // namespace

void gemm(bool ta, bool tb, int m, int n, int k, float alpha, const float* a, int lda, const float* b, int ldb,
          float beta, float* c, int ldc) {
  if (m == 0 || n == 0) return;
  // Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: swap the operands, keep the flags.
  CUGMM_CHECK(cublasSgemm(handle(), tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, n, m, k, &alpha,
                          b, ldb, a, lda, &beta, c, ldc));
}

void add_rows(float* y, const float* b, int rows, int cols) {
  size_t n = size_t(rows) * cols;
  if (n == 0) return;
  add_rows_k<<<blocks_for(n), kThreads>>>(y, b, cols, n);
  CUGMM_CHECK_LAUNCH();
}

void col_sums(const float* v, float* out, int rows, int cols) {
  if (cols == 0) return;
  col_sums_k<<<col_blocks(cols), kThreads>>>(v, out, rows, cols);
  CUGMM_CHECK_LAUNCH();
}

void act_fwd(Act a, float slope, float* y, size_t n) {
  if (n == 0) return;
  act_fwd_k<<<blocks_for(n), kThreads>>>(a, slope, y, n);
  CUGMM_CHECK_LAUNCH();
}

void act_bwd(Act a, float slope, const float* y, float* v, size_t n) {
  if (n == 0) return;
  act_bwd_k<<<blocks_for(n), kThreads>>>(a, slope, y, v, n);
  CUGMM_CHECK_LAUNCH();
}

void dropout(float p, uint64_t seed, uint64_t stream, const float* x, float* y, size_t n) {
  if (n == 0) return;
  dropout_k<<<blocks_for(n), kThreads>>>(p, seed, stream, x, y, n);
  CUGMM_CHECK_LAUNCH();
}

void bn_fwd_train(const float* x, float* y, const float* gamma, const float* beta, float* mean, float* rstd,
                  float* run_mean, float* run_var, float momentum, float eps, int rows, int cols) {
  size_t n = size_t(rows) * cols;
  if (n == 0) return;
  bn_stats_k<<<col_blocks(cols), kThreads>>>(x, mean, rstd, run_mean, run_var, momentum, eps, rows, cols);
  CUGMM_CHECK_LAUNCH();
  bn_apply_k<<<blocks_for(n), kThreads>>>(x, y, gamma, beta, mean, rstd, cols, n);
  CUGMM_CHECK_LAUNCH();
}

void bn_fwd_infer(const float* x, float* y, const float* gamma, const float* beta, const float* run_mean,
                  const float* run_var, float* mean, float* rstd, float eps, int rows, int cols) {
  size_t n = size_t(rows) * cols;
  if (n == 0) return;
  bn_running_k<<<col_blocks(cols), kThreads>>>(run_mean, run_var, mean, rstd, eps, cols);
  CUGMM_CHECK_LAUNCH();
  bn_apply_k<<<blocks_for(n), kThreads>>>(x, y, gamma, beta, mean, rstd, cols, n);
  CUGMM_CHECK_LAUNCH();
}

void bn_bwd(bool train, const float* x, const float* v_y, const float* gamma, const float* mean, const float* rstd,
            float* v_x, float* v_gamma, float* v_beta, int rows, int cols) {
  if (cols == 0) return;
  bn_bwd_k<<<col_blocks(cols), kThreads>>>(train, x, v_y, gamma, mean, rstd, v_x, v_gamma, v_beta, rows, cols);
  CUGMM_CHECK_LAUNCH();
}

double sum_squares(const float* x, size_t n) {
  if (n == 0) return 0;
  int blocks = std::min(kSumBlocks, blocks_for(n));
  thread_local DeviceBuffer<double> part;
  part.resize(blocks);
  sum_squares_k<<<blocks, kThreads>>>(x, n, part.data());
  CUGMM_CHECK_LAUNCH();
  std::vector<double> h(blocks);
  part.download(h.data(), blocks);
  double s = 0;
  for (double v : h) s += v;
  return s;
}

void add_normal(float* x, size_t n, float sigma, uint64_t seed, uint64_t stream) {
  if (n == 0) return;
  add_normal_k<<<blocks_for(n), kThreads>>>(x, n, sigma, seed, stream);
  CUGMM_CHECK_LAUNCH();
}

void adam_f32(float* p, const float* g, float* m, float* v, const std::vector<AdamSegment>& segs,
              const AdamScalars& s) {
  for_tables(segs, [&](const SegTable& t, size_t n) {
    adam_f32_k<<<blocks_for(n), kThreads>>>(p, g, m, v, t, s);
    CUGMM_CHECK_LAUNCH();
  });
}

void adam_bf16(float* p, const float* g, uint16_t* m, uint16_t* v, const std::vector<AdamSegment>& segs,
               const AdamScalars& s, uint64_t seed, uint64_t step) {
  for_tables(segs, [&](const SegTable& t, size_t n) {
    adam_bf16_k<<<blocks_for(n), kThreads>>>(p, g, m, v, t, s, seed, step);
    CUGMM_CHECK_LAUNCH();
  });
}

}  // namespace cugmm::nn::cuda
