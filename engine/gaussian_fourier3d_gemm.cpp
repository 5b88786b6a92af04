// The CPU fit-map loss and gradient as matrix products (engine/gaussian_fourier3d.h). Per slab kz (a disc
// of radius rho = floor(sqrt(kmax^2 - kz^2)) in (kx, ky)), with X[kx, j] = fx_j(kx) and
// Y[j, ky] = a_j fy_j(ky) fz_j(kz):
//   forward   F[kx, ky] = sum_j X[kx, j] Y[j, ky]                       (complex GEMM)
//   residual  R = w (F - T) on the band's coefficients, zero elsewhere
//   backward  A_n[ky, j] = sum_kx conj(R[kx, ky]) kx^n fx_j(kx), n = 0, 1, 2   (complex GEMM)
//   then gf3_row_combine per (ky, j), as the row loops do (kernels/gaussian_fourier3d.h).
// Complex products are real GEMMs on [re | -im] blocks. Slabs run in parallel, BLAS single-threaded
// inside them; each slab keeps its own partial sums, added in slab order: deterministic.
#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "engine/gaussian_fourier3d.h"
#include "kernels/gaussian_fourier3d.h"
#include "nn/blas.h"

namespace cugmm {

namespace {

class Fourier3dLossGemm : public Fourier3dLoss {
 public:
  Fourier3dLossGemm(const Band3d& b, std::vector<float> tr, std::vector<float> ti)
      : b_(b), tr_(std::move(tr)), ti_(std::move(ti)) {
    km_ = b_.kmax_int();
    norm_ = band3d_norm(b_, tr_.data(), ti_.data());
    CUGMM_REQUIRE(norm_ > 0, "fit-map: the map has no power in the fitted band");
    // make_band3d lists rows kz-major, ky ascending: each slab's rows are contiguous.
    slab_row_.assign(2 * km_ + 2, -1);
    for (size_t r = 0; r < b_.ky.size(); ++r)
      if (slab_row_[b_.kz[r] + km_] < 0) slab_row_[b_.kz[r] + km_] = int(r);
  }

  double loss_grad(const GaussSoA<float>& p, GaussGrad<float> g) override;

