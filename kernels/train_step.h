// The maths of one training step that sits between the decoder and the projector (DESIGN §1 step 5, §2),
// once for both backends: decoder output -> Gaussian parameters (neutral + scale x Δ, widths clamped to
// the projector's bounds), the per-particle regularisers of mean width and total mass (the FRC is blind
// to both), and the cotangent handed back to the decoder.
//
// Layout: rows of 5G floats [x(G) y(G) z(G) a(G) s(G)] (engine/projector.h); column c belongs to
// parameter kind c / G and Gaussian c % G.
//
// Widths: clamped into [lo, hi] (the projector's gaussian_in_bounds, with a small margin), and the
// gradient is zero where the decoder's value lies outside (a clamp's derivative), so a width pushed past a
// bound stops receiving a push further out. Clamping, rather than a sigmoid-type parametrisation, keeps
// the decoder exactly the neutral model at z = 0 and leaves widths inside the bounds untouched.
//
// Regularisers, per particle i, relative to the neutral model (mean width w0, total mass m0):
//   reg_i = lw ((mean_j s_ij - w0) / w0)^2 + lm ((sum_j a_ij - m0) / m0)^2
//   d reg_i / d s_ij = 2 lw (mean_j s_ij - w0) / (w0^2 G)        (for widths inside the bounds)
//   d reg_i / d a_ij = 2 lm (sum_j a_ij - m0) / m0^2
// Loss of particle i = -score_i + reg_i; the batch loss is their mean, so every cotangent carries 1 / B.
#pragma once
#include <cstddef>

#include "kernels/hd.h"

namespace cugmm {

struct StepConsts {
  int G = 0;
  float scale[5] = {1, 1, 1, 1, 1};  // per parameter kind: params = base + scale x decoder output
  float width_lo = 0, width_hi = 0;  // Å
  float w0 = 1, m0 = 1;              // neutral mean width (Å) and total mass
  float reg_width = 0, reg_mass = 0;
  // Rigid-body modes removed from the position output (rigid_free; see rigid_project below): the neutral
  // model's centre of mass (Å), total mass and the inverse of its inertia tensor about that centre (1/Å^2
  // per mass).
  bool rigid_free = false;
  float centre[3] = {0, 0, 0};
  float mass = 1;
  float inertia_inv[9] = {0, 0, 0, 0, 0, 0, 0, 0, 0};
};

// Column c of a row: the parameter value and whether the clamp passes the gradient.
CUGMM_HD float step_param(const StepConsts& k, const float* base, const float* raw, int c, bool& inside) {
  const int kind = c / k.G;
  float p = base[c] + k.scale[kind] * raw[c];
  inside = true;
  if (kind == 4) {
    // NaN compares false both ways: it stays NaN and the projector's check names it.
    if (p < k.width_lo) { p = k.width_lo; inside = false; }
    else if (p > k.width_hi) { p = k.width_hi; inside = false; }
  }
  return p;
}

// From the row's sums of widths and amplitudes: the regulariser value and its two per-column derivatives.
struct RowReg {
  float reg, d_width, d_mass;
};
CUGMM_HD RowReg row_regulariser(const StepConsts& k, double width_sum, double mass_sum) {
  const double dw = (width_sum / k.G - k.w0) / k.w0, dm = (mass_sum - k.m0) / k.m0;
  RowReg r;
  r.reg = float(k.reg_width * dw * dw + k.reg_mass * dm * dm);
  r.d_width = float(2.0 * k.reg_width * dw / (double(k.w0) * k.G));
  r.d_mass = float(2.0 * k.reg_mass * dm / k.m0);
  return r;
}

// d loss / d decoder output for column c of a row: mask (frozen columns and Gaussians get exactly 0),
// the clamp, the chain rule through `scale`, and the batch mean.
CUGMM_HD float step_cotangent(const StepConsts& k, const float* base, const float* raw, const float* mask,
                              const float* grad_score, const RowReg& r, int c, float inv_batch) {
  if (mask[c] == 0.f) return 0.f;
  bool inside;
  step_param(k, base, raw, c, inside);
  if (!inside) return 0.f;
  const int kind = c / k.G;
  float g = -grad_score[c];
  if (kind == 4) g += r.d_width;
  if (kind == 3) g += r.d_mass;
  return g * k.scale[kind] * inv_batch;
}

}  // namespace cugmm

namespace cugmm {

// ---- the six rigid-body modes removed from the decoder's position output ----------------------------------
// The decoder's displacements x_j (the position part of a row, one 3-vector per Gaussian, in the decoder's
// units) are replaced by their part orthogonal, in the mass-weighted inner product, to every rigid
// translation and small rotation of the neutral model (masses m_j = neutral amplitudes, r_j = neutral centre
// minus the centre of mass, M = sum m_j, I = sum m_j (|r_j|^2 1 - r_j r_j^T)):
//   t = (1/M) sum_j m_j x_j,  w = I^-1 sum_j m_j r_j x x_j,  y_j = x_j - t - w x r_j.
// So the latent cannot spend itself on the particles' pose errors (a rigid turn or shift of the whole model
// is a pose change), while any motion of one part against another stays. The map is linear (y = P x); its
// adjoint (the backward) is, with S = sum_j g_j and L = sum_j r_j x g_j for the incoming cotangent g,
//   x_bar_j = g_j - m_j (S / M + (I^-1 L) x r_j):
// the same two sums and the same update, with the mass moved from the sums to the update. One routine serves
// both: `adjoint` false is the forward, true the backward.
struct RigidSums {
  double s[3], l[3];
};

// Gaussian j's neutral offset from the centre of mass and its mass.
CUGMM_HD void rigid_arm(const StepConsts& k, const float* base, int j, float r[3], float& m) {
  for (int a = 0; a < 3; ++a) r[a] = base[a * k.G + j] - k.centre[a];
  m = base[3 * k.G + j];
}

// Gaussian j's share of the row's sums (add over j into a zeroed RigidSums).
CUGMM_HD void rigid_accumulate(const StepConsts& k, const float* base, const float* row, int j, bool adjoint,
                               RigidSums& acc) {
  float r[3], m;
  rigid_arm(k, base, j, r, m);
  const double w = adjoint ? 1.0 : double(m);
  const double x[3] = {row[j], row[k.G + j], row[2 * k.G + j]};
  for (int a = 0; a < 3; ++a) acc.s[a] += w * x[a];
  acc.l[0] += w * (r[1] * x[2] - r[2] * x[1]);
  acc.l[1] += w * (r[2] * x[0] - r[0] * x[2]);
  acc.l[2] += w * (r[0] * x[1] - r[1] * x[0]);
}

// Gaussian j's projected vector (out[0..3)) from the row's sums.
CUGMM_HD void rigid_apply(const StepConsts& k, const float* base, const float* row, int j, bool adjoint,
                          const RigidSums& acc, float out[3]) {
  float r[3], m;
  rigid_arm(k, base, j, r, m);
  double w[3];
  for (int a = 0; a < 3; ++a)
    w[a] = k.inertia_inv[3 * a] * acc.l[0] + k.inertia_inv[3 * a + 1] * acc.l[1] + k.inertia_inv[3 * a + 2] * acc.l[2];
  const double wr[3] = {w[1] * r[2] - w[2] * r[1], w[2] * r[0] - w[0] * r[2], w[0] * r[1] - w[1] * r[0]};
  const double f = adjoint ? double(m) : 1.0;
  for (int a = 0; a < 3; ++a) out[a] = float(row[a * k.G + j] - f * (acc.s[a] / k.mass + wr[a]));
}

}  // namespace cugmm
