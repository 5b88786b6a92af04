// The CUDA projector: splat + FFT (DESIGN §2 (a)) over the same kernels/*.h maths as the CPU backend, all
// queued on the run's Context stream. Per call: a validation kernel (input checks into the context's flags,
// the narrowest width for the splat's widening, both reduced per block, one atomic each per block). Per
// chunk of particles: splat (one thread per particle x Gaussian) -> batched cuFFT R2C -> model, CTF and
// ring sums (one block per particle, one warp per ring: deterministic) -> [backward] d score / d P^ into a
// half-plane -> batched cuFFT C2R -> gather over the footprints (one thread per particle x Gaussian) ->
// pose and summed-parameter reductions in a fixed order. Workspace is O(chunk x (G + pixels)).
//
// Known limits: the forward splat adds into the image with float atomics, so images (and everything
// after) can differ in the last bits from run to run; every reduction after it is deterministic. The
// separable strategy is CPU-only.
#include <algorithm>
#include <map>
#include <memory>
#include <vector>

#include "core/buffer.h"
#include "core/error.h"
#include "engine/cufft_api.h"
#include "engine/projector_backends.h"
#include "kernels/ctf.h"
#include "kernels/frc.h"
#include "kernels/gaussian_projection.h"

namespace cugmm::detail {

namespace {

constexpr int kThreads = 256;
constexpr int kMaxGridY = 65535;  // the particle index of a chunk runs along gridDim.y

// The band tables on the device, plus the coefficients of each ring gathered together (ring_start[r] ..
// ring_start[r + 1] in ring_perm) so a warp sums a ring in a fixed order.
struct BandView {
  const int *kx, *ky, *ring, *fft_index, *partner, *ring_perm, *ring_start;
  const float* weight;
  const float* ring_v;  // the score's weight of each ring (score_ring_weights)
  const CtfBandPoint<float>* ctf_points;
  int size, box, ring_min, ring_max;
  float pixel;
  bool pooled;  // ProjectorOptions::pooled: ring_v weights the coefficients of one correlation (kernels/frc.h)
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

// Gaussian j of a parameter row passes the input check (the one predicate, kernels/gaussian_projection.h).
__device__ inline bool gaussian_ok(const float* row, int g, int j, float pixel, int box) {
  return gaussian_in_bounds(row[j], row[g + j], row[2 * g + j], row[3 * g + j], row[4 * g + j], pixel, box);
}

// The splat's widening from the narrowest width the validation found (all-ones: no valid width, none).
__device__ inline float tau2_from(const unsigned* min_width_bits, float pixel) {
  const unsigned bits = *min_width_bits;
  return bits == 0xffffffffu ? 0.f : splat_tau2(__uint_as_float(bits) / pixel, pixel);
}

__device__ inline unsigned warp_or(unsigned v) {
  for (int o = 16; o > 0; o >>= 1) v |= __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ inline float warp_min(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fminf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Input checks of one call: ORs DeviceFlag bits into `flags` and lowers `min_width_bits` to the narrowest
// valid width. Widths are positive floats, whose order is that of their bit patterns, so an unsigned min
// is exact and order-free; each block reduces first and issues at most one atomic of each kind.
__global__ void validate_kernel(const float* params, int rows, int g, const ParticleView* views, int count,
                                const float* data, size_t data_floats, float pixel, int box, uint32_t* flags,
                                unsigned* min_width_bits) {
  __shared__ unsigned f_s[kThreads / 32];
  __shared__ float m_s[kThreads / 32];
  const size_t stride = size_t(gridDim.x) * blockDim.x, first = blockIdx.x * size_t(blockDim.x) + threadIdx.x;
  unsigned f = 0;
  float m = INFINITY;
  for (size_t i = first; i < size_t(rows) * g; i += stride) {
    const float* row = params + (i / g) * size_t(5) * g;
    const int j = int(i % g);
    if (gaussian_ok(row, g, j, pixel, box)) {
      m = fminf(m, row[4 * g + j]);
    } else {
      bool finite = true;
      for (int c = 0; c < 5; ++c) finite = finite && isfinite(row[c * g + j]);
      f |= finite ? kFlagWidthOutOfBounds : kFlagNonFiniteParams;
    }
  }
  for (size_t i = first; i < size_t(count); i += stride)
    if (!view_is_finite(views[i])) f |= kFlagNonFiniteView;
  if (data)
    for (size_t i = first; i < data_floats; i += stride)
      if (!isfinite(data[i])) f |= kFlagNonFiniteData;
  f = warp_or(f);
  m = warp_min(m);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) { f_s[warp] = f; m_s[warp] = m; }
  __syncthreads();
  if (threadIdx.x == 0) {
    for (int w = 1; w < int(blockDim.x >> 5); ++w) { f |= f_s[w]; m = fminf(m, m_s[w]); }
    if (f) atomicOr(flags, f);
    if (m < INFINITY) atomicMin(min_width_bits, __float_as_uint(m));
  }
}

__global__ void splat_kernel(const float* params, size_t stride, const ParticleView* views, int g,
                             const unsigned* min_width_bits, float pixel, int box, float* images) {
  const int p = blockIdx.y, j = blockIdx.x * blockDim.x + threadIdx.x;
  if (j >= g) return;
  const float* row = params + p * stride;
  const ParticleView& v = views[p];
  if (!view_is_finite(v) || !gaussian_ok(row, g, j, pixel, box)) return;  // flagged by validate_kernel
  const float tau2 = tau2_from(min_width_bits, pixel);
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

// The model's CTF factor at band coefficient i: the CPU's path (the band's |k|^2 / azimuth table).
__device__ inline float ctf_at(const ParticleView& v, CtfAngle2<float> a2, const BandView& b, int i) {
  return ctf_model_factor(v.ctf, a2, b.ctf_points[i], v.ctf_mode);
}

// M^ = CTF P^ at the band coefficients (P^ from the splat's spectrum); with data, the ring sums, FRC and
// score. One block per particle; dynamic shared memory holds the FRC of each ring.
__global__ void model_frc_kernel(BandView b, const ParticleView* views, const float2* spec,
                                 const unsigned* min_width_bits, const float2* data, float eps, float2* model,
                                 float* ctfs, RingSums<float>* sums, float* frc_out, float* score) {
  extern __shared__ float frc_s[];
  const int p = blockIdx.x;
  const ParticleView& v = views[p];
  if (!view_is_finite(v)) {  // flagged; the whole block leaves together
    if (data && threadIdx.x == 0) score[p] = 0.f;
    if (frc_out)
      for (int r = threadIdx.x; r < b.num_rings(); r += blockDim.x) frc_out[size_t(p) * b.num_rings() + r] = 0.f;
    return;
  }
  const float tau2 = tau2_from(min_width_bits, b.pixel);
  const CtfAngle2<float> a2 = ctf_angle2(v.ctf);
  const float2* sp = spec + size_t(p) * b.plane();
  for (int i = threadIdx.x; i < b.size; i += blockDim.x) {
    const float c = splat_correction(b.kx[i], b.ky[i], tau2, b.pixel, b.box);
    const float t = ctf_at(v, a2, b, i);
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
    for (int r = b.ring_min; r <= b.ring_max; ++r) total += b.ring_v[r] * frc_s[r];
    if (b.pooled) {
      // The pooled sums go to ring 0's slot (ring 0 is never scored: ring_min >= 1), where grad_q reads them.
      RingSums<float>* row = sums + size_t(p) * b.num_rings();
      row[0] = pooled_sums(row, b.ring_v, b.ring_min, b.ring_max);
      total = frc_value(row[0], eps);
    }
    score[p] = total;
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
  const RingSums<float>* row = sums + size_t(p) * b.num_rings();
  Cplx<float> g = b.pooled ? frc_vjp(row[0], eps, 1.f, ld(model, at), ld(data, at), b.ring_v[r] * b.weight[i])
                           : frc_vjp(row[r], eps, b.ring_v[r], ld(model, at), ld(data, at), b.weight[i]);
  return (ctfs[at] * splat_correction(b.kx[i], b.ky[i], tau2, b.pixel, b.box)) * g;
}

// The adjoint of "correct, keep the band" into a zeroed half-plane, ready for C2R (halfplane_adjoint, the
// CPU backend's path, with the band's partner table).
__global__ void frc_grad_kernel(BandView b, const ParticleView* views, const float2* model, const float* ctfs,
                                const float2* data, const RingSums<float>* sums, const unsigned* min_width_bits,
                                float eps, float2* half) {
  const int p = blockIdx.y, i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= b.size || !view_is_finite(views[p])) return;
  const float tau2 = tau2_from(min_width_bits, b.pixel);
  const int pt = b.partner[i];
  const Cplx<float> q = grad_q(b, p, i, model, ctfs, data, sums, tau2, eps);
  const Cplx<float> x =
      halfplane_adjoint(q, pt >= 0, pt >= 0 ? grad_q(b, p, pt, model, ctfs, data, sums, tau2, eps) : Cplx<float>{0, 0});
  half[size_t(p) * b.plane() + b.fft_index[i]] = make_float2(x.re, x.im);
}

// Gathers d score / d I over each footprint into the Gaussian's cotangents, then through the landing.
// Parameter rows are written (per particle; zero for a flagged Gaussian or view); pose contributions are
// summed over the block in a fixed tree.
__global__ void gather_kernel(const float* params, size_t stride, const ParticleView* views, int g,
                              const unsigned* min_width_bits, float pixel, int box, const float* grads_img,
                              float* grad_rows, float* pose_partial) {
  __shared__ float red[5][kThreads];
  const int p = blockIdx.y, j = blockIdx.x * blockDim.x + threadIdx.x;
  float pose[5] = {0, 0, 0, 0, 0};
  const float* row = params + p * stride;
  const ParticleView& v = views[p];
  if (j < g) {
    float v_cx = 0, v_cy = 0, v_cz = 0, v_a = 0, v_s = 0;
    if (view_is_finite(v) && gaussian_ok(row, g, j, pixel, box)) {
      const float tau2 = tau2_from(min_width_bits, pixel);
      const float a = row[3 * g + j], s = row[4 * g + j];
      Landing<float> l = land(v.rotation, row[j], row[g + j], row[2 * g + j], v.origin_x, v.origin_y);
      Splat<float> sp = make_splat(l, a, s, tau2, pixel, box);
      const float* img = grads_img + size_t(p) * box * box;
      SplatMoments<float> m{0, 0, 0, 0};
      ProfileWalk<float> wy(sp.uy, sp.sigma, sp.y0);
      const ProfileWalk<float> wx0(sp.ux, sp.sigma, sp.x0);
      for (int y = 0; y < sp.ny; ++y) {
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
        moments_add_row(m, wy.next(), float(sp.y0 + y) - sp.uy, r0, r1, r2);
      }
      float v_px, v_py;
      splat_vjp(sp, a, s, tau2, pixel, m, v_a, v_s, v_px, v_py);
      land_vjp(v.rotation, l, v_px, v_py, v_cx, v_cy, v_cz, pose);
    }
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
  CudaProjector(Context& cx, const FourierBand& band, int g, const ProjectorOptions& o)
      : Projector(cx, band, g, resolve_strategy(o.strategy)),
        opt_(o),
        chunk_(std::min(o.max_batch, kMaxGridY)),
        stream_(static_cast<cudaStream_t>(cx.stream())),
        d_kx_(cx), d_ky_(cx), d_ring_(cx), d_idx_(cx), d_partner_(cx), d_perm_(cx), d_start_(cx), d_weight_(cx),
        d_ring_v_(cx),
        d_ctf_(cx), min_width_(cx, 1), image_(cx), ctfs_(cx), partial_(cx), pose_partial_(cx), spec_(cx),
        half_(cx), model_(cx), sums_(cx), h_params_(cx), h_score_(cx), h_frc_(cx), h_grad_(cx), h_pose_(cx),
        h_views_(cx), h_data_(cx) {
    CUGMM_REQUIRE(cx.cuda(), "the CUDA projector needs a CUDA context");
    CUGMM_REQUIRE(strategy_ == ProjectionStrategy::splat_fft,
                  "the separable_fourier strategy is only implemented on the CPU backend");
    upload_band();
  }

  void run(const ProjectionBatch& in, const ProjectionOutputs& out) override {
    CUGMM_REQUIRE(in.count >= 0, "negative batch size");
    if (in.count == 0) return;
    CUGMM_REQUIRE(in.params && in.views && in.data && out.score, "projector: missing input or score output");
    const size_t row = size_t(5) * num_gaussians_;
    CUGMM_REQUIRE(in.params_stride == 0 || in.params_stride == row, "projector: params_stride must be 0 or 5G");
    check_pointer(Device::cuda, in.params, "projector run: params");
    check_pointer(Device::cuda, in.views, "projector run: views");
    check_pointer(Device::cuda, in.data, "projector run: data");
    check_pointer(Device::cuda, out.score, "projector run: score");
    if (out.frc) check_pointer(Device::cuda, out.frc, "projector run: frc");
    if (out.grad_params) check_pointer(Device::cuda, out.grad_params, "projector run: grad_params");
    if (out.grad_pose) check_pointer(Device::cuda, out.grad_pose, "projector run: grad_pose");
    validate(in, true);
    forward_backward(in, out);
  }

  void run_host(const ProjectionBatch& in, const ProjectionOutputs& out) override {
    check_host_inputs(in, &out, band_, num_gaussians_, true);
    if (in.count == 0) return;
    const size_t row = size_t(5) * num_gaussians_;
    const size_t rows = in.params_stride ? size_t(in.count) : 1;
    h_params_.upload(in.params, rows * row);
    h_views_.upload(in.views, in.count);
    h_data_.upload(reinterpret_cast<const float2*>(in.data), size_t(in.count) * band_.size());
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
    validate(d, true);
    forward_backward(d, o);
    cx_.synchronize();
    h_score_.download(out.score, in.count);
    if (out.frc) h_frc_.download(out.frc, size_t(in.count) * nr);
    if (out.grad_params) h_grad_.download(out.grad_params, sum ? row : size_t(in.count) * row);
    if (out.grad_pose) h_pose_.download(out.grad_pose, size_t(in.count) * 5);
  }

  void render_host(const ProjectionBatch& in, cfloat* halfplanes) override {
    check_host_inputs(in, nullptr, band_, num_gaussians_, false);
    if (in.count == 0) return;
    CUGMM_REQUIRE(halfplanes, "render: no output array");
    const size_t row = size_t(5) * num_gaussians_;
    const size_t rows = in.params_stride ? size_t(in.count) : 1;
    h_params_.upload(in.params, rows * row);
    h_views_.upload(in.views, in.count);
    ProjectionBatch d{in.count, h_params_.data(), in.params_stride, h_views_.data(), nullptr};
    validate(d, false);
    const size_t plane = size_t(band_.box) * (band_.box / 2 + 1);
    for (int first = 0; first < in.count; first += chunk_) {
      const int n = std::min(chunk_, in.count - first);
      const float* params = h_params_.data() + first * in.params_stride;
      project_chunk(n, params, in.params_stride, h_views_.data() + first, nullptr, nullptr, nullptr);
      half_.resize(size_t(n) * plane);
      half_.zero();
      render_kernel<<<dim3(blocks_for(band_.size()), n), kThreads, 0, stream_>>>(bv_, model_.data(), half_.data());
      CUGMM_CHECK_LAUNCH();
      cx_.synchronize();
      half_.download(reinterpret_cast<float2*>(halfplanes + size_t(first) * plane), size_t(n) * plane);
    }
  }

  size_t workspace_bytes() const override { return peak_bytes_; }

 private:
  // The forward and the adjoint transform of one chunk size, made on first use of that size.
  struct Plans {
    Plans(int box, int n, cudaStream_t s) : r2c(box, n, CUFFT_R2C, s), c2r(box, n, CUFFT_C2R, s) {}
    CufftPlan r2c, c2r;
  };

  void upload_band() {
    const FourierBand& b = band_;
    const size_t n = b.size();
    std::vector<int> kx(n), ky(n), ring(n), idx(n), partner(n), perm(n), start(b.num_rings() + 1, 0);
    std::vector<CtfBandPoint<float>> ctf(n);
    for (size_t i = 0; i < n; ++i) {
      kx[i] = b.kx[i]; ky[i] = b.ky[i]; ring[i] = b.ring[i]; idx[i] = b.fft_index[i]; partner[i] = b.partner[i];
      const CtfBandPoint<double>& k = b.ctf_points[i];
      ctf[i] = {float(k.k2), float(k.cos2), float(k.sin2)};  // the CPU backend's values, in float
      ++start[b.ring[i] + 1];
    }
    for (int r = 0; r < b.num_rings(); ++r) start[r + 1] += start[r];
    std::vector<int> fill(start.begin(), start.end() - 1);
    for (size_t i = 0; i < n; ++i) perm[fill[b.ring[i]]++] = int(i);
    d_kx_.upload(kx); d_ky_.upload(ky); d_ring_.upload(ring); d_idx_.upload(idx); d_partner_.upload(partner);
    d_perm_.upload(perm); d_start_.upload(start); d_weight_.upload(b.weight); d_ctf_.upload(ctf);
    d_ring_v_.upload(score_ring_weights(b, opt_.ring_weights));
    bv_ = {d_kx_.data(), d_ky_.data(), d_ring_.data(), d_idx_.data(), d_partner_.data(), d_perm_.data(),
           d_start_.data(), d_weight_.data(), d_ring_v_.data(), d_ctf_.data(), int(n), b.box, b.ring_min,
           b.ring_max, float(b.pixel_size), opt_.pooled};
  }

  // Queues the input checks (flags into the context, read at its synchronize()) and the narrowest width.
  void validate(const ProjectionBatch& in, bool with_data) {
    const int rows = in.params_stride ? in.count : 1;
    const size_t gaussians = size_t(rows) * num_gaussians_;
    const size_t data_floats = with_data ? size_t(2) * in.count * band_.size() : 0;
    CUGMM_CHECK(cudaMemsetAsync(min_width_.data(), 0xff, sizeof(unsigned), stream_));  // "none yet"
    const size_t work = std::max({gaussians, size_t(in.count), data_floats});
    const unsigned grid = std::min<unsigned>(blocks_for(work), 1024);
    validate_kernel<<<grid, kThreads, 0, stream_>>>(in.params, rows, num_gaussians_, in.views, in.count,
                                                    with_data ? reinterpret_cast<const float*>(in.data) : nullptr,
                                                    data_floats, float(band_.pixel_size), band_.box, cx_.flags(),
                                                    min_width_.data());
    CUGMM_CHECK_LAUNCH();
  }

  Plans& plans_for(int n) {
    auto it = plans_.find(n);
    if (it != plans_.end()) return *it->second;
    auto p = std::make_unique<Plans>(band_.box, n, stream_);
    fft_bytes_ += p->r2c.work_bytes() + p->c2r.work_bytes();
    return *plans_.emplace(n, std::move(p)).first->second;
  }

  // Splat, FFT and model (with data: ring sums, FRC, score) for n particles.
  void project_chunk(int n, const float* params, size_t stride, const ParticleView* views, const float2* data,
                     float* frc, float* score) {
    const int box = band_.box, g = num_gaussians_;
    const size_t pixels = size_t(box) * box, plane = size_t(box) * (box / 2 + 1);
    image_.resize(n * pixels);
    spec_.resize(n * plane);
    model_.resize(size_t(n) * band_.size());
    ctfs_.resize(size_t(n) * band_.size());
    sums_.resize(size_t(n) * band_.num_rings());
    image_.zero();
    splat_kernel<<<dim3(blocks_for(g), n), kThreads, 0, stream_>>>(params, stride, views, g, min_width_.data(),
                                                                    float(band_.pixel_size), box, image_.data());
    CUGMM_CHECK_LAUNCH();
    plans_for(n).r2c.r2c(image_.data(), spec_.data());
    model_frc_kernel<<<n, kThreads, band_.num_rings() * sizeof(float), stream_>>>(
        bv_, views, spec_.data(), min_width_.data(), data, opt_.frc_eps, model_.data(), ctfs_.data(), sums_.data(),
        frc, score);
    CUGMM_CHECK_LAUNCH();
    track();
  }

  void forward_backward(const ProjectionBatch& in, const ProjectionOutputs& out) {
    const int g = num_gaussians_, nr = band_.num_rings(), box = band_.box;
    const size_t row = size_t(5) * g, plane = size_t(box) * (box / 2 + 1);
    const bool sum = out.grad_params && out.grad_reduce == GradReduce::sum;
    const bool backward = out.grad_params || out.grad_pose;
    if (sum) CUGMM_CHECK(cudaMemsetAsync(out.grad_params, 0, row * sizeof(float), stream_));
    const float2* data = reinterpret_cast<const float2*>(in.data);
    const unsigned gblocks = blocks_for(g);
    for (int first = 0; first < in.count; first += chunk_) {
      const int n = std::min(chunk_, in.count - first);
      const float* params = in.params + first * in.params_stride;
      const ParticleView* views = in.views + first;
      const float2* chunk_data = data + size_t(first) * band_.size();
      project_chunk(n, params, in.params_stride, views, chunk_data, out.frc ? out.frc + size_t(first) * nr : nullptr,
                    out.score + first);
      if (!backward) continue;
      half_.resize(size_t(n) * plane);
      half_.zero();
      frc_grad_kernel<<<dim3(blocks_for(band_.size()), n), kThreads, 0, stream_>>>(
          bv_, views, model_.data(), ctfs_.data(), chunk_data, sums_.data(), min_width_.data(), opt_.frc_eps,
          half_.data());
      CUGMM_CHECK_LAUNCH();
      plans_for(n).c2r.c2r(half_.data(), image_.data());
      float* rows = nullptr;
      if (sum) {
        partial_.resize(size_t(n) * row);
        rows = partial_.data();
      } else if (out.grad_params) {
        rows = out.grad_params + size_t(first) * row;
      }
      pose_partial_.resize(size_t(n) * gblocks * 5);
      gather_kernel<<<dim3(gblocks, n), kThreads, 0, stream_>>>(params, in.params_stride, views, g, min_width_.data(),
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
  }

  void track() {
    size_t bytes = fft_bytes_;
    for (size_t b : {image_.capacity_bytes(), spec_.capacity_bytes(), half_.capacity_bytes(), model_.capacity_bytes(),
                     ctfs_.capacity_bytes(), sums_.capacity_bytes(), partial_.capacity_bytes(),
                     pose_partial_.capacity_bytes(), h_params_.capacity_bytes(), h_views_.capacity_bytes(),
                     h_data_.capacity_bytes(), h_score_.capacity_bytes(), h_frc_.capacity_bytes(),
                     h_grad_.capacity_bytes(), h_pose_.capacity_bytes(), d_kx_.capacity_bytes() * 7,
                     d_weight_.capacity_bytes(), d_ring_v_.capacity_bytes(), d_ctf_.capacity_bytes()})
      bytes += b;
    peak_bytes_ = std::max(peak_bytes_, bytes);
  }

  ProjectorOptions opt_;
  int chunk_;
  cudaStream_t stream_;
  std::map<int, std::unique_ptr<Plans>> plans_;
  size_t fft_bytes_ = 0, peak_bytes_ = 0;
  BandView bv_{};
  Buffer<int> d_kx_, d_ky_, d_ring_, d_idx_, d_partner_, d_perm_, d_start_;
  Buffer<float> d_weight_, d_ring_v_;
  Buffer<CtfBandPoint<float>> d_ctf_;
  Buffer<unsigned> min_width_;  // bits of the narrowest valid width of the current call
  Buffer<float> image_, ctfs_, partial_, pose_partial_;
  Buffer<float2> spec_, half_, model_;
  Buffer<RingSums<float>> sums_;
  // Device copies for run_host / render_host.
  Buffer<float> h_params_, h_score_, h_frc_, h_grad_, h_pose_;
  Buffer<ParticleView> h_views_;
  Buffer<float2> h_data_;
};

}  // namespace

std::unique_ptr<Projector> make_cuda_projector(Context& cx, const FourierBand& band, int num_gaussians,
                                               const ProjectorOptions& options) {
  return std::make_unique<CudaProjector>(cx, band, num_gaussians, options);
}

}  // namespace cugmm::detail
