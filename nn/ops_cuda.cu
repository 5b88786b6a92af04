// CUDA launchers for nn/ops.h: cuBLAS (loaded on first use, nn/cublas_api.h) for the products, and small
// kernels that loop over the same per-element functions (kernels/nn_*.h) as the CPU backend. Everything
// is queued on the context's stream. Column reductions are fixed-order 2-D reductions
// (nn/col_reduce.cuh) and sum_squares a fixed grid of CUB block reductions: deterministic, no atomics.
#include <cub/block/block_reduce.cuh>

#include <algorithm>
#include <memory>
#include <vector>

#include "core/buffer.h"
#include "kernels/nn_act.h"
#include "kernels/nn_adam.h"
#include "kernels/nn_batchnorm.h"
#include "kernels/nn_dropout.h"
#include "kernels/philox.h"
#include "nn/col_reduce.cuh"
#include "nn/cublas_check.h"
#include "nn/ops_cuda.h"

namespace cugmm::nn::cuda {
namespace {

constexpr int kThreads = 256;

int blocks_for(size_t n) {
  size_t b = (n + kThreads - 1) / kThreads;
  return static_cast<int>(std::min<size_t>(b, 65535u * 16u));
}

cudaStream_t stream_of(const Context& cx) { return static_cast<cudaStream_t>(cx.stream()); }

// Per-context workspace of the reductions, freed with the context (on its stream).
struct Work {
  Buffer<float> part;       // column-reduction partials
  Buffer<double> sq_part;   // sum_squares block partials
  Buffer<double> sq_total;  // and their total
  explicit Work(const Context& cx) : part(cx), sq_part(cx), sq_total(cx, 1) {}
};
Work& work(Context& cx) { return cx.resource<Work>([&] { return std::make_unique<Work>(cx); }); }

#define CUGMM_GRID_LOOP(i, n) \
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < (n); i += size_t(blockDim.x) * gridDim.x)

__global__ void add_rows_k(float* y, const float* b, int cols, size_t n) {
  CUGMM_GRID_LOOP(i, n) y[i] += b[i % cols];
}

__global__ void act_fwd_k(Act a, float slope, float* y, size_t n) {
  CUGMM_GRID_LOOP(i, n) y[i] = cugmm::act_fwd(a, y[i], slope);
}

__global__ void act_bwd_k(Act a, float slope, const float* y, float* v, size_t n) {
  CUGMM_GRID_LOOP(i, n) v[i] = cugmm::act_bwd(a, y[i], v[i], slope);
}

__global__ void dropout_k(float p, uint64_t seed, uint64_t stream, const float* x, float* y, size_t n,
                          uint64_t first) {
  CUGMM_GRID_LOOP(i, n) y[i] = dropout_apply(x[i], p, seed, stream, first + i);
}

// ---- column-reduction terms and finishes (nn/col_reduce.cuh) ----
struct ValueTerm {  // v[r, c]
  const float* v;
  int cols;
  __device__ void operator()(int r, int c, float* t) const { t[0] = v[size_t(r) * cols + c]; }
};
struct StoreFinish {
  float* out;
  __device__ void operator()(int c, const float* s) const { out[c] = s[0]; }
};
struct MeanFinish {
  float* mean;
  int rows;
  __device__ void operator()(int c, const float* s) const { mean[c] = bn_mean(s[0], rows); }
};
struct SqDevTerm {
  const float *x, *mean;
  int cols;
  __device__ void operator()(int r, int c, float* t) const { t[0] = bn_sq_dev(x[size_t(r) * cols + c], mean[c]); }
};
struct StatsFinish {
  const float* mean;
  float *rstd, *run_mean, *run_var;
  int rows;
  float eps, momentum;
  __device__ void operator()(int c, const float* s) const {
    bn_stats(mean[c], s[0], rows, eps, momentum, rstd[c], run_mean[c], run_var[c]);
  }
};
struct BnBwdTerm {
  const float *x, *v_y, *mean, *rstd;
  int cols;
  __device__ void operator()(int r, int c, float* t) const {
    size_t i = size_t(r) * cols + c;
    bn_bwd_terms(v_y[i], x[i], mean[c], rstd[c], t[0], t[1]);
  }
};
struct BnBwdFinish {
  float *v_beta, *v_gamma;
  __device__ void operator()(int c, const float* s) const {
    v_beta[c] = s[0];
    v_gamma[c] = s[1];
  }
};

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

// The split-batch forward's per-column steps after each sum over the ranks (nn/ops.h BnSync).
__global__ void bn_sync_mean_k(float* mean, int total, int cols) {
  int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c < cols) mean[c] = bn_mean(mean[c], total);
}
__global__ void bn_sync_stats_k(StatsFinish finish, const float* sum_sq_dev, int cols) {
  int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c < cols) finish(c, sum_sq_dev + c);
}

