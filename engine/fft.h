// Real-to-complex FFTs on the CPU through FFTW (single precision). Plans are cached per shape and
// created under a lock; executing them is thread-safe, so OpenMP loops over images may share them.
// Layout: a real image ny x nx (x fastest) <-> its half-plane ny x (nx/2 + 1) complex, unnormalised
// both ways (a forward then inverse transform multiplies by nx*ny), origin at index 0.
//
// Alignment: arrays from FftVector (FFTW's own allocator: aligned for its SIMD kernels) run plans made
// for aligned data; any other array still works, through a plan made with FFTW_UNALIGNED, which gives up
// FFTW's SIMD paths. Hot loops should hold their images in FftVector. FFTW's plans and planner state are
// released at program exit (fftwf_cleanup, registered once).
#pragma once
#include <complex>
#include <cstddef>
#include <new>
#include <vector>

namespace cugmm {

using cfloat = std::complex<float>;

void* fft_alloc(size_t bytes);  // fftwf_malloc; throws std::bad_alloc
void fft_free(void* p) noexcept;

template <class T>
struct FftAllocator {
  using value_type = T;
  FftAllocator() = default;
  template <class U>
  FftAllocator(const FftAllocator<U>&) noexcept {}
  T* allocate(size_t n) { return static_cast<T*>(fft_alloc(n * sizeof(T))); }
  void deallocate(T* p, size_t) noexcept { fft_free(p); }
  template <class U>
  bool operator==(const FftAllocator<U>&) const noexcept { return true; }
  template <class U>
  bool operator!=(const FftAllocator<U>&) const noexcept { return false; }
};
template <class T>
using FftVector = std::vector<T, FftAllocator<T>>;

void fft2_r2c(int ny, int nx, const float* in, cfloat* out);
void fft2_c2r(int ny, int nx, const cfloat* in, float* out);  // `in` is not modified
void fft3_r2c(int nz, int ny, int nx, const float* in, cfloat* out);
void fft3_c2r(int nz, int ny, int nx, const cfloat* in, float* out);  // `in` is not modified

}  // namespace cugmm
