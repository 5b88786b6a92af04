// The Fourier coefficients a job works with (DESIGN §2, §4). CONTRACT: the particle cache stores, and the
// projector and FRC consume, exactly these coefficients in exactly this order.
//
// Half-plane of an N x N image as FFTW/cuFFT lay it out: rows ky_index = 0..N-1 (ky = ky_index, or
// ky_index - N when ky_index > N/2), columns kx = 0..N/2. Ring r = round(sqrt(kx^2 + ky^2)) in pixels.
// A band keeps the coefficients with r <= ring_max (<= N/2), in that memory order (row-major), with:
//   weight 2 for 0 < kx < N/2 and 1 on the kx = 0 and kx = N/2 columns, so that sums over the band equal
//   sums over the full plane (DESIGN §2);
//   the loss counts rings ring_min..ring_max (ring 0 never counts).
//
// Scale and phase: a coefficient is the continuous Fourier transform of the image about its centre pixel
// N/2, in units where the image is density per Å^2:  F(k) = pixel^2 * (-1)^(kx+ky) * DFT(image)[k], with
// k = (kx, ky) / (N * pixel) in 1/Å. The projector's P^(k) (DESIGN §2) is then directly comparable.
#pragma once
#include <complex>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernels/ctf.h"

namespace cugmm {

struct FourierBand {
  int box = 0;              // N
  double pixel_size = 0;    // Å
  int ring_min = 1, ring_max = 0;
  std::vector<int16_t> kx, ky;        // signed frequencies in pixels
  std::vector<int32_t> fft_index;     // ky_index * (N/2 + 1) + kx: position in the half-plane array
  std::vector<uint16_t> ring;
  std::vector<float> weight;          // 2 or 1
  // On the self-conjugate columns kx = 0 and N/2: the band index of (kx, -ky) (itself where -ky = ky);
  // -1 elsewhere. The backward's Hermitian adjoint (kernels/gaussian_projection.h) pairs them.
  std::vector<int32_t> partner;
  // Per coefficient: |k|^2 and the azimuth's cos/sin(2 theta) in 1/Å (kernels/ctf.h ctf_band_point), so a
  // particle's CTF costs one sine per coefficient on either backend.
  std::vector<CtfBandPoint<double>> ctf_points;
  size_t size() const { return kx.size(); }
  int num_rings() const { return ring_max + 1; }  // ring arrays are indexed 0..ring_max
  double ring_resolution(int r) const { return r > 0 ? box * pixel_size / r : 0; }  // Å
};

// Rings from resolutions in Å: ring_max = min(N/2, floor(N*pixel/maxres)), ring_min =
// max(1, ceil(N*pixel/minres)); maxres <= 0 means Nyquist, minres <= 0 means ring 1. A band of more than
// `max_size` coefficients is an Error before it is built (a reader's bound: the band its file holds).
FourierBand make_fourier_band(int box, double pixel_size, double minres, double maxres,
                              size_t max_size = SIZE_MAX);

// The per-ring least-squares scale of a model to data, accumulated particle by particle: for one particle's
// band coefficients, num[r] += sum w Re(M conj D) and den[r] += sum w |M|^2 over ring r (num_rings entries);
// the scale is num / den once every particle is in.
void accumulate_ring_fit(const FourierBand& band, const std::complex<float>* model, const std::complex<float>* data,
                         double* num, double* den);

}  // namespace cugmm
