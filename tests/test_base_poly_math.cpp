// The float polynomials the CPU projector's hot loops use instead of libm (kernels/poly_math.h), against
// libm in double over their whole domain, and the CTF built from them against ctf_value_at.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>

#include "kernels/ctf.h"
#include "kernels/poly_math.h"

using namespace cugmm;

TEST_CASE("exp_poly: within 0.51 ulp of exp on [-87, 88], exact at 0, clamped outside") {
  double worst = 0;
  for (int i = 0; i <= 2000000; ++i) {
    const float x = float(-87.0 + 175.0 * i / 2000000);
    const double ref = std::exp(double(x));
    worst = std::max(worst, std::fabs(double(exp_poly(x)) - ref) / ref);
  }
  CHECK(worst < 0.51 * 0x1p-23);  // the float's rounding, relative: half a unit in the last place at most
  CHECK(exp_poly(0.f) == 1.f);  // a particle without a B-factor gets an envelope of exactly 1
  CHECK(exp_poly(-1000.f) == exp_poly(-87.f));
  CHECK(exp_poly(-1000.f) > 0.f);
  CHECK(std::isfinite(exp_poly(1000.f)));
}

TEST_CASE("sin_poly: within 0.51 ulp (+1e-10) of sin for |x| < 1e5 (a CTF's phase stays below ~1e4 rad)") {
  double worst = 0;
  for (int i = -2000000; i <= 2000000; ++i) {
    // Dense near 0, where the phase of most coefficients lies, and out to 1e5.
    const double t = double(i) / 2000000;
    const float x = float(1e5 * t * t * t);
    const double ref = std::sin(double(x));
    const double ulp = std::ldexp(1.0, std::ilogb(std::max(std::fabs(ref), 0x1p-126)) - 23);
    // Plus 1e-10 absolute: near a zero of sin the reduction's rounding (~1e-11 at 1e5) is more ulps of a
    // tiny result, and a CTF cares about absolute error.
    worst = std::max(worst, (std::fabs(double(sin_poly(x)) - ref) - 1e-10) / ulp);
  }
  CHECK(worst < 0.51);
  CHECK(sin_poly(0.f) == 0.f);
  CHECK(sin_poly(-1.f) == -sin_poly(1.f));
}

TEST_CASE("the CTF from sin_poly and exp_poly is ctf_value_at within 1e-6") {
  CtfParams p;
  p.defocus_u = 32000;
  p.defocus_v = 29000;
  p.defocus_angle = 37;
  p.bfactor = 60;
  p.phase_shift = 20;
  const auto c = make_ctf_consts<float>(p);
  const CtfAngle2<float> a2 = ctf_angle2(c);
  double worst = 0;
  for (int iy = -64; iy <= 64; ++iy)
    for (int ix = 0; ix <= 64; ++ix) {
      const auto k = ctf_band_point(float(ix) / 128, float(iy) / 128);  // 1 Å pixels, to Nyquist
      const float fast = ctf_from_sine(c, sin_poly(ctf_gamma_at(c, a2, k)), exp_poly(-c.bfac_quarter * k.k2));
      worst = std::max(worst, double(std::fabs(fast - ctf_value_at(c, a2, k))));
    }
  CHECK(worst < 1e-6);
}
