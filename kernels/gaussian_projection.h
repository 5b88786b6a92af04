// The per-Gaussian maths of the projector (DESIGN §2), shared by the CPU and CUDA backends and templated on
// the scalar so tests run it in double. Each forward piece has its vector-Jacobian product (`_vjp`, the
// cotangents named v_*) beside it.
//
//   landing:   q = A c (Å), p = q_xy - o                     (where Gaussian j falls in the image)
//   Fourier:   E(k) = a exp(-2 pi^2 s^2 |k|^2) exp(-2 pi i k.p) = a Ux(kx) Uy(ky)   (separable, exact)
//   splat:     I(t) = a / (2 pi sw^2) exp(-|t - p|^2 / (2 sw^2)), sw^2 = s^2 + tau^2, sampled at pixel
//              centres over a footprint of K sw; its DFT relates to E by the phase, pixel^2 and
//              exp(-2 pi^2 tau^2 |k|^2), undone by splat_correction().
#pragma once
#include <cmath>

#include "kernels/geometry.h"
#include "kernels/hd.h"

namespace cugmm {

template <class T>
struct Cplx {
  T re, im;
};
template <class T> CUGMM_HD Cplx<T> operator+(Cplx<T> a, Cplx<T> b) { return {a.re + b.re, a.im + b.im}; }
template <class T> CUGMM_HD Cplx<T> operator*(Cplx<T> a, Cplx<T> b) {
  return {a.re * b.re - a.im * b.im, a.re * b.im + a.im * b.re};
}
template <class T> CUGMM_HD Cplx<T> operator*(T s, Cplx<T> a) { return {s * a.re, s * a.im}; }
template <class T> CUGMM_HD Cplx<T> conj(Cplx<T> a) { return {a.re, -a.im}; }
// acc += a * b
template <class T> CUGMM_HD void cmac(Cplx<T>& acc, Cplx<T> a, Cplx<T> b) {
  acc.re += a.re * b.re - a.im * b.im;
  acc.im += a.re * b.im + a.im * b.re;
}

// Footprint of a splatted Gaussian in units of its (widened) sigma. Outside a square of half-width
// 4.5 sigma lies 1.4e-5 of the mass, which keeps the projection's relative error below 1e-4 (DESIGN §2;
// 4 sigma, 1.3e-4 outside, measured just above it). A widened splat's error is multiplied by the widening
// correction (up to ~50 at 0.8 Nyquist), so widened ones reach 5 sigma (1.2e-6 outside).
constexpr double kSplatRadiusSigmas = 4.5;
constexpr double kSplatRadiusSigmasWidened = 5.0;
// Splatting a Gaussian narrower than this many pixels aliases by more than ~1e-4 of its value at 0.8
// Nyquist (the replica at 1 - k cycles/px weighs exp(-2 pi^2 sw^2 (1 - 2k)) relative to the signal);
// narrower ones are widened by tau and the widening divided out in Fourier space.
constexpr double kSplatMinSigmaPx = 1.5;

// Widths a projection accepts, in pixels of its box (one pair, checked by gaussian_in_bounds on both
// backends before any kernel uses a Gaussian). Below kMinWidthPx the width is invisible in the data
// (exp(-2 pi^2 s^2 |k|^2) stays within 5e-3 of 1 up to Nyquist) and its gradient, proportional to s, has
// vanished: the model has lost that width (and 0 or a negative value is no standard deviation). Above
// kMaxWidthBoxFraction of the box, more than ~1e-4 of the Gaussian's mass lies beyond +-4 sigma = half the
// box, so its projection is no longer that of a Gaussian inside the box (the DFT wraps it onto itself).
constexpr double kMinWidthPx = 0.05;
constexpr double kMaxWidthBoxFraction = 1.0 / 8;

template <class T>
CUGMM_HD bool width_in_bounds(T s, T pixel, int box) {
  return s >= T(kMinWidthPx) * pixel && s <= T(kMaxWidthBoxFraction) * T(box) * pixel;  // false for NaN
}

// The one input predicate of a Gaussian (x, y, z, amplitude, width): finite, width within bounds. Kernels
// skip a Gaussian that fails it, so a bad value never sizes a loop or an index.
template <class T>
CUGMM_HD bool gaussian_in_bounds(T x, T y, T z, T a, T s, T pixel, int box) {
  return std::isfinite(x) && std::isfinite(y) && std::isfinite(z) && std::isfinite(a) && width_in_bounds(s, pixel, box);
}

// ---- landing: model frame -> image plane ---------------------------------------------------------
template <class T>
struct Landing {
  Vec3<T> q;  // A c, Å
  T px, py;   // q_xy - origin, Å
};

template <class T>
CUGMM_HD Landing<T> land(const Mat3<T>& a, T cx, T cy, T cz, T ox, T oy) {
  Landing<T> l;
  l.q = mul(a, Vec3<T>{cx, cy, cz});
  l.px = l.q.x - ox;
  l.py = l.q.y - oy;
  return l;
}

// Cotangents (v_px, v_py) of the landing point -> the centre (written), the local rotation w of
// A <- exp([w]x) A at w = 0 (added: d(w x q)/dw gives q x v) and the origin (added: p = q - o).
template <class T>
CUGMM_HD void land_vjp(const Mat3<T>& a, const Landing<T>& l, T v_px, T v_py, T& v_cx, T& v_cy, T& v_cz,
                       T* v_pose /* w_x w_y w_z o_x o_y, added */) {
  v_cx = a(0, 0) * v_px + a(1, 0) * v_py;
  v_cy = a(0, 1) * v_px + a(1, 1) * v_py;
  v_cz = a(0, 2) * v_px + a(1, 2) * v_py;
  if (v_pose) {
    v_pose[0] += -l.q.z * v_py;
    v_pose[1] += l.q.z * v_px;
    v_pose[2] += l.q.x * v_py - l.q.y * v_px;
    v_pose[3] -= v_px;
    v_pose[4] -= v_py;
  }
}

// ---- separable Fourier: the exact sum ------------------------------------------------------------
// One factor exp(-2 pi^2 s^2 f^2) exp(-2 pi i f p), f in 1/Å, p in Å.
template <class T>
CUGMM_HD Cplx<T> fourier_factor(T s2, T p, T f) {
  const T two_pi = T(2 * kPi);
  T mag = std::exp(-T(2 * kPi * kPi) * s2 * f * f);
  T ph = -two_pi * f * p;
  return {mag * std::cos(ph), mag * std::sin(ph)};
}

// Backward of E(k) = a Ux Uy over a set of k, given the sums over those k of conj(g(k)) Ux Uy times
// 1 (s0), fx (sx), fy (sy) and |f|^2 (s2), where g = d score / d P^ (as dRe + i dIm): the cotangents of
// a, s and p follow from dE/da = E/a, dE/ds = -4 pi^2 s |f|^2 E, dE/dp = -2 pi i f E and
// v = Re(conj(g) dE).
template <class T>
CUGMM_HD void fourier_term_vjp(T a, T s, Cplx<T> s0, Cplx<T> sx, Cplx<T> sy, Cplx<T> s2, T& v_a, T& v_s, T& v_px,
                               T& v_py) {
  const T two_pi = T(2 * kPi);
  v_a = s0.re;
  v_px = two_pi * a * sx.im;  // Re(-2 pi i a sx)
  v_py = two_pi * a * sy.im;
  v_s = -T(4 * kPi * kPi) * s * a * s2.re;
}

// ---- splat + FFT -----------------------------------------------------------------------------------
// The splat of one Gaussian in pixel units: centre (ux, uy) in pixel indices (pixel N/2 = box centre),
// sigma in pixels, amp = a / (2 pi sw^2) in mass per Å^2.
template <class T>
struct Splat {
  T ux, uy, sigma, amp;
  int x0, y0, nx, ny;  // footprint: pixels x0..x0+nx-1 (may leave the box: indices wrap, as the DFT does)
};

// The one predicate both passes share: which pixels a Gaussian covers.
template <class T>
CUGMM_HD Splat<T> make_splat(const Landing<T>& l, T a, T s, T tau2, T pixel, int box) {
  Splat<T> g;
  T sw2 = s * s + tau2;
  g.ux = l.px / pixel + T(box / 2);
  g.uy = l.py / pixel + T(box / 2);
  g.sigma = std::sqrt(sw2) / pixel;
  g.amp = a / (T(2 * kPi) * sw2);
  T r = T(tau2 > 0 ? kSplatRadiusSigmasWidened : kSplatRadiusSigmas) * g.sigma;
  g.x0 = int(std::ceil(g.ux - r));
  g.y0 = int(std::ceil(g.uy - r));
  g.nx = int(std::floor(g.ux + r)) - g.x0 + 1;
  g.ny = int(std::floor(g.uy + r)) - g.y0 + 1;
  // Never wider than the box: a pixel is covered at most once (the wrapped tail would be the far side of
  // a Gaussian already wider than width_in_bounds allows once widened), and the loops stay bounded.
  if (g.nx > box) { g.x0 += (g.nx - box) / 2; g.nx = box; }
  if (g.ny > box) { g.y0 += (g.ny - box) / 2; g.ny = box; }
  return g;
}

// The unit profile exp(-(i0 + i - u)^2 / (2 sigma^2)) along one footprint row, i = 0, 1, ..., by the
// recurrence g(d+1) = g(d) r(d), r(d+1) = r(d) exp(-1/sigma^2): three exponentials per row instead of one
// per pixel.
template <class T>
struct ProfileWalk {
  T g, r, q;
  CUGMM_HD ProfileWalk(T u, T sigma, int i0) {
    T eg, er, eq;
    exponents(u, sigma, i0, eg, er, eq);
    g = std::exp(eg);
    r = std::exp(er);
    q = std::exp(eq);
  }
  // The logarithms of g, r, q at the line's start (the CPU evaluates them for many lines side by side).
  CUGMM_HD static void exponents(T u, T sigma, int i0, T& eg, T& er, T& eq) {
    T inv = 1 / (2 * sigma * sigma);
    T d = T(i0) - u;
    eg = -d * d * inv;
    er = -(2 * d + 1) * inv;
    eq = -2 * inv;
  }
  CUGMM_HD T next() {
    T v = g;
    g *= r;
    r *= q;
    return v;
  }
};

// The footprint sums splat_vjp needs, built one footprint line at a time: along a line at offset d (pixels
// from the centre, across the line) with profile value g there, the inner sums over the line's pixels of R
// times the other profile and 1, d', d'^2 are c0, c1, c2. A row (fixed y: d = dy, d' = dx) adds to s10
// through c1 and to s01 through d; a column (fixed x) the other way round. Both backends call this, row-
// or column-wise as their memory layout prefers.
template <class T>
struct SplatMoments {
  T s00, s10, s01, s20;
};
template <class T>
CUGMM_HD void moments_add_row(SplatMoments<T>& m, T gy, T dy, T c0, T c1, T c2) {
  m.s00 += gy * c0;
  m.s10 += gy * c1;
  m.s01 += gy * dy * c0;
  m.s20 += gy * (c2 + dy * dy * c0);
}
template <class T>
CUGMM_HD void moments_add_column(SplatMoments<T>& m, T gx, T dx, T c0, T c1, T c2) {
  m.s00 += gx * c0;
  m.s10 += gx * dx * c0;
  m.s01 += gx * c1;
  m.s20 += gx * (c2 + dx * dx * c0);
}

// Backward of the splat of one Gaussian, given footprint sums of R = d score / d I (per pixel) times the
// unit profile gx gy and 1 (s00), dx (s10), dy (s01), dx^2 + dy^2 (s20), dx, dy in pixels from the centre:
// dI/da = I/a; dI/du = I d/sigma^2 (per pixel); dI/ds = I s (d^2 - 2 sw^2) / sw^4 (sw^2 = s^2 + tau^2).
template <class T>
CUGMM_HD void splat_vjp(const Splat<T>& g, T a, T s, T tau2, T pixel, const SplatMoments<T>& m, T& v_a, T& v_s,
                        T& v_px, T& v_py) {
  T sw2 = s * s + tau2;
  T sig2 = g.sigma * g.sigma;
  v_a = m.s00 / (T(2 * kPi) * sw2);
  v_px = g.amp * m.s10 / (sig2 * pixel);
  v_py = g.amp * m.s01 / (sig2 * pixel);
  v_s = g.amp * s * (pixel * pixel * m.s20 - 2 * sw2 * m.s00) / (sw2 * sw2);
}

// What turns the DFT of the splatted image into P^ (fourier_band.h convention) at integer frequency
// (kx, ky) of an N-pixel box: pixel^2 (the sum over samples approximates the integral), (-1)^(kx+ky) (the
// centre is pixel N/2) and exp(+2 pi^2 tau^2 |k|^2) (the widening). Real, so its adjoint is itself.
template <class T>
CUGMM_HD T splat_correction(int kx, int ky, T tau2, T pixel, int box) {
  T sign = ((kx + ky) & 1) ? T(-1) : T(1);
  T f2 = T(kx * kx + ky * ky) / (T(box) * T(box) * pixel * pixel);
  T widen = tau2 > 0 ? std::exp(T(2 * kPi * kPi) * tau2 * f2) : T(1);
  return sign * pixel * pixel * widen;
}

// The adjoint of "keep the band" for a c2r transform, at one band coefficient: given Q = d score / d P^
// times the (real) correction at this coefficient and, on the kx = 0 and N/2 columns, Q' at its partner
// (kx, -ky), the half-plane value X whose c2r sum gives d score / d I. A c2r transform sums X(k) e^{+ikx}
// over the full plane with X(-k) = conj X(k): interior columns count twice (X = Q/2); the self-conjugate
// columns hold both ky and -ky, so X must be Hermitian there: X(ky) = (Q(ky) + conj Q(-ky)) / 2 gives the
// same real part.
template <class T>
CUGMM_HD Cplx<T> halfplane_adjoint(Cplx<T> q, bool has_partner, Cplx<T> q_partner) {
  Cplx<T> x = has_partner ? q + conj(q_partner) : q;
  return T(0.5) * x;
}

// The widening of a batch whose narrowest Gaussian has sigma `s_min_px` pixels: tau^2 (Å^2) such that
// every splat is at least kSplatMinSigmaPx wide, rounded up to steps of 1/8 px^2 so that tiny changes of
// the widths (finite differences, optimiser steps) do not move it. tau is a constant of the forward pass.
template <class T>
CUGMM_HD T splat_tau2(T s_min_px, T pixel) {
  T need = T(kSplatMinSigmaPx * kSplatMinSigmaPx) - s_min_px * s_min_px;
  if (need <= 0) return 0;
  return std::ceil(need * 8) / 8 * pixel * pixel;
}

}  // namespace cugmm
