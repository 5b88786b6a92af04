// The CPU's fp32 Adam pass over a span (nn/cpu_ops.h), compiled once more for the CPU's vector unit.
// Branch-free, so it vectorises: a non-finite gradient element still computes its update, which is then
// discarded (its p, m and v keep their values, kernels/nn_adam.h). Contraction into FMAs is off in this file
// (the pragma below): every copy rounds exactly as the scalar step, so the weights do not depend on the CPU.
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif
#include <cstddef>

#include "core/simd.h"
#include "kernels/nn_adam.h"
#include "nn/cpu_ops.h"

namespace cugmm::nn::cpu {
namespace {

#if defined(__GNUC__)
__attribute__((always_inline))
#endif
inline size_t adam_span(float* __restrict p, const float* __restrict g, float* __restrict m, float* __restrict v,
                        size_t n, const AdamScalars& scalars) {
  const AdamScalars s = scalars;  // a local copy: the stores below cannot alias it, so the loop vectorises
  size_t skipped = 0;
  for (size_t i = 0; i < n; ++i) {
    const bool ok = finite_f32(g[i]);
    float pi = p[i], mi = m[i], vi = v[i];
    adam_step(pi, g[i], mi, vi, s);
    p[i] = ok ? pi : p[i];
    m[i] = ok ? mi : m[i];
    v[i] = ok ? vi : v[i];
    skipped += ok ? 0 : 1;
  }
  return skipped;
}

#ifdef CUGMM_DISPATCH_SIMD
CUGMM_TARGET_AVX512 size_t adam_span_avx512(float* p, const float* g, float* m, float* v, size_t n,
                                            const AdamScalars& s) {
  return adam_span(p, g, m, v, n, s);
}
CUGMM_TARGET_AVX2 size_t adam_span_avx2(float* p, const float* g, float* m, float* v, size_t n, const AdamScalars& s) {
  return adam_span(p, g, m, v, n, s);
}
#endif

}  // namespace

size_t adam_f32_span(float* p, const float* g, float* m, float* v, size_t n, const AdamScalars& s) {
#ifdef CUGMM_DISPATCH_SIMD
  switch (simd_level()) {
    case Simd::avx512: return adam_span_avx512(p, g, m, v, n, s);
    case Simd::avx2: return adam_span_avx2(p, g, m, v, n, s);
    case Simd::base: break;
  }
#endif
  return adam_span(p, g, m, v, n, s);
}

}  // namespace cugmm::nn::cpu
