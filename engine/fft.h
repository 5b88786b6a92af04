// Real-to-complex FFTs on the CPU through FFTW (single precision). Plans are cached per shape and
// created under a lock; executing them is thread-safe, so OpenMP loops over images may share them.
// Layout: a real image ny x nx (x fastest) <-> its half-plane ny x (nx/2 + 1) complex, unnormalised
// both ways (a forward then inverse transform multiplies by nx*ny), origin at index 0.
#pragma once
#include <complex>
#include <cstddef>

namespace cugmm {

using cfloat = std::complex<float>;

void fft2_r2c(int ny, int nx, const float* in, cfloat* out);
void fft2_c2r(int ny, int nx, const cfloat* in, float* out);  // `in` is not modified
void fft3_r2c(int nz, int ny, int nx, const float* in, cfloat* out);
void fft3_c2r(int nz, int ny, int nx, const cfloat* in, float* out);  // `in` is not modified

}  // namespace cugmm
