// The CUDA projector: splat + FFT (DESIGN §2 (a)) over the same kernels/*.h maths as the CPU backend.
// Per chunk of particles: splat (one thread per particle x Gaussian) -> batched cuFFT R2C -> model, CTF and
// ring sums (one block per particle, one warp per ring: deterministic) -> [backward] d score / d P^ into a
// half-plane -> batched cuFFT C2R -> gather over the footprints (one thread per particle x Gaussian) ->
// pose and summed-parameter reductions in a fixed order. Workspace is O(chunk x (G + pixels)).
//
// Known limits: the forward splat adds into the image with float atomics, so images (and everything
// after) can differ in the last bits from run to run; every reduction after it is deterministic. The
// separable strategy is CPU-only for now.
#include <cufft.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <vector>

#include "core/cuda_buffer.h"
#include "engine/cufft_check.h"
#include "core/error.h"
#include "engine/projector_backends.h"
#include "kernels/ctf.h"
#include "kernels/frc.h"
#include "kernels/gaussian_projection.h"

namespace cugmm::detail {

namespace {

constexpr int kThreads = 256;

// The band tables on the device, plus the coefficients of each ring gathered together (ring_start[r] ..
// ring_start[r + 1] in ring_perm) so a warp sums a ring in a fixed order.
struct BandView {
  const int *kx, *ky, *ring, *fft_index, *partner, *ring_perm, *ring_start;
  const float* weight;
  int size, box, ring_min, ring_max, scored;
  float pixel;
  __device__ int num_rings() const { return ring_max + 1; }
  __device__ size_t plane() const { return size_t(box) * (box / 2 + 1); }
};

__device__ inline int wrap_index(int i, int n) {
  if (i >= 0 && i < n) return i;
  i %= n;
  return i < 0 ? i + n : i;
}
__device__ inline Cplx<float> ld(const float2* p, size_t i) {
  float2 v = p[i];
  return {v.x, v.y};
}

// Rejects non-finite parameters and views; finds the narrowest |width| (for the splat's widening): the
// minimum of non-negative floats is the minimum of their bit patterns, so an integer atomicMin is exact.
__global__ void validate_kernel(const float* params, size_t n_params, int g, const ParticleView* views, int count,
                                int* flags /* bad params, bad views, min |width| bits */) {
  const size_t stride = size_t(gridDim.x) * blockDim.x;
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n_params; i += stride) {
    float x = params[i];
    if (!isfinite(x)) atomicOr(&flags[0], 1);
    else if ((i % (5 * size_t(g))) >= 4 * size_t(g)) atomicMin(&flags[2], __float_as_int(fabsf(x)));
  }
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < size_t(count); i += stride)
    if (!view_is_finite(views[i])) atomicOr(&flags[1], 1);
}

__global__ void splat_kernel(const float* params, size_t stride, const ParticleView* views, int g, float tau2,
                             float pixel, int box, float* images) {
  const int p = blockIdx.y, j = blockIdx.x * blockDim.x + threadIdx.x;
  if (j >= g) return;
  const float* row = params + p * stride;
  const ParticleView& v = views[p];
  Landing<float> l = land(v.rotation, row[j], row[g + j], row[2 * g + j], v.origin_x, v.origin_y);
  Splat<float> s = make_splat(l, row[3 * g + j], row[4 * g + j], tau2, pixel, box);
  float* img = images + size_t(p) * box * box;
  ProfileWalk<float> wy(s.uy, s.sigma, s.y0);
  const ProfileWalk<float> wx0(s.ux, s.sigma, s.x0);
  for (int y = 0; y < s.ny; ++y) {
    const float vy = s.amp * wy.next();
    float* line = img + size_t(wrap_index(s.y0 + y, box)) * box;
    ProfileWalk<float> wx = wx0;
    for (int x = 0; x < s.nx; ++x) atomicAdd(&line[wrap_index(s.x0 + x, box)], vy * wx.next());
  }
}

