#include "engine/slice_projector.h"

#include <cmath>

#include "core/error.h"
#include "engine/fft.h"

namespace cugmm {

namespace {

double sinc(double x) { return std::abs(x) < 1e-12 ? 1.0 : std::sin(x) / x; }

}  // namespace

SliceProjector::SliceProjector(const std::vector<io::Image>& bodies, const std::vector<Vec3<double>>& pivots,
                               int padding)
    : pad_(padding), pivots_(pivots) {
  CUGMM_REQUIRE(!bodies.empty() && bodies.size() == pivots.size(), "SliceProjector: one pivot per body");
  CUGMM_REQUIRE(padding >= 1 && padding <= 4, "SliceProjector: padding must be 1 to 4");
  box_ = bodies[0].nx;
  pixel_ = bodies[0].pixel_size;
  CUGMM_REQUIRE(box_ > 0 && box_ % 2 == 0, "SliceProjector: the box must be even");
  p_ = pad_ * box_;
  std::vector<float> padded(size_t(p_) * p_ * p_);
  for (const io::Image& b : bodies) {
    CUGMM_REQUIRE(b.nx == box_ && b.ny == box_ && b.nz == box_ && b.pixel_size == float(pixel_),
                  "SliceProjector: every body map must have the first's box and pixel size");
    // The transform is taken about the voxel nearest the body's centre of mass: an off-centre body's
    // transform then carries no steep phase ramp, which trilinear interpolation would smear.
    double w = 0, c[3] = {0, 0, 0};
    for (int z = 0; z < box_; ++z)
      for (int y = 0; y < box_; ++y)
        for (int x = 0; x < box_; ++x) {
          const double v = std::abs(b.at(x, y, z));
          w += v; c[0] += v * x; c[1] += v * y; c[2] += v * z;
        }
    int o[3];
    for (int d = 0; d < 3; ++d) o[d] = w > 0 ? int(std::lround(c[d] / w)) : box_ / 2;
    origins_.push_back({(o[0] - box_ / 2) * pixel_, (o[1] - box_ / 2) * pixel_, (o[2] - box_ / 2) * pixel_});
    // The gridding correction: trilinear interpolation on the padded transform multiplies the volume by
    // sinc^2(pi x / p) per axis (x in voxels from the transform's origin); dividing it out first makes the
    // slices exact up to the interpolation's smoothing of the transform itself.
    std::fill(padded.begin(), padded.end(), 0.f);
    for (int z = 0; z < box_; ++z)
      for (int y = 0; y < box_; ++y)
        for (int x = 0; x < box_; ++x) {
          const int dx = x - o[0], dy = y - o[1], dz = z - o[2];
          const double sx = sinc(kPi * dx / p_), sy = sinc(kPi * dy / p_), sz = sinc(kPi * dz / p_);
          padded[(size_t((dz + p_) % p_) * p_ + (dy + p_) % p_) * p_ + (dx + p_) % p_] =
              float(b.at(x, y, z) / (sx * sx * sy * sy * sz * sz));
        }
    bodies_.emplace_back(size_t(p_) * p_ * (p_ / 2 + 1));
    fft3_r2c(p_, p_, p_, padded.data(), bodies_.back().data());
  }
}

// Any integer frequency: wrapped into the grid, the half not stored through Hermitian symmetry.
std::complex<double> SliceProjector::at(size_t body, int ix, int iy, int iz) const {
  const int h = p_ / 2;
  ix = ((ix % p_) + p_) % p_;
  iy = ((iy % p_) + p_) % p_;
  iz = ((iz % p_) + p_) % p_;
  bool conj = false;
  if (ix > h) {
    ix = p_ - ix;
    iy = (p_ - iy) % p_;
    iz = (p_ - iz) % p_;
    conj = true;
  }
  const std::complex<double> v(bodies_[body][(size_t(iz) * p_ + iy) * (h + 1) + ix]);
  return conj ? std::conj(v) : v;
}

std::complex<double> SliceProjector::sample(size_t body, double kx, double ky, double kz) const {
  const double fx = std::floor(kx), fy = std::floor(ky), fz = std::floor(kz);
  const int x0 = int(fx), y0 = int(fy), z0 = int(fz);
  const double ax = kx - fx, ay = ky - fy, az = kz - fz;
  std::complex<double> v = 0;
  for (int dz = 0; dz < 2; ++dz)
    for (int dy = 0; dy < 2; ++dy)
      for (int dx = 0; dx < 2; ++dx) {
        const double w = (dx ? ax : 1 - ax) * (dy ? ay : 1 - ay) * (dz ? az : 1 - az);
        if (w != 0) v += w * at(body, x0 + dx, y0 + dy, z0 + dz);
      }
  return v;
}

void SliceProjector::add_body(const Mat3<double>& view, size_t b, const BodyMotion& motion,
                              std::complex<double>* centred) const {
  if (motion.weight == 0) return;
  const int n = box_, w = n / 2 + 1;
  const double len = n * pixel_;  // Å: frequency index k means k / len cycles per Å
  const Mat3<double> at_view = transpose(view), rt = transpose(motion.rotation);
  const Vec3<double> moved{pivots_[b].x + motion.translation.x, pivots_[b].y + motion.translation.y,
                           pivots_[b].z + motion.translation.z};
  // The body's transform is stored about origins_[b]: rho^(K) = exp(-2 pi i K.o) stored(K).
  const Vec3<double> po{pivots_[b].x - origins_[b].x, pivots_[b].y - origins_[b].y, pivots_[b].z - origins_[b].z};
  for (int row = 0; row < n; ++row) {
    const int ky = row > n / 2 ? row - n : row;
    for (int kx = 0; kx < w; ++kx) {
      if (kx * kx + ky * ky > (n / 2) * (n / 2)) continue;
      const Vec3<double> k = mul(at_view, Vec3<double>{double(kx), double(ky), 0});  // cycles per box
      const Vec3<double> kb = mul(rt, k);
      const double phase = 2 * kPi / len *
                           (-(k.x * moved.x + k.y * moved.y + k.z * moved.z) + (kb.x * po.x + kb.y * po.y + kb.z * po.z));
      centred[size_t(row) * w + kx] +=
          motion.weight * std::polar(1.0, phase) * sample(b, pad_ * kb.x, pad_ * kb.y, pad_ * kb.z);
    }
  }
}

void SliceProjector::finish(const std::complex<double>* centred, double origin_x, double origin_y,
                            const CtfParams& ctf, CtfMode mode, cfloat* half) const {
  const int n = box_, w = n / 2 + 1;
  const double len = n * pixel_;
  const CtfConsts<double> cc = make_ctf_consts<double>(ctf);
  for (int row = 0; row < n; ++row) {
    const int ky = row > n / 2 ? row - n : row;
    for (int kx = 0; kx < w; ++kx) {
      // The observed image is the projection translated by -origin: a phase of +2 pi k.o.
      std::complex<double> v = centred[size_t(row) * w + kx] * std::polar(1.0, 2 * kPi / len * (kx * origin_x + ky * origin_y));
      if (mode != CtfMode::none) v *= ctf_apply_mode(ctf_value(cc, kx / len, ky / len), mode);
      // About pixel 0 rather than the centre (pixel n/2): (-1)^(kx + ky).
      if ((kx + ky) & 1) v = -v;
      half[size_t(row) * w + kx] = cfloat(v);
    }
  }
}

void SliceProjector::project_half(const Mat3<double>& view, double origin_x, double origin_y,
                                  const std::vector<BodyMotion>& motion, const CtfParams& ctf, CtfMode mode,
                                  cfloat* half) const {
  CUGMM_REQUIRE(motion.size() == bodies_.size(), "SliceProjector: one motion per body");
  std::vector<std::complex<double>> centred(size_t(box_) * (box_ / 2 + 1));
  for (size_t b = 0; b < bodies_.size(); ++b) add_body(view, b, motion[b], centred.data());
  finish(centred.data(), origin_x, origin_y, ctf, mode, half);
}

void SliceProjector::project(const Mat3<double>& view, double origin_x, double origin_y,
                             const std::vector<BodyMotion>& motion, const CtfParams& ctf, CtfMode mode,
                             float* image) const {
  const int n = box_;
  std::vector<cfloat> half(size_t(n) * (n / 2 + 1));
  project_half(view, origin_x, origin_y, motion, ctf, mode, half.data());
  fft2_c2r(n, n, half.data(), image);
  const float scale = 1.f / float(n * n);
  for (size_t i = 0; i < size_t(n) * n; ++i) image[i] *= scale;
}

}  // namespace cugmm
