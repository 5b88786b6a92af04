// The 3-D Fourier transform of a Gaussian model and the gradient of the fit-map loss, as small host-device
// functions shared by the CPU loops (engine/gaussian_fourier3d.cpp) and the CUDA kernels
// (engine/fit_map_cuda.cu). Templated on the scalar so tests run them in double.
//
// The transform is analytic and separable (DESIGN §2): with k in 1/Å and c in Å from voxel N/2,
//   F(K) = sum_j a_j fx_j(kx) fy_j(ky) fz_j(kz),   f_j(k) = exp(-2 pi^2 s_j^2 k^2 - 2 pi i k c_j).
// Loss over a half-space band with weights w (2 inside, 1 on the kx = 0 plane) and R = w (F - T):
//   L = sum Re(conj(R) (F - T)) / norm,  dL/dtheta = (2 / norm) sum Re(conj(R) dF/dtheta), and with
//   Q = conj(R) fx fy fz (the Gaussian's unit-amplitude term):
//   dF/da = F_j / a            ->  dL/da  = (2 / norm) sum Re Q
//   dF/dc = -2 pi i k F_j      ->  dL/dc  = (4 pi a / norm) sum k Im Q      (Re(-i z) = Im z)
//   dF/ds = -4 pi^2 s |k|^2 F_j ->  dL/ds = -(8 pi^2 a s / norm) sum |k|^2 Re Q
// Frequencies are carried in pixels (integers) and converted once by 1 / (N pixel).
#pragma once
#include <cmath>

#include "kernels/hd.h"

namespace cugmm {

constexpr double kGf3Pi = 3.14159265358979323846;

// One axis factor f(k) = exp(-2 pi^2 s^2 k^2) (cos 2 pi k c, -sin 2 pi k c); k in 1/Å.
template <class T>
CUGMM_HD void gf3_axis(T s, T c, T k, T& re, T& im) {
  const T pi = T(kGf3Pi);
  T m = std::exp(T(-2) * pi * pi * s * s * k * k);
  T ph = T(2) * pi * k * c;
  re = m * std::cos(ph);
  im = -m * std::sin(ph);
}

// The unit-amplitude term of one Gaussian at one coefficient, computed directly (the CUDA kernels' form:
// one exp and one sincos instead of three tables). k in 1/Å.
template <class T>
CUGMM_HD void gf3_term(T s, T cx, T cy, T cz, T kx, T ky, T kz, T& re, T& im) {
  const T pi = T(kGf3Pi);
  T m = std::exp(T(-2) * pi * pi * s * s * (kx * kx + ky * ky + kz * kz));
  T ph = T(2) * pi * (kx * cx + ky * cy + kz * cz);
  re = m * std::cos(ph);
  im = -m * std::sin(ph);
}

// Forward along one row of kx = 0..len-1 at fixed (ky, kz): F[kx] += u * ex[kx], u = a fy(ky) fz(kz).
// Split real / imaginary arrays so the loop vectorises.
template <class T>
CUGMM_HD void gf3_row_fwd(T ur, T ui, const T* exr, const T* exi, int len, T* fr, T* fi) {
  for (int x = 0; x < len; ++x) {
    fr[x] += ur * exr[x] - ui * exi[x];
    fi[x] += ur * exi[x] + ui * exr[x];
  }
}

// Per-Gaussian sums the gradient needs (frequencies in pixels): sum Re Q, sum k Im Q per axis,
// sum |k|^2 Re Q.
template <class T>
struct Gf3Sums {
  T re = 0, kx = 0, ky = 0, kz = 0, k2 = 0;
};

// Adds one row's contribution given its moments A_n = sum_kx kx^n conj(R[kx]) ex[kx] (n = 0, 1, 2) and
// u = fy(ky) fz(kz) (no amplitude): the row's Q = u A, so sum Q = u A0, sum kx Q = u A1, sum kx^2 Q = u A2.
template <class T>
CUGMM_HD void gf3_row_combine(T ur, T ui, int ky, int kz, T a0r, T a0i, T a1r, T a1i, T a2r, T a2i,
                              Gf3Sums<T>& acc) {
  const T q0r = ur * a0r - ui * a0i, q0i = ur * a0i + ui * a0r;
  const T q1i = ur * a1i + ui * a1r;
  const T q2r = ur * a2r - ui * a2i;
  acc.re += q0r;
  acc.kx += q1i;
  acc.ky += T(ky) * q0i;
  acc.kz += T(kz) * q0i;
  acc.k2 += q2r + T(ky * ky + kz * kz) * q0r;
}

// Backward along one row (the CPU loop's form).
template <class T>
CUGMM_HD void gf3_row_bwd(T ur, T ui, int ky, int kz, const T* exr, const T* exi, const T* rr, const T* ri,
                          int len, Gf3Sums<T>& acc) {
  // kLanes independent partial sums, added in a fixed order at the end: the compiler vectorises the
  // lanes without reassociating (IEEE kept), and the result does not depend on the thread count.
  constexpr int kLanes = 8;
  T s[6][kLanes] = {};
  int x0 = 0;
  for (; x0 + kLanes <= len; x0 += kLanes)
    for (int l = 0; l < kLanes; ++l) {
      const int x = x0 + l;
      // conj(R) ex = (rr exr + ri exi) + i (rr exi - ri exr)
      const T qr = rr[x] * exr[x] + ri[x] * exi[x], qi = rr[x] * exi[x] - ri[x] * exr[x], k = T(x);
      s[0][l] += qr; s[1][l] += qi;
      s[2][l] += k * qr; s[3][l] += k * qi;
      s[4][l] += k * k * qr; s[5][l] += k * k * qi;
    }
  for (int x = x0; x < len; ++x) {
    const T qr = rr[x] * exr[x] + ri[x] * exi[x], qi = rr[x] * exi[x] - ri[x] * exr[x], k = T(x);
    s[0][0] += qr; s[1][0] += qi; s[2][0] += k * qr; s[3][0] += k * qi; s[4][0] += k * k * qr; s[5][0] += k * k * qi;
  }
  T a[6];
  for (int c = 0; c < 6; ++c) {
    a[c] = s[c][0];
    for (int l = 1; l < kLanes; ++l) a[c] += s[c][l];
  }
  gf3_row_combine(ur, ui, ky, kz, a[0], a[1], a[2], a[3], a[4], a[5], acc);
}

// The same sums from one coefficient (the CUDA backward's form); k in pixels, q = conj(R) * term.
template <class T>
CUGMM_HD void gf3_coef_bwd(T qr, T qi, int kx, int ky, int kz, Gf3Sums<T>& acc) {
  acc.re += qr;
  acc.kx += T(kx) * qi;
  acc.ky += T(ky) * qi;
  acc.kz += T(kz) * qi;
  acc.k2 += T(kx * kx + ky * ky + kz * kz) * qr;
}

// The parameter gradient from the sums; inv_len = 1 / (N pixel) converts pixel frequencies to 1/Å.
template <class T>
CUGMM_HD void gf3_param_grad(const Gf3Sums<T>& s, T amplitude, T width, T inv_norm, T inv_len, T& g_x, T& g_y,
                             T& g_z, T& g_a, T& g_s) {
  const T pi = T(kGf3Pi);
  g_a = T(2) * inv_norm * s.re;
  T gc = T(4) * pi * amplitude * inv_norm * inv_len;
  g_x = gc * s.kx;
  g_y = gc * s.ky;
  g_z = gc * s.kz;
  g_s = T(-8) * pi * pi * amplitude * width * inv_norm * inv_len * inv_len * s.k2;
}

}  // namespace cugmm
