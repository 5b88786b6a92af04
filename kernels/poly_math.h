// exp and sin of a float as plain polynomials, for the CPU's hot loops: libm's expf/sinf are calls the
// compiler cannot vectorise (without fast-math), and per Fourier coefficient or per profile line they were
// a sixth of the projector's time. Branch-free, so a loop over them becomes vector code. Evaluated in double
// and rounded once, so they are as accurate as libm's float functions (within ~0.5 ulp; tests/
// test_base_poly_math.cpp): the widened splat amplifies rounding errors at high frequencies ~1e4-fold
// (kernels/gaussian_projection.h: splat_correction), and a float polynomial's 3e-7 moved test_projector's
// float-against-double gradients past their tolerances.
#pragma once
#include <cstdint>
#include <cmath>
#include <cstring>

#include "kernels/hd.h"

namespace cugmm {

// Bit casts by memcpy: the one that is defined and still vectorises.
CUGMM_HD double double_from_bits(std::int64_t i) {
  double d;
  std::memcpy(&d, &i, sizeof d);
  return d;
}
CUGMM_HD std::int64_t bits_of(double d) {
  std::int64_t i;
  std::memcpy(&i, &d, sizeof i);
  return i;
}

// Adding and removing 1.5 2^52 rounds a double of magnitude below 2^51 to the nearest integer, with no
// branch and no conversion instruction; that integer is then the low bits of the sum's representation.
constexpr double kRoundMagic = 6755399441055744.0;

// exp(x) of a finite x, clamped to [-87, 88], where the result is a normal float (denormals are slow, and no weight here
// is that small anyway). exp(x) = 2^n exp(r), n = round(x / ln 2), r = x - n ln 2 in [-ln2/2, ln2/2], exp(r)
// by its Taylor series to r^9 (remainder < 0.35^10 / 10! = 8e-12).
CUGMM_HD float exp_poly(float xf) {
  // The clamp as max(x, lo) = (x + lo + |x - lo|) / 2, exact for a float x: selects (x < lo ? lo : x) in
  // double stop GCC's vectoriser, and std::fmax is a call.
  double x = xf;
  x = 0.5 * (x - 87.0 + std::fabs(x + 87.0));
  x = 0.5 * (x + 88.0 - std::fabs(x - 88.0));
  const double t = x * 1.4426950408889634 + kRoundMagic;
  const double n = t - kRoundMagic;
  const double r = x - n * 0.69314718055994531;
  double p = 1.0 / 362880;
  p = p * r + 1.0 / 40320;
  p = p * r + 1.0 / 5040;
  p = p * r + 1.0 / 720;
  p = p * r + 1.0 / 120;
  p = p * r + 1.0 / 24;
  p = p * r + 1.0 / 6;
  p = p * r + 0.5;
  p = p * r + 1.0;
  p = p * r + 1.0;
  const std::int64_t k = bits_of(t) - bits_of(kRoundMagic);  // n
  return float(p * double_from_bits((k + 1023) << 52));      // times 2^n
}

// sin(x) for |x| < 1e5 (a CTF's phase stays below ~1e4 rad): x = n pi + r, r in [-pi/2, pi/2], sin x =
// (-1)^n sin r, sin r by its Taylor series to r^15 (remainder < (pi/2)^17 / 17! = 6e-13).
CUGMM_HD float sin_poly(float xf) {
  const double x = xf;
  const double t = x * 0.31830988618379067 + kRoundMagic;  // 1 / pi
  const double n = t - kRoundMagic;
  const double r = x - n * 3.14159265358979323846;
  const double r2 = r * r;
  double p = -1.0 / 1307674368000;
  p = p * r2 + 1.0 / 6227020800;
  p = p * r2 - 1.0 / 39916800;
  p = p * r2 + 1.0 / 362880;
  p = p * r2 - 1.0 / 5040;
  p = p * r2 + 1.0 / 120;
  p = p * r2 - 1.0 / 6;
  p = p * r2 + 1.0;
  // (-1)^n: n's lowest bit (the lowest of t's representation) into the sign bit, with integer operations
  // only (converting a 64-bit integer to a double has no vector instruction before AVX-512DQ).
  const std::int64_t flip = (bits_of(t) & 1) << 63;
  return float(double_from_bits(bits_of(p * r) ^ flip));
}

}  // namespace cugmm
