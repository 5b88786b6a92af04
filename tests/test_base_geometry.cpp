// RELION's Euler convention and the rotations built on it (DESIGN §3). The comparison with
// relion_project itself is in test_conventions_relion.cpp.
#include <doctest/doctest.h>

#include "kernels/geometry.h"

using namespace cugmm;

TEST_CASE("euler_to_matrix matches RELION's closed form and is a rotation") {
  double rot = 30, tilt = 50, psi = -70;
  Mat3<double> a = euler_to_matrix(rot, tilt, psi);
  double cf = std::cos(deg2rad(rot)), sf = std::sin(deg2rad(rot));
  double ct = std::cos(deg2rad(tilt)), st = std::sin(deg2rad(tilt));
  double cp = std::cos(deg2rad(psi)), sp = std::sin(deg2rad(psi));
  // DESIGN §3, element by element.
  CHECK(a(0, 0) == doctest::Approx(cp * ct * cf - sp * sf));
  CHECK(a(0, 1) == doctest::Approx(cp * ct * sf + sp * cf));
  CHECK(a(0, 2) == doctest::Approx(-cp * st));
  CHECK(a(1, 0) == doctest::Approx(-sp * ct * cf - cp * sf));
  CHECK(a(1, 1) == doctest::Approx(-sp * ct * sf + cp * cf));
  CHECK(a(1, 2) == doctest::Approx(sp * st));
  CHECK(a(2, 0) == doctest::Approx(st * cf));
  CHECK(a(2, 1) == doctest::Approx(st * sf));
  CHECK(a(2, 2) == doctest::Approx(ct));
  Mat3<double> i = mul(a, transpose(a));
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 3; ++c) CHECK(i(r, c) == doctest::Approx(r == c ? 1.0 : 0.0));
}

TEST_CASE("matrix_to_euler inverts euler_to_matrix, including the tilt = 0 and 180 poles") {
  const double cases[][3] = {{10, 20, 30}, {-170, 90, 45}, {0, 0, 25}, {0, 180, -60}, {123, 177.5, -3}};
  for (auto& c : cases) {
    Mat3<double> a = euler_to_matrix(c[0], c[1], c[2]);
    double r, t, p;
    matrix_to_euler(a, r, t, p);
    Mat3<double> b = euler_to_matrix(r, t, p);
    for (int k = 0; k < 9; ++k) CHECK(b.m[k] == doctest::Approx(a.m[k]).epsilon(1e-9));
    CHECK(t >= 0);
    CHECK(t <= 180);
  }
}

TEST_CASE("axis_angle_to_matrix is a right-handed rotation and continuous at 0") {
  Mat3<double> r = axis_angle_to_matrix(0.0, 0.0, kPi / 2);  // +90 degrees about z: x -> y
  Vec3<double> v = mul(r, Vec3<double>{1, 0, 0});
  CHECK(v.x == doctest::Approx(0).epsilon(1e-12));
  CHECK(v.y == doctest::Approx(1));
  Mat3<double> small = axis_angle_to_matrix(1e-5, -2e-5, 3e-5);
  Mat3<double> just_above = axis_angle_to_matrix(1e-4 * 1.0001, 0.0, 0.0);
  CHECK(small(0, 1) == doctest::Approx(-3e-5).epsilon(1e-6));
  CHECK(just_above(1, 2) == doctest::Approx(-1.0001e-4).epsilon(1e-6));
}