__global__ void bn_bwd_x_k(bool train, const float* x, const float* v_y, const float* gamma, const float* mean,
                           const float* rstd, const float* v_beta, const float* v_gamma, float* v_x, int rows,
                           int cols, size_t n) {
  CUGMM_GRID_LOOP(i, n) {
    size_t c = i % cols;
    v_x[i] = bn_bwd_x(train, v_y[i], x[i], mean[c], rstd[c], gamma[c], v_beta[c], v_gamma[c], rows);
  }
}

// A fixed grid (its size depends on n only) of block sums in CUB's fixed tree, then one block adding the
// partials in a fixed order: the same double every run.
constexpr int kSumBlocks = 512;
using SumReduce = cub::BlockReduce<double, kThreads>;

__global__ void sum_squares_k(const float* x, size_t n, double* part) {
  __shared__ typename SumReduce::TempStorage tmp;
  double s = 0;
  CUGMM_GRID_LOOP(i, n) s += double(x[i]) * x[i];
  double b = SumReduce(tmp).Sum(s);
  if (threadIdx.x == 0) part[blockIdx.x] = b;
}

__global__ void sum_partials_k(const double* part, int n, double* total) {
  __shared__ typename SumReduce::TempStorage tmp;
  double s = 0;
  for (int i = threadIdx.x; i < n; i += kThreads) s += part[i];
  double b = SumReduce(tmp).Sum(s);
  if (threadIdx.x == 0) *total = b;
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

__global__ void adam_f32_k(float* p, const float* g, float* m, float* v, SegTable t, AdamScalars s, uint32_t* flags) {
  CUGMM_GRID_LOOP(k, t.end[t.n - 1] - t.begin) {
    size_t i = t.begin + k;
    if (finite_f32(g[i])) adam_step(p[i], g[i], m[i], v[i], seg_scalars(t, i, s));
    else atomicOr(flags, kFlagNonFiniteGradient);
  }
}

// One thread per quad of the absolute index (kernels/nn_adam.h): one Philox draw for four elements.
__global__ void adam_bf16_k(float* p, const float* g, uint16_t* m, uint16_t* v, SegTable t, AdamScalars s,
                            uint64_t seed, uint64_t step, uint32_t* flags) {
  const size_t end = t.end[t.n - 1], q0 = t.begin / kAdamQuad, q1 = (end - 1) / kAdamQuad + 1;
  CUGMM_GRID_LOOP(k, q1 - q0) {
    const size_t q = q0 + k;
    const U32x4 w = adam_bf16_words(seed, step, q);
    const size_t q_lo = q * kAdamQuad, q_hi = q_lo + kAdamQuad;
    const size_t lo = q_lo > t.begin ? q_lo : t.begin, hi = q_hi < end ? q_hi : end;
    for (size_t i = lo; i < hi; ++i) {
      if (finite_f32(g[i])) adam_step_bf16(p[i], g[i], m[i], v[i], seg_scalars(t, i, s), w.v[i % kAdamQuad]);
      else atomicOr(flags, kFlagNonFiniteGradient);
    }
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

void gemm(Context& cx, bool ta, bool tb, int m, int n, int k, float alpha, const float* a, int lda, const float* b,
          int ldb, float beta, float* c, int ldc) {
  if (m == 0 || n == 0) return;
  // Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: swap the operands, keep the flags.
  CUGMM_CHECK(cublas().sgemm(cublas_handle(cx), tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, n, m,
                             k, &alpha, b, ldb, a, lda, &beta, c, ldc));
}

void add_rows(Context& cx, float* y, const float* b, int rows, int cols) {
  size_t n = size_t(rows) * cols;
  if (n == 0) return;
  add_rows_k<<<blocks_for(n), kThreads, 0, stream_of(cx)>>>(y, b, cols, n);
  CUGMM_CHECK_LAUNCH();
}

void col_sums(Context& cx, const float* v, float* out, int rows, int cols) {
  if (cols == 0) return;
  if (rows == 0) {
    CUGMM_CHECK(cudaMemsetAsync(out, 0, size_t(cols) * sizeof(float), stream_of(cx)));
    return;
  }
  col_reduce<1>(cx, work(cx).part, rows, cols, ValueTerm{v, cols}, StoreFinish{out});
}

void act_fwd(Context& cx, Act a, float slope, float* y, size_t n) {
  if (n == 0) return;
  act_fwd_k<<<blocks_for(n), kThreads, 0, stream_of(cx)>>>(a, slope, y, n);
  CUGMM_CHECK_LAUNCH();
}

void act_bwd(Context& cx, Act a, float slope, const float* y, float* v, size_t n) {
  if (n == 0) return;
  act_bwd_k<<<blocks_for(n), kThreads, 0, stream_of(cx)>>>(a, slope, y, v, n);
  CUGMM_CHECK_LAUNCH();
}

void dropout(Context& cx, float p, uint64_t seed, uint64_t stream, const float* x, float* y, size_t n, uint64_t first) {
  if (n == 0) return;
  dropout_k<<<blocks_for(n), kThreads, 0, stream_of(cx)>>>(p, seed, stream, x, y, n, first);
  CUGMM_CHECK_LAUNCH();
}

void bn_fwd_train(Context& cx, const float* x, float* y, const float* gamma, const float* beta, float* mean,
                  float* rstd, float* run_mean, float* run_var, float momentum, float eps, int rows, int cols) {
  size_t n = size_t(rows) * cols;
  if (n == 0) return;
  Buffer<float>& part = work(cx).part;
  col_reduce<1>(cx, part, rows, cols, ValueTerm{x, cols}, MeanFinish{mean, rows});
  col_reduce<1>(cx, part, rows, cols, SqDevTerm{x, mean, cols},
                StatsFinish{mean, rstd, run_mean, run_var, rows, eps, momentum});
  bn_apply_k<<<blocks_for(n), kThreads, 0, stream_of(cx)>>>(x, y, gamma, beta, mean, rstd, cols, n);
  CUGMM_CHECK_LAUNCH();
}

void bn_fwd_infer(Context& cx, const float* x, float* y, const float* gamma, const float* beta,
                  const float* run_mean, const float* run_var, float* mean, float* rstd, float eps, int rows,
                  int cols) {
  size_t n = size_t(rows) * cols;
  if (n == 0) return;
  bn_running_k<<<col_blocks(cols), kThreads, 0, stream_of(cx)>>>(run_mean, run_var, mean, rstd, eps, cols);
  CUGMM_CHECK_LAUNCH();
  bn_apply_k<<<blocks_for(n), kThreads, 0, stream_of(cx)>>>(x, y, gamma, beta, mean, rstd, cols, n);
  CUGMM_CHECK_LAUNCH();
}

void bn_bwd(Context& cx, bool train, const float* x, const float* v_y, const float* gamma, const float* mean,
            const float* rstd, float* v_x, float* v_gamma, float* v_beta, int rows, int cols) {
  size_t n = size_t(rows) * cols;
  if (n == 0) return;
  col_reduce<2>(cx, work(cx).part, rows, cols, BnBwdTerm{x, v_y, mean, rstd, cols}, BnBwdFinish{v_beta, v_gamma});
  if (!v_x) return;
  bn_bwd_x_k<<<blocks_for(n), kThreads, 0, stream_of(cx)>>>(train, x, v_y, gamma, mean, rstd, v_beta, v_gamma, v_x,
                                                            rows, cols, n);
  CUGMM_CHECK_LAUNCH();
}

void bn_fwd_train_synced(Context& cx, const float* x, float* y, const float* gamma, const float* beta, float* mean,
                         float* rstd, float* run_mean, float* run_var, float momentum, float eps, int rows, int cols,
                         const BnSync& sync) {
  size_t n = size_t(rows) * cols;
  Buffer<float>& part = work(cx).part;
  col_reduce<1>(cx, part, rows, cols, ValueTerm{x, cols}, StoreFinish{mean});
  sync.sum(mean, size_t(cols));
  bn_sync_mean_k<<<col_blocks(cols), kThreads, 0, stream_of(cx)>>>(mean, sync.rows, cols);
  CUGMM_CHECK_LAUNCH();
  col_reduce<1>(cx, part, rows, cols, SqDevTerm{x, mean, cols}, StoreFinish{sync.scratch});
  sync.sum(sync.scratch, size_t(cols));
  bn_sync_stats_k<<<col_blocks(cols), kThreads, 0, stream_of(cx)>>>(
      StatsFinish{mean, rstd, run_mean, run_var, sync.rows, eps, momentum}, sync.scratch, cols);
  CUGMM_CHECK_LAUNCH();
  if (n == 0) return;
  bn_apply_k<<<blocks_for(n), kThreads, 0, stream_of(cx)>>>(x, y, gamma, beta, mean, rstd, cols, n);
  CUGMM_CHECK_LAUNCH();
}

void bn_bwd_synced(Context& cx, const float* x, const float* v_y, const float* gamma, const float* mean,
                   const float* rstd, float* v_x, float* v_gamma, float* v_beta, int rows, int cols,
                   const BnSync& sync) {
  size_t n = size_t(rows) * cols;
  col_reduce<2>(cx, work(cx).part, rows, cols, BnBwdTerm{x, v_y, mean, rstd, cols}, BnBwdFinish{v_beta, v_gamma});
  if (!v_x) return;
  // The parameter gradients stay this rank's; the whole batch's sums go to scratch for the input gradient.
  float* s_beta = sync.scratch;
  float* s_gamma = sync.scratch + cols;
  mem_copy_async(Device::cuda, s_beta, Device::cuda, v_beta, size_t(cols) * sizeof(float), cx.stream());
  mem_copy_async(Device::cuda, s_gamma, Device::cuda, v_gamma, size_t(cols) * sizeof(float), cx.stream());
  sync.sum(sync.scratch, 2 * size_t(cols));
  if (n == 0) return;
  bn_bwd_x_k<<<blocks_for(n), kThreads, 0, stream_of(cx)>>>(true, x, v_y, gamma, mean, rstd, s_beta, s_gamma, v_x,
                                                            sync.rows, cols, n);
  CUGMM_CHECK_LAUNCH();
}

double sum_squares(Context& cx, const float* x, size_t n) {
  if (n == 0) return 0;
  Work& w = work(cx);
  int blocks = std::min(kSumBlocks, blocks_for(n));
  w.sq_part.resize(blocks);
  sum_squares_k<<<blocks, kThreads, 0, stream_of(cx)>>>(x, n, w.sq_part.data());
  CUGMM_CHECK_LAUNCH();
  sum_partials_k<<<1, kThreads, 0, stream_of(cx)>>>(w.sq_part.data(), blocks, w.sq_total.data());
  CUGMM_CHECK_LAUNCH();
  double s = 0;
  w.sq_total.download(&s, 1);  // waits on the stream
  return s;
}

void add_normal(Context& cx, float* x, size_t n, float sigma, uint64_t seed, uint64_t stream) {
  if (n == 0) return;
  add_normal_k<<<blocks_for(n), kThreads, 0, stream_of(cx)>>>(x, n, sigma, seed, stream);
  CUGMM_CHECK_LAUNCH();
}

// Non-finite gradients set a flag that the next synchronize() reports: no read-back per step.
size_t adam_f32(Context& cx, float* p, const float* g, float* m, float* v, const std::vector<AdamSegment>& segs,
                const AdamScalars& s) {
  for_tables(segs, [&](const SegTable& t, size_t n) {
    adam_f32_k<<<blocks_for(n), kThreads, 0, stream_of(cx)>>>(p, g, m, v, t, s, cx.flags());
    CUGMM_CHECK_LAUNCH();
  });
  return 0;
}

size_t adam_bf16(Context& cx, float* p, const float* g, uint16_t* m, uint16_t* v, const std::vector<AdamSegment>& segs,
                 const AdamScalars& s, uint64_t seed, uint64_t step) {
  for_tables(segs, [&](const SegTable& t, size_t n) {
    adam_bf16_k<<<blocks_for(n / kAdamQuad + 2), kThreads, 0, stream_of(cx)>>>(p, g, m, v, t, s, seed, step,
                                                                                cx.flags());
    CUGMM_CHECK_LAUNCH();
  });
  return 0;
}

}  // namespace cugmm::nn::cuda
