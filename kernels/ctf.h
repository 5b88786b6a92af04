// The contrast transfer function exactly as RELION's src/ctf.cpp defines it (DESIGN §2):
//   gamma = -pi lambda defocus(theta) |k|^2 + (pi/2) Cs lambda^3 |k|^4 - phase_shift - atan(Q0/sqrt(1-Q0^2))
//   CTF   = -scale * sin(gamma) * exp(-B |k|^2 / 4)        so CTF(0) = +Q0 without a phase shift.
// k is in 1/Å. Host-device and templated, shared by both backends.
#pragma once
#include <cmath>

#include "kernels/geometry.h"
#include "kernels/hd.h"

namespace cugmm {

// The per-particle values as STAR files store them (RELION units).
struct CtfParams {
  double defocus_u = 0, defocus_v = 0;  // Å, rlnDefocusU/V (positive = underfocus)
  double defocus_angle = 0;             // degrees, rlnDefocusAngle
  double voltage = 300;                 // kV, rlnVoltage
  double cs = 2.7;                      // mm, rlnSphericalAberration
  double amp_contrast = 0.1;            // rlnAmplitudeContrast (Q0)
  double phase_shift = 0;               // degrees, rlnPhaseShift
  double bfactor = 0;                   // Å^2, rlnCtfBfactor
  double scale = 1;                     // rlnCtfScalefactor
};

// How the model is modulated: raw particles see the full CTF, phase-flipped ones |CTF|.
enum class CtfMode { none = 0, full = 1, phase_flipped = 2 };

// Electron wavelength in Å for an acceleration voltage in volts (relativistic).
template <class T>
CUGMM_HD T electron_wavelength(T volts) {
  return T(12.2643247) / std::sqrt(volts * (1 + T(0.978466e-6) * volts));
}

// The constants a kernel needs, precomputed once per particle.
template <class T>
struct CtfConsts {
  T k1;          // pi * lambda
  T k2;          // (pi/2) * Cs * lambda^3
  T offset;      // phase_shift + atan(Q0 / sqrt(1 - Q0^2)), radians
  T def_avg;     // (dU + dV) / 2
  T def_dev;     // (dU - dV) / 2
  T angle;       // radians
  T bfac_quarter;  // B / 4
  T scale;
};

template <class T>
inline CtfConsts<T> make_ctf_consts(const CtfParams& p) {
  double lambda = electron_wavelength(p.voltage * 1e3);
  double cs_a = p.cs * 1e7;
  double q0 = p.amp_contrast;
  CtfConsts<T> c;
  c.k1 = T(kPi * lambda);
  c.k2 = T(kPi / 2 * cs_a * lambda * lambda * lambda);
  c.offset = T(deg2rad(p.phase_shift) + std::atan(q0 / std::sqrt(1 - q0 * q0)));
  c.def_avg = T((p.defocus_u + p.defocus_v) / 2);
  c.def_dev = T((p.defocus_u - p.defocus_v) / 2);
  c.angle = T(deg2rad(p.defocus_angle));
  c.bfac_quarter = T(p.bfactor / 4);
  c.scale = T(p.scale);
  return c;
}

// CTF at spatial frequency (kx, ky) in 1/Å.
template <class T>
CUGMM_HD T ctf_value(const CtfConsts<T>& c, T kx, T ky) {
  T k2 = kx * kx + ky * ky;
  // RELION takes the azimuth as 0 at the origin; cos(2 theta) then multiplies k2 = 0 anyway.
  T theta = (kx == 0 && ky == 0) ? T(0) : std::atan2(ky, kx);
  T defocus = c.def_avg + c.def_dev * std::cos(2 * (theta - c.angle));
  T gamma = -c.k1 * defocus * k2 + c.k2 * k2 * k2 - c.offset;
  T env = c.bfac_quarter != 0 ? std::exp(-c.bfac_quarter * k2) : T(1);
  return -c.scale * std::sin(gamma) * env;
}

// ctf_value with the azimuth and |k|^2 taken from a table: a band is the same for every particle, so its
// per-coefficient trigonometry is computed once (ctf_band_point) and each particle costs one sine, using
// cos(2 (theta - angle)) = cos 2theta cos 2angle + sin 2theta sin 2angle.
template <class T>
struct CtfBandPoint {
  T k2;            // |k|^2, 1/Å^2
  T cos2, sin2;    // cos(2 theta), sin(2 theta); theta = 0 at the origin, as ctf_value takes it
};

template <class T>
CUGMM_HD CtfBandPoint<T> ctf_band_point(T kx, T ky) {
  T theta = (kx == 0 && ky == 0) ? T(0) : std::atan2(ky, kx);
  return {kx * kx + ky * ky, std::cos(2 * theta), std::sin(2 * theta)};
}

// cos(2 angle) and sin(2 angle) of one particle's astigmatism, for ctf_value_at.
template <class T>
struct CtfAngle2 {
  T cos2, sin2;
};
template <class T>
CUGMM_HD CtfAngle2<T> ctf_angle2(const CtfConsts<T>& c) {
  return {std::cos(2 * c.angle), std::sin(2 * c.angle)};
}

// ctf_value_at in its parts, so that a CPU loop can take sin and exp from kernels/poly_math.h (vectorised):
// the phase gamma, and the CTF from sin(gamma) and the envelope exp(-B |k|^2 / 4).
template <class T>
CUGMM_HD T ctf_gamma_at(const CtfConsts<T>& c, CtfAngle2<T> a, const CtfBandPoint<T>& k) {
  T defocus = c.def_avg + c.def_dev * (k.cos2 * a.cos2 + k.sin2 * a.sin2);
  return -c.k1 * defocus * k.k2 + c.k2 * k.k2 * k.k2 - c.offset;
}
template <class T>
CUGMM_HD T ctf_from_sine(const CtfConsts<T>& c, T sin_gamma, T envelope) {
  return -c.scale * sin_gamma * envelope;
}

template <class T>
CUGMM_HD T ctf_value_at(const CtfConsts<T>& c, CtfAngle2<T> a, const CtfBandPoint<T>& k) {
  T env = c.bfac_quarter != 0 ? std::exp(-c.bfac_quarter * k.k2) : T(1);
  return ctf_from_sine(c, std::sin(ctf_gamma_at(c, a, k)), env);
}

template <class T>
CUGMM_HD T ctf_apply_mode(T ctf, CtfMode mode) {
  return mode == CtfMode::none ? T(1) : mode == CtfMode::phase_flipped ? std::fabs(ctf) : ctf;
}

// The factor the projector multiplies the model by at one band coefficient (its table entry k): 1 without
// a CTF, else the CTF per the mode. The one path both projector backends take.
template <class T>
CUGMM_HD T ctf_model_factor(const CtfConsts<T>& c, CtfAngle2<T> a, const CtfBandPoint<T>& k, CtfMode mode) {
  return mode == CtfMode::none ? T(1) : ctf_apply_mode(ctf_value_at(c, a, k), mode);
}

}  // namespace cugmm
