#include "engine/fourier_band.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace cugmm {

FourierBand make_fourier_band(int box, double pixel_size, double minres, double maxres, size_t max_size) {
  CUGMM_REQUIRE(box >= 4 && box % 2 == 0, "box size must be even and at least 4, not " + std::to_string(box));
  CUGMM_REQUIRE(pixel_size > 0, "pixel size must be positive");
  FourierBand b;
  b.box = box;
  b.pixel_size = pixel_size;
  const int half = box / 2;
  // Clamped in double before the conversion: N * pixel / res may exceed any int (pixel 6e99 in a damaged
  // cache header made int() undefined; found by fuzzing).
  b.ring_max = maxres > 0 ? int(std::min(double(half), std::floor(box * pixel_size / maxres + 1e-9))) : half;
  b.ring_min = minres > 0 ? int(std::clamp(std::ceil(box * pixel_size / minres - 1e-9), 1.0, double(half) + 1)) : 1;
  CUGMM_REQUIRE(b.ring_max >= b.ring_min, "the resolution band is empty: minres " + std::to_string(minres) +
                                              " Å, maxres " + std::to_string(maxres) + " Å at " +
                                              std::to_string(pixel_size) + " Å/px, box " + std::to_string(box));
  // Only rows and columns within ring_max can hold a coefficient (r >= |kx| and r >= |ky|): the work is the
  // band's, not the box's square (a 32768 box cut to 8 rings was a billion steps and a 2 GB index).
  const int cols = std::min(half, b.ring_max);
  // The self-conjugate columns' band indices by row, for the partners.
  std::vector<int> at_first(size_t(box), -1), at_last(size_t(box), -1);
  for (int row = 0; row < box; ++row) {
    int ky = row > half ? row - box : row;
    if (std::abs(ky) > b.ring_max) continue;
    for (int kx = 0; kx <= cols; ++kx) {
      int r = int(std::lround(std::sqrt(double(kx * kx + ky * ky))));
      if (r > b.ring_max) continue;
      if (b.kx.size() == max_size)
        throw Error("the Fourier band of box " + std::to_string(box) + " to ring " + std::to_string(b.ring_max) +
                    " holds more than " + std::to_string(max_size) + " coefficients");
      if (kx == 0) at_first[size_t(row)] = int(b.kx.size());
      if (kx == half) at_last[size_t(row)] = int(b.kx.size());
      b.kx.push_back(int16_t(kx));
      b.ky.push_back(int16_t(ky));
      b.fft_index.push_back(row * (half + 1) + kx);
      b.ring.push_back(uint16_t(r));
      b.weight.push_back((kx == 0 || kx == half) ? 1.f : 2.f);
    }
  }
  // Partners, found through those columns' indices; the band is a disc, so every one exists.
  b.partner.assign(b.size(), -1);
  for (size_t i = 0; i < b.size(); ++i) {
    const int kx = b.kx[i];
    if (kx != 0 && kx != half) continue;
    const int row = (box - (b.ky[i] < 0 ? b.ky[i] + box : b.ky[i])) % box;
    b.partner[i] = (kx == 0 ? at_first : at_last)[size_t(row)];
    CUGMM_REQUIRE(b.partner[i] >= 0, "Fourier band: no partner for (" + std::to_string(kx) + ", " +
                                         std::to_string(b.ky[i]) + "): the band is not symmetric");
  }
  const double inv_len = 1 / (double(box) * pixel_size);
  b.ctf_points.resize(b.size());
  for (size_t i = 0; i < b.size(); ++i) b.ctf_points[i] = ctf_band_point(b.kx[i] * inv_len, b.ky[i] * inv_len);
  return b;
}

void accumulate_ring_fit(const FourierBand& band, const std::complex<float>* model, const std::complex<float>* data,
                         double* num, double* den) {
  for (size_t k = 0; k < band.size(); ++k) {
    const std::complex<double> m(model[k]), d(data[k]);
    num[band.ring[k]] += band.weight[k] * (m.real() * d.real() + m.imag() * d.imag());
    den[band.ring[k]] += band.weight[k] * std::norm(m);
  }
}

}  // namespace cugmm
