#include "engine/atom_map.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "engine/fft.h"

namespace cugmm {

Vec3<double> centring_shift(const io::AtomicModel& m, int box, double pixel) {
  double w = 0, cx = 0, cy = 0, cz = 0;
  for (const io::Atom& a : m.atoms) {
    w += a.electrons;
    cx += a.electrons * a.x; cy += a.electrons * a.y; cz += a.electrons * a.z;
  }
  CUGMM_REQUIRE(w > 0, "centring_shift: the atoms carry no mass");
  const double c = box / 2 * pixel;
  return {c - cx / w, c - cy / w, c - cz / w};
}

namespace {

// Mass of a unit Gaussian (centre mu, sd s, in voxels) in voxels lo..lo+n-1, each [i - 1/2, i + 1/2].
void axis_weights(double mu, double s, int lo, int n, double* out) {
  const double k = 1 / (s * std::sqrt(2.0));
  double prev = std::erf((lo - 0.5 - mu) * k);
  for (int i = 0; i < n; ++i) {
    const double next = std::erf((lo + i + 0.5 - mu) * k);
    out[i] = 0.5 * (next - prev);
    prev = next;
  }
}

}  // namespace

namespace {

io::Image render_direct(const io::AtomicModel& m, const std::vector<char>* select, int box, double pixel,
                        const Vec3<double>& shift) {
  CUGMM_REQUIRE(box > 0 && pixel > 0, "render_atom_map: box and pixel size must be positive");
  CUGMM_REQUIRE(!select || select->size() == m.atoms.size(), "render_atom_map: selection of the wrong size");
  io::Image map;
  map.nx = map.ny = map.nz = box;
  map.pixel_size = float(pixel);
  map.data.assign(size_t(box) * box * box, 0.f);
  std::vector<double> wx, wy, wz;
  for (size_t i = 0; i < m.atoms.size(); ++i) {
    if (select && !(*select)[i]) continue;
    const io::Atom& a = m.atoms[i];
    const double s = std::sqrt(std::max(0.0, double(a.b)) / (8 * kPi * kPi) + kAtomSpread * kAtomSpread) / pixel;
    const double mu[3] = {(a.x + shift.x) / pixel, (a.y + shift.y) / pixel, (a.z + shift.z) / pixel};
    int lo[3], n[3];
    for (int d = 0; d < 3; ++d) {
      lo[d] = std::max(0, int(std::floor(mu[d] - 4 * s)));
      const int hi = std::min(box - 1, int(std::ceil(mu[d] + 4 * s)));
      n[d] = hi - lo[d] + 1;
      if (n[d] <= 0)
        throw InputError(m.source, "atom " + std::to_string(i + 1) + " (chain " + a.chain + " residue " +
                                       std::to_string(a.residue) + ")",
                         "lies outside a box of " + std::to_string(box) + " x " + std::to_string(pixel) + " Å");
    }
    wx.resize(n[0]); wy.resize(n[1]); wz.resize(n[2]);
    axis_weights(mu[0], s, lo[0], n[0], wx.data());
    axis_weights(mu[1], s, lo[1], n[1], wy.data());
    axis_weights(mu[2], s, lo[2], n[2], wz.data());
    for (int z = 0; z < n[2]; ++z)
      for (int y = 0; y < n[1]; ++y) {
        const double wyz = a.electrons * wz[z] * wy[y];
        float* row = &map.at(lo[0], lo[1] + y, lo[2] + z);
        for (int x = 0; x < n[0]; ++x) row[x] += float(wyz * wx[x]);
      }
  }
  return map;
}

// The low frequencies of `fine` (box * os voxels) as a box^3 map on the same centre: a Fourier crop, so
// the result is band-limited instead of aliased, and each voxel keeps the mass it covers.
io::Image fourier_crop(const io::Image& fine, int box, double pixel) {
  const int nf = fine.nx, hf = nf / 2 + 1, hb = box / 2 + 1;
  std::vector<cfloat> big(size_t(nf) * nf * hf), small(size_t(box) * box * hb, cfloat(0));
  fft3_r2c(nf, nf, nf, fine.data.data(), big.data());
  auto src = [&](int k) { return k < 0 ? k + nf : k; };
  for (int kz = -box / 2; kz < box / 2; ++kz)
    for (int ky = -box / 2; ky < box / 2; ++ky)
      for (int kx = 0; kx < hb; ++kx)
        small[(size_t(kz < 0 ? kz + box : kz) * box + (ky < 0 ? ky + box : ky)) * hb + kx] =
            big[(size_t(src(kz)) * nf + src(ky)) * hf + kx];
  io::Image out;
  out.nx = out.ny = out.nz = box;
  out.pixel_size = float(pixel);
  out.data.resize(size_t(box) * box * box);
  fft3_c2r(box, box, box, small.data(), out.data.data());
  const float scale = 1.f / float(size_t(box) * box * box);
  for (float& v : out.data) v *= scale;
  return out;
}

}  // namespace

io::Image render_atom_map(const io::AtomicModel& m, const std::vector<char>* select, int box, double pixel,
                          const Vec3<double>& shift, int oversample) {
  CUGMM_REQUIRE(oversample >= 1 && oversample <= 4, "render_atom_map: oversampling must be 1 to 4");
  if (oversample == 1) return render_direct(m, select, box, pixel, shift);
  return fourier_crop(render_direct(m, select, box * oversample, pixel / oversample, shift), box, pixel);
}

}  // namespace cugmm
