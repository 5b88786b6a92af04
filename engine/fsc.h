// Fourier shell / ring correlation, resolution estimates and real-space masks: the half-map FSC of
// `cugmm reconstruct`, the FSC stopping test of the neutral-model fit and the FRC of later analyses.
//
// Shells are s = round(|k|) in pixels, s = 0..N/2 (corners beyond N/2 are left out). Sums run over the
// r2c half-space with weight 2 for 0 < kx < N/2 and 1 on the kx = 0 and kx = N/2 planes, so they equal
// sums over the full transform (DESIGN §2).
#pragma once
#include <string>
#include <vector>

namespace cugmm {

struct FscCurve {
  int box = 0;
  double pixel_size = 0;             // Å
  std::vector<double> value;         // per shell 0..N/2
  std::vector<long> count;           // coefficients per shell over the full transform
  double frequency(int s) const { return s / (box * pixel_size); }  // 1/Å
  double resolution(int s) const { return s > 0 ? box * pixel_size / s : 0; }  // Å
  // Resolution (Å) where the curve first falls below `threshold`, searching from shell 1, by linear
  // interpolation in frequency between the last shell at or above it and the first below. When it never
  // falls below, the Nyquist resolution 2 * pixel (a lower bound: the data may support more).
  double resolution_at(double threshold) const;
  bool crosses(double threshold) const;  // whether it falls below threshold anywhere after shell 0
};

// Both maps n^3 (x fastest), same pixel size.
FscCurve fsc(const float* a, const float* b, int n, double pixel_size);
// Both images n x n.
FscCurve frc(const float* a, const float* b, int n, double pixel_size);

// fsc.txt: "shell frequency(1/Å) resolution(Å) fsc" per shell 1..N/2 (a '#' header line), with a last
// column fsc_masked when `masked` is given (same box).
void write_fsc_txt(const std::string& path, const FscCurve& c, const FscCurve* masked = nullptr);

// Soft spherical mask, n^3, centred on voxel n/2: 1 within `radius`, a raised-cosine edge of width
// `edge` beyond it, 0 outside radius + edge (pixels).
std::vector<float> soft_sphere_mask(int n, double radius, double edge);
// A mask from an MRC volume: must be n^3; values are clamped to [0, 1] (a file with values outside
// [-0.001, 1.001] is rejected: it is not a mask).
std::vector<float> read_mask(const std::string& path, int n);
// out[i] = vol[i] * mask[i].
std::vector<float> apply_mask(const std::vector<float>& vol, const std::vector<float>& mask);

}  // namespace cugmm
