// What happens to a particle image on its way into the cache (issue 4 item 3): RELION's background
// normalisation, the Fourier convention of engine/fourier_band.h, and resampling onto one working grid.
#pragma once
#include <vector>

#include "engine/fft.h"
#include "engine/fourier_band.h"

namespace cugmm {

// RELION's normalisation (relion_preprocess --norm, checked against it in tests/test_particle_cache.cpp):
// the background is every pixel with x^2 + y^2 > bg_radius^2 (x, y in pixels from pixel N/2); with `ramp`
// (RELION's default; --no_ramp turns it off) a least-squares plane a x + b y + c fitted to the background
// is subtracted from the whole image, otherwise the background mean; then the image is divided by the
// background's standard deviation (population form). Throws when the background is empty or flat.
void normalise_background(float* image, int nx, int ny, double bg_radius, bool ramp);

// RELION's GUI default when no radius is given: a background circle 75% of the box across, i.e. a radius
// of round(0.375 * box) pixels (relion_preprocess itself insists on --bg_radius).
double default_bg_radius(int box);

// The continuous-transform convention of engine/fourier_band.h: half-plane (n x (n/2+1)) coefficients
//   F(k) = pixel^2 (-1)^(kx+ky) DFT(image)[k]   and back   image = IDFT(F (-1)^(kx+ky)) / (n pixel)^2,
// so that a real-space image in mass (or density) per Å^2 has F = its continuous Fourier transform about
// pixel n/2, independent of the sampling.
void image_to_fourier(const float* image, int n, double pixel, cfloat* half);
void fourier_to_image(const cfloat* half, int n, double pixel, float* image);

// Crops (n_out < n_in) or zero-pads (n_out > n_in) a half-plane in that convention: the coefficient of
// every frequency kept is unchanged, the pixel size becomes pixel * n_in / n_out (same field of view).
// Nyquist terms: padding splits the input's between +N/2 and -N/2 (the samples of the image are kept
// exactly), cropping sums +N/2 and -N/2 into the output's (crop undoes pad exactly).
void fourier_resize(const cfloat* in, int n_in, cfloat* out, int n_out);

// The band's coefficients out of / into a half-plane (band order, engine/fourier_band.h); scatter zeroes
// the rest of the half-plane.
void band_gather(const FourierBand& band, const cfloat* half, cfloat* out);
void band_scatter(const FourierBand& band, const cfloat* in, cfloat* half);

// The grid every particle is brought to: box and pixel size (Å).
struct WorkingGrid {
  int box = 0;
  double pixel = 0;
};

// How images of one optics group (native box and pixel) reach the working grid: a Fourier crop/pad to
// fourier_box = round(native_box * native_pixel / working pixel), which keeps the field of view and gives
// pixel native_box * native_pixel / fourier_box (exactly the working pixel when that ratio is an integer;
// otherwise off by at most 1 / (2 fourier_box) relative, reported as pixel_error); then, if fourier_box is
// not the working box, a centred crop/pad in real space (padding with 0, the background mean after
// normalisation). Frequencies keep their physical value k in 1/Å throughout: no interpolation.
struct GridResample {
  int native_box = 0;
  double native_pixel = 0;
  int fourier_box = 0;
  double pixel = 0;        // after the Fourier step
  double pixel_error = 0;  // |pixel / working pixel - 1|
};
GridResample plan_grid_resample(int native_box, double native_pixel, const WorkingGrid& grid);

// A native image (already normalised) to the working grid's half-plane, in the convention above. Scratch
// vectors are resized as needed; one set per thread.
struct ResampleScratch {
  std::vector<cfloat> a, b;
  std::vector<float> r1, r2;
};
void resample_to_grid(const float* image, const GridResample& plan, const WorkingGrid& grid, cfloat* out_half,
                      ResampleScratch& scratch);

}  // namespace cugmm
