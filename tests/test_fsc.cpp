// engine/fsc: FSC/FRC curves (against a direct numpy-free oracle: identical, negated, independent and
// partly shared signals), resolution at 0.143 / 0.5 by interpolation, soft spherical and file masks.
#include <doctest/doctest.h>

#include <cmath>
#include <random>

#include "core/error.h"
#include "engine/fsc.h"
#include "io/mrc.h"
#include "support.h"

using namespace cugmm;

namespace {

std::vector<float> noise(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0, 1);
  std::vector<float> v(n);
  for (float& x : v) x = g(rng);
  return v;
}

}  // namespace

TEST_CASE("FSC of a map with itself is 1, with its negative -1, of independent noise near 0") {
  const int n = 24;
  std::vector<float> a = noise(size_t(n) * n * n, 1), b = noise(size_t(n) * n * n, 2), neg(a.size());
  for (size_t i = 0; i < a.size(); ++i) neg[i] = -2.5f * a[i];
  FscCurve same = fsc(a.data(), a.data(), n, 1.5);
  FscCurve opp = fsc(a.data(), neg.data(), n, 1.5);
  FscCurve ind = fsc(a.data(), b.data(), n, 1.5);
  REQUIRE(same.value.size() == size_t(n / 2 + 1));
  for (int s = 1; s <= n / 2; ++s) {
    CHECK(same.value[s] == doctest::Approx(1).epsilon(1e-6));
    CHECK(opp.value[s] == doctest::Approx(-1).epsilon(1e-6));  // blind to scale, not to sign
    // Shell s holds ~4 pi s^2 coefficients: independent noise correlates at ~1/sqrt(that).
    CHECK(std::fabs(ind.value[s]) < 4 / std::sqrt(double(ind.count[s])));
  }
  // Counts over the full transform: shell 1 = the 6 face neighbours + 12 edge ones (|k| = sqrt 2 rounds to 1)
  // + 8 corners (sqrt 3 rounds to 2, not counted).
  CHECK(same.count[0] == 1);
  CHECK(same.count[1] == 18);
  CHECK(same.frequency(4) == doctest::Approx(4 / (24 * 1.5)));
  CHECK(same.resolution(4) == doctest::Approx(9.0));
}

TEST_CASE("FSC of signal plus independent noise follows SNR / (1 + SNR)") {
  // a = s + e1, b = s + e2 with equal white powers: FSC = 1 / (1 + sigma_e^2 / sigma_s^2) in every shell.
  const int n = 32;
  std::vector<float> s = noise(size_t(n) * n * n, 3), e1 = noise(s.size(), 4), e2 = noise(s.size(), 5);
  std::vector<float> a(s.size()), b(s.size());
  for (size_t i = 0; i < s.size(); ++i) { a[i] = s[i] + e1[i]; b[i] = s[i] + e2[i]; }
  FscCurve c = fsc(a.data(), b.data(), n, 1.0);
  for (int k = 4; k <= n / 2; ++k) CHECK(c.value[k] == doctest::Approx(0.5).epsilon(0.15));
}

TEST_CASE("FRC in 2-D: a shifted copy keeps |FRC| = 1 only where the shift is a whole period") {
  const int n = 32;
  std::vector<float> a = noise(size_t(n) * n, 6), b(a.size());
  for (int y = 0; y < n; ++y)
    for (int x = 0; x < n; ++x) b[size_t(y) * n + x] = a[size_t(y) * n + (x + 1) % n];  // circular shift by 1 px
  FscCurve same = frc(a.data(), a.data(), n, 1.0);
  FscCurve sh = frc(a.data(), b.data(), n, 1.0);
  for (int s = 1; s <= n / 2; ++s) CHECK(same.value[s] == doctest::Approx(1).epsilon(1e-6));
  // The phase ramp of a one-pixel shift decorrelates high rings: FRC ~ cos(2 pi k / n) averaged on the ring.
  CHECK(sh.value[1] > 0.95);
  CHECK(sh.value[n / 2] < 0.3);
  CHECK(same.count[1] == 8);  // (+-1, 0), (0, +-1) and the four diagonals (sqrt 2 rounds to 1)
}

TEST_CASE("resolution_at: linear interpolation of the first crossing, Nyquist when none") {
  FscCurve c;
  c.box = 100;
  c.pixel_size = 1.0;
  c.value = {1, 0.9, 0.8, 0.6, 0.2, 0.1, 0.3, 0.05};  // shells 0..7; frequency s / 100
  // 0.5 is crossed between shells 3 (0.6) and 4 (0.2): f = 0.03 + 0.25 * 0.01.
  CHECK(c.resolution_at(0.5) == doctest::Approx(1 / 0.0325));
  // 0.143 between shells 4 (0.2) and 5 (0.1); the later rise to 0.3 does not count.
  CHECK(c.resolution_at(0.143) == doctest::Approx(1 / (0.04 + 0.57 * 0.01)));
  CHECK(c.crosses(0.143));
  c.value = {1, 0.99, 0.98, 0.97};
  CHECK(!c.crosses(0.143));
  CHECK(c.resolution_at(0.143) == doctest::Approx(2.0));  // 2 * pixel
}

TEST_CASE("soft spherical mask: 1 inside, raised cosine edge, 0 outside") {
  const int n = 32;
  std::vector<float> m = soft_sphere_mask(n, 8, 4);
  auto at = [&](int x, int y, int z) { return m[(size_t(z) * n + y) * n + x]; };
  CHECK(at(16, 16, 16) == 1);
  CHECK(at(16 + 8, 16, 16) == 1);
  CHECK(at(16 + 10, 16, 16) == doctest::Approx(0.5).epsilon(1e-6));  // half way through the edge
  CHECK(at(16 + 12, 16, 16) == 0);
  CHECK(at(0, 0, 0) == 0);
  for (int x = 16; x < 31; ++x) CHECK(at(x + 1, 16, 16) <= at(x, 16, 16));  // monotone outwards
  CHECK(at(16, 16 - 10, 16) == doctest::Approx(at(16 + 10, 16, 16)));   // isotropic
}

TEST_CASE("masks from a file: size checked, values in [0, 1]; apply_mask multiplies") {
  std::string dir = test::scratch_dir("fsc_mask");
  const int n = 16;
  std::vector<float> m = soft_sphere_mask(n, 4, 2);
  io::write_mrc(dir + "/mask.mrc", m.data(), n, n, n, 2.f, false);
  std::vector<float> r = read_mask(dir + "/mask.mrc", n);
  REQUIRE(r.size() == m.size());
  for (size_t i = 0; i < m.size(); ++i) CHECK(r[i] == doctest::Approx(m[i]));
  CHECK_THROWS_AS(read_mask(dir + "/mask.mrc", 20), InputError);
  std::vector<float> bad = m;
  bad[5] = 3.f;
  io::write_mrc(dir + "/bad.mrc", bad.data(), n, n, n, 2.f, false);
  CHECK_THROWS_AS(read_mask(dir + "/bad.mrc", n), InputError);
  std::vector<float> v(m.size(), 2.f);
  std::vector<float> out = apply_mask(v, m);
  for (size_t i = 0; i < m.size(); ++i) CHECK(out[i] == doctest::Approx(2 * m[i]));
}
