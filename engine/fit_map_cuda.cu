// The fit-map loss and gradient on CUDA (engine/gaussian_fourier3d.h): the same maths as the CPU loops,
// in the per-coefficient form of kernels/gaussian_fourier3d.h (one exp + one sincos per pair instead of
// tables). Forward: a thread per coefficient loops over the Gaussians through shared-memory tiles and
// writes R = w (F - T) plus one loss partial per block. Backward: a block per Gaussian loops over the band
// and reduces in shared memory in a fixed order. No atomics: results do not depend on scheduling.
#include <vector>

#include "core/buffer.h"
#include "core/cuda_check.h"
#include "engine/gaussian_fourier3d.h"
#include "kernels/gaussian_fourier3d.h"

namespace cugmm {

namespace {

constexpr int kThreads = 256;

struct DevParams {
  const float *x, *y, *z, *a, *s;
  int count;
};

__global__ void forward_residual(DevParams p, const short* kx, const short* ky, const short* kz, const float* tr,
                                 const float* ti, const float* wt, int n, float inv_len, float* rr, float* ri, double* partial) {
  __shared__ float sx[kThreads], sy[kThreads], sz[kThreads], sa[kThreads], ss[kThreads];
  __shared__ double red[kThreads];
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  const bool live = i < n;
  const float fkx = live ? kx[i] * inv_len : 0.f, fky = live ? ky[i] * inv_len : 0.f, fkz = live ? kz[i] * inv_len : 0.f;
  float fr = 0.f, fi = 0.f;
  for (int t0 = 0; t0 < p.count; t0 += kThreads) {
    const int j = t0 + threadIdx.x;
    if (j < p.count) { sx[threadIdx.x] = p.x[j]; sy[threadIdx.x] = p.y[j]; sz[threadIdx.x] = p.z[j];
                       sa[threadIdx.x] = p.a[j]; ss[threadIdx.x] = p.s[j]; }
    __syncthreads();
    const int m = min(kThreads, p.count - t0);
    if (live)
      for (int q = 0; q < m; ++q) {
        float er, ei;
        gf3_term<float>(ss[q], sx[q], sy[q], sz[q], fkx, fky, fkz, er, ei);
        fr += sa[q] * er;
        fi += sa[q] * ei;
      }
    __syncthreads();
  }
  double l = 0;
  if (live) {
    const float w = wt[i];
    const float dr = fr - tr[i], di = fi - ti[i];
    rr[i] = w * dr;
    ri[i] = w * di;
    l = double(w) * (double(dr) * dr + double(di) * di);
  }
  red[threadIdx.x] = l;
  __syncthreads();
  for (int h = kThreads / 2; h > 0; h >>= 1) {
    if (threadIdx.x < h) red[threadIdx.x] += red[threadIdx.x + h];
    __syncthreads();
  }
  if (threadIdx.x == 0) partial[blockIdx.x] = red[0];
}

__global__ void backward(DevParams p, const short* kx, const short* ky, const short* kz, const float* rr,
                         const float* ri, int n, float inv_len, float inv_norm, float* gx, float* gy, float* gz,
                         float* ga, float* gs) {
  __shared__ double red[5][kThreads];
  const int j = blockIdx.x;
  const float cx = p.x[j], cy = p.y[j], cz = p.z[j], s = p.s[j];
  Gf3Sums<float> acc;
  for (int i = threadIdx.x; i < n; i += blockDim.x) {
    float er, ei;
    gf3_term<float>(s, cx, cy, cz, kx[i] * inv_len, ky[i] * inv_len, kz[i] * inv_len, er, ei);
    // q = conj(R) * term
    const float qr = rr[i] * er + ri[i] * ei, qi = rr[i] * ei - ri[i] * er;
    gf3_coef_bwd<float>(qr, qi, kx[i], ky[i], kz[i], acc);
  }
  red[0][threadIdx.x] = acc.re; red[1][threadIdx.x] = acc.kx; red[2][threadIdx.x] = acc.ky;
  red[3][threadIdx.x] = acc.kz; red[4][threadIdx.x] = acc.k2;
  __syncthreads();
  for (int h = kThreads / 2; h > 0; h >>= 1) {
    if (threadIdx.x < h)
      for (int c = 0; c < 5; ++c) red[c][threadIdx.x] += red[c][threadIdx.x + h];
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    Gf3Sums<float> t;
    t.re = float(red[0][0]); t.kx = float(red[1][0]); t.ky = float(red[2][0]);
    t.kz = float(red[3][0]); t.k2 = float(red[4][0]);
    gf3_param_grad<float>(t, p.a[j], s, inv_norm, inv_len, gx[j], gy[j], gz[j], ga[j], gs[j]);
  }
}

class Fourier3dLossCuda : public Fourier3dLoss {
 public:
  Fourier3dLossCuda(Context& ctx, const Band3d& b, const std::vector<float>& tr, const std::vector<float>& ti)
      : stream_(static_cast<cudaStream_t>(ctx.stream())), n_(b.size), inv_len_(float(1.0 / (b.box * b.pixel_size))),
        kx_(ctx), ky_(ctx), kz_(ctx), tr_(ctx), ti_(ctx), w_(ctx), rr_(ctx), ri_(ctx), params_(ctx), grads_(ctx),
        partial_(ctx) {
    std::vector<short> kx(n_), ky(n_), kz(n_);
    for (size_t r = 0; r < b.ky.size(); ++r)
      for (int x = 0; x < b.len[r]; ++x) {
        kx[b.start[r] + x] = short(x); ky[b.start[r] + x] = b.ky[r]; kz[b.start[r] + x] = b.kz[r];
      }
    norm_ = band3d_norm(b, tr.data(), ti.data());
    CUGMM_REQUIRE(norm_ > 0, "fit-map: the map has no power in the fitted band");
    kx_.upload(kx); ky_.upload(ky); kz_.upload(kz);
    tr_.upload(tr); ti_.upload(ti); w_.upload(b.weight);
    rr_.resize(n_); ri_.resize(n_);
    partial_.resize((n_ + kThreads - 1) / kThreads);
  }

