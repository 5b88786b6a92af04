// The one macro that lets the maths in kernels/*.h compile for both backends: the host compiler sees
// plain inline functions, nvcc sees __host__ __device__ ones.
#pragma once
#if defined(__CUDACC__)
#define CUGMM_HD __host__ __device__ __forceinline__
#else
#define CUGMM_HD inline
#endif