__device__ inline float ctf_at(const ParticleView& v, const BandView& b, int i) {
  if (v.ctf_mode == CtfMode::none) return 1.f;
  const float inv_len = 1.f / (float(b.box) * b.pixel);
  return ctf_apply_mode(ctf_value(v.ctf, float(b.kx[i]) * inv_len, float(b.ky[i]) * inv_len), v.ctf_mode);
}

// M^ = CTF P^ at the band coefficients (P^ from the splat's spectrum); with data, the ring sums, FRC and
// score. One block per particle; dynamic shared memory holds the FRC of each ring.
__global__ void model_frc_kernel(BandView b, const ParticleView* views, const float2* spec, float tau2,
                                 const float2* data, float eps, float2* model, float* ctfs, RingSums<float>* sums,
                                 float* frc_out, float* score) {
  extern __shared__ float frc_s[];
  const int p = blockIdx.x;
  const ParticleView& v = views[p];
  const float2* sp = spec + size_t(p) * b.plane();
  for (int i = threadIdx.x; i < b.size; i += blockDim.x) {
    const float c = splat_correction(b.kx[i], b.ky[i], tau2, b.pixel, b.box);
    const float t = ctf_at(v, b, i);
    const Cplx<float> f = ld(sp, b.fft_index[i]);
    model[size_t(p) * b.size + i] = make_float2(t * c * f.re, t * c * f.im);
    ctfs[size_t(p) * b.size + i] = t;
  }
  if (!data) return;
  __syncthreads();
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  for (int r = warp; r < b.num_rings(); r += warps) {
    RingSums<float> s{0, 0, 0};
    for (int k = b.ring_start[r] + lane; k < b.ring_start[r + 1]; k += 32) {
      const int i = b.ring_perm[k];
      frc_accumulate(s, ld(model, size_t(p) * b.size + i), ld(data, size_t(p) * b.size + i), b.weight[i]);
    }
    for (int o = 16; o > 0; o >>= 1) {
      s.num += __shfl_down_sync(0xffffffffu, s.num, o);
      s.mm += __shfl_down_sync(0xffffffffu, s.mm, o);
      s.dd += __shfl_down_sync(0xffffffffu, s.dd, o);
    }
    if (lane == 0) {
      sums[size_t(p) * b.num_rings() + r] = s;
      frc_s[r] = r >= b.ring_min ? frc_value(s, eps) : 0.f;
    }
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    float total = 0;
    for (int r = b.ring_min; r <= b.ring_max; ++r) total += frc_s[r];
    score[p] = total / float(b.scored);
  }
  if (frc_out)
    for (int r = threadIdx.x; r < b.num_rings(); r += blockDim.x) frc_out[size_t(p) * b.num_rings() + r] = frc_s[r];
}

// Q = correction x CTF x d score / d M^ at band coefficient i of particle p (zero outside the scored rings).
__device__ inline Cplx<float> grad_q(const BandView& b, int p, int i, const float2* model, const float* ctfs,
                                     const float2* data, const RingSums<float>* sums, float tau2, float eps) {
  const int r = b.ring[i];
  if (r < b.ring_min) return {0.f, 0.f};
  const size_t at = size_t(p) * b.size + i;
  Cplx<float> g = frc_vjp(sums[size_t(p) * b.num_rings() + r], eps, 1.f / float(b.scored), ld(model, at),
                          ld(data, at), b.weight[i]);
  return (ctfs[at] * splat_correction(b.kx[i], b.ky[i], tau2, b.pixel, b.box)) * g;
}

// The adjoint of "correct, keep the band" into a zeroed half-plane, ready for C2R (see the CPU backend,
// engine/projector_cpu.h splat_backward, for the derivation of the 1/2 and the Hermitian columns).
__global__ void frc_grad_kernel(BandView b, const float2* model, const float* ctfs, const float2* data,
                                const RingSums<float>* sums, float tau2, float eps, float2* half) {
  const int p = blockIdx.y, i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= b.size) return;
  Cplx<float> x = grad_q(b, p, i, model, ctfs, data, sums, tau2, eps);
  const int pt = b.partner[i];
  if (pt >= 0) x = x + conj(grad_q(b, p, pt, model, ctfs, data, sums, tau2, eps));
  half[size_t(p) * b.plane() + b.fft_index[i]] = make_float2(0.5f * x.re, 0.5f * x.im);
}

