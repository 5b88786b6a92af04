// The Fourier ring correlation between a model M^ and a particle D^ and its analytic backward (DESIGN §2),
// shared by the CPU and CUDA backends.
//
//   FRC_r = num_r / den_r,  num_r = sum w Re(M conj D),  den_r = max(sqrt(mm_r dd_r), eps),
//   mm_r = sum w |M|^2,  dd_r = sum w |D|^2   (sums over the coefficients of ring r, weights w of the band)
//
// Backward, per coefficient, as g = dFRC/dRe M + i dFRC/dIm M:
//   d num / dM = w D,  d mm / dM = 2 w M (d dd / dM = 0: the data are constant), so when den > eps
//   g = w D / den - (num / 2) (mm dd)^(-3/2) dd (2 w M) = w D / den - w M num dd / den^3
//     = w (D / den - FRC_r M / mm_r)          (den^2 = mm dd),
//   and when den is clamped to eps only the numerator moves: g = w D / eps. mm_r > 0 whenever den > eps.
#pragma once
#include <cmath>

#include "kernels/gaussian_projection.h"
#include "kernels/hd.h"

namespace cugmm {

template <class T>
struct RingSums {
  T num, mm, dd;
};

template <class T>
CUGMM_HD void frc_accumulate(RingSums<T>& s, Cplx<T> m, Cplx<T> d, T w) {
  s.num += w * (m.re * d.re + m.im * d.im);
  s.mm += w * (m.re * m.re + m.im * m.im);
  s.dd += w * (d.re * d.re + d.im * d.im);
}

// The one predicate the forward and backward share: is the denominator clamped?
template <class T>
CUGMM_HD bool frc_clamped(const RingSums<T>& s, T eps) {
  return !(std::sqrt(s.mm * s.dd) > eps);
}

template <class T>
CUGMM_HD T frc_value(const RingSums<T>& s, T eps) {
  return frc_clamped(s, eps) ? s.num / eps : s.num / std::sqrt(s.mm * s.dd);
}

// d(v_frc * FRC_r) / dM at one coefficient of ring r, with m, d that coefficient's model and data.
template <class T>
CUGMM_HD Cplx<T> frc_vjp(const RingSums<T>& s, T eps, T v_frc, Cplx<T> m, Cplx<T> d, T w) {
  if (frc_clamped(s, eps)) return (v_frc * w / eps) * d;
  T den = std::sqrt(s.mm * s.dd);
  T a = v_frc * w / den;
  T b = v_frc * w * (s.num / den) / s.mm;
  return {a * d.re - b * m.re, a * d.im - b * m.im};
}

}  // namespace cugmm

namespace cugmm {

// The SNR-weighted score (issue 14): score = sum_r v_r FRC_r with sum_r v_r = 1, in place of the plain mean
// over rings (v_r = 1 / rings). Its backward is frc_vjp with v_frc = v_r, ring by ring: nothing else changes.
//
// Why these weights. At the neutral model, the mean of FRC_r over the data set estimates the ring's
// correlation rho_r = sqrt(SNR_r / (1 + SNR_r)) (times how right the model is there). A small model change
// moves FRC_r in proportion to rho_r, while the noise moves it by ~ 1 / sqrt(n_r) (n_r: the ring's
// coefficients, counted with the band's weights), so the matched filter weights ring r by signal over
// variance, v_r ~ n_r rho_r. At low SNR this is also what the white Gaussian likelihood weights the ring by
// (n_r sqrt(SNR_r)), while the per-ring normalisation keeps the score blind to the particle's scale.
// A ring whose mean FRC is not above `significance` standard errors of that mean (sd over particles /
// sqrt(particles)) holds no measurable signal and gets 0: noise-only rings no longer dilute the gradient.
template <class T>
CUGMM_HD T snr_ring_weight(T mean_frc, T sd_frc, T particles, T coefficients, T significance) {
  const T se = sd_frc / std::sqrt(particles > T(1) ? particles : T(1));
  return mean_frc > significance * se && mean_frc > T(0) ? coefficients * mean_frc : T(0);
}

}  // namespace cugmm

namespace cugmm {

// The pooled score (issue 14; `train --loss white`): ONE correlation over the whole band with every
// coefficient weighted by u_r = 1 / sigma_r^2, the inverse noise variance of its ring (measured on the data:
// engine/ring_weights.h estimate_noise_weights), in place of a weighted mean of per-ring FRCs:
//   score = A / sqrt(B D),  A = sum_r u_r num_r,  B = sum_r u_r mm_r,  D = sum_r u_r dd_r.
// Why: it is the noise-whitened cosine of model and particle, and for a particle of fixed data D the
// Gaussian log-likelihood with the noise spectrum sigma_r^2 and the particle's scale c fitted analytically
// is max_c -|D - c M|^2_u / 2 = const + D score^2 / 2: the same maximiser. A per-ring FRC normalises every
// ring separately, so a model change that follows a particle's noise in a ring costs nothing there (the ring's
// own |M| divides it out); here the model's power in every ring enters one denominator, which charges for it
// as the likelihood does. With a likelihood, the noise of the gradient has the curvature's covariance (the
// Fisher identity), so no direction of model change fits noise better than another and training's modes are
// chosen by the signal; with per-ring FRCs the directions that follow noise freely win (docs/accuracy.md).
// Still blind to the overall scale (a cosine), so the mean-width and total-mass regularisers keep their role.
// Backward: the FRC's with the pooled sums and the coefficient weight u_r w (frc_vjp(pooled, eps, 1, m, d,
// u_r w)).
template <class T, class U>
CUGMM_HD RingSums<T> pooled_sums(const RingSums<T>* s, const U* u, int ring_min, int ring_max) {
  RingSums<T> p{0, 0, 0};
  for (int r = ring_min; r <= ring_max; ++r) {
    p.num += T(u[r]) * s[r].num;
    p.mm += T(u[r]) * s[r].mm;
    p.dd += T(u[r]) * s[r].dd;
  }
  return p;
}

}  // namespace cugmm
