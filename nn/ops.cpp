#include "nn/ops.h"

#include <omp.h>

#include <algorithm>

#include "core/error.h"
#include "kernels/philox.h"
#include "nn/cpu_ops.h"
#ifdef CUGMM_HAVE_CUDA
#include "nn/ops_cuda.h"
#define CUGMM_NN_DISPATCH(call) \
  if (cx.cuda()) return cuda::call
#else
#define CUGMM_NN_DISPATCH(call) \
  if (cx.cuda()) throw Error("this cugmm was built without the CUDA backend")
#endif

namespace cugmm::nn::ops {

void gemm(Context& cx, bool ta, bool tb, int m, int n, int k, float alpha, const float* a, int lda, const float* b,
          int ldb, float beta, float* c, int ldc) {
  CUGMM_NN_DISPATCH(gemm(cx, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc));
  cpu::gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void dense_fwd(Context& cx, const float* x, const float* w, const float* b, float* y, int rows, int in, int out) {
  if (cx.cuda()) {  // the same two steps as cpu::dense_fwd, on cuBLAS
    gemm(cx, false, true, rows, out, in, 1.f, x, in, w, in, 0.f, y, out);
    if (b) add_rows(cx, y, b, rows, out);
    return;
  }
  cpu::dense_fwd(x, w, b, y, rows, in, out);
}

void dense_bwd(Context& cx, const float* x, const float* w, const float* v_y, float* v_w, float* v_b, float* v_x,
               int rows, int in, int out) {
  if (cx.cuda()) {  // the same three steps as cpu::dense_bwd, on cuBLAS
    if (v_w) gemm(cx, true, false, out, in, rows, 1.f, v_y, out, x, in, 0.f, v_w, in);
    if (v_b) col_sums(cx, v_y, v_b, rows, out);
    if (v_x) gemm(cx, false, false, rows, in, out, 1.f, v_y, out, w, in, 0.f, v_x, in);
    return;
  }
  cpu::dense_bwd(x, w, v_y, v_w, v_b, v_x, rows, in, out);
}

void add_rows(Context& cx, float* y, const float* b, int rows, int cols) {
  CUGMM_NN_DISPATCH(add_rows(cx, y, b, rows, cols));
  cpu::add_rows(y, b, rows, cols);
}

void col_sums(Context& cx, const float* v, float* out, int rows, int cols) {
  CUGMM_NN_DISPATCH(col_sums(cx, v, out, rows, cols));
  cpu::col_sums(v, out, rows, cols);
}

void act_fwd(Context& cx, Act a, float slope, float* y, size_t n) {
  CUGMM_NN_DISPATCH(act_fwd(cx, a, slope, y, n));
  cpu::act_fwd(a, slope, y, n);
}

void act_bwd(Context& cx, Act a, float slope, const float* y, float* v, size_t n) {
  CUGMM_NN_DISPATCH(act_bwd(cx, a, slope, y, v, n));
  cpu::act_bwd(a, slope, y, v, n);
}

void dropout(Context& cx, float p, uint64_t seed, uint64_t stream, const float* x, float* y, size_t n,
             uint64_t first) {
  CUGMM_NN_DISPATCH(dropout(cx, p, seed, stream, x, y, n, first));
  cpu::dropout(p, seed, stream, x, y, n, first);
}

void bn_fwd_train(Context& cx, const float* x, float* y, const float* gamma, const float* beta, float* mean,
                  float* rstd, float* run_mean, float* run_var, float momentum, float eps, int rows, int cols,
                  const BnSync* sync) {
  if (sync) {
    CUGMM_NN_DISPATCH(bn_fwd_train_synced(cx, x, y, gamma, beta, mean, rstd, run_mean, run_var, momentum, eps,
                                          rows, cols, *sync));
    return cpu::bn_fwd_train_synced(x, y, gamma, beta, mean, rstd, run_mean, run_var, momentum, eps, rows, cols,
                                    sync->rows, sync->scratch, sync->sum);
  }
  CUGMM_NN_DISPATCH(bn_fwd_train(cx, x, y, gamma, beta, mean, rstd, run_mean, run_var, momentum, eps, rows, cols));
  cpu::bn_fwd_train(x, y, gamma, beta, mean, rstd, run_mean, run_var, momentum, eps, rows, cols);
}

void bn_fwd_infer(Context& cx, const float* x, float* y, const float* gamma, const float* beta,
                  const float* run_mean, const float* run_var, float* mean, float* rstd, float eps, int rows,
                  int cols) {
  CUGMM_NN_DISPATCH(bn_fwd_infer(cx, x, y, gamma, beta, run_mean, run_var, mean, rstd, eps, rows, cols));
  cpu::bn_fwd_infer(x, y, gamma, beta, run_mean, run_var, mean, rstd, eps, rows, cols);
}

void bn_bwd(Context& cx, bool train, const float* x, const float* v_y, const float* gamma, const float* mean,
            const float* rstd, float* v_x, float* v_gamma, float* v_beta, int rows, int cols, const BnSync* sync) {
  if (sync && train) {
    CUGMM_NN_DISPATCH(bn_bwd_synced(cx, x, v_y, gamma, mean, rstd, v_x, v_gamma, v_beta, rows, cols, *sync));
    return cpu::bn_bwd_synced(x, v_y, gamma, mean, rstd, v_x, v_gamma, v_beta, rows, cols, sync->rows,
                              sync->scratch, sync->sum);
  }
  CUGMM_NN_DISPATCH(bn_bwd(cx, train, x, v_y, gamma, mean, rstd, v_x, v_gamma, v_beta, rows, cols));
  cpu::bn_bwd(train, x, v_y, gamma, mean, rstd, v_x, v_gamma, v_beta, rows, cols);
}

double sum_squares(Context& cx, const float* x, size_t n) {
  CUGMM_NN_DISPATCH(sum_squares(cx, x, n));
  return cpu::sum_squares(x, n);
}

void add_normal(Context& cx, float* x, size_t n, float sigma, uint64_t seed, uint64_t stream) {
  CUGMM_NN_DISPATCH(add_normal(cx, x, n, sigma, seed, stream));
#pragma omp parallel for schedule(static) if (n >= cpu::kParallelMin)
  for (size_t i = 0; i < n; ++i) x[i] += sigma * philox_normal(seed, stream, i);
}

namespace {
AdamScalars segment_scalars(const AdamScalars& s, const AdamSegment& seg) {
  AdamScalars t = s;
  t.lr *= seg.lr_scale;
  t.wd = seg.wd;
  return t;
}
}  // namespace

size_t adam_f32(Context& cx, float* p, const float* g, float* m, float* v, const std::vector<AdamSegment>& segs,
                const AdamScalars& s) {
  CUGMM_NN_DISPATCH(adam_f32(cx, p, g, m, v, segs, s));
  size_t skipped = 0;
  for (const AdamSegment& seg : segs) {
    const AdamScalars t = segment_scalars(s, seg);
    // One contiguous span per thread, each a vectorised pass (cpu::adam_f32_span).
    const size_t n = seg.end > seg.begin ? seg.end - seg.begin : 0;
    const int parts = n >= cpu::kParallelMin ? std::max(1, omp_get_max_threads()) : 1;
#pragma omp parallel for schedule(static) reduction(+ : skipped) if (parts > 1)
    for (int k = 0; k < parts; ++k) {
      const size_t lo = seg.begin + n * size_t(k) / size_t(parts), hi = seg.begin + n * size_t(k + 1) / size_t(parts);
      skipped += cpu::adam_f32_span(p + lo, g + lo, m + lo, v + lo, hi - lo, t);
    }
  }
  return skipped;
}

size_t adam_bf16(Context& cx, float* p, const float* g, uint16_t* m, uint16_t* v, const std::vector<AdamSegment>& segs,
                 const AdamScalars& s, uint64_t seed, uint64_t step) {
  CUGMM_NN_DISPATCH(adam_bf16(cx, p, g, m, v, segs, s, seed, step));
  size_t skipped = 0;
  for (const AdamSegment& seg : segs) {
    if (seg.end <= seg.begin) continue;
    const AdamScalars t = segment_scalars(s, seg);
    // Quads over the absolute index (a segment may start or end inside one): one draw per quad.
    const size_t q0 = seg.begin / kAdamQuad, q1 = (seg.end - 1) / kAdamQuad + 1;
#pragma omp parallel for schedule(static) reduction(+ : skipped) if (seg.end - seg.begin >= cpu::kParallelMin)
    for (size_t q = q0; q < q1; ++q) {
      const U32x4 w = adam_bf16_words(seed, step, q);
      const size_t lo = std::max(q * kAdamQuad, seg.begin), hi = std::min(q * kAdamQuad + kAdamQuad, seg.end);
      for (size_t i = lo; i < hi; ++i) {
        if (finite_f32(g[i])) adam_step_bf16(p[i], g[i], m[i], v[i], t, w.v[i % kAdamQuad]);
        else ++skipped;
      }
    }
  }
  return skipped;
}

}  // namespace cugmm::nn::ops