  double loss_grad(const GaussSoA<float>& p, GaussGrad<float> g) override {
    const size_t gc = p.count;
    if (gc == 0 || n_ == 0) return 1.0;
    params_.resize(5 * gc);
    // One upload of the five columns, staged contiguously on the host.
    host_params_.resize(5 * gc);
    const float* src[5] = {p.x, p.y, p.z, p.a, p.s};
    for (int c = 0; c < 5; ++c) std::copy(src[c], src[c] + gc, host_params_.begin() + long(c * gc));
    params_.upload(host_params_);
    DevParams d{params_.data(), params_.data() + gc, params_.data() + 2 * gc, params_.data() + 3 * gc,
                params_.data() + 4 * gc, int(gc)};
    const int blocks = int(partial_.size());
    forward_residual<<<blocks, kThreads, 0, stream_>>>(d, kx_.data(), ky_.data(), kz_.data(), tr_.data(), ti_.data(),
                                                       w_.data(), int(n_), inv_len_, rr_.data(), ri_.data(), partial_.data());
    CUGMM_CHECK_LAUNCH();
    grads_.resize(5 * gc);
    float* gp = grads_.data();
    backward<<<int(gc), kThreads, 0, stream_>>>(d, kx_.data(), ky_.data(), kz_.data(), rr_.data(), ri_.data(), int(n_),
                                                 inv_len_, float(1 / norm_), gp, gp + gc, gp + 2 * gc, gp + 3 * gc,
                                                 gp + 4 * gc);
    CUGMM_CHECK_LAUNCH();
    std::vector<double> part(partial_.size());
    partial_.download(part.data(), part.size());
    std::vector<float> host(5 * gc);
    grads_.download(host.data(), host.size());
    float* dst[5] = {g.x, g.y, g.z, g.a, g.s};
    for (int c = 0; c < 5; ++c) std::copy(host.begin() + c * gc, host.begin() + (c + 1) * gc, dst[c]);
    double loss = 0;
    for (double v : part) loss += v;  // fixed order
    return loss / norm_;
  }

 private:
  cudaStream_t stream_;
  size_t n_;
  float inv_len_;
  double norm_ = 0;
  Buffer<short> kx_, ky_, kz_;
  Buffer<float> tr_, ti_, w_, rr_, ri_, params_, grads_;
  Buffer<double> partial_;
  std::vector<float> host_params_;
};

}  // namespace

std::unique_ptr<Fourier3dLoss> make_fourier3d_loss_cuda(Context& ctx, const Band3d& b, const std::vector<float>& tr,
                                                        const std::vector<float>& ti) {
  return std::make_unique<Fourier3dLossCuda>(ctx, b, tr, ti);
}

}  // namespace cugmm
