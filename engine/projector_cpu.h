// The CPU projector's work for one particle, templated on the scalar (float in production, double in
// the finite-difference tests) and on the 2-D FFT (FFTW in float; a plain DFT in double for tests).
// Internal to engine/: the public interface is engine/projector.h.
#pragma once
#include <algorithm>
#include <cmath>
#include <complex>
#include <type_traits>
#include <vector>

#include "engine/fft.h"
#include "engine/fourier_band.h"
#include "engine/projector.h"
#include "kernels/ctf.h"
#include "kernels/frc.h"
#include "kernels/gaussian_projection.h"
#include "kernels/poly_math.h"

// Forces inlining, so that a caller compiled for another target (projector_cpu.cpp) gets the body compiled for it.
#if defined(__GNUC__)
#define CUGMM_ALWAYS_INLINE __attribute__((always_inline))
#else
#define CUGMM_ALWAYS_INLINE
#endif

namespace cugmm::detail {

template <class T>
struct View {
  Mat3<T> rotation;
  T origin_x, origin_y;
  CtfConsts<T> ctf;
  CtfMode ctf_mode;
};

template <class T>
View<T> view_cast(const ParticleView& v) {
  View<T> o;
  for (int i = 0; i < 9; ++i) o.rotation.m[i] = T(v.rotation.m[i]);
  o.origin_x = T(v.origin_x);
  o.origin_y = T(v.origin_y);
  o.ctf = {T(v.ctf.k1), T(v.ctf.k2), T(v.ctf.offset), T(v.ctf.def_avg), T(v.ctf.def_dev), T(v.ctf.angle),
           T(v.ctf.bfac_quarter), T(v.ctf.scale)};
  o.ctf_mode = v.ctf_mode;
  return o;
}

// What the band implies, computed once per projector.
struct BandPlan {
  struct Row {
    int ky, start, count;  // the band's coefficients start..start+count-1 have this ky and kx = 0..count-1
  };
  const FourierBand* band = nullptr;
  int kx_max = 0;
  std::vector<Row> rows;
  std::vector<float> ring_weight;  // v_r of the score, per ring (score_ring_weights)
  bool pooled = false;             // ProjectorOptions::pooled: v_r weights coefficients of one pooled correlation
  std::vector<CtfBandPoint<float>> ctf_points;  // band.ctf_points in float (ctf_fill's vector loads)
};
BandPlan make_band_plan(const FourierBand& band, const std::vector<float>& ring_weights = {}, bool pooled = false);

// Strategy, widening and FRC floor of one call.
template <class T>
struct CallPlan {
  ProjectionStrategy strategy;
  T tau2;  // Å^2, splat only (kernels/gaussian_projection.h: splat_tau2)
  T eps;
};

template <class T>
struct Workspace {
  std::vector<Landing<T>> land;
  std::vector<T> ctf;                    // per band coefficient, mode applied
  std::vector<Cplx<T>> model, grad;      // per band coefficient: M^ and d score / d P^
  std::vector<RingSums<T>> sums;
  FftVector<T> image;                    // splat; FFTW-aligned (engine/fft.h: its SIMD plans)
  std::vector<T> prof, cols;
  std::vector<Splat<T>> splats;
  std::vector<T> corr;                   // splat: splat_correction per band coefficient at tau2 = corr_tau2
  T corr_tau2 = 0;
  std::vector<size_t> prof_at;           // splat: where Gaussian j's x profile starts in prof
  std::vector<T> prof_y;                 // splat: the y profiles, kProfileLanes Gaussians interleaved (y_profile)
  std::vector<size_t> prof_y_at;         // per block of kProfileLanes Gaussians
  FftVector<std::complex<T>> spec;
  std::vector<Cplx<T>> ux, uy, w0, wx, wxx, s0, sx, sy, s2;  // separable
};

// The plain O(N^3) DFT with FFTW's layout and normalisation (fft.h), for double-precision tests.
template <class T>
struct NaiveDft {
  int n;
  void r2c(const T* in, std::complex<T>* out) const;
  void c2r(const std::complex<T>* in, T* out) const;
};

// M^ = CTF P^ of one particle at the band coefficients, into ws.model.
template <class T, class Fft>
void model_particle(const BandPlan& plan, const CallPlan<T>& call, int num_gaussians, const T* params,
                    const View<T>& view, Workspace<T>& ws, const Fft& fft);

// Projects one particle: returns its score, writes its FRC per ring (num_rings, when not null), the
// gradient of the score with respect to its 5G parameters (written, when not null) and to its pose
// (5, written, when not null).
template <class T, class Fft>
T project_particle(const BandPlan& plan, const CallPlan<T>& call, int num_gaussians, const T* params,
                   const View<T>& view, const std::complex<T>* data, Workspace<T>& ws, const Fft& fft, T* frc,
                   T* grad_params, T* grad_pose);

// ---- definitions ----------------------------------------------------------------------------------

template <class T>
void NaiveDft<T>::r2c(const T* in, std::complex<T>* out) const {
  const int h = n / 2 + 1;
  std::vector<std::complex<T>> rows(size_t(n) * h);
  for (int y = 0; y < n; ++y)
    for (int kx = 0; kx < h; ++kx) {
      std::complex<T> acc = 0;
      for (int x = 0; x < n; ++x) acc += in[y * n + x] * std::polar(T(1), -T(2 * kPi) * T((kx * x) % n) / T(n));
      rows[size_t(y) * h + kx] = acc;
    }
  for (int ky = 0; ky < n; ++ky)
    for (int kx = 0; kx < h; ++kx) {
      std::complex<T> acc = 0;
      for (int y = 0; y < n; ++y) acc += rows[size_t(y) * h + kx] * std::polar(T(1), -T(2 * kPi) * T((ky * y) % n) / T(n));
      out[size_t(ky) * h + kx] = acc;
    }
}

template <class T>
void NaiveDft<T>::c2r(const std::complex<T>* in, T* out) const {
  const int h = n / 2 + 1;
  std::vector<std::complex<T>> cols(size_t(n) * h);
  for (int y = 0; y < n; ++y)
    for (int kx = 0; kx < h; ++kx) {
      std::complex<T> acc = 0;
      for (int ky = 0; ky < n; ++ky) acc += in[size_t(ky) * h + kx] * std::polar(T(1), T(2 * kPi) * T((ky * y) % n) / T(n));
      cols[size_t(y) * h + kx] = acc;
    }
  for (int y = 0; y < n; ++y)
    for (int x = 0; x < n; ++x) {
      T acc = 0;
      for (int kx = 0; kx < h; ++kx) {
        T c = (kx == 0 || 2 * kx == n) ? T(1) : T(2);
        acc += c * std::real(cols[size_t(y) * h + kx] * std::polar(T(1), T(2 * kPi) * T((kx * x) % n) / T(n)));
      }
      out[y * n + x] = acc;
    }
}

namespace proj {

inline int wrap(int i, int n) {
  i %= n;
  return i < 0 ? i + n : i;
}

// P^ at the band coefficients by the separable exact sum. Keeps ux (kx x G) and uy (row x G, without the
// amplitude) for the backward.
template <class T>
void separable_forward(const BandPlan& plan, int g_count, const T* a, const T* s, Workspace<T>& ws) {
  const FourierBand& band = *plan.band;
  const T inv_len = T(1) / (T(band.box) * T(band.pixel_size));
  const size_t G = size_t(g_count);
  ws.ux.resize((plan.kx_max + 1) * G);
  ws.uy.resize(plan.rows.size() * G);
  for (int kx = 0; kx <= plan.kx_max; ++kx)
    for (size_t j = 0; j < G; ++j) ws.ux[kx * G + j] = fourier_factor(s[j] * s[j], ws.land[j].px, T(kx) * inv_len);
  std::vector<Cplx<T>>& v = ws.w0;
  v.resize(G);
  for (size_t r = 0; r < plan.rows.size(); ++r) {
    const auto& row = plan.rows[r];
    Cplx<T>* uy = &ws.uy[r * G];
    for (size_t j = 0; j < G; ++j) {
      uy[j] = fourier_factor(s[j] * s[j], ws.land[j].py, T(row.ky) * inv_len);
      v[j] = a[j] * uy[j];
    }
    for (int kx = 0; kx < row.count; ++kx) {
      const Cplx<T>* ux = &ws.ux[kx * G];
      T re = 0, im = 0;
      for (size_t j = 0; j < G; ++j) {
        re += v[j].re * ux[j].re - v[j].im * ux[j].im;
        im += v[j].re * ux[j].im + v[j].im * ux[j].re;
      }
      ws.model[row.start + kx] = {re, im};
    }
  }
}

// Cotangents of a, s, p for every Gaussian from g = d score / d P^ at the band coefficients.
template <class T>
void separable_backward(const BandPlan& plan, int g_count, const T* a, const T* s, Workspace<T>& ws, T* v_a,
                        T* v_s, T* v_px, T* v_py) {
  const FourierBand& band = *plan.band;
  const T inv_len = T(1) / (T(band.box) * T(band.pixel_size));
  const size_t G = size_t(g_count);
  const Cplx<T> zero{0, 0};
  ws.w0.assign(G, zero); ws.wx.assign(G, zero); ws.wxx.assign(G, zero);
  ws.s0.assign(G, zero); ws.sx.assign(G, zero); ws.sy.assign(G, zero); ws.s2.assign(G, zero);
  for (size_t r = 0; r < plan.rows.size(); ++r) {
    const auto& row = plan.rows[r];
    std::fill(ws.w0.begin(), ws.w0.end(), zero);
    std::fill(ws.wx.begin(), ws.wx.end(), zero);
    std::fill(ws.wxx.begin(), ws.wxx.end(), zero);
    for (int kx = 0; kx < row.count; ++kx) {
      Cplx<T> cg = conj(ws.grad[row.start + kx]);
      if (cg.re == 0 && cg.im == 0) continue;
      T fx = T(kx) * inv_len;
      const Cplx<T>* ux = &ws.ux[kx * G];
      for (size_t j = 0; j < G; ++j) {
        Cplx<T> t = cg * ux[j];
        ws.w0[j] = ws.w0[j] + t;
        ws.wx[j] = ws.wx[j] + fx * t;
        ws.wxx[j] = ws.wxx[j] + (fx * fx) * t;
      }
    }
    T fy = T(row.ky) * inv_len;
    const Cplx<T>* uy = &ws.uy[r * G];
    for (size_t j = 0; j < G; ++j) {
      cmac(ws.s0[j], uy[j], ws.w0[j]);
      cmac(ws.sx[j], uy[j], ws.wx[j]);
      cmac(ws.sy[j], fy * uy[j], ws.w0[j]);
      cmac(ws.s2[j], uy[j], ws.wxx[j] + (fy * fy) * ws.w0[j]);
    }
  }
  for (size_t j = 0; j < G; ++j)
    fourier_term_vjp(a[j], s[j], ws.s0[j], ws.sx[j], ws.sy[j], ws.s2[j], v_a[j], v_s[j], v_px[j], v_py[j]);
}

// Footprint rows up to kRowShort (or kRowLong) pixels are padded with zero weights to exactly that length: a
// fixed-length inner loop the compiler unrolls and keeps in registers. s = 1.5 px spans 14 pixels at 4.5
// sigma; a widened splat (tau > 0: a batch with a Gaussian narrower than 1.5 px, which training's decoded
// widths nearly always are) spans up to ~21 at 5 sigma, which without the long length took the generic
// loop (measured on a batch of widths 1.25-1.75 px: 733 against 505 us of CPU per particle, G = 3,200, 128 px).
constexpr int kRowShort = 16, kRowLong = 24;
// Gaussians whose profiles splat_prepare walks side by side (one vector lane each).
constexpr int kProfileLanes = 16;
template <class T>
int row_stride(const Splat<T>& g) {
  return g.nx <= kRowShort ? kRowShort : g.nx <= kRowLong ? kRowLong : g.nx;
}
// A fixed-length row fits: inside the box, padding included.
template <class T>
bool fixed_row(const Splat<T>& g, int box) {
  const int w = row_stride(g);
  return w <= kRowLong && g.x0 >= 0 && g.y0 >= 0 && g.x0 + w <= box && g.y0 + g.ny <= box;
}

// The footprints of all Gaussians and their unit profiles (x padded to row_stride; y in blocks), kept from the
// forward for the backward.
template <class T>
CUGMM_ALWAYS_INLINE inline void splat_prepare(const CallPlan<T>& call, int g_count, const T* a, const T* s, T pixel,
                                              int box, Workspace<T>& ws) {
  ws.splats.resize(g_count);
  ws.prof_at.resize(size_t(g_count) + 1);
  const int blocks = (g_count + kProfileLanes - 1) / kProfileLanes;
  ws.prof_y_at.resize(size_t(blocks) + 1);
  size_t total = 0, total_y = 0;
  int ny_max = 0;
  for (int j = 0; j < g_count; ++j) {
    ws.splats[j] = make_splat(ws.land[j], a[j], s[j], call.tau2, pixel, box);
    ws.prof_at[j] = total;
    total += size_t(row_stride(ws.splats[j]));
    ny_max = std::max(ny_max, ws.splats[j].ny);
    if (j % kProfileLanes == kProfileLanes - 1 || j == g_count - 1) {  // a block's rows: its longest line
      ws.prof_y_at[j / kProfileLanes] = total_y;
      total_y += size_t(std::max(ny_max, kRowLong)) * kProfileLanes;
      ny_max = 0;
    }
  }
  ws.prof_at[g_count] = total;
  ws.prof_y_at[blocks] = total_y;
  if (ws.prof.size() < total) ws.prof.resize(total);
  if (ws.prof_y.size() < total_y) ws.prof_y.resize(total_y);
  // Each profile is a chain of dependent multiplies (ProfileWalk): walked one at a time, they wait on the
  // multiply latency. kWalks Gaussians walk their first kRowLong steps side by side (one vector lane each), a
  // longer line continues alone from where its lane stopped: every value is the same product in the same
  // order as ProfileWalk::next's. Its three starting exponentials are evaluated side by side too, in float
  // by exp_poly (libm's expf, a call per value, was 7% of the projection). The y profiles stay in the lanes'
  // layout (fill and gather read them one value per row), so only the x profiles are transposed.
  // Why not one exp per pixel, which vectorises along a line? Its rounding errors are independent from pixel
  // to pixel, and the widening correction (up to ~2e4 at Nyquist) amplifies exactly that high-frequency
  // content: the width gradients of a widened batch came out several times further from the double-precision
  // pipeline (test_projector's batch case failed its 2e-3); the recurrence's errors are smooth along a line.
  constexpr int kWalks = kProfileLanes;
  for (int j0 = 0; j0 < g_count; j0 += kWalks) {
    const int nw = std::min(kWalks, g_count - j0);
    for (int axis = 0; axis < 2; ++axis) {
      T e0[kWalks] = {}, e1[kWalks] = {}, e2[kWalks] = {};  // the exponents of ProfileWalk's g, r, q
      for (int l = 0; l < nw; ++l) {
        const Splat<T>& g = ws.splats[j0 + l];
        ProfileWalk<T>::exponents(axis ? g.uy : g.ux, g.sigma, axis ? g.y0 : g.x0, e0[l], e1[l], e2[l]);
      }
      T gv[kWalks], rv[kWalks], qv[kWalks];
#pragma omp simd
      for (int l = 0; l < kWalks; ++l) {
        if constexpr (std::is_same<T, float>::value) {
          gv[l] = exp_poly(e0[l]);
          rv[l] = exp_poly(e1[l]);
          qv[l] = exp_poly(e2[l]);
        } else {
          gv[l] = std::exp(e0[l]);
          rv[l] = std::exp(e1[l]);
          qv[l] = std::exp(e2[l]);
        }
      }
      T walk[kRowLong][kWalks];
      for (int i = 0; i < kRowLong; ++i)
#pragma omp simd
        for (int l = 0; l < kWalks; ++l) {
          walk[i][l] = gv[l];
          gv[l] *= rv[l];
          rv[l] *= qv[l];
        }
      if (axis == 1) {
        T* out = &ws.prof_y[ws.prof_y_at[j0 / kWalks]];
        std::copy(&walk[0][0], &walk[0][0] + kRowLong * kWalks, out);
        for (int l = 0; l < nw; ++l)
          for (int i = kRowLong; i < ws.splats[j0 + l].ny; ++i) {  // ProfileWalk::next from the lane's state
            out[i * kWalks + l] = gv[l];
            gv[l] *= rv[l];
            rv[l] *= qv[l];
          }
        continue;
      }
      for (int l = 0; l < nw; ++l) {
        const Splat<T>& g = ws.splats[j0 + l];
        T* out = &ws.prof[ws.prof_at[j0 + l]];
        const int n = g.nx;
        for (int i = 0; i < std::min(n, kRowLong); ++i) out[i] = walk[i][l];
        for (int i = kRowLong; i < n; ++i) {  // ProfileWalk::next from the lane's state
          out[i] = gv[l];
          gv[l] *= rv[l];
          rv[l] *= qv[l];
        }
        std::fill(out + n, out + row_stride(g), T(0));
      }
    }
  }
}

// Gaussian j's y profile: value y at [y * kProfileLanes].
template <class T>
const T* y_profile(const Workspace<T>& ws, int j) {
  return &ws.prof_y[ws.prof_y_at[j / kProfileLanes]] + j % kProfileLanes;
}

template <class T>
bool splat_inside(const Splat<T>& g, int box) {
  return g.x0 >= 0 && g.y0 >= 0 && g.x0 + g.nx <= box && g.y0 + g.ny <= box;
}

// One footprint's rows of fixed length W (fixed_row) added into img.
template <int W, class T>
CUGMM_ALWAYS_INLINE inline void splat_rows(const Splat<T>& g, const T* rx, const T* ry, int n, T* img) {
  for (int y = 0; y < g.ny; ++y) {
    const T wy = g.amp * ry[y * kProfileLanes];
    T* __restrict row = img + size_t(g.y0 + y) * n + g.x0;
#pragma omp simd
    for (int x = 0; x < W; ++x) row[x] += wy * rx[x];
  }
}

// The splat of every footprint into img (n x n, zeroed), from the profiles splat_prepare kept. Always
// inlined: the float entry points (projector_cpu.cpp) compile it once more for wider vector units.
template <class T>
CUGMM_ALWAYS_INLINE inline void splat_fill(const Workspace<T>& ws, int g_count, int n, T* img) {
  for (int j = 0; j < g_count; ++j) {
    const Splat<T>& g = ws.splats[j];
    const T* rx = &ws.prof[ws.prof_at[j]];
    const T* ry = y_profile(ws, j);
    // Inside the box, rows are contiguous and the inner loop vectorises; otherwise indices wrap (the DFT
    // is periodic).
    if (fixed_row(g, n)) {
      if (row_stride(g) == kRowShort) splat_rows<kRowShort>(g, rx, ry, n, img);
      else splat_rows<kRowLong>(g, rx, ry, n, img);
    } else if (splat_inside(g, n)) {
      for (int y = 0; y < g.ny; ++y) {
        const T wy = g.amp * ry[y * kProfileLanes];
        T* __restrict row = img + size_t(g.y0 + y) * n + g.x0;
        for (int x = 0; x < g.nx; ++x) row[x] += wy * rx[x];
      }
    } else {
      for (int y = 0; y < g.ny; ++y) {
        const T wy = g.amp * ry[y * kProfileLanes];
        T* row = img + size_t(wrap(g.y0 + y, n)) * n;
        for (int x = 0; x < g.nx; ++x) row[wrap(g.x0 + x, n)] += wy * rx[x];
      }
    }
  }
}

// The footprint sums splat_vjp needs, for rows of fixed length W (fixed_row): the same sums as the generic
// loop of splat_gather, with the column sums in registers.
template <int W, class T>
CUGMM_ALWAYS_INLINE inline SplatMoments<T> footprint_moments(const Splat<T>& g, const T* rx, const T* ry, int n,
                                                             const T* img) {
  T c0[W] = {}, c1[W] = {}, c2[W] = {};
  for (int y = 0; y < g.ny; ++y) {
    const T dy = T(g.y0 + y) - g.uy;
    const T w0 = ry[y * kProfileLanes], w1 = w0 * dy, w2 = w1 * dy;
    const T* __restrict row = img + size_t(g.y0 + y) * n + g.x0;
    // Across x, one vector per row (left alone, GCC vectorises across rows with scalar gathers).
#pragma omp simd
    for (int x = 0; x < W; ++x) {
      c0[x] += w0 * row[x];
      c1[x] += w1 * row[x];
      c2[x] += w2 * row[x];
    }
  }
  SplatMoments<T> m{0, 0, 0, 0};
  for (int x = 0; x < W; ++x) moments_add_column(m, rx[x], T(g.x0 + x) - g.ux, c0[x], c1[x], c2[x]);
  return m;
}

// The gather of splat_backward: footprint sums of R = img against the profiles, then splat_vjp.
template <class T>
CUGMM_ALWAYS_INLINE inline void splat_gather(const CallPlan<T>& call, int g_count, const T* a, const T* s, T pixel,
                                             int n, const T* img, Workspace<T>& ws, T* v_a, T* v_s, T* v_px,
                                             T* v_py) {
  for (int j = 0; j < g_count; ++j) {
    const Splat<T>& g = ws.splats[j];
    const T* rx = &ws.prof[ws.prof_at[j]];
    const T* ry = y_profile(ws, j);
    if (fixed_row(g, n)) {
      const SplatMoments<T> m = row_stride(g) == kRowShort ? footprint_moments<kRowShort>(g, rx, ry, n, img)
                                                           : footprint_moments<kRowLong>(g, rx, ry, n, img);
      splat_vjp(g, a[j], s[j], call.tau2, pixel, m, v_a[j], v_s[j], v_px[j], v_py[j]);
      continue;
    }
    const bool inside = splat_inside(g, n);
    if (int(ws.cols.size()) < 3 * g.nx) ws.cols.resize(3 * g.nx);
    // Column sums over the footprint's rows of R gy times 1, dy, dy^2, then the x sums: no reduction in
    // the inner loop, which stays element-wise and vectorises.
    T *c0 = ws.cols.data(), *c1 = c0 + g.nx, *c2 = c1 + g.nx;
    std::fill(c0, c0 + 3 * g.nx, T(0));
    for (int y = 0; y < g.ny; ++y) {
      const T dy = T(g.y0 + y) - g.uy;
      const T w0 = ry[y * kProfileLanes], w1 = w0 * dy, w2 = w1 * dy;
      if (inside) {
        const T* __restrict row = img + size_t(g.y0 + y) * n + g.x0;
        for (int x = 0; x < g.nx; ++x) {
          c0[x] += w0 * row[x];
          c1[x] += w1 * row[x];
          c2[x] += w2 * row[x];
        }
      } else {
        const T* row = img + size_t(wrap(g.y0 + y, n)) * n;
        for (int x = 0; x < g.nx; ++x) {
          const T r = row[wrap(g.x0 + x, n)];
          c0[x] += w0 * r;
          c1[x] += w1 * r;
          c2[x] += w2 * r;
        }
      }
    }
    SplatMoments<T> m{0, 0, 0, 0};
    for (int x = 0; x < g.nx; ++x) moments_add_column(m, rx[x], T(g.x0 + x) - g.ux, c0[x], c1[x], c2[x]);
    splat_vjp(g, a[j], s[j], call.tau2, pixel, m, v_a[j], v_s[j], v_px[j], v_py[j]);
  }
}

// In float, splat_prepare and the two loops above dispatched on the CPU's vector unit (projector_cpu.cpp).
void splat_prepare_f32(const CallPlan<float>& call, int g_count, const float* a, const float* s, float pixel, int box,
                       Workspace<float>& ws);
void splat_fill_f32(const Workspace<float>& ws, int g_count, int n, float* img);
void splat_gather_f32(const CallPlan<float>& call, int g_count, const float* a, const float* s, float pixel, int n,
                      const float* img, Workspace<float>& ws, float* v_a, float* v_s, float* v_px, float* v_py);

// The CTF of one particle at every band coefficient (ctf_model_factor), in float with sin and exp from
// kernels/poly_math.h: libm's sinf per coefficient was 8-9% of the projection; the loop vectorises.
CUGMM_ALWAYS_INLINE inline void ctf_fill(const BandPlan& plan, const View<float>& view, float* __restrict out) {
  const size_t nb = plan.ctf_points.size();
  if (view.ctf_mode == CtfMode::none) {
    std::fill(out, out + nb, 1.f);
    return;
  }
  const CtfConsts<float> c = view.ctf;
  const CtfAngle2<float> angle2 = ctf_angle2(c);
  const CtfBandPoint<float>* pts = plan.ctf_points.data();
  // (no omp simd: it would privatise k as an array per lane and give up; the auto-vectoriser takes it)
  for (size_t b = 0; b < nb; ++b) {
    const CtfBandPoint<float> k = pts[b];
    const float env = exp_poly(-c.bfac_quarter * k.k2);  // 1 without a B-factor
    const float v = ctf_from_sine(c, sin_poly(ctf_gamma_at(c, angle2, k)), env);
    out[b] = v;
  }
  // ctf_apply_mode, outside the loop above: its branches keep the compiler from vectorising it.
  if (view.ctf_mode == CtfMode::phase_flipped)
    for (size_t b = 0; b < nb; ++b) out[b] = std::fabs(out[b]);
}
void ctf_fill_f32(const BandPlan& plan, const View<float>& view, float* out);

template <class T, class Fft>
void splat_forward(const BandPlan& plan, const CallPlan<T>& call, int g_count, const T* a, const T* s,
                   Workspace<T>& ws, const Fft& fft) {
  const FourierBand& band = *plan.band;
  const int n = band.box, h = n / 2 + 1;
  const T pixel = T(band.pixel_size);
  if constexpr (std::is_same<T, float>::value)
    splat_prepare_f32(call, g_count, a, s, pixel, n, ws);
  else
    splat_prepare(call, g_count, a, s, pixel, n, ws);
  ws.image.assign(size_t(n) * n, T(0));
  if constexpr (std::is_same<T, float>::value)
    splat_fill_f32(ws, g_count, n, ws.image.data());
  else
    splat_fill(ws, g_count, n, ws.image.data());
  // The correction per band coefficient, kept while the widening stays (a whole batch, usually).
  if (ws.corr.size() != band.size() || ws.corr_tau2 != call.tau2) {
    ws.corr.resize(band.size());
    for (size_t b = 0; b < band.size(); ++b)
      ws.corr[b] = splat_correction(int(band.kx[b]), int(band.ky[b]), call.tau2, pixel, n);
    ws.corr_tau2 = call.tau2;
  }
  ws.spec.resize(size_t(n) * h);
  fft.r2c(ws.image.data(), ws.spec.data());
  for (size_t b = 0; b < band.size(); ++b) {
    T c = ws.corr[b];
    std::complex<T> f = ws.spec[band.fft_index[b]];
    ws.model[b] = {c * f.real(), c * f.imag()};
  }
}

// Backward of splat_forward (whose footprints and profiles it reuses): the adjoint of "correct, keep the
// band" into a half-plane, the adjoint DFT (c2r), then a gather over each footprint.
template <class T, class Fft>
void splat_backward(const BandPlan& plan, const CallPlan<T>& call, int g_count, const T* a, const T* s,
                    Workspace<T>& ws, const Fft& fft, T* v_a, T* v_s, T* v_px, T* v_py) {
  const FourierBand& band = *plan.band;
  const int n = band.box, h = n / 2 + 1;
  const T pixel = T(band.pixel_size);
  // d score / d I[x] = Re sum_b conj(g_b) c_b exp(-2 pi i k_b.x / N) = Re sum_b Q_b exp(+2 pi i k_b.x / N) with
  // Q_b = c_b g_b (c real), put on the half-plane by halfplane_adjoint.
  auto q = [&](size_t b) { return ws.corr[b] * ws.grad[b]; };
  ws.spec.assign(size_t(n) * h, std::complex<T>(0));
  for (size_t b = 0; b < band.size(); ++b) {
    const int p = band.partner[b];
    const Cplx<T> x = halfplane_adjoint(q(b), p >= 0, p >= 0 ? q(size_t(p)) : Cplx<T>{0, 0});
    ws.spec[band.fft_index[b]] = {x.re, x.im};
  }
  ws.image.resize(size_t(n) * n);
  fft.c2r(ws.spec.data(), ws.image.data());
  if constexpr (std::is_same<T, float>::value)
    splat_gather_f32(call, g_count, a, s, pixel, n, ws.image.data(), ws, v_a, v_s, v_px, v_py);
  else
    splat_gather(call, g_count, a, s, pixel, n, ws.image.data(), ws, v_a, v_s, v_px, v_py);
}

}  // namespace proj

template <class T, class Fft>
void model_particle(const BandPlan& plan, const CallPlan<T>& call, int num_gaussians, const T* params,
                    const View<T>& view, Workspace<T>& ws, const Fft& fft) {
  const FourierBand& band = *plan.band;
  const int G = num_gaussians;
  const T *x = params, *y = params + G, *z = params + 2 * G, *a = params + 3 * G, *s = params + 4 * G;
  const size_t nb = band.size();

  ws.land.resize(G);
  for (int j = 0; j < G; ++j) ws.land[j] = land(view.rotation, x[j], y[j], z[j], view.origin_x, view.origin_y);
  ws.ctf.resize(nb);
  if constexpr (std::is_same<T, float>::value)
    proj::ctf_fill_f32(plan, view, ws.ctf.data());
  else {
    const CtfAngle2<T> angle2 = ctf_angle2(view.ctf);
    for (size_t b = 0; b < nb; ++b) {
      const CtfBandPoint<double>& k = band.ctf_points[b];
      ws.ctf[b] = ctf_model_factor(view.ctf, angle2, CtfBandPoint<T>{T(k.k2), T(k.cos2), T(k.sin2)}, view.ctf_mode);
    }
  }

  ws.model.resize(nb);
  if (call.strategy == ProjectionStrategy::separable_fourier)
    proj::separable_forward(plan, G, a, s, ws);
  else
    proj::splat_forward(plan, call, G, a, s, ws, fft);
  for (size_t b = 0; b < nb; ++b) ws.model[b] = ws.ctf[b] * ws.model[b];
}

template <class T, class Fft>
T project_particle(const BandPlan& plan, const CallPlan<T>& call, int num_gaussians, const T* params,
                   const View<T>& view, const std::complex<T>* data, Workspace<T>& ws, const Fft& fft, T* frc,
                   T* grad_params, T* grad_pose) {
  const FourierBand& band = *plan.band;
  const int G = num_gaussians;
  const T *a = params + 3 * G, *s = params + 4 * G;
  const size_t nb = band.size();
  model_particle(plan, call, G, params, view, ws, fft);

  // The ring sums of M^ = CTF P^ against the data.
  ws.sums.assign(band.num_rings(), RingSums<T>{0, 0, 0});
  for (size_t b = 0; b < nb; ++b) {
    Cplx<T> d{data[b].real(), data[b].imag()};
    frc_accumulate(ws.sums[band.ring[b]], ws.model[b], d, T(band.weight[b]));
  }
  T score = 0;
  for (int r = 0; r <= band.ring_max; ++r) {
    T f = r >= band.ring_min ? frc_value(ws.sums[r], call.eps) : T(0);
    if (frc) frc[r] = f;
    score += T(plan.ring_weight[size_t(r)]) * f;
  }
  const RingSums<T> pooled = pooled_sums(ws.sums.data(), plan.ring_weight.data(), band.ring_min, band.ring_max);
  if (plan.pooled) score = frc_value(pooled, call.eps);
  if (!grad_params && !grad_pose) return score;

  // Backward: d score / d P^ = CTF * d score / d M^ (CTF real), per coefficient.
  ws.grad.resize(nb);
  for (size_t b = 0; b < nb; ++b) {
    int r = band.ring[b];
    if (r < band.ring_min) { ws.grad[b] = {0, 0}; continue; }
    Cplx<T> d{data[b].real(), data[b].imag()};
    const T v = T(plan.ring_weight[size_t(r)]);
    ws.grad[b] = ws.ctf[b] * (plan.pooled ? frc_vjp(pooled, call.eps, T(1), ws.model[b], d, v * T(band.weight[b]))
                                          : frc_vjp(ws.sums[r], call.eps, v, ws.model[b], d, T(band.weight[b])));
  }

  // Cotangents of a, s and the landing point, staged in the gradient row (or a scratch row).
  std::vector<T> scratch;
  T* out = grad_params;
  if (!out) { scratch.resize(size_t(5) * G); out = scratch.data(); }
  T *v_x = out, *v_y = out + G, *v_z = out + 2 * G, *v_a = out + 3 * G, *v_s = out + 4 * G;
  // v_x, v_y hold v_px, v_py until the landing's backward turns them into centre cotangents.
  if (call.strategy == ProjectionStrategy::separable_fourier)
    proj::separable_backward(plan, G, a, s, ws, v_a, v_s, v_x, v_y);
  else
    proj::splat_backward(plan, call, G, a, s, ws, fft, v_a, v_s, v_x, v_y);

  T pose[5] = {0, 0, 0, 0, 0};
  for (int j = 0; j < G; ++j) {
    T vpx = v_x[j], vpy = v_y[j];
    land_vjp(view.rotation, ws.land[j], vpx, vpy, v_x[j], v_y[j], v_z[j], pose);
  }
  if (grad_pose)
    for (int i = 0; i < 5; ++i) grad_pose[i] = pose[i];
  return score;
}

}  // namespace cugmm::detail