 private:
  Band3d b_;
  std::vector<float> tr_, ti_;
  int km_ = 0;
  double norm_ = 0;
  std::vector<int> slab_row_;
};

double Fourier3dLossGemm::loss_grad(const GaussSoA<float>& p, GaussGrad<float> g) {
  const int G = int(p.count), km = km_, nx = km + 1, nyf = 2 * km + 1, slabs = 2 * km + 1;
  if (G == 0) return 1.0;
  const float inv_len = float(1.0 / (b_.box * b_.pixel_size));
  // X as [Xr | -Xi] and [Xi | Xr] (nx x 2G), E_n = kx^n X as Er / Ei (nx x 3G), y / z factors per j.
  std::vector<float> xa(size_t(nx) * 2 * G), xb(size_t(nx) * 2 * G), er(size_t(nx) * 3 * G), ei(size_t(nx) * 3 * G);
  std::vector<float> yr(size_t(G) * nyf), yi(size_t(G) * nyf), zr(size_t(G) * nyf), zi(size_t(G) * nyf);
#pragma omp parallel for schedule(static)
  for (int j = 0; j < G; ++j) {
    for (int k = 0; k <= km; ++k) {
      float re, im;
      gf3_axis<float>(p.s[j], p.x[j], k * inv_len, re, im);
      xa[size_t(k) * 2 * G + j] = re; xa[size_t(k) * 2 * G + G + j] = -im;
      xb[size_t(k) * 2 * G + j] = im; xb[size_t(k) * 2 * G + G + j] = re;
      for (int n = 0; n < 3; ++n) {
        const float kn = n == 0 ? 1.f : n == 1 ? float(k) : float(k * k);
        er[size_t(k) * 3 * G + n * G + j] = kn * re;
        ei[size_t(k) * 3 * G + n * G + j] = kn * im;
      }
    }
    for (int k = -km; k <= km; ++k) {
      gf3_axis<float>(p.s[j], p.y[j], k * inv_len, yr[size_t(j) * nyf + k + km], yi[size_t(j) * nyf + k + km]);
      gf3_axis<float>(p.s[j], p.z[j], k * inv_len, zr[size_t(j) * nyf + k + km], zi[size_t(j) * nyf + k + km]);
    }
  }
  std::vector<Gf3Sums<float>> part(size_t(slabs) * G);
  nn::SerialBlas serial;
  std::vector<double> slab_loss(slabs, 0);
#pragma omp parallel
  {
    std::vector<float> bm, fr, fi, cr, ci, ar, ai;
#pragma omp for schedule(dynamic, 1)
    for (int s = 0; s < slabs; ++s) {
      const int kz = s - km, r0 = slab_row_[s];
      if (r0 < 0) continue;
      const int rho = b_.ky[r0] < 0 ? -b_.ky[r0] : 0, m = rho + 1, ny = 2 * rho + 1;
      // Y for this slab: rows 0..G-1 real, G..2G-1 imaginary, ny columns (ky = -rho..rho).
      bm.resize(size_t(2 * G) * ny);
      for (int j = 0; j < G; ++j) {
        const float zre = zr[size_t(j) * nyf + kz + km], zim = zi[size_t(j) * nyf + kz + km], a = p.a[j];
        for (int y = 0; y < ny; ++y) {
          const float yre = yr[size_t(j) * nyf + y - rho + km], yim = yi[size_t(j) * nyf + y - rho + km];
          bm[size_t(j) * ny + y] = a * (yre * zre - yim * zim);
          bm[size_t(G + j) * ny + y] = a * (yre * zim + yim * zre);
        }
      }
      fr.resize(size_t(m) * ny);
      fi.resize(size_t(m) * ny);
      nn::sgemm(false, false, m, ny, 2 * G, 1.f, xa.data(), 2 * G, bm.data(), ny, 0.f, fr.data(), ny);
      nn::sgemm(false, false, m, ny, 2 * G, 1.f, xb.data(), 2 * G, bm.data(), ny, 0.f, fi.data(), ny);
      // C = conj(R) as ny x m, zero outside the band.
      cr.assign(size_t(ny) * m, 0.f);
      ci.assign(size_t(ny) * m, 0.f);
      double l = 0;
      for (int y = 0; y < ny; ++y) {
        const int r = r0 + y;
        for (int x = 0; x < b_.len[r]; ++x) {
          const size_t i = b_.start[r] + x;
          const double w = b_.weight[i];
          const double dr = double(fr[size_t(x) * ny + y]) - tr_[i], di = double(fi[size_t(x) * ny + y]) - ti_[i];
          l += w * (dr * dr + di * di);
          cr[size_t(y) * m + x] = float(w * dr);
          ci[size_t(y) * m + x] = float(-w * di);
        }
      }
      slab_loss[s] = l;
      // A = C E: Ar = Cr Er - Ci Ei, Ai = Cr Ei + Ci Er (ny x 3G), the first m rows of E.
      ar.resize(size_t(ny) * 3 * G);
      ai.resize(size_t(ny) * 3 * G);
      nn::sgemm(false, false, ny, 3 * G, m, 1.f, cr.data(), m, er.data(), 3 * G, 0.f, ar.data(), 3 * G);
      nn::sgemm(false, false, ny, 3 * G, m, -1.f, ci.data(), m, ei.data(), 3 * G, 1.f, ar.data(), 3 * G);
      nn::sgemm(false, false, ny, 3 * G, m, 1.f, cr.data(), m, ei.data(), 3 * G, 0.f, ai.data(), 3 * G);
      nn::sgemm(false, false, ny, 3 * G, m, 1.f, ci.data(), m, er.data(), 3 * G, 1.f, ai.data(), 3 * G);
      Gf3Sums<float>* ps = &part[size_t(s) * G];
      for (int y = 0; y < ny; ++y) {
        const int ky = y - rho;
        const float* a_r = &ar[size_t(y) * 3 * G];
        const float* a_i = &ai[size_t(y) * 3 * G];
        for (int j = 0; j < G; ++j) {
          const float yre = yr[size_t(j) * nyf + ky + km], yim = yi[size_t(j) * nyf + ky + km];
          const float zre = zr[size_t(j) * nyf + kz + km], zim = zi[size_t(j) * nyf + kz + km];
          gf3_row_combine<float>(yre * zre - yim * zim, yre * zim + yim * zre, ky, kz, a_r[j], a_i[j], a_r[G + j],
                                 a_i[G + j], a_r[2 * G + j], a_i[2 * G + j], ps[j]);
        }
      }
    }
  }
  double loss = 0;
  for (double l : slab_loss) loss += l;
  const float inv_norm = float(1 / norm_);
#pragma omp parallel for schedule(static)
  for (int j = 0; j < G; ++j) {
    double t[5] = {0, 0, 0, 0, 0};
    for (int s = 0; s < slabs; ++s) {
      const Gf3Sums<float>& q = part[size_t(s) * G + j];
      t[0] += q.re; t[1] += q.kx; t[2] += q.ky; t[3] += q.kz; t[4] += q.k2;
    }
    Gf3Sums<float> sum;
    sum.re = float(t[0]); sum.kx = float(t[1]); sum.ky = float(t[2]); sum.kz = float(t[3]); sum.k2 = float(t[4]);
    gf3_param_grad<float>(sum, p.a[j], p.s[j], inv_norm, inv_len, g.x[j], g.y[j], g.z[j], g.a[j], g.s[j]);
  }
  return loss / norm_;
}

}  // namespace

std::unique_ptr<Fourier3dLoss> make_fourier3d_loss_cpu(const Band3d& b, std::vector<float> tr, std::vector<float> ti) {
  return std::make_unique<Fourier3dLossGemm>(b, std::move(tr), std::move(ti));
}

}  // namespace cugmm
