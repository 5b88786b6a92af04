// CUDA back-projection: pad on the device, batched cuFFT, one thread per (image, coefficient) computing
// the shared term (kernels/backproject.h) and adding it at its eight trilinear corners with atomicAdd.
// Float atomics make the summation order vary between runs (rounding-level differences): accepted for
// back-projection and documented in engine/reconstruct.h. The solve runs on the host (engine/reconstruct.cpp).
// Everything is queued on the run's Context stream; cuFFT is reached through engine/cufft_api.h.
#include <algorithm>
#include <map>
#include <memory>
#include <vector>

#include "core/buffer.h"
#include "engine/cufft_api.h"
#include "engine/reconstruct.h"
#include "kernels/backproject.h"

namespace cugmm {

namespace {

struct DevicePose {
  Mat3<float> a;
  float ox, oy;
  CtfConsts<float> ctf;
};

__global__ void pad_images(const float* images, float* padded, int n, int np, int m, int* bad) {
  long idx = long(blockIdx.x) * blockDim.x + threadIdx.x;
  long per = long(np) * np;
  if (idx >= per * m) return;
  int img = int(idx / per), p = int(idx % per);
  int py = p / np, px = p % np;
  // Inverse of pad_index: padded index -> offset from the centre -> source pixel.
  int dy = py < np / 2 ? py : py - np, dx = px < np / 2 ? px : px - np;
  int y = dy + n / 2, x = dx + n / 2;
  float v = 0.f;
  if (x >= 0 && x < n && y >= 0 && y < n) {
    v = images[(long(img) * n + y) * n + x];
    if (!isfinite(v)) { atomicExch(bad, img); v = 0.f; }
  }
  padded[idx] = v;
}

__global__ void insert_terms(const float2* ft, const DevicePose* poses, const int* kx, const int* ky,
                             const int* fft_index, int nc, int m, int np, float inv_len, CtfMode mode,
                             float2* data, float* weight) {
  long idx = long(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= long(nc) * m) return;
  int img = int(idx / nc), j = int(idx % nc);
  const DevicePose& ps = poses[img];
  float2 f = ft[long(img) * np * (np / 2 + 1) + fft_index[j]];
  BackprojectTerm<float> t = backproject_term(f.x, f.y, kx[j] * inv_len, ky[j] * inv_len, ps.ox, ps.oy, ps.ctf, mode);
  GridSpot<float> s = grid_spot(ps.a, float(kx[j]), float(ky[j]));
  float im = s.conj ? -t.im : t.im;
  const float rho = density_weight<float>(kx[j], ky[j]);
  for (int dz = 0; dz < 2; ++dz)
    for (int dy = 0; dy < 2; ++dy)
      for (int dx = 0; dx < 2; ++dx) {
        int x = s.x0 + dx, y = s.y0 + dy, z = s.z0 + dz;
        if (!corner_in_grid(x, y, z, np)) continue;
        float w = rho * corner_weight(s, dx, dy, dz);
        long g = grid_index(x, y, z, np);
        atomicAdd(&data[g].x, w * t.re);
        atomicAdd(&data[g].y, w * im);
        atomicAdd(&weight[g], w * t.w);
      }
}

class CudaBackprojector final : public Backprojector {
 public:
  CudaBackprojector(Context& cx, int box, double pixel_size, const ReconstructOptions& opt)
      : cx_(cx), stream_(static_cast<cudaStream_t>(cx.stream())), opt_(opt), data_(cx), weight_(cx), kx_(cx),
        ky_(cx), fft_index_(cx), bad_(cx), images_(cx), padded_(cx), ft_(cx), poses_(cx) {
    CUGMM_REQUIRE(cx.cuda(), "reconstruct: the CUDA back-projector needs a CUDA context");
    CUGMM_REQUIRE(box >= 4 && box % 2 == 0, "reconstruct: the box must be even and >= 4, not " + std::to_string(box));
    CUGMM_REQUIRE(opt.padding >= 1 && opt.padding <= 4, "reconstruct: padding must be 1..4");
    CUGMM_REQUIRE(pixel_size > 0, "reconstruct: the pixel size must be positive");
    box_ = box;
    np_ = box * opt.padding;
    pixel_ = pixel_size;
    r_max_ = insertion_radius(box, pixel_size, opt);
    size_t n = size_t(np_) * np_ * (np_ / 2 + 1);
    data_.resize(n);
    weight_.resize(n);
    data_.zero();
    weight_.zero();
    std::vector<int> kx, ky, fi;
    const int h = np_ / 2;
    for (int row = 0; row < np_; ++row)
      for (int x = 0; x <= h; ++x) {
        int y = signed_freq(row, np_);
        if (!coefficient_inserted(x, y, float(r_max_))) continue;
        kx.push_back(x);
        ky.push_back(y);
        fi.push_back(row * (h + 1) + x);
      }
    nc_ = int(kx.size());
    kx_.upload(kx);
    ky_.upload(ky);
    fft_index_.upload(fi);
    bad_.resize(1);
    padded_.resize(size_t(kChunk) * np_ * np_);
    ft_.resize(size_t(kChunk) * np_ * (np_ / 2 + 1));
    images_.resize(size_t(kChunk) * box * box);
    poses_.resize(kChunk);
  }
  void insert(const float* images, const ImagePose* poses, size_t n) override {
    const float inv_len = float(1 / (np_ * pixel_));
    std::vector<DevicePose> hp(kChunk);
    for (size_t first = 0; first < n; first += kChunk) {
      int m = int(std::min<size_t>(kChunk, n - first));
      for (int i = 0; i < m; ++i) {
        const ImagePose& p = poses[first + i];
        Mat3<double> a = euler_to_matrix(p.rot, p.tilt, p.psi);
        for (int k = 0; k < 9; ++k) hp[i].a.m[k] = float(a.m[k]);
        hp[i].ox = float(p.origin_x);
        hp[i].oy = float(p.origin_y);
        hp[i].ctf = make_ctf_consts<float>(p.ctf);
      }
      images_.upload(images + first * size_t(box_) * box_, size_t(m) * box_ * box_);
      poses_.upload(hp.data(), size_t(m));
      int minus_one = -1;
      bad_.upload(&minus_one, 1);
      long npix = long(m) * np_ * np_;
      pad_images<<<unsigned((npix + 255) / 256), 256, 0, stream_>>>(images_.data(), padded_.data(), box_, np_, m,
                                                                    bad_.data());
      CUGMM_CHECK_LAUNCH();
      // The image is named, which a flag bit cannot do: one small read-back per chunk (it waits for the pad).
      int bad = -1;
      bad_.download(&bad, 1);
      if (bad >= 0) CUGMM_FAIL("reconstruct: image " + std::to_string(inserted_ + bad) + " has a non-finite pixel");
      plan_for(m).r2c(padded_.data(), ft_.data());
      long nt = long(m) * nc_;
      if (nt > 0) {
        insert_terms<<<unsigned((nt + 255) / 256), 256, 0, stream_>>>(ft_.data(), poses_.data(), kx_.data(),
                                                                      ky_.data(), fft_index_.data(), nc_, m, np_,
                                                                      inv_len, opt_.ctf, data_.data(), weight_.data());
        CUGMM_CHECK_LAUNCH();
      }
      inserted_ += size_t(m);
    }
    cx_.synchronize();  // insert() returns with the sums complete (the input array may go)
  }

