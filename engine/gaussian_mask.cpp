#include "engine/gaussian_mask.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "io/mrc.h"

namespace cugmm {

namespace {
io::Image read_mask_on_grid(const std::string& path, const io::GaussianModel& m) {
  io::Image mask = io::read_mrc(path);
  const double rel = std::abs(mask.pixel_size - m.pixel_size) / m.pixel_size;
  if (mask.nx != m.box_size || mask.ny != m.box_size || mask.nz != m.box_size || rel > 1e-3)
    throw InputError(path, "", "the mask is on a " + std::to_string(mask.nx) + "x" + std::to_string(mask.ny) + "x" +
                                   std::to_string(mask.nz) + " grid of " + std::to_string(mask.pixel_size) +
                                   " Å pixels; the model's is " + std::to_string(m.box_size) + "^3 of " +
                                   std::to_string(m.pixel_size) + " Å");
  return mask;
}
}  // namespace

std::vector<char> gaussians_in_mask(const std::string& path, const io::GaussianModel& m) {
  const io::Image mask = read_mask_on_grid(path, m);
  std::vector<char> in(m.size(), 0);
  const int n = m.box_size;
  for (size_t j = 0; j < m.size(); ++j) {
    const int ix = int(std::lround(m.x[j] / m.pixel_size)) + n / 2, iy = int(std::lround(m.y[j] / m.pixel_size)) + n / 2,
              iz = int(std::lround(m.z[j] / m.pixel_size)) + n / 2;
    if (ix >= 0 && iy >= 0 && iz >= 0 && ix < n && iy < n && iz < n) in[j] = mask.at(ix, iy, iz) > 0.5f;
  }
  if (std::count(in.begin(), in.end(), 1) == 0) throw InputError(path, "", "no Gaussian of the model lies in the mask");
  return in;
}

Vec3<double> mask_centre(const std::string& path, const io::GaussianModel& m) {
  const io::Image mask = read_mask_on_grid(path, m);
  const int n = m.box_size;
  double sx = 0, sy = 0, sz = 0, count = 0;
  for (int z = 0; z < n; ++z)
    for (int y = 0; y < n; ++y)
      for (int x = 0; x < n; ++x)
        if (mask.at(x, y, z) > 0.5f) {
          sx += x - n / 2; sy += y - n / 2; sz += z - n / 2;
          count += 1;
        }
  if (count == 0) throw InputError(path, "", "the mask has no voxel above 0.5");
  return {sx / count * m.pixel_size, sy / count * m.pixel_size, sz / count * m.pixel_size};
}

}  // namespace cugmm
