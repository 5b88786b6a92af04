// The reference a training step is compared with (bench_mlp, bench_train): the step's own matrix products
// alone, back to back through nn::ops::gemm on the same Context, on random data.
#pragma once
#include <vector>

#include "core/context.h"
#include "nn/layers.h"

namespace cugmm::bench {

// One product, row-major C (m x n) = op(A) (m x k) op(B) (k x n), as ops::gemm takes it.
struct GemmShape {
  bool ta, tb;
  int m, n, k;
};

// Per dense layer of each network: the forward (batch x out x in), the weight gradient (out x in x batch)
// and the input gradient (batch x in x out), which a non-residual network's first layer skips (the
// encoder's 5G-wide input gets no gradient).
std::vector<GemmShape> step_gemms(const std::vector<nn::Arch>& nets, int batch);
double gemm_flops(const std::vector<GemmShape>& shapes);
// Seconds per pass over every shape (bench::time_per_call's warm-up and repetitions). With cpu_s, also the
// process CPU seconds (all threads) per timed pass, counted around the passes alone: not the set-up's
// allocation and random fill (single-threaded, longer than a pass), which a count around the whole call took in.
double time_gemms(Context& cx, const std::vector<GemmShape>& shapes, int warmup, double min_seconds, int min_reps,
                  double* cpu_s = nullptr);

}  // namespace cugmm::bench
