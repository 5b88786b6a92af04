#include "engine/gaussian_fourier3d.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "core/error.h"
#include "kernels/gaussian_fourier3d.h"

namespace cugmm {

Band3d make_band3d(int box, double pixel_size, double resolution) {
  CUGMM_REQUIRE(box >= 4 && box % 2 == 0 && pixel_size > 0 && resolution > 0,
                "fit-map: bad band (box " + std::to_string(box) + ", resolution " + std::to_string(resolution) + ")");
  Band3d b;
  b.box = box;
  b.pixel_size = pixel_size;
  // Below N/2 so the Nyquist plane (weight 1, ambiguous sign) never enters.
  b.kmax = std::min(box * pixel_size / resolution, box / 2 - 0.5);
  const int km = b.kmax_int();
  const double k2max = b.kmax * b.kmax;
  for (int kz = -km; kz <= km; ++kz)
    for (int ky = -km; ky <= km; ++ky) {
      double r2 = k2max - double(ky * ky + kz * kz);
      if (r2 < 0) continue;
      int len = int(std::floor(std::sqrt(r2))) + 1;
      b.ky.push_back(int16_t(ky));
      b.kz.push_back(int16_t(kz));
      b.start.push_back(int32_t(b.size));
      b.len.push_back(len);
      b.size += size_t(len);
    }
  b.weight.resize(b.size);
  for (size_t r = 0; r < b.ky.size(); ++r)
    for (int x = 0; x < b.len[r]; ++x) b.weight[b.start[r] + x] = x == 0 ? 1.f : 2.f;
  return b;
}

void weight_shells(Band3d& b, const std::vector<double>& shell_weight) {
  for (size_t r = 0; r < b.ky.size(); ++r)
    for (int x = 0; x < b.len[r]; ++x) {
      const int s = int(std::lround(std::sqrt(double(x * x + b.ky[r] * b.ky[r] + b.kz[r] * b.kz[r]))));
      CUGMM_REQUIRE(s < int(shell_weight.size()), "fit-map: a shell weight is missing");
      b.weight[b.start[r] + x] *= float(shell_weight[s]);
    }
}

void band3d_gather(const Band3d& b, const std::complex<float>* half, std::vector<float>& tr, std::vector<float>& ti) {
  const int n = b.box, nxh = n / 2 + 1;
  tr.resize(b.size);
  ti.resize(b.size);
  for (size_t r = 0; r < b.ky.size(); ++r) {
    const int ky = b.ky[r], kz = b.kz[r];
    const size_t base = (size_t(kz < 0 ? kz + n : kz) * n + size_t(ky < 0 ? ky + n : ky)) * nxh;
    for (int x = 0; x < b.len[r]; ++x) {
      // The centre phase (-1)^(kx+ky+kz) moves the origin from voxel 0 to voxel N/2.
      const float sign = ((x + ky + kz) & 1) ? -1.f : 1.f;
      tr[b.start[r] + x] = sign * half[base + x].real();
      ti[b.start[r] + x] = sign * half[base + x].imag();
    }
  }
}

double band3d_norm(const Band3d& b, const float* tr, const float* ti) {
  double s = 0;
  for (size_t r = 0; r < b.ky.size(); ++r)
    for (int x = 0; x < b.len[r]; ++x) {
      size_t i = b.start[r] + x;
      s += double(b.weight[i]) * (double(tr[i]) * tr[i] + double(ti[i]) * ti[i]);
    }
  return s;
}

namespace {

// Per-Gaussian per-axis factors: O(G x kmax) memory, so each coefficient costs multiply-adds only.
// ex over kx = 0..km, ey / ez over -km..km (index k + km); the amplitude is not folded in.
template <class T>
struct AxisTables {
  int km = 0, nx = 0, ny = 0;
  std::vector<T> xr, xi, yr, yi, zr, zi;
  AxisTables(const Band3d& b, const GaussSoA<T>& p) {
    km = b.kmax_int();
    nx = km + 1;
    ny = 2 * km + 1;
    const size_t g = p.count;
    xr.resize(g * nx); xi.resize(g * nx);
    yr.resize(g * ny); yi.resize(g * ny); zr.resize(g * ny); zi.resize(g * ny);
    const T inv_len = T(1.0 / (b.box * b.pixel_size));
#pragma omp parallel for schedule(static)
    for (long j = 0; j < long(g); ++j) {
      for (int k = 0; k <= km; ++k) gf3_axis<T>(p.s[j], p.x[j], k * inv_len, xr[j * nx + k], xi[j * nx + k]);
      for (int k = -km; k <= km; ++k) {
        gf3_axis<T>(p.s[j], p.y[j], k * inv_len, yr[j * ny + k + km], yi[j * ny + k + km]);
        gf3_axis<T>(p.s[j], p.z[j], k * inv_len, zr[j * ny + k + km], zi[j * ny + k + km]);
      }
    }
  }
};

template <class T>
void forward(const Band3d& b, const GaussSoA<T>& p, const AxisTables<T>& t, T* fr, T* fi) {
  const long rows = long(b.ky.size());
  // Parallel over rows, each looping over all Gaussians in index order: deterministic.
#pragma omp parallel
  {
    std::vector<T> rr(t.nx), ri(t.nx);
#pragma omp for schedule(dynamic, 8)
    for (long r = 0; r < rows; ++r) {
      const int len = b.len[r], iy = b.ky[r] + t.km, iz = b.kz[r] + t.km;
      std::fill(rr.begin(), rr.begin() + len, T(0));
      std::fill(ri.begin(), ri.begin() + len, T(0));
      for (size_t j = 0; j < p.count; ++j) {
        const T yr = t.yr[j * t.ny + iy], yi = t.yi[j * t.ny + iy];
        const T zr = t.zr[j * t.ny + iz], zi = t.zi[j * t.ny + iz];
        const T ur = p.a[j] * (yr * zr - yi * zi), ui = p.a[j] * (yr * zi + yi * zr);
        gf3_row_fwd<T>(ur, ui, &t.xr[j * t.nx], &t.xi[j * t.nx], len, rr.data(), ri.data());
      }
      std::copy(rr.begin(), rr.begin() + len, fr + b.start[r]);
      std::copy(ri.begin(), ri.begin() + len, fi + b.start[r]);
    }
  }
}

}  // namespace

template <class T>
void gf3_forward_cpu(const Band3d& b, const GaussSoA<T>& p, T* fr, T* fi) {
  AxisTables<T> t(b, p);
  forward(b, p, t, fr, fi);
}

template <class T>
double gf3_loss_grad_cpu(const Band3d& b, const GaussSoA<T>& p, const T* tr, const T* ti, GaussGrad<T> g) {
  AxisTables<T> t(b, p);
  std::vector<T> rr(b.size), ri(b.size);
  forward(b, p, t, rr.data(), ri.data());
  // R = w (F - T), in place; the loss and norm in double, in row order (deterministic).
  double loss = 0, norm = 0;
  for (size_t r = 0; r < b.ky.size(); ++r)
    for (int x = 0; x < b.len[r]; ++x) {
      const size_t i = b.start[r] + x;
      const double w = b.weight[i];
      const double dr = double(rr[i]) - tr[i], di = double(ri[i]) - ti[i];
      loss += w * (dr * dr + di * di);
      norm += w * (double(tr[i]) * tr[i] + double(ti[i]) * ti[i]);
      rr[i] = T(w * dr);
      ri[i] = T(w * di);
    }
  CUGMM_REQUIRE(norm > 0, "fit-map: the map has no power in the fitted band");
  const T inv_norm = T(1 / norm), inv_len = T(1.0 / (b.box * b.pixel_size));
  const long rows = long(b.ky.size());
  // Parallel over Gaussians, each looping over the band in row order: deterministic, no atomics.
#pragma omp parallel for schedule(dynamic, 4)
  for (long j = 0; j < long(p.count); ++j) {
    Gf3Sums<T> acc;
    for (long r = 0; r < rows; ++r) {
      const int iy = b.ky[r] + t.km, iz = b.kz[r] + t.km;
      const T yr = t.yr[j * t.ny + iy], yi = t.yi[j * t.ny + iy];
      const T zr = t.zr[j * t.ny + iz], zi = t.zi[j * t.ny + iz];
      gf3_row_bwd<T>(yr * zr - yi * zi, yr * zi + yi * zr, b.ky[r], b.kz[r], &t.xr[j * t.nx], &t.xi[j * t.nx],
                     rr.data() + b.start[r], ri.data() + b.start[r], b.len[r], acc);
    }
    gf3_param_grad<T>(acc, p.a[j], p.s[j], inv_norm, inv_len, g.x[j], g.y[j], g.z[j], g.a[j], g.s[j]);
  }
  return loss / norm;
}

template void gf3_forward_cpu<float>(const Band3d&, const GaussSoA<float>&, float*, float*);
template void gf3_forward_cpu<double>(const Band3d&, const GaussSoA<double>&, double*, double*);
template double gf3_loss_grad_cpu<float>(const Band3d&, const GaussSoA<float>&, const float*, const float*,
                                         GaussGrad<float>);
template double gf3_loss_grad_cpu<double>(const Band3d&, const GaussSoA<double>&, const double*, const double*,
                                          GaussGrad<double>);

std::unique_ptr<Fourier3dLoss> Fourier3dLoss::create(Context& ctx, const Band3d& b, std::vector<float> tr,
                                                     std::vector<float> ti) {
#ifdef CUGMM_HAVE_CUDA
  if (ctx.cuda()) return make_fourier3d_loss_cuda(ctx, b, tr, ti);
#endif
  CUGMM_REQUIRE(!ctx.cuda(), "fit-map: this build has no CUDA backend");
  return make_fourier3d_loss_cpu(b, std::move(tr), std::move(ti));
}

}  // namespace cugmm