// Gathers d score / d I over each footprint into the Gaussian's cotangents, then through the landing.
// Parameter rows are written (per particle); pose contributions are summed over the block in a fixed tree.
__global__ void gather_kernel(const float* params, size_t stride, const ParticleView* views, int g, float tau2,
                              float pixel, int box, const float* grads_img, float* grad_rows, float* pose_partial) {
  __shared__ float red[5][kThreads];
  const int p = blockIdx.y, j = blockIdx.x * blockDim.x + threadIdx.x;
  float pose[5] = {0, 0, 0, 0, 0};
  if (j < g) {
    const float* row = params + p * stride;
    const ParticleView& v = views[p];
    const float a = row[3 * g + j], s = row[4 * g + j];
    Landing<float> l = land(v.rotation, row[j], row[g + j], row[2 * g + j], v.origin_x, v.origin_y);
    Splat<float> sp = make_splat(l, a, s, tau2, pixel, box);
    const float* img = grads_img + size_t(p) * box * box;
    float s00 = 0, s10 = 0, s01 = 0, s20 = 0;
    ProfileWalk<float> wy(sp.uy, sp.sigma, sp.y0);
    const ProfileWalk<float> wx0(sp.ux, sp.sigma, sp.x0);
    for (int y = 0; y < sp.ny; ++y) {
      const float gy = wy.next(), dy = float(sp.y0 + y) - sp.uy;
      const float* line = img + size_t(wrap_index(sp.y0 + y, box)) * box;
      ProfileWalk<float> wx = wx0;
      float r0 = 0, r1 = 0, r2 = 0;
      for (int x = 0; x < sp.nx; ++x) {
        const float dx = float(sp.x0 + x) - sp.ux;
        const float t = line[wrap_index(sp.x0 + x, box)] * wx.next();
        r0 += t;
        r1 += t * dx;
        r2 += t * dx * dx;
      }
      s00 += gy * r0;
      s10 += gy * r1;
      s01 += gy * dy * r0;
      s20 += gy * (r2 + dy * dy * r0);
    }
    float v_a, v_s, v_px, v_py, v_cx, v_cy, v_cz;
    splat_vjp(sp, a, s, tau2, pixel, s00, s10, s01, s20, v_a, v_s, v_px, v_py);
    land_vjp(v.rotation, l, v_px, v_py, v_cx, v_cy, v_cz, pose);
    if (grad_rows) {
      float* out = grad_rows + size_t(p) * 5 * g;
      out[j] = v_cx; out[g + j] = v_cy; out[2 * g + j] = v_cz; out[3 * g + j] = v_a; out[4 * g + j] = v_s;
    }
  }
  for (int k = 0; k < 5; ++k) red[k][threadIdx.x] = pose[k];
  __syncthreads();
  for (int h = blockDim.x / 2; h > 0; h >>= 1) {
    if (threadIdx.x < h)
      for (int k = 0; k < 5; ++k) red[k][threadIdx.x] += red[k][threadIdx.x + h];
    __syncthreads();
  }
  if (threadIdx.x < 5) pose_partial[(size_t(p) * gridDim.x + blockIdx.x) * 5 + threadIdx.x] = red[threadIdx.x][0];
}

__global__ void pose_sum_kernel(const float* pose_partial, int blocks, float* grad_pose) {
  const int p = blockIdx.x, k = threadIdx.x;
  if (k >= 5) return;
  float s = 0;
  for (int i = 0; i < blocks; ++i) s += pose_partial[(size_t(p) * blocks + i) * 5 + k];
  grad_pose[size_t(p) * 5 + k] = s;
}

