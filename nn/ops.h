// The batched operations the layers are built from, one entry point per operation for both backends,
// each taking the run's Context first: a CPU context runs nn/cpu_ops.h (OpenBLAS + OpenMP loops), a CUDA
// one queues nn/ops_cuda.cu's work (cuBLAS + small kernels) on cx.stream() and returns without waiting
// (only sum_squares, which returns a host value, waits). Both loop over the same per-element functions
// in kernels/nn_*.h. Pointers live on the context's device. Row-major, batch x features.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "core/context.h"
#include "kernels/nn_act.h"
#include "kernels/nn_adam.h"

namespace cugmm::nn {

// A contiguous run of the flat parameter array with its own learning-rate factor and L2 coefficient.
struct AdamSegment {
  size_t begin, end;
  float lr_scale, wd;
};

// Batch-norm over a training batch split across the ranks of a data-parallel run (nn/sequential.h
// set_comm): `sum` adds per-column sums over the ranks in place (memory of the context's device), `rows` is
// the batch of all ranks together, `scratch` holds 2 x cols floats of that memory. The statistics and the
// input gradient are then the whole batch's; v_gamma and v_beta stay this rank's share (the gradient
// exchange adds them with every other parameter's).
struct BnSync {
  std::function<void(float*, size_t)> sum;
  int rows = 0;
  float* scratch = nullptr;
};

namespace ops {

// C = alpha op(A) op(B) + beta C (row-major), as nn::sgemm.
void gemm(Context& cx, bool ta, bool tb, int m, int n, int k, float alpha, const float* a, int lda, const float* b,
          int ldb, float beta, float* c, int ldc);
// Dense layer (nn/cpu_ops.h explains the shapes); null b / v_w / v_b / v_x skip that part.
void dense_fwd(Context& cx, const float* x, const float* w, const float* b, float* y, int rows, int in, int out);
void dense_bwd(Context& cx, const float* x, const float* w, const float* v_y, float* v_w, float* v_b, float* v_x,
               int rows, int in, int out);
void add_rows(Context& cx, float* y, const float* b, int rows, int cols);      // y[r, c] += b[c]
void col_sums(Context& cx, const float* v, float* out, int rows, int cols);   // out[c] = sum_r v[r, c]
void act_fwd(Context& cx, Act a, float slope, float* y, size_t n);            // in place
void act_bwd(Context& cx, Act a, float slope, const float* y, float* v, size_t n);  // v *= act'(from y)
// Element i draws Philox (seed, stream, first + i): `first` places a rank's rows in the global batch.
void dropout(Context& cx, float p, uint64_t seed, uint64_t stream, const float* x, float* y, size_t n,
             uint64_t first = 0);
void bn_fwd_train(Context& cx, const float* x, float* y, const float* gamma, const float* beta, float* mean,
                  float* rstd, float* run_mean, float* run_var, float momentum, float eps, int rows, int cols,
                  const BnSync* sync = nullptr);
void bn_fwd_infer(Context& cx, const float* x, float* y, const float* gamma, const float* beta, const float* run_mean,
                  const float* run_var, float* mean, float* rstd, float eps, int rows, int cols);
void bn_bwd(Context& cx, bool train, const float* x, const float* v_y, const float* gamma, const float* mean,
            const float* rstd, float* v_x, float* v_gamma, float* v_beta, int rows, int cols,
            const BnSync* sync = nullptr);
// Deterministic (fixed-order) sum of squares, for the global gradient norm.
double sum_squares(Context& cx, const float* x, size_t n);
// x[i] += sigma * N(0, 1) from Philox (seed, stream, i): latent noise, identical on both backends.
void add_normal(Context& cx, float* x, size_t n, float sigma, uint64_t seed, uint64_t stream);

// One Adam step over the segments of a flat parameter array. `s` holds everything but the per-segment
// lr factor and wd. bf16 moments round stochastically with Philox (seed, stream = step, element i's word
// = word i % 4 of draw i / 4: kernels/nn_adam.h). Non-finite gradient elements are skipped: the CPU
// returns how many; CUDA returns 0 and sets kFlagNonFiniteGradient, which the next synchronize() reports.
size_t adam_f32(Context& cx, float* p, const float* g, float* m, float* v, const std::vector<AdamSegment>& segs,
                const AdamScalars& s);
size_t adam_bf16(Context& cx, float* p, const float* g, uint16_t* m, uint16_t* v, const std::vector<AdamSegment>& segs,
                 const AdamScalars& s, uint64_t seed, uint64_t step);

}  // namespace ops
}  // namespace cugmm::nn
