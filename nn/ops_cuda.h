// The CUDA side of nn/ops.h (nn/ops_cuda.cu). Only nn/ops.cpp calls these, and only with CUGMM_HAVE_CUDA.
// Everything is queued on cx.stream(); only sum_squares waits (it returns a host value).
#pragma once
#include "nn/ops.h"

namespace cugmm::nn::cuda {

void gemm(Context& cx, bool ta, bool tb, int m, int n, int k, float alpha, const float* a, int lda, const float* b,
          int ldb, float beta, float* c, int ldc);
void add_rows(Context& cx, float* y, const float* b, int rows, int cols);
void col_sums(Context& cx, const float* v, float* out, int rows, int cols);
void act_fwd(Context& cx, Act a, float slope, float* y, size_t n);
void act_bwd(Context& cx, Act a, float slope, const float* y, float* v, size_t n);
void dropout(Context& cx, float p, uint64_t seed, uint64_t stream, const float* x, float* y, size_t n, uint64_t first);
void bn_fwd_train(Context& cx, const float* x, float* y, const float* gamma, const float* beta, float* mean,
                  float* rstd, float* run_mean, float* run_var, float momentum, float eps, int rows, int cols);
void bn_fwd_infer(Context& cx, const float* x, float* y, const float* gamma, const float* beta,
                  const float* run_mean, const float* run_var, float* mean, float* rstd, float eps, int rows,
                  int cols);
void bn_bwd(Context& cx, bool train, const float* x, const float* v_y, const float* gamma, const float* mean,
            const float* rstd, float* v_x, float* v_gamma, float* v_beta, int rows, int cols);
void bn_fwd_train_synced(Context& cx, const float* x, float* y, const float* gamma, const float* beta, float* mean,
                         float* rstd, float* run_mean, float* run_var, float momentum, float eps, int rows, int cols,
                         const BnSync& sync);
void bn_bwd_synced(Context& cx, const float* x, const float* v_y, const float* gamma, const float* mean,
                   const float* rstd, float* v_x, float* v_gamma, float* v_beta, int rows, int cols,
                   const BnSync& sync);
double sum_squares(Context& cx, const float* x, size_t n);
void add_normal(Context& cx, float* x, size_t n, float sigma, uint64_t seed, uint64_t stream);
size_t adam_f32(Context& cx, float* p, const float* g, float* m, float* v, const std::vector<AdamSegment>& segs,
                const AdamScalars& s);
size_t adam_bf16(Context& cx, float* p, const float* g, uint16_t* m, uint16_t* v, const std::vector<AdamSegment>& segs,
                 const AdamScalars& s, uint64_t seed, uint64_t step);

}  // namespace cugmm::nn::cuda