// out[c] += sum over rows in order (deterministic whatever the launch).
__global__ void sum_rows_kernel(const float* rows, int count, size_t width, float* out) {
  const size_t c = blockIdx.x * size_t(blockDim.x) + threadIdx.x;
  if (c >= width) return;
  float s = 0;
  for (int i = 0; i < count; ++i) s += rows[size_t(i) * width + c];
  out[c] += s;
}

__global__ void render_kernel(BandView b, const float2* model, float2* half) {
  const int p = blockIdx.y, i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= b.size) return;
  half[size_t(p) * b.plane() + b.fft_index[i]] = model[size_t(p) * b.size + i];
}

inline unsigned blocks_for(size_t n) { return unsigned((n + kThreads - 1) / kThreads); }

class CudaProjector final : public Projector {
 public:
  CudaProjector(const FourierBand& band, int g, const ProjectorOptions& o)
      : Projector(band, g, resolve_strategy(o.strategy, band)), opt_(o) {
    // The exact sum has no CUDA kernel yet: automatic picks the splat here.
    if (o.strategy == ProjectionStrategy::automatic) strategy_ = ProjectionStrategy::splat_fft;
    CUGMM_REQUIRE(strategy_ == ProjectionStrategy::splat_fft,
                  "the separable_fourier strategy is only implemented on the CPU backend");
    CUGMM_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    upload_band();
  }
  ~CudaProjector() override {
    for (auto& kv : plans_) {
      cufftDestroy(kv.second.r2c);
      cufftDestroy(kv.second.c2r);
    }
    cudaStreamDestroy(stream_);
  }
  Device device() const override { return Device::cuda; }

  void run(const ProjectionBatch& in, const ProjectionOutputs& out) override {
    CUGMM_REQUIRE(in.count >= 0, "negative batch size");
    if (in.count == 0) return;
    CUGMM_REQUIRE(in.params && in.views && in.data && out.score, "projector: missing input or score output");
    const size_t row = size_t(5) * num_gaussians_;
    CUGMM_REQUIRE(in.params_stride == 0 || in.params_stride == row, "projector: params_stride must be 0 or 5G");
    const float min_width = validate(in);
    forward_backward(in, out, tau2_for(min_width));
  }

  void run_host(const ProjectionBatch& in, const ProjectionOutputs& out) override {
    check_host_inputs(in, &out, num_gaussians_, true);
    if (in.count == 0) return;
    const size_t row = size_t(5) * num_gaussians_;
    const size_t rows = in.params_stride ? size_t(in.count) : 1;
    h_params_.upload(in.params, rows * row, stream_);
    h_views_.upload(in.views, in.count, stream_);
    h_data_.upload(reinterpret_cast<const float2*>(in.data), size_t(in.count) * band_.size(), stream_);
    const int nr = band_.num_rings();
    h_score_.resize(in.count);
    if (out.frc) h_frc_.resize(size_t(in.count) * nr);
    const bool sum = out.grad_reduce == GradReduce::sum;
    if (out.grad_params) h_grad_.resize(sum ? row : size_t(in.count) * row);
    if (out.grad_pose) h_pose_.resize(size_t(in.count) * 5);
    ProjectionBatch d{in.count, h_params_.data(), in.params_stride, h_views_.data(),
                      reinterpret_cast<const cfloat*>(h_data_.data())};
    ProjectionOutputs o;
    o.score = h_score_.data();
    o.frc = out.frc ? h_frc_.data() : nullptr;
    o.grad_params = out.grad_params ? h_grad_.data() : nullptr;
    o.grad_reduce = out.grad_reduce;
    o.grad_pose = out.grad_pose ? h_pose_.data() : nullptr;
    const float min_width = min_abs_width(in.params, rows, in.params_stride, num_gaussians_);
    forward_backward(d, o, tau2_for(min_width));
    h_score_.download(out.score, in.count, stream_);
    if (out.frc) h_frc_.download(out.frc, size_t(in.count) * nr, stream_);
    if (out.grad_params) h_grad_.download(out.grad_params, sum ? row : size_t(in.count) * row, stream_);
    if (out.grad_pose) h_pose_.download(out.grad_pose, size_t(in.count) * 5, stream_);
  }

