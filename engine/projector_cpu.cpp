// The CPU projector: OpenMP over particles, each thread with its own workspace; the per-particle work is
// engine/projector_cpu.h (the same kernels/*.h maths the CUDA backend launches).
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/simd.h"
#include "engine/fft.h"
#include "engine/projector_backends.h"
#include "engine/projector_cpu.h"

namespace cugmm::detail {

BandPlan make_band_plan(const FourierBand& band, const std::vector<float>& ring_weights, bool pooled) {
  BandPlan p;
  p.band = &band;
  p.ring_weight = score_ring_weights(band, ring_weights);
  p.pooled = pooled;
  for (const auto& k : band.ctf_points) p.ctf_points.push_back({float(k.k2), float(k.cos2), float(k.sin2)});
  for (size_t b = 0; b < band.size(); ++b) {
    p.kx_max = std::max(p.kx_max, int(band.kx[b]));
    if (band.kx[b] == 0) p.rows.push_back({band.ky[b], int(b), 0});
    CUGMM_REQUIRE(!p.rows.empty() && p.rows.back().ky == band.ky[b] && band.kx[b] == p.rows.back().count,
                  "projector: the Fourier band is not in FourierBand order");
    ++p.rows.back().count;
  }
  return p;
}

// The splat and gather loops are most of the splat strategy's work and are limited by the vector width:
// where the CPU has AVX-512 (or AVX2 + FMA) they run a copy of the same code compiled for it (core/simd.h).
// FMA contraction may change the last bits, nothing else.
#ifdef CUGMM_DISPATCH_SIMD
namespace {
CUGMM_TARGET_AVX512 void prepare_avx512(const CallPlan<float>& call, int g, const float* a, const float* s, float pixel,
                                 int box, Workspace<float>& ws) {
  proj::splat_prepare(call, g, a, s, pixel, box, ws);
}
CUGMM_TARGET_AVX2 void prepare_avx2(const CallPlan<float>& call, int g, const float* a, const float* s, float pixel, int box,
                             Workspace<float>& ws) {
  proj::splat_prepare(call, g, a, s, pixel, box, ws);
}
CUGMM_TARGET_AVX512 void fill_avx512(const Workspace<float>& ws, int g, int n, float* img) { proj::splat_fill(ws, g, n, img); }
CUGMM_TARGET_AVX2 void fill_avx2(const Workspace<float>& ws, int g, int n, float* img) { proj::splat_fill(ws, g, n, img); }
CUGMM_TARGET_AVX512 void gather_avx512(const CallPlan<float>& call, int g, const float* a, const float* s, float pixel, int n,
                                const float* img, Workspace<float>& ws, float* v_a, float* v_s, float* v_px,
                                float* v_py) {
  proj::splat_gather(call, g, a, s, pixel, n, img, ws, v_a, v_s, v_px, v_py);
}
CUGMM_TARGET_AVX2 void gather_avx2(const CallPlan<float>& call, int g, const float* a, const float* s, float pixel, int n,
                            const float* img, Workspace<float>& ws, float* v_a, float* v_s, float* v_px, float* v_py) {
  proj::splat_gather(call, g, a, s, pixel, n, img, ws, v_a, v_s, v_px, v_py);
}
CUGMM_TARGET_AVX512 void ctf_avx512(const BandPlan& plan, const View<float>& view, float* out) {
  proj::ctf_fill(plan, view, out);
}
CUGMM_TARGET_AVX2 void ctf_avx2(const BandPlan& plan, const View<float>& view, float* out) {
  proj::ctf_fill(plan, view, out);
}
}  // namespace
#endif

namespace proj {

void splat_prepare_f32(const CallPlan<float>& call, int g_count, const float* a, const float* s, float pixel, int box,
                       Workspace<float>& ws) {
#ifdef CUGMM_DISPATCH_SIMD
  switch (simd_level()) {
    case Simd::avx512: return prepare_avx512(call, g_count, a, s, pixel, box, ws);
    case Simd::avx2: return prepare_avx2(call, g_count, a, s, pixel, box, ws);
    case Simd::base: break;
  }
#endif
  splat_prepare(call, g_count, a, s, pixel, box, ws);
}

void ctf_fill_f32(const BandPlan& plan, const View<float>& view, float* out) {
#ifdef CUGMM_DISPATCH_SIMD
  switch (simd_level()) {
    case Simd::avx512: return ctf_avx512(plan, view, out);
    case Simd::avx2: return ctf_avx2(plan, view, out);
    case Simd::base: break;
  }
#endif
  ctf_fill(plan, view, out);
}

void splat_fill_f32(const Workspace<float>& ws, int g_count, int n, float* img) {
#ifdef CUGMM_DISPATCH_SIMD
  switch (simd_level()) {
    case Simd::avx512: return fill_avx512(ws, g_count, n, img);
    case Simd::avx2: return fill_avx2(ws, g_count, n, img);
    case Simd::base: break;
  }
#endif
  splat_fill(ws, g_count, n, img);
}

void splat_gather_f32(const CallPlan<float>& call, int g_count, const float* a, const float* s, float pixel, int n,
                      const float* img, Workspace<float>& ws, float* v_a, float* v_s, float* v_px, float* v_py) {
#ifdef CUGMM_DISPATCH_SIMD
  switch (simd_level()) {
    case Simd::avx512: return gather_avx512(call, g_count, a, s, pixel, n, img, ws, v_a, v_s, v_px, v_py);
    case Simd::avx2: return gather_avx2(call, g_count, a, s, pixel, n, img, ws, v_a, v_s, v_px, v_py);
    case Simd::base: break;
  }
#endif
  splat_gather(call, g_count, a, s, pixel, n, img, ws, v_a, v_s, v_px, v_py);
}

}  // namespace proj

namespace {

struct FftwFloat {
  int n;
  void r2c(const float* in, std::complex<float>* out) const { fft2_r2c(n, n, in, out); }
  void c2r(const std::complex<float>* in, float* out) const { fft2_c2r(n, n, in, out); }
};

class CpuProjector final : public Projector {
 public:
  CpuProjector(Context& cx, const FourierBand& band, int g, const ProjectorOptions& o)
      : Projector(cx, band, g, resolve_strategy(o.strategy)), opt_(o) {
    plan_ = make_band_plan(band_, o.ring_weights, o.pooled);
    ws_.resize(std::max(1, omp_get_max_threads()));
  }
  void run(const ProjectionBatch& in, const ProjectionOutputs& out) override {
    check_host_inputs(in, &out, band_, num_gaussians_, true);
    if (in.count == 0) return;
    const CallPlan<float> call = call_plan(in);
    const size_t row = size_t(5) * num_gaussians_;
    const int nr = band_.num_rings();
    const bool sum = out.grad_params && out.grad_reduce == GradReduce::sum;
    if (sum) std::fill(out.grad_params, out.grad_params + row, 0.f);
    // Summed gradients: per-particle rows of a chunk, then added in particle order, so the result does not
    // depend on the thread count.
    // A fixed chunk (not the thread count) decides the order, and bounds the rows kept: 32 x 5G floats.
    const int chunk = sum ? std::min({in.count, opt_.max_batch, 32}) : in.count;
    if (sum) partial_.resize(size_t(chunk) * row);
    if (ws_.size() < size_t(omp_get_max_threads())) ws_.resize(omp_get_max_threads());
    for (int first = 0; first < in.count; first += chunk) {
      const int n = std::min(chunk, in.count - first);
      std::string failure;
#pragma omp parallel for schedule(dynamic, 1)
      for (int k = 0; k < n; ++k) {
        const int i = first + k;
        try {
          Workspace<float>& ws = ws_[omp_get_thread_num()];
          float* gp = !out.grad_params ? nullptr : sum ? &partial_[size_t(k) * row] : out.grad_params + size_t(i) * row;
          out.score[i] = project_particle(plan_, call, num_gaussians_, in.params + i * in.params_stride,
                                          view_cast<float>(in.views[i]), in.data + size_t(i) * band_.size(), ws,
                                          FftwFloat{band_.box}, out.frc ? out.frc + size_t(i) * nr : nullptr, gp,
                                          out.grad_pose ? out.grad_pose + size_t(i) * 5 : nullptr);
        } catch (const std::exception& e) {
#pragma omp critical(cugmm_projector_error)
          failure = e.what();
        }
      }
      if (!failure.empty()) throw Error(failure);
      if (sum)
        for (int k = 0; k < n; ++k) {
          const float* p = &partial_[size_t(k) * row];
          for (size_t c = 0; c < row; ++c) out.grad_params[c] += p[c];
        }
    }
    track_workspace();
  }

