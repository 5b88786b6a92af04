// Rendering a Gaussian model onto a voxel grid (DESIGN §2):
//   M(x) = sum_j a_j (2 pi s_j^2)^(-3/2) exp(-|x - c_j|^2 / (2 s_j^2)),
// sampled at voxel centres, x in Å from voxel N/2. Units: a voxel holds M(x) * pixel^3, i.e. the mass in
// that voxel (a point-sampled approximation), so the map sums to the total mass and a projection that sums
// voxels along a ray (relion_project) gives mass per pixel, which is what `cugmm project` writes.
// Host-device and templated on the scalar, shared by every backend that renders.
#pragma once
#include <cmath>

#include "kernels/hd.h"

namespace cugmm {

// A Gaussian is drawn over the cube |x - c| <= 4 s per axis: 6.3e-5 of the mass lies beyond it along each
// axis, ~2e-4 in all, below what single-precision maps and the FRC tests resolve.
constexpr double kRenderCutoffSigmas = 4.0;

// The half-width in voxels of the footprint of a Gaussian of width s (Å).
template <class T>
CUGMM_HD int render_radius_voxels(T s, T pixel) {
  return int(std::ceil(T(kRenderCutoffSigmas) * s / pixel));
}

// Peak value of one Gaussian in mass per voxel: a (2 pi s^2)^(-3/2) pixel^3.
template <class T>
CUGMM_HD T render_peak(T amplitude, T s, T pixel) {
  T r = pixel / (s * std::sqrt(T(2 * 3.14159265358979323846)));
  return amplitude * r * r * r;
}

// The separable factor along one axis: exp(-d^2 / (2 s^2)), d in Å, zero beyond the cut-off so every
// caller draws exactly the same footprint.
template <class T>
CUGMM_HD T render_axis_factor(T d, T s) {
  T u = d / s;
  return std::fabs(u) > T(kRenderCutoffSigmas) ? T(0) : std::exp(T(-0.5) * u * u);
}

}  // namespace cugmm
