#include "engine/fourier_band.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace cugmm {

FourierBand make_fourier_band(int box, double pixel_size, double minres, double maxres) {
  CUGMM_REQUIRE(box >= 4 && box % 2 == 0, "box size must be even and at least 4, not " + std::to_string(box));
  CUGMM_REQUIRE(pixel_size > 0, "pixel size must be positive");
  FourierBand b;
  b.box = box;
  b.pixel_size = pixel_size;
  const int half = box / 2;
  b.ring_max = maxres > 0 ? std::min(half, int(std::floor(box * pixel_size / maxres + 1e-9))) : half;
  b.ring_min = minres > 0 ? std::max(1, int(std::ceil(box * pixel_size / minres - 1e-9))) : 1;
  CUGMM_REQUIRE(b.ring_max >= b.ring_min, "the resolution band is empty: minres " + std::to_string(minres) +
                                              " Å, maxres " + std::to_string(maxres) + " Å at " +
                                              std::to_string(pixel_size) + " Å/px, box " + std::to_string(box));
  for (int row = 0; row < box; ++row) {
    int ky = row > half ? row - box : row;
    for (int kx = 0; kx <= half; ++kx) {
      int r = int(std::lround(std::sqrt(double(kx * kx + ky * ky))));
      if (r > b.ring_max) continue;
      b.kx.push_back(int16_t(kx));
      b.ky.push_back(int16_t(ky));
      b.fft_index.push_back(row * (half + 1) + kx);
      b.ring.push_back(uint16_t(r));
      b.weight.push_back((kx == 0 || kx == half) ? 1.f : 2.f);
    }
  }
  // Partners, found through the half-plane index; the band is a disc, so every one exists.
  std::vector<int> at(size_t(box) * (half + 1), -1);
  for (size_t i = 0; i < b.size(); ++i) at[b.fft_index[i]] = int(i);
  b.partner.assign(b.size(), -1);
  for (size_t i = 0; i < b.size(); ++i) {
    const int kx = b.kx[i];
    if (kx != 0 && kx != half) continue;
    const int row = (box - (b.ky[i] < 0 ? b.ky[i] + box : b.ky[i])) % box;
    b.partner[i] = at[size_t(row) * (half + 1) + kx];
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
