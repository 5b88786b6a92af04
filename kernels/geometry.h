// Rotations in RELION's conventions (DESIGN §3). Host-device, templated on the scalar so tests can run
// them in double.
#pragma once
#include <cmath>

#include "kernels/hd.h"

namespace cugmm {

template <class T>
struct Mat3 {
  T m[9];  // row-major
  CUGMM_HD T operator()(int r, int c) const { return m[3 * r + c]; }
  CUGMM_HD T& operator()(int r, int c) { return m[3 * r + c]; }
};

template <class T>
struct Vec3 {
  T x, y, z;
};

template <class T>
CUGMM_HD Vec3<T> mul(const Mat3<T>& a, const Vec3<T>& v) {
  return {a(0, 0) * v.x + a(0, 1) * v.y + a(0, 2) * v.z, a(1, 0) * v.x + a(1, 1) * v.y + a(1, 2) * v.z,
          a(2, 0) * v.x + a(2, 1) * v.y + a(2, 2) * v.z};
}

template <class T>
CUGMM_HD Mat3<T> mul(const Mat3<T>& a, const Mat3<T>& b) {
  Mat3<T> c;
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) c(i, j) = a(i, 0) * b(0, j) + a(i, 1) * b(1, j) + a(i, 2) * b(2, j);
  return c;
}

template <class T>
CUGMM_HD Mat3<T> transpose(const Mat3<T>& a) {
  return {{a(0, 0), a(1, 0), a(2, 0), a(0, 1), a(1, 1), a(2, 1), a(0, 2), a(1, 2), a(2, 2)}};
}

constexpr double kPi = 3.14159265358979323846;
template <class T> CUGMM_HD T deg2rad(T d) { return d * T(kPi / 180.0); }
template <class T> CUGMM_HD T rad2deg(T r) { return r * T(180.0 / kPi); }

// RELION's Euler_angles2matrix (phi = rot, theta = tilt, psi, in degrees). A volume point r (Å from
// voxel N/2) lands at image position (A r)_xy.
template <class T>
CUGMM_HD Mat3<T> euler_to_matrix(T rot, T tilt, T psi) {
  T ca = std::cos(deg2rad(rot)), sa = std::sin(deg2rad(rot));
  T cb = std::cos(deg2rad(tilt)), sb = std::sin(deg2rad(tilt));
  T cg = std::cos(deg2rad(psi)), sg = std::sin(deg2rad(psi));
  T cc = cb * ca, cs = cb * sa, sc = sb * ca, ss = sb * sa;
  return {{cg * cc - sg * sa, cg * cs + sg * ca, -cg * sb,
           -sg * cc - cg * sa, -sg * cs + cg * ca, sg * sb,
           sc, ss, cb}};
}

// RELION's Euler_matrix2angles: the inverse of euler_to_matrix (degrees), tilt in [0, 180].
template <class T>
CUGMM_HD void matrix_to_euler(const Mat3<T>& a, T& rot, T& tilt, T& psi) {
  const T eps = T(1.1920929e-7);  // FLT_EPSILON, as RELION
  T abs_sb = std::sqrt(a(0, 2) * a(0, 2) + a(1, 2) * a(1, 2));
  T alpha, beta, gamma;
  if (abs_sb > 16 * eps) {
    gamma = std::atan2(a(1, 2), -a(0, 2));
    alpha = std::atan2(a(2, 1), a(2, 0));
    T sign_sb;
    if (std::fabs(std::sin(gamma)) < eps)
      sign_sb = (-a(0, 2) / std::cos(gamma)) >= 0 ? T(1) : T(-1);
    else
      sign_sb = (std::sin(gamma) > 0) ? (a(1, 2) >= 0 ? T(1) : T(-1)) : (a(1, 2) >= 0 ? T(-1) : T(1));
    beta = std::atan2(sign_sb * abs_sb, a(2, 2));
  } else if (a(2, 2) > 0) {
    alpha = 0; beta = 0; gamma = std::atan2(-a(1, 0), a(0, 0));
  } else {
    alpha = 0; beta = T(kPi); gamma = std::atan2(a(1, 0), -a(0, 0));
  }
  rot = rad2deg(alpha); tilt = rad2deg(beta); psi = rad2deg(gamma);
}

// Rodrigues: the rotation by |w| radians about w, i.e. exp([w]x). Used for cryoSPARC's axis-angle poses
// (A_relion = R(pose)^T) and for local pose updates (A <- exp([w]x) A).
template <class T>
CUGMM_HD Mat3<T> axis_angle_to_matrix(T wx, T wy, T wz) {
  T th = std::sqrt(wx * wx + wy * wy + wz * wz);
  // Below this angle the series form is exact to rounding and avoids 0/0.
  T s, c1;
  if (th < T(1e-4)) { s = 1 - th * th / 6; c1 = T(0.5) - th * th / 24; }
  else { s = std::sin(th) / th; c1 = (1 - std::cos(th)) / (th * th); }
  return {{1 - c1 * (wy * wy + wz * wz), -s * wz + c1 * wx * wy, s * wy + c1 * wx * wz,
           s * wz + c1 * wx * wy, 1 - c1 * (wx * wx + wz * wz), -s * wx + c1 * wy * wz,
           -s * wy + c1 * wx * wz, s * wx + c1 * wy * wz, 1 - c1 * (wx * wx + wy * wy)}};
}

// The geodesic angle (radians) between two rotations: the angle of a^T b.
template <class T>
CUGMM_HD T geodesic_angle(const Mat3<T>& a, const Mat3<T>& b) {
  const Mat3<T> r = mul(transpose(a), b);
  const T c = (r(0, 0) + r(1, 1) + r(2, 2) - 1) / 2;
  return std::acos(c > 1 ? T(1) : (c < -1 ? T(-1) : c));
}

}  // namespace cugmm