  void render_host(const ProjectionBatch& in, cfloat* halfplanes) override {
    check_host_inputs(in, nullptr, num_gaussians_, false);
    if (in.count == 0) return;
    CUGMM_REQUIRE(halfplanes, "render: no output array");
    const size_t row = size_t(5) * num_gaussians_;
    const size_t rows = in.params_stride ? size_t(in.count) : 1;
    h_params_.upload(in.params, rows * row, stream_);
    h_views_.upload(in.views, in.count, stream_);
    const float tau2 = tau2_for(min_abs_width(in.params, rows, in.params_stride, num_gaussians_));
    const size_t plane = size_t(band_.box) * (band_.box / 2 + 1);
    std::vector<cfloat> host(plane);
    for (int first = 0; first < in.count; first += opt_.max_batch) {
      const int n = std::min(opt_.max_batch, in.count - first);
      const float* params = h_params_.data() + first * in.params_stride;
      project_chunk(n, params, in.params_stride, h_views_.data() + first, nullptr, tau2, nullptr, nullptr, nullptr);
      half_.resize(size_t(n) * plane);
      half_.zero(stream_);
      render_kernel<<<dim3(blocks_for(band_.size()), n), kThreads, 0, stream_>>>(bv_, model_.data(), half_.data());
      CUGMM_CHECK_LAUNCH();
      half_.download(reinterpret_cast<float2*>(halfplanes + size_t(first) * plane), size_t(n) * plane, stream_);
    }
  }

  size_t workspace_bytes() const override { return peak_bytes_; }

 private:
  struct Plans {
    cufftHandle r2c, c2r;
  };

  void upload_band() {
    const FourierBand& b = band_;
    const size_t n = b.size();
    std::vector<int> kx(n), ky(n), ring(n), idx(n), partner(n, -1), perm, start(b.num_rings() + 1, 0);
    for (size_t i = 0; i < n; ++i) {
      kx[i] = b.kx[i]; ky[i] = b.ky[i]; ring[i] = b.ring[i]; idx[i] = b.fft_index[i];
      ++start[b.ring[i] + 1];
    }
    for (int r = 0; r < b.num_rings(); ++r) start[r + 1] += start[r];
    perm.resize(n);
    std::vector<int> fill(start.begin(), start.end() - 1);
    for (size_t i = 0; i < n; ++i) perm[fill[b.ring[i]]++] = int(i);
    // Partners on the kx = 0 and N/2 columns (as the CPU backend's band plan).
    const int half = b.box / 2;
    std::vector<int> at(size_t(b.box) * (half + 1), -1);
    for (size_t i = 0; i < n; ++i) at[idx[i]] = int(i);
    for (size_t i = 0; i < n; ++i)
      if (kx[i] == 0 || kx[i] == half) {
        int rowi = (b.box - (ky[i] < 0 ? ky[i] + b.box : ky[i])) % b.box;
        partner[i] = at[size_t(rowi) * (half + 1) + kx[i]];
      }
    d_kx_.upload(kx, stream_); d_ky_.upload(ky, stream_); d_ring_.upload(ring, stream_);
    d_idx_.upload(idx, stream_); d_partner_.upload(partner, stream_); d_perm_.upload(perm, stream_);
    d_start_.upload(start, stream_); d_weight_.upload(b.weight, stream_);
    CUGMM_CHECK(cudaStreamSynchronize(stream_));
    bv_ = {d_kx_.data(), d_ky_.data(), d_ring_.data(), d_idx_.data(), d_partner_.data(), d_perm_.data(),
           d_start_.data(), d_weight_.data(), int(n), b.box, b.ring_min, b.ring_max,
           b.ring_max - b.ring_min + 1, float(b.pixel_size)};
  }

  float tau2_for(float min_width) const {
    return splat_tau2(min_width / float(band_.pixel_size), float(band_.pixel_size));
  }

