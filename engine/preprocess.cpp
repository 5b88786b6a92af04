#include "engine/preprocess.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "core/error.h"

namespace cugmm {

void normalise_background(float* image, int nx, int ny, double bg_radius, bool ramp) {
  // One pass of moments over the background, row by row: in row dy the background is |dx| > h(dy), the
  // two ends of the row, so the sums vectorise. Moments in double; the residual's variance follows from
  // them without a second pass.
  const double r2 = bg_radius * bg_radius;
  std::vector<int> lo(ny), hi(ny);  // foreground of row y: x in [lo, hi] (empty when lo > hi)
  double n = 0, sx = 0, sy = 0, sxx = 0, sxy = 0, syy = 0, sv = 0, sxv = 0, syv = 0, svv = 0;
  for (int y = 0; y < ny; ++y) {
    const double dy = y - ny / 2;
    lo[y] = 0; hi[y] = -1;
    if (dy * dy <= r2) {
      int h = int(std::floor(std::sqrt(r2 - dy * dy)));
      while (double(h + 1) * (h + 1) + dy * dy <= r2) ++h;  // strictly outside the circle is background,
      while (h >= 0 && double(h) * h + dy * dy > r2) --h;   // as RELION has it
      lo[y] = std::max(0, nx / 2 - h);
      hi[y] = std::min(nx - 1, nx / 2 + h);
    }
    const float* row = image + size_t(y) * nx;
    double c = 0, x1 = 0, x2 = 0, v1 = 0, xv = 0, vv = 0;
    auto span = [&](int a, int b) {
      for (int x = a; x < b; ++x) {
        double dx = x - nx / 2, v = row[x];
        c += 1; x1 += dx; x2 += dx * dx; v1 += v; xv += dx * v; vv += v * v;
      }
    };
    if (lo[y] > hi[y]) span(0, nx);
    else { span(0, lo[y]); span(hi[y] + 1, nx); }
    n += c; sx += x1; sxx += x2; sv += v1; sxv += xv; svv += vv;
    sy += dy * c; syy += dy * dy * c; sxy += dy * x1; syv += dy * v1;
  }
  if (n < 3) throw Error("normalisation: the background circle of radius " + std::to_string(bg_radius) +
                         " px leaves fewer than 3 pixels of a " + std::to_string(nx) + " px box");
  // Plane a x + b y + c by least squares over the background (normal equations, Cramer's rule), or the mean.
  double a = 0, b = 0, c = sv / n;
  if (ramp) {
    double det = sxx * (syy * n - sy * sy) - sxy * (sxy * n - sy * sx) + sx * (sxy * sy - syy * sx);
    if (std::fabs(det) > 0) {
      a = (sxv * (syy * n - sy * sy) - sxy * (syv * n - sy * sv) + sx * (syv * sy - syy * sv)) / det;
      b = (sxx * (syv * n - sv * sy) - sxv * (sxy * n - sy * sx) + sx * (sxy * sv - syv * sx)) / det;
      c = (sv - a * sx - b * sy) / n;  // the third normal equation
    }
  }
  // Residual r = v - (a x + b y + c) over the background: mean and population variance from the moments.
  const double m = (sv - a * sx - b * sy - c * n) / n;
  const double rr = svv - 2 * (a * sxv + b * syv + c * sv) + a * a * sxx + b * b * syy + c * c * n +
                    2 * (a * b * sxy + a * c * sx + b * c * sy);
  const double var = rr / n - m * m;
  // A flat background (to rounding) cannot be scaled to unit variance.
  if (!(var > 1e-12 * (svv / n + 1e-30))) throw Error("normalisation: the background is flat (standard deviation 0)");
  const double inv = 1 / std::sqrt(var);
  for (int y = 0; y < ny; ++y) {
    float* row = image + size_t(y) * nx;
    const double base = b * (y - ny / 2) + c + m;
    for (int x = 0; x < nx; ++x) row[x] = float((row[x] - (a * (x - nx / 2) + base)) * inv);
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
  const int w_in = n_in / 2 + 1, w_out = n_out / 2 + 1, h_in = n_in / 2, h_out = n_out / 2;
  auto src = [&](int ky, int kx) { return in[size_t(ky >= 0 ? ky : n_in + ky) * w_in + kx]; };
  if (n_out >= n_in) {
    // Padding: the input's Nyquist row and column stand for +N/2 and -N/2 at once; on the larger grid those
    // are two frequencies, so each gets half (the image stays real and its samples are kept exactly).
    const bool pad = n_out > n_in;
    for (int row = 0; row < n_out; ++row) {
      int ky = row > h_out ? row - n_out : row;
      cfloat* o = out + size_t(row) * w_out;
      if (std::abs(ky) > h_in) { std::fill(o, o + w_out, cfloat(0)); continue; }
      float fy = (pad && std::abs(ky) == h_in) ? 0.5f : 1.f;
      for (int kx = 0; kx < w_out; ++kx) {
        if (kx > h_in) { o[kx] = 0; continue; }
        o[kx] = src(ky, kx) * (fy * ((pad && kx == h_in) ? 0.5f : 1.f));  // src(-N/2) is row N/2
      }
    }
    return;
  }
  // Cropping: +N/2 and -N/2 of the input both land on the output's Nyquist, so they are summed (what
  // sampling the band-limited image on the coarser grid gives; it undoes the padding above exactly).
  auto folded_rows = [&](int ky, int kx) {  // ky in (-h_out, h_out]
    return ky == h_out ? src(h_out, kx) + src(-h_out, kx) : src(ky, kx);
  };
  for (int row = 0; row < n_out; ++row) {
    int ky = row > h_out ? row - n_out : row;
    cfloat* o = out + size_t(row) * w_out;
    for (int kx = 0; kx < h_out; ++kx) o[kx] = folded_rows(ky, kx);
    // Column +N/2 of the output also receives column -N/2 of the input: by Hermitian symmetry that is
    // conj(F(-ky, +N/2)).
    int mky = ky == h_out ? h_out : -ky;
    o[h_out] = folded_rows(ky, h_out) + std::conj(folded_rows(mky, h_out));
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