  FourierGrid grid() const override {
    FourierGrid g;
    g.box = box_;
    g.padding = opt_.padding;
    g.np = np_;
    g.pixel_size = pixel_;
    g.r_max = r_max_;
    g.data.resize(data_.size());
    g.weight.resize(weight_.size());
    static_assert(sizeof(float2) == sizeof(std::complex<float>), "float2 and complex<float> differ");
    data_.download(reinterpret_cast<float2*>(g.data.data()), data_.size());
    weight_.download(g.weight.data(), weight_.size());
    return g;
  }

 private:
  static constexpr int kChunk = 64;

  // One plan per chunk size actually used (the full chunk, and a short last one).
  const detail::CufftPlan& plan_for(int m) {
    auto& p = plans_[m];
    if (!p) p = std::make_unique<detail::CufftPlan>(np_, m, CUFFT_R2C, stream_);
    return *p;
  }

  Context& cx_;
  cudaStream_t stream_;
  ReconstructOptions opt_;
  int box_ = 0, np_ = 0, nc_ = 0;
  double pixel_ = 0, r_max_ = 0;
  std::map<int, std::unique_ptr<detail::CufftPlan>> plans_;
  Buffer<float2> data_;
  Buffer<float> weight_;
  Buffer<int> kx_, ky_, fft_index_, bad_;
  Buffer<float> images_, padded_;
  Buffer<float2> ft_;
  Buffer<DevicePose> poses_;
};

}  // namespace

std::unique_ptr<Backprojector> make_cuda_backprojector(Context& cx, int box, double pixel_size,
                                                      const ReconstructOptions& opt) {
  return std::make_unique<CudaBackprojector>(cx, box, pixel_size, opt);
}

}  // namespace cugmm
