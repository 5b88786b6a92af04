#include "engine/preprocess.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "engine/error.h"

namespace cugmm {

void normalise_background(float* image, int nx, int ny, double bg_radius, bool ramp) {
  const double r2 = bg_radius * bg_radius;
  auto in_background = [&](int x, int y) {
    double dx = x - nx / 2, dy = y - ny / 2;
    return dx * dx + dy * dy > r2;  // strictly outside, as RELION
  };
  // Plane a x + b y + c by least squares over the background (normal equations, 3 x 3), or just c.
  double sxx = 0, sxy = 0, syy = 0, sx = 0, sy = 0, n = 0, sxv = 0, syv = 0, sv = 0;
  for (int y = 0; y < ny; ++y)
    for (int x = 0; x < nx; ++x) {
      if (!in_background(x, y)) continue;
      double v = image[size_t(y) * nx + x], dx = x - nx / 2, dy = y - ny / 2;
      sxx += dx * dx; sxy += dx * dy; syy += dy * dy; sx += dx; sy += dy; n += 1;
      sxv += dx * v; syv += dy * v; sv += v;
    }
  if (n < 3) throw Error("normalisation: the background circle of radius " + std::to_string(bg_radius) +
                         " px leaves fewer than 3 pixels of a " + std::to_string(nx) + " px box");
  double a = 0, b = 0, c = sv / n;
  if (ramp) {
    // Cramer's rule on [[sxx sxy sx] [sxy syy sy] [sx sy n]] (a b c) = (sxv syv sv).
    double det = sxx * (syy * n - sy * sy) - sxy * (sxy * n - sy * sx) + sx * (sxy * sy - syy * sx);
    if (std::fabs(det) > 0) {
      a = (sxv * (syy * n - sy * sy) - sxy * (syv * n - sy * sv) + sx * (syv * sy - syy * sv)) / det;
      b = (sxx * (syv * n - sv * sy) - sxv * (sxy * n - sy * sx) + sx * (sxy * sv - syv * sx)) / det;
      c = (sv - a * sx - b * sy) / n;  // the third normal equation
    }
  }
  double m = 0, q = 0;
  for (int y = 0; y < ny; ++y)
    for (int x = 0; x < nx; ++x) {
      if (!in_background(x, y)) continue;
      double v = image[size_t(y) * nx + x] - (a * (x - nx / 2) + b * (y - ny / 2) + c);
      m += v; q += v * v;
    }
  m /= n;
  double sd = std::sqrt(std::max(0.0, q / n - m * m));
  if (!(sd > 0)) throw Error("normalisation: the background is flat (standard deviation 0)");
  for (int y = 0; y < ny; ++y)
    for (int x = 0; x < nx; ++x) {
      float& v = image[size_t(y) * nx + x];
      v = float((v - (a * (x - nx / 2) + b * (y - ny / 2) + c) - m) / sd);
    }
}

double default_bg_radius(int box) { return std::round(0.375 * box); }

void image_to_fourier(const float* image, int n, double pixel, cfloat* half) {
  fft2_r2c(n, n, image, half);
  const int w = n / 2 + 1;
  const float p2 = float(pixel * pixel);
  for (int row = 0; row < n; ++row)
    for (int kx = 0; kx < w; ++kx) half[size_t(row) * w + kx] *= ((row + kx) & 1) ? -p2 : p2;
}

void fourier_to_image(const cfloat* half, int n, double pixel, float* image) {
  const int w = n / 2 + 1;
  std::vector<cfloat> t(half, half + size_t(n) * w);
  const float s = float(1.0 / (double(n) * n * pixel * pixel));
  for (int row = 0; row < n; ++row)
    for (int kx = 0; kx < w; ++kx) t[size_t(row) * w + kx] *= ((row + kx) & 1) ? -s : s;
  fft2_c2r(n, n, t.data(), image);
}

void fourier_resize(const cfloat* in, int n_in, cfloat* out, int n_out) {
  const int w_in = n_in / 2 + 1, w_out = n_out / 2 + 1, h_in = n_in / 2;
  const bool pad = n_out > n_in;
  for (int row = 0; row < n_out; ++row) {
    int ky = row > n_out / 2 ? row - n_out : row;
    cfloat* o = out + size_t(row) * w_out;
    if (std::abs(ky) > h_in) { std::fill(o, o + w_out, cfloat(0)); continue; }
    const cfloat* src = in + size_t(ky >= 0 ? ky : n_in + ky) * w_in;
    // Padding: the input's Nyquist row and column stand for +N/2 and -N/2 at once; on the larger grid
    // those are two frequencies, so each gets half (a real image stays real and keeps its energy).
    float fy = (pad && std::abs(ky) == h_in) ? 0.5f : 1.f;
    for (int kx = 0; kx < w_out; ++kx) {
      if (kx > h_in) { o[kx] = 0; continue; }
      float f = fy * ((pad && kx == h_in) ? 0.5f : 1.f);
      o[kx] = src[kx] * f;
    }
  }
}

void band_gather(const FourierBand& band, const cfloat* half, cfloat* out) {
  for (size_t i = 0; i < band.size(); ++i) out[i] = half[band.fft_index[i]];
}

void band_scatter(const FourierBand& band, const cfloat* in, cfloat* half) {
  std::fill(half, half + size_t(band.box) * (band.box / 2 + 1), cfloat(0));
  for (size_t i = 0; i < band.size(); ++i) half[band.fft_index[i]] = in[i];
}

GridResample plan_grid_resample(int native_box, double native_pixel, const WorkingGrid& grid) {
  CUGMM_REQUIRE(native_box >= 4 && native_pixel > 0 && grid.box >= 4 && grid.pixel > 0,
                "working grid: bad box or pixel size");
  GridResample p;
  p.native_box = native_box;
  p.native_pixel = native_pixel;
  int fb = int(std::lround(native_box * native_pixel / grid.pixel));
  fb += fb & 1;  // FFT grids here are even
  p.fourier_box = std::max(4, fb);
  p.pixel = native_box * native_pixel / p.fourier_box;
  p.pixel_error = std::fabs(p.pixel / grid.pixel - 1);
  return p;
}

void resample_to_grid(const float* image, const GridResample& plan, const WorkingGrid& grid, cfloat* out_half,
                      ResampleScratch& s) {
  const int n = plan.native_box, fb = plan.fourier_box, nw = grid.box;
  const bool direct = fb == n && nw == n;
  cfloat* native = direct ? out_half : (s.a.resize(size_t(n) * (n / 2 + 1)), s.a.data());
  image_to_fourier(image, n, plan.native_pixel, native);
  if (direct) return;
  cfloat* at_fb = native;
  if (fb != n) {
    at_fb = fb == nw ? out_half : (s.b.resize(size_t(fb) * (fb / 2 + 1)), s.b.data());
    fourier_resize(native, n, at_fb, fb);
  }
  if (fb == nw) {
    if (at_fb != out_half) std::copy(at_fb, at_fb + size_t(nw) * (nw / 2 + 1), out_half);
    return;
  }
  // Different field of view: back to real space on the fb grid, centred crop/pad to nw, forward again.
  s.r1.resize(size_t(fb) * fb);
  s.r2.assign(size_t(nw) * nw, 0.f);
  fourier_to_image(at_fb, fb, plan.pixel, s.r1.data());
  const int off = fb / 2 - nw / 2;  // pixel fb/2 lands on nw/2
  for (int y = 0; y < nw; ++y) {
    int ys = y + off;
    if (ys < 0 || ys >= fb) continue;
    for (int x = 0; x < nw; ++x) {
      int xs = x + off;
      if (xs >= 0 && xs < fb) s.r2[size_t(y) * nw + x] = s.r1[size_t(ys) * fb + xs];
    }
  }
  image_to_fourier(s.r2.data(), nw, plan.pixel, out_half);
}

}  // namespace cugmm
