// Random rotations for simulated data: uniform over SO(3), and small perturbations exp([w]x) with
// w ~ N(0, sigma^2 I) (the pose error of a consensus refinement).
#pragma once
#include <cmath>
#include <random>

#include "kernels/geometry.h"

namespace cugmm {

// Uniform over rotations: a unit quaternion with Gaussian components.
template <class Rng>
Mat3<double> random_rotation(Rng& rng) {
  std::normal_distribution<double> g(0, 1);
  double w = g(rng), x = g(rng), y = g(rng), z = g(rng);
  const double n = std::sqrt(w * w + x * x + y * y + z * z);
  w /= n; x /= n; y /= n; z /= n;
  return {{1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w),
           2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w),
           2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)}};
}

// exp([w]x) with w ~ N(0, sigma^2 I) (radians); `angle` receives |w|, the geodesic angle it rotates by.
template <class Rng>
Mat3<double> random_small_rotation(Rng& rng, double sigma, double& angle) {
  std::normal_distribution<double> g(0, sigma);
  const double wx = g(rng), wy = g(rng), wz = g(rng);
  angle = std::sqrt(wx * wx + wy * wy + wz * wz);
  return axis_angle_to_matrix(wx, wy, wz);
}

}  // namespace cugmm