  // Device inputs: non-finite values are an error; returns the narrowest |width|.
  float validate(const ProjectionBatch& in) {
    const size_t row = size_t(5) * num_gaussians_;
    const size_t n = (in.params_stride ? size_t(in.count) : 1) * row;
    int init[3] = {0, 0, 0x7f800000};  // +inf
    flags_.upload(init, 3, stream_);
    const unsigned grid = std::min<unsigned>(blocks_for(std::max(n, size_t(in.count))), 1024);
    validate_kernel<<<grid, kThreads, 0, stream_>>>(in.params, n, num_gaussians_, in.views, in.count, flags_.data());
    CUGMM_CHECK_LAUNCH();
    int got[3];
    flags_.download(got, 3, stream_);
    CUGMM_REQUIRE(!got[0], "projector: non-finite Gaussian parameter");
    CUGMM_REQUIRE(!got[1], "projector: non-finite pose or CTF");
    float w;
    std::memcpy(&w, &got[2], sizeof w);
    return w;
  }

  Plans& plans_for(int n) {
    auto it = plans_.find(n);
    if (it != plans_.end()) return it->second;
    int dims[2] = {band_.box, band_.box};
    Plans p;
    CUGMM_CHECK(cufftPlanMany(&p.r2c, 2, dims, nullptr, 1, 0, nullptr, 1, 0, CUFFT_R2C, n));
    CUGMM_CHECK(cufftPlanMany(&p.c2r, 2, dims, nullptr, 1, 0, nullptr, 1, 0, CUFFT_C2R, n));
    CUGMM_CHECK(cufftSetStream(p.r2c, stream_));
    CUGMM_CHECK(cufftSetStream(p.c2r, stream_));
    size_t a = 0, b = 0;
    cufftGetSize(p.r2c, &a);
    cufftGetSize(p.c2r, &b);
    fft_bytes_ += a + b;
    return plans_.emplace(n, p).first->second;
  }

  // Splat, FFT and model (with data: ring sums, FRC, score) for n particles.
  void project_chunk(int n, const float* params, size_t stride, const ParticleView* views, const float2* data,
                     float tau2, float* frc, float* score, RingSums<float>* sums_unused) {
    (void)sums_unused;
    const int box = band_.box, g = num_gaussians_;
    const size_t pixels = size_t(box) * box, plane = size_t(box) * (box / 2 + 1);
    image_.resize(n * pixels);
    spec_.resize(n * plane);
    model_.resize(size_t(n) * band_.size());
    ctfs_.resize(size_t(n) * band_.size());
    sums_.resize(size_t(n) * band_.num_rings());
    image_.zero(stream_);
    splat_kernel<<<dim3(blocks_for(g), n), kThreads, 0, stream_>>>(params, stride, views, g, tau2,
                                                                    float(band_.pixel_size), box, image_.data());
    CUGMM_CHECK_LAUNCH();
    CUGMM_CHECK(cufftExecR2C(plans_for(n).r2c, image_.data(), reinterpret_cast<cufftComplex*>(spec_.data())));
    model_frc_kernel<<<n, kThreads, band_.num_rings() * sizeof(float), stream_>>>(
        bv_, views, spec_.data(), tau2, data, opt_.frc_eps, model_.data(), ctfs_.data(), sums_.data(), frc, score);
    CUGMM_CHECK_LAUNCH();
    track();
  }

