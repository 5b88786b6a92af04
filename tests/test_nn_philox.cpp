// Philox4x32-10 against the published known answers (Random123's kat_vectors), and the derived draws.
#include <doctest/doctest.h>

#include <cmath>

#include "kernels/philox.h"

using namespace cugmm;

TEST_CASE("philox4x32_10 reproduces Random123's known-answer vectors") {
  struct Kat {
    U32x4 ctr;
    uint32_t k0, k1;
    U32x4 want;
  };
  const Kat kats[] = {
      {{{0, 0, 0, 0}}, 0, 0, {{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}}},
      {{{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}}, 0xffffffffu, 0xffffffffu,
       {{0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}}},
      {{{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}}, 0xa4093822u, 0x299f31d0u,
       {{0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}}},
  };
  for (const Kat& k : kats) {
    U32x4 got = philox4x32_10(k.ctr, k.k0, k.k1);
    for (int i = 0; i < 4; ++i) CHECK(got.v[i] == k.want.v[i]);
  }
}

TEST_CASE("the counter layout: element i is word i % 4 of draw i / 4, seed is the key") {
  uint64_t seed = 0x0123456789abcdefull, stream = 0xfedcba9876543210ull;
  U32x4 d = philox4x32_10(U32x4{{5, 0, 0x76543210u, 0xfedcba98u}}, 0x89abcdefu, 0x01234567u);
  for (int w = 0; w < 4; ++w) CHECK(philox_u32(seed, stream, 20 + w) == d.v[w]);
  CHECK(philox_u32(seed, stream, 0) != philox_u32(seed, stream + 1, 0));
  CHECK(philox_u32(seed, stream, 0) != philox_u32(seed + 1, stream, 0));
}

TEST_CASE("uniform and normal draws have the right range and moments") {
  const int n = 200000;
  double su = 0, su2 = 0, sn = 0, sn2 = 0, sn4 = 0;
  float umin = 1, umax = 0;
  int non_finite = 0;
  for (int i = 0; i < n; ++i) {
    float u = philox_uniform(7, 3, i);
    umin = std::min(umin, u);
    umax = std::max(umax, u);
    su += u;
    su2 += double(u) * u;
    double z = philox_normal(7, 3, i);
    non_finite += !std::isfinite(z);
    sn += z;
    sn2 += z * z;
    sn4 += z * z * z * z;
  }
  CHECK(non_finite == 0);
  CHECK(umin >= 0.0f);
  CHECK(umax < 1.0f);
  CHECK(su / n == doctest::Approx(0.5).epsilon(0.01));
  CHECK(su2 / n - (su / n) * (su / n) == doctest::Approx(1.0 / 12).epsilon(0.02));
  CHECK(std::abs(sn / n) < 0.01);
  CHECK(sn2 / n == doctest::Approx(1.0).epsilon(0.02));
  CHECK(sn4 / n == doctest::Approx(3.0).epsilon(0.05));  // Gaussian kurtosis, not just the variance
}
