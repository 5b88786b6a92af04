#include "engine/render.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "core/error.h"
#include "kernels/render.h"

namespace cugmm {

namespace {

// The voxel range [lo, hi] along one axis that the footprint of a Gaussian at c (Å) covers, clipped.
void footprint(double c, double s, double pixel, int n, int& lo, int& hi) {
  double reach = kRenderCutoffSigmas * s;
  lo = std::max(0, int(std::ceil((c - reach) / pixel)) + n / 2);
  hi = std::min(n - 1, int(std::floor((c + reach) / pixel)) + n / 2);
}

}  // namespace

io::Image render_volume(const io::GaussianModel& m, int box, double pixel) {
  if (box <= 0) box = m.box_size;
  if (pixel <= 0) pixel = m.pixel_size;
  CUGMM_REQUIRE(box > 0 && pixel > 0, "render: the box and pixel size are unknown (give --box and --angpix)");
  const size_t g_count = m.size();
  for (size_t j = 0; j < g_count; ++j) {
    bool finite = std::isfinite(m.x[j]) && std::isfinite(m.y[j]) && std::isfinite(m.z[j]) &&
                  std::isfinite(m.amplitude[j]) && std::isfinite(m.width[j]);
    CUGMM_REQUIRE(finite && m.width[j] > 0,
                  "render: Gaussian " + std::to_string(j) + " has a non-finite value or a width <= 0");
  }

  io::Image vol;
  vol.nx = vol.ny = vol.nz = box;
  vol.pixel_size = float(pixel);
  vol.data.assign(vol.voxels(), 0.f);

  // Footprints once, so each slice only visits the Gaussians that reach it.
  struct Box3 { int x0, x1, y0, y1, z0, z1; };
  std::vector<Box3> fp(g_count);
  for (size_t j = 0; j < g_count; ++j) {
    footprint(m.x[j], m.width[j], pixel, box, fp[j].x0, fp[j].x1);
    footprint(m.y[j], m.width[j], pixel, box, fp[j].y0, fp[j].y1);
    footprint(m.z[j], m.width[j], pixel, box, fp[j].z0, fp[j].z1);
  }

#pragma omp parallel
  {
    std::vector<double> wx(box), wy(box), slice(size_t(box) * box);
#pragma omp for schedule(dynamic, 1)
    for (int k = 0; k < box; ++k) {
      std::fill(slice.begin(), slice.end(), 0.0);
      const double z = (k - box / 2) * pixel;
      for (size_t j = 0; j < g_count; ++j) {
        const Box3& b = fp[j];
        if (k < b.z0 || k > b.z1 || b.x0 > b.x1 || b.y0 > b.y1) continue;
        const double s = m.width[j];
        const double wz = render_peak<double>(m.amplitude[j], s, pixel) * render_axis_factor<double>(z - m.z[j], s);
        for (int i = b.x0; i <= b.x1; ++i) wx[i] = render_axis_factor<double>((i - box / 2) * pixel - m.x[j], s);
        for (int i = b.y0; i <= b.y1; ++i) wy[i] = wz * render_axis_factor<double>((i - box / 2) * pixel - m.y[j], s);
        for (int y = b.y0; y <= b.y1; ++y) {
          double* row = slice.data() + size_t(y) * box;
          for (int x = b.x0; x <= b.x1; ++x) row[x] += wy[y] * wx[x];
        }
      }
      float* out = vol.data.data() + size_t(k) * box * box;
      for (size_t i = 0; i < slice.size(); ++i) out[i] = float(slice[i]);
    }
  }
  return vol;
}

}  // namespace cugmm