  void forward_backward(const ProjectionBatch& in, const ProjectionOutputs& out, float tau2) {
    const int g = num_gaussians_, nr = band_.num_rings(), box = band_.box;
    const size_t row = size_t(5) * g, plane = size_t(box) * (box / 2 + 1);
    const bool sum = out.grad_params && out.grad_reduce == GradReduce::sum;
    const bool backward = out.grad_params || out.grad_pose;
    if (sum) CUGMM_CHECK(cudaMemsetAsync(out.grad_params, 0, row * sizeof(float), stream_));
    const float2* data = reinterpret_cast<const float2*>(in.data);
    const unsigned gblocks = blocks_for(g);
    for (int first = 0; first < in.count; first += opt_.max_batch) {
      const int n = std::min(opt_.max_batch, in.count - first);
      const float* params = in.params + first * in.params_stride;
      const ParticleView* views = in.views + first;
      project_chunk(n, params, in.params_stride, views, data + size_t(first) * band_.size(), tau2,
                    out.frc ? out.frc + size_t(first) * nr : nullptr, out.score + first, nullptr);
      if (!backward) continue;
      half_.resize(size_t(n) * plane);
      half_.zero(stream_);
      frc_grad_kernel<<<dim3(blocks_for(band_.size()), n), kThreads, 0, stream_>>>(
          bv_, model_.data(), ctfs_.data(), data + size_t(first) * band_.size(), sums_.data(), tau2, opt_.frc_eps,
          half_.data());
      CUGMM_CHECK_LAUNCH();
      CUGMM_CHECK(cufftExecC2R(plans_for(n).c2r, reinterpret_cast<cufftComplex*>(half_.data()), image_.data()));
      float* rows = nullptr;
      if (sum) {
        partial_.resize(size_t(n) * row);
        rows = partial_.data();
      } else if (out.grad_params) {
        rows = out.grad_params + size_t(first) * row;
      }
      pose_partial_.resize(size_t(n) * gblocks * 5);
      gather_kernel<<<dim3(gblocks, n), kThreads, 0, stream_>>>(params, in.params_stride, views, g, tau2,
                                                                float(band_.pixel_size), box, image_.data(), rows,
                                                                pose_partial_.data());
      CUGMM_CHECK_LAUNCH();
      if (out.grad_pose) {
        pose_sum_kernel<<<n, 32, 0, stream_>>>(pose_partial_.data(), int(gblocks), out.grad_pose + size_t(first) * 5);
        CUGMM_CHECK_LAUNCH();
      }
      if (sum) {
        sum_rows_kernel<<<blocks_for(row), kThreads, 0, stream_>>>(partial_.data(), n, row, out.grad_params);
        CUGMM_CHECK_LAUNCH();
      }
      track();
    }
    CUGMM_CHECK(cudaStreamSynchronize(stream_));
  }

  void track() {
    size_t bytes = image_.bytes() + spec_.bytes() + half_.bytes() + model_.bytes() + ctfs_.bytes() + sums_.bytes() +
                   partial_.bytes() + pose_partial_.bytes() + h_params_.bytes() + h_views_.bytes() +
                   h_data_.bytes() + h_score_.bytes() + h_frc_.bytes() + h_grad_.bytes() + h_pose_.bytes() +
                   d_kx_.bytes() * 7 + d_weight_.bytes() + fft_bytes_;
    peak_bytes_ = std::max(peak_bytes_, bytes);
  }

  ProjectorOptions opt_;
  cudaStream_t stream_ = nullptr;
  std::map<int, Plans> plans_;
  size_t fft_bytes_ = 0, peak_bytes_ = 0;
  BandView bv_{};
  DeviceBuffer<int> d_kx_, d_ky_, d_ring_, d_idx_, d_partner_, d_perm_, d_start_, flags_;
  DeviceBuffer<float> d_weight_;
  DeviceBuffer<float> image_, ctfs_, partial_, pose_partial_;
  DeviceBuffer<float2> spec_, half_, model_;
  DeviceBuffer<RingSums<float>> sums_;
  // Device copies for run_host / render_host.
  DeviceBuffer<float> h_params_, h_score_, h_frc_, h_grad_, h_pose_;
  DeviceBuffer<ParticleView> h_views_;
  DeviceBuffer<float2> h_data_;
};

}  // namespace

std::unique_ptr<Projector> make_cuda_projector(const FourierBand& band, int num_gaussians,
                                               const ProjectorOptions& options) {
  return std::make_unique<CudaProjector>(band, num_gaussians, options);
}

}  // namespace cugmm::detail
