// The CTF maths on its own (kernels/ctf.h); the comparison with relion_project is in
// test_conventions_relion.cpp.
#include <doctest/doctest.h>

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