  void run_host(const ProjectionBatch& in, const ProjectionOutputs& out) override { run(in, out); }

  void render_host(const ProjectionBatch& in, cfloat* halfplanes) override {
    check_host_inputs(in, nullptr, band_, num_gaussians_, false);
    if (in.count == 0) return;
    CUGMM_REQUIRE(halfplanes, "render: no output array");
    const CallPlan<float> call = call_plan(in);
    const size_t plane = size_t(band_.box) * (band_.box / 2 + 1);
    if (ws_.size() < size_t(omp_get_max_threads())) ws_.resize(omp_get_max_threads());
#pragma omp parallel for schedule(dynamic, 1)
    for (int i = 0; i < in.count; ++i) {
      Workspace<float>& ws = ws_[omp_get_thread_num()];
      model_particle(plan_, call, num_gaussians_, in.params + i * in.params_stride, view_cast<float>(in.views[i]),
                     ws, FftwFloat{band_.box});
      cfloat* out = halfplanes + size_t(i) * plane;
      std::fill(out, out + plane, cfloat(0));
      for (size_t b = 0; b < band_.size(); ++b) out[band_.fft_index[b]] = {ws.model[b].re, ws.model[b].im};
    }
    track_workspace();
  }

  size_t workspace_bytes() const override { return peak_bytes_; }

