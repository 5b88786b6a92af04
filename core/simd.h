// The CPU's vector unit, for the few hot loops that are compiled once more for it: the build targets
// baseline x86-64 (SSE2), so where the CPU has AVX-512 (or AVX2 + FMA) a copy of the same code compiled with
// CUGMM_TARGET_AVX512 / CUGMM_TARGET_AVX2 runs instead. Such a copy may contract a*b+c into an FMA (the last
// bits change) unless its file turns contraction off.
#pragma once

#if defined(__GNUC__) && defined(__x86_64__)
#define CUGMM_DISPATCH_SIMD 1
#if defined(__clang__)  // clang has no prefer-vector-width target option
#define CUGMM_TARGET_AVX512 __attribute__((target("avx512f,avx512vl,avx2,fma")))
#else
#define CUGMM_TARGET_AVX512 __attribute__((target("avx512f,avx512vl,avx2,fma,prefer-vector-width=512")))
#endif
#define CUGMM_TARGET_AVX2 __attribute__((target("avx2,fma")))
#endif

namespace cugmm {

enum class Simd { base, avx2, avx512 };
// Detected once; base where the compiler cannot dispatch.
Simd simd_level();

}  // namespace cugmm
