#include "core/simd.h"

namespace cugmm {

Simd simd_level() {
#ifdef CUGMM_DISPATCH_SIMD
  static const Simd level = [] {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl")) return Simd::avx512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Simd::avx2;
    return Simd::base;
  }();
  return level;
#else
  return Simd::base;
#endif
}

}  // namespace cugmm
