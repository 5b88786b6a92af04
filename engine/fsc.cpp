#include "engine/fsc.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "core/error.h"
#include "engine/fft.h"
#include "io/atomic_file.h"
#include "io/mrc.h"
#include "kernels/geometry.h"

namespace cugmm {

namespace {

// Accumulates the per-shell sums of one half-space transform pair. nz = 1 for images.
FscCurve correlate(const std::vector<cfloat>& fa, const std::vector<cfloat>& fb, int nz, int n,
                   double pixel_size) {
  const int h = n / 2, nxh = h + 1;
  std::vector<double> num(h + 1, 0), pa(h + 1, 0), pb(h + 1, 0);
  FscCurve c;
  c.box = n;
  c.pixel_size = pixel_size;
  c.count.assign(h + 1, 0);
  for (int zi = 0; zi < nz; ++zi) {
    int kz = nz == 1 ? 0 : (zi > h ? zi - n : zi);
    for (int yi = 0; yi < n; ++yi) {
      int ky = yi > h ? yi - n : yi;
      for (int kx = 0; kx <= h; ++kx) {
        int s = int(std::lround(std::sqrt(double(kx * kx + ky * ky + kz * kz))));
        if (s > h) continue;
        int w = (kx == 0 || kx == h) ? 1 : 2;
        size_t i = (size_t(zi) * n + yi) * nxh + kx;
        const cfloat a = fa[i], b = fb[i];
        num[s] += w * (double(a.real()) * b.real() + double(a.imag()) * b.imag());
        pa[s] += w * std::norm(std::complex<double>(a));
        pb[s] += w * std::norm(std::complex<double>(b));
        c.count[s] += w;
      }
    }
  }
  c.value.resize(h + 1);
  for (int s = 0; s <= h; ++s) {
    double d = std::sqrt(pa[s] * pb[s]);
    // Empty or all-zero shells correlate at 0: nothing there agrees.
    c.value[s] = d > 0 ? num[s] / d : 0;
  }
  return c;
}

}  // namespace

FscCurve fsc(const float* a, const float* b, int n, double pixel_size) {
  CUGMM_REQUIRE(n >= 2 && n % 2 == 0, "fsc: the box must be even, not " + std::to_string(n));
  size_t nc = size_t(n) * n * (n / 2 + 1);
  std::vector<cfloat> fa(nc), fb(nc);
  fft3_r2c(n, n, n, a, fa.data());
  fft3_r2c(n, n, n, b, fb.data());
  return correlate(fa, fb, n, n, pixel_size);
}

FscCurve frc(const float* a, const float* b, int n, double pixel_size) {
  CUGMM_REQUIRE(n >= 2 && n % 2 == 0, "frc: the box must be even, not " + std::to_string(n));
  size_t nc = size_t(n) * (n / 2 + 1);
  std::vector<cfloat> fa(nc), fb(nc);
  fft2_r2c(n, n, a, fa.data());
  fft2_r2c(n, n, b, fb.data());
  return correlate(fa, fb, 1, n, pixel_size);
}

bool FscCurve::crosses(double threshold) const {
  for (size_t s = 1; s < value.size(); ++s)
    if (value[s] < threshold) return true;
  return false;
}

double FscCurve::resolution_at(double threshold) const {
  for (size_t s = 1; s < value.size(); ++s) {
    if (value[s] >= threshold) continue;
    double v0 = value[s - 1], v1 = value[s];
    double f0 = frequency(int(s) - 1), f1 = frequency(int(s));
    // Shell 0 (the mean) may itself be below the threshold: then the crossing is at shell 1.
    double t = v0 > v1 ? std::clamp((v0 - threshold) / (v0 - v1), 0.0, 1.0) : 1.0;
    double f = f0 + t * (f1 - f0);
    return f > 0 ? 1 / f : box * pixel_size;
  }
  return 2 * pixel_size;
}

std::vector<float> soft_sphere_mask(int n, double radius, double edge) {
  CUGMM_REQUIRE(n > 0 && radius >= 0 && edge >= 0, "soft_sphere_mask: bad size, radius or edge");
  std::vector<float> m(size_t(n) * n * n);
  const int c = n / 2;
  for (int z = 0; z < n; ++z)
    for (int y = 0; y < n; ++y)
      for (int x = 0; x < n; ++x) {
        double r = std::sqrt(double((x - c) * (x - c) + (y - c) * (y - c) + (z - c) * (z - c)));
        double v = r <= radius ? 1 : (r >= radius + edge ? 0 : 0.5 + 0.5 * std::cos(kPi * (r - radius) / edge));
        m[(size_t(z) * n + y) * n + x] = float(v);
      }
  return m;
}

std::vector<float> read_mask(const std::string& path, int n) {
  io::Image im = io::read_mrc(path);
  if (im.nx != n || im.ny != n || im.nz != n)
    throw InputError(path, "", "the mask is " + std::to_string(im.nx) + "x" + std::to_string(im.ny) + "x" +
                                   std::to_string(im.nz) + ", the maps are " + std::to_string(n) + "^3");
  for (float& v : im.data) {
    if (!(v >= -0.001f && v <= 1.001f))
      throw InputError(path, "", "a mask holds values in [0, 1]; found " + std::to_string(v));
    v = std::clamp(v, 0.f, 1.f);
  }
  return std::move(im.data);
}

std::vector<float> apply_mask(const std::vector<float>& vol, const std::vector<float>& mask) {
  CUGMM_REQUIRE(vol.size() == mask.size(), "apply_mask: the mask and the map differ in size");
  std::vector<float> out(vol.size());
  for (size_t i = 0; i < vol.size(); ++i) out[i] = vol[i] * mask[i];
  return out;
}

void write_fsc_txt(const std::string& path, const FscCurve& c, const FscCurve* masked) {
  CUGMM_REQUIRE(!masked || masked->value.size() == c.value.size(), "write_fsc_txt: the masked curve has another box");
  std::ostringstream o;
  o << "# shell  frequency(1/Å)  resolution(Å)  fsc" << (masked ? "  fsc_masked" : "") << "\n";
  for (int s = 1; s < int(c.value.size()); ++s) {
    char line[160];
    std::snprintf(line, sizeof line, "%5d  %.6f  %9.3f  %.6f", s, c.frequency(s), c.resolution(s), c.value[size_t(s)]);
    o << line;
    if (masked) {
      std::snprintf(line, sizeof line, "  %.6f", masked->value[size_t(s)]);
      o << line;
    }
    o << "\n";
  }
  io::write_file_atomic(path, o.str());
}

}  // namespace cugmm