 private:
  CallPlan<float> call_plan(const ProjectionBatch& in) const {
    CallPlan<float> c{strategy_, 0.f, opt_.frc_eps};
    if (strategy_ == ProjectionStrategy::splat_fft) {
      float s_min = min_width(in.params, in.params_stride ? size_t(in.count) : 1, in.params_stride, num_gaussians_);
      c.tau2 = splat_tau2(s_min / float(band_.pixel_size), float(band_.pixel_size));
    }
    return c;
  }

  void track_workspace() {
    size_t bytes = partial_.capacity() * sizeof(float);
    for (const auto& w : ws_) {
      bytes += w.land.capacity() * sizeof(w.land[0]) + w.ctf.capacity() * sizeof(float) +
               (w.model.capacity() + w.grad.capacity()) * sizeof(Cplx<float>) + w.sums.capacity() * sizeof(w.sums[0]) +
               (w.image.capacity() + w.prof.capacity() + w.prof_y.capacity() + w.cols.capacity() + w.corr.capacity()) * sizeof(float) +
               w.splats.capacity() * sizeof(w.splats[0]) + (w.prof_at.capacity() + w.prof_y_at.capacity()) * sizeof(size_t) +
               w.spec.capacity() * sizeof(cfloat);
      for (const auto* v : {&w.ux, &w.uy, &w.w0, &w.wx, &w.wxx, &w.s0, &w.sx, &w.sy, &w.s2})
        bytes += v->capacity() * sizeof(Cplx<float>);
    }
    peak_bytes_ = std::max(peak_bytes_, bytes);
  }

  ProjectorOptions opt_;
  BandPlan plan_;
  std::vector<Workspace<float>> ws_;
  std::vector<float> partial_;
  size_t peak_bytes_ = 0;
};

}  // namespace

std::unique_ptr<Projector> make_cpu_projector(Context& cx, const FourierBand& band, int num_gaussians,
                                              const ProjectorOptions& options) {
  return std::make_unique<CpuProjector>(cx, band, num_gaussians, options);
}

}  // namespace cugmm::detail
