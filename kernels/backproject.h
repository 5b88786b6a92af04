// Direct Fourier inversion, the per-coefficient maths both backends share (CPU loops, CUDA kernels).
//
// An N x N image is zero-padded to Np = pad * N with its centre pixel N/2 moved to index 0, so its DFT is
// the transform about the centre (no (-1)^k factor). By the Fourier-slice theorem the image coefficient
// at (kx, ky) (padded pixels) is the 3-D transform of the padded volume at A^T (kx, ky, 0). The grid keeps
// the half-space x >= 0 of an Np^3 transform, layout [z][y][x] with Np/2 + 1 columns and signed y, z
// wrapped (index = k < 0 ? k + Np : k), as FFTW's and cuFFT's r2c lay it out.
//
// Each coefficient adds CTF * F * exp(-2 pi i k.o) to the data grid and CTF^2 to the weight grid at the
// eight trilinear corners; a sample whose x is negative is inserted as its Hermitian mate (-p, conj F).
#pragma once
#include <cmath>

#include "kernels/ctf.h"
#include "kernels/geometry.h"
#include "kernels/hd.h"

namespace cugmm {

// Padded position (0..np-1) of pixel i of an n-pixel axis whose centre n/2 goes to index 0.
CUGMM_HD int pad_index(int i, int n, int np) {
  int d = i - n / 2;
  return d < 0 ? d + np : d;
}

// Signed frequency of FFT row/slice index i on an np axis.
CUGMM_HD int signed_freq(int i, int np) { return i > np / 2 ? i - np : i; }

// What one image coefficient contributes: data (re, im) and weight.
template <class T>
struct BackprojectTerm {
  T re, im, w;
};

// F = (fre, fim) is the image coefficient at frequency (kx, ky) in 1/Å; origin (ox, oy) in Å. The image is
// the projection translated by -origin, so the projection's transform is F exp(-2 pi i k.o).
template <class T>
CUGMM_HD BackprojectTerm<T> backproject_term(T fre, T fim, T kx, T ky, T ox, T oy, const CtfConsts<T>& c,
                                             CtfMode mode) {
  T ph = T(-2 * kPi) * (kx * ox + ky * oy);
  T cs = std::cos(ph), sn = std::sin(ph);
  T m = mode == CtfMode::none ? T(1) : ctf_apply_mode(ctf_value(c, kx, ky), mode);
  return {m * (fre * cs - fim * sn), m * (fre * sn + fim * cs), m * m};
}

// Where a coefficient lands in the half-space grid: the lower trilinear corner, the fractions, and
// whether the value must be conjugated (the sample was mirrored to x >= 0).
template <class T>
struct GridSpot {
  int x0, y0, z0;
  T fx, fy, fz;
  bool conj;
};

// (kx, ky) in padded pixels; a = the particle's rotation matrix.
template <class T>
CUGMM_HD GridSpot<T> grid_spot(const Mat3<T>& a, T kx, T ky) {
  T px = a(0, 0) * kx + a(1, 0) * ky;  // A^T (kx, ky, 0)
  T py = a(0, 1) * kx + a(1, 1) * ky;
  T pz = a(0, 2) * kx + a(1, 2) * ky;
  bool conj = px < 0;
  if (conj) { px = -px; py = -py; pz = -pz; }
  GridSpot<T> s;
  T fx = std::floor(px), fy = std::floor(py), fz = std::floor(pz);
  s.x0 = int(fx); s.y0 = int(fy); s.z0 = int(fz);
  s.fx = px - fx; s.fy = py - fy; s.fz = pz - fz;
  s.conj = conj;
  return s;
}

// Trilinear weight of corner (dx, dy, dz) in {0,1}^3.
template <class T>
CUGMM_HD T corner_weight(const GridSpot<T>& s, int dx, int dy, int dz) {
  return (dx ? s.fx : 1 - s.fx) * (dy ? s.fy : 1 - s.fy) * (dz ? s.fz : 1 - s.fz);
}

// A corner's signed frequencies must lie in the stored grid: 0 <= x <= np/2, -np/2 < y, z < np/2 (the
// +-np/2 rows would alias onto each other; they lie beyond any insertion radius used with pad >= 1 anyway).
CUGMM_HD bool corner_in_grid(int x, int y, int z, int np) {
  int h = np / 2;
  return x >= 0 && x <= h && y > -h && y < h && z > -h && z < h;
}

// Flat index of signed (x >= 0, y, z) in the [z][y][x] half-space grid.
CUGMM_HD long grid_index(int x, int y, int z, int np) {
  int yi = y < 0 ? y + np : y, zi = z < 0 ? z + np : z;
  return (long(zi) * np + yi) * (np / 2 + 1) + x;
}

// Density compensation: central sections of uniformly spread views sample 3-D Fourier space with a
// density proportional to 1/|k|, so near the origin a voxel's neighbourhood is sampled unevenly and the
// weight-normalised trilinear average is no longer a convolution with the kernel (the lowest shells came
// out ~3.5% too strong). Weighting every sample (data and weight alike) by |k| makes the density uniform;
// the floor of one padded pixel keeps the origin's own samples.
template <class T>
CUGMM_HD T density_weight(int kx, int ky) {
  T r = std::sqrt(T(kx * kx + ky * ky));
  return r > T(1) ? r : T(1);
}

// Which image coefficients are inserted: the half-plane kx >= 0 without the duplicate kx = 0, ky < 0
// half-column (those are the conjugates of kx = 0, ky > 0), within radius r_max (padded pixels).
template <class T>
CUGMM_HD bool coefficient_inserted(int kx, int ky, T r_max) {
  if (kx == 0 && ky < 0) return false;
  return T(kx * kx + ky * ky) <= r_max * r_max;
}

// Gridding correction: trilinear insertion convolves the transform with a separable triangle of one grid
// step, i.e. multiplies the padded volume by sinc^2(pi d / np) per axis (d = voxel offset from the
// centre). The reconstruction is divided by this.
template <class T>
CUGMM_HD T sinc2(T x) {
  if (std::fabs(x) < T(1e-6)) return T(1);
  T s = std::sin(T(kPi) * x) / (T(kPi) * x);
  return s * s;
}
template <class T>
CUGMM_HD T gridding_factor(int dx, int dy, int dz, int np) {
  return sinc2(T(dx) / np) * sinc2(T(dy) / np) * sinc2(T(dz) / np);
}

}  // namespace cugmm
