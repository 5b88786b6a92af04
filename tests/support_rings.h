// Ring-by-ring comparison of two images, for tests that link the engine (it needs engine/fft.h).
#pragma once
#include <algorithm>
#include <cmath>
#include <complex>
#include <vector>

#include "engine/fft.h"

namespace cugmm::test {

// Per ring r = round(|k|) of two n x n images (half-plane sums, weights 2 / 1 as DESIGN §2): their FRC and
// the ratio of a's power to b's (the FRC is blind to radial filters; the power ratio is not).
struct RingCompare {
  std::vector<double> frc, power_ratio;
};

inline RingCompare compare_rings(const float* a, const float* b, int n) {
  const int w = n / 2 + 1;
  std::vector<cfloat> fa(size_t(n) * w), fb(size_t(n) * w);
  fft2_r2c(n, n, a, fa.data());
  fft2_r2c(n, n, b, fb.data());
  std::vector<double> num(w), da(w), db(w);
  for (int row = 0; row < n; ++row) {
    const int ky = row > n / 2 ? row - n : row;
    for (int kx = 0; kx < w; ++kx) {
      const int r = int(std::lround(std::sqrt(double(kx * kx + ky * ky))));
      if (r > n / 2) continue;
      const double wt = (kx == 0 || kx == n / 2) ? 1 : 2;
      const std::complex<double> x(fa[size_t(row) * w + kx]), y(fb[size_t(row) * w + kx]);
      num[r] += wt * (x * std::conj(y)).real();
      da[r] += wt * std::norm(x);
      db[r] += wt * std::norm(y);
    }
  }
  RingCompare out;
  for (int r = 0; r < w; ++r) {
    out.frc.push_back(num[r] / std::max(std::sqrt(da[r] * db[r]), 1e-30));
    out.power_ratio.push_back(da[r] / std::max(db[r], 1e-30));
  }
  return out;
}

}  // namespace cugmm::test
