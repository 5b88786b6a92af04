// The CTF maths on its own (kernels/ctf.h); the comparison with relion_project is in
// test_conventions_relion.cpp.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>

#include "kernels/ctf.h"

using namespace cugmm;

TEST_CASE("electron wavelength at 300 kV and 200 kV") {
  CHECK(electron_wavelength(300e3) == doctest::Approx(0.019687).epsilon(1e-4));
  CHECK(electron_wavelength(200e3) == doctest::Approx(0.025079).epsilon(1e-4));
}

TEST_CASE("CTF(0) = +amplitude contrast, phase shift and envelope act as RELION's") {
  CtfParams p;
  p.amp_contrast = 0.07;
  auto c = make_ctf_consts<double>(p);
  CHECK(ctf_value(c, 0.0, 0.0) == doctest::Approx(0.07).epsilon(1e-9));
  p.phase_shift = 90;  // a Volta plate: CTF(0) = sin(pi/2 + atan(Q0/...)) = ~1
  auto v = make_ctf_consts<double>(p);
  CHECK(ctf_value(v, 0.0, 0.0) == doctest::Approx(std::cos(std::atan(0.07 / std::sqrt(1 - 0.07 * 0.07)))));
  p.phase_shift = 0;
  auto nb = make_ctf_consts<double>(p);
  p.bfactor = 100;
  auto b = make_ctf_consts<double>(p);
  double k = 0.1;
  CHECK(ctf_value(b, k, 0.0) / ctf_value(nb, k, 0.0) == doctest::Approx(std::exp(-100 * k * k / 4)));
  CHECK(ctf_apply_mode(-0.5, CtfMode::phase_flipped) == 0.5);
  CHECK(ctf_apply_mode(-0.5, CtfMode::none) == 1.0);
  CHECK(ctf_apply_mode(-0.5, CtfMode::full) == -0.5);
}

TEST_CASE("astigmatism: defocus is U along the defocus angle and V across it") {
  CtfParams p;
  p.defocus_u = 20000;
  p.defocus_v = 10000;
  p.defocus_angle = 30;
  p.cs = 0;
  p.amp_contrast = 0;
  auto c = make_ctf_consts<double>(p);
  double lambda = electron_wavelength(300e3), k = 0.05;
  double along = deg2rad(30.0), across = deg2rad(120.0);
  CHECK(ctf_value(c, k * std::cos(along), k * std::sin(along)) ==
        doctest::Approx(std::sin(kPi * lambda * 20000 * k * k)));
  CHECK(ctf_value(c, k * std::cos(across), k * std::sin(across)) ==
        doctest::Approx(std::sin(kPi * lambda * 10000 * k * k)));
}

TEST_CASE("ctf_value_at (tabled |k|^2 and azimuth) equals ctf_value over a grid of frequencies") {
  CtfParams p;
  p.defocus_u = 21000; p.defocus_v = 17500; p.defocus_angle = 37; p.bfactor = 60; p.phase_shift = 20;
  p.amp_contrast = 0.08; p.scale = 0.9;
  for (double angle : {37.0, -120.0, 0.0}) {
    p.defocus_angle = angle;
    auto c = make_ctf_consts<double>(p);
    auto a2 = ctf_angle2(c);
    double worst = 0;
    for (int iy = -32; iy <= 32; ++iy)
      for (int ix = 0; ix <= 32; ++ix) {
        double kx = ix / (64 * 1.3), ky = iy / (64 * 1.3);
        double ref = ctf_value(c, kx, ky), got = ctf_value_at(c, a2, ctf_band_point(kx, ky));
        worst = std::max(worst, std::fabs(got - ref));
      }
    CHECK(worst < 1e-9);
    auto cf = make_ctf_consts<float>(p);
    float kx = 0.2f, ky = -0.13f;
    CHECK(std::fabs(ctf_value_at(cf, ctf_angle2(cf), ctf_band_point(kx, ky)) - ctf_value(cf, kx, ky)) < 1e-4f);
  }
}
