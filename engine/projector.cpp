// The projector's backend-independent parts: views, strategy names, input checks and the factory.
#include "engine/projector.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.h"
#include "engine/projector_backends.h"

namespace cugmm {

ParticleView make_particle_view(double rot, double tilt, double psi, double origin_x, double origin_y,
                                const CtfParams& ctf, CtfMode mode) {
  ParticleView v;
  Mat3<double> a = euler_to_matrix(rot, tilt, psi);
  for (int i = 0; i < 9; ++i) v.rotation.m[i] = float(a.m[i]);
  v.origin_x = float(origin_x);
  v.origin_y = float(origin_y);
  v.ctf = make_ctf_consts<float>(ctf);
  v.ctf_mode = mode;
  return v;
}

const char* strategy_name(ProjectionStrategy s) {
  switch (s) {
    case ProjectionStrategy::splat_fft: return "splat_fft";
    case ProjectionStrategy::separable_fourier: return "separable_fourier";
    default: return "automatic";
  }
}

std::vector<float> score_ring_weights(const FourierBand& band, const std::vector<float>& given) {
  const int nr = band.num_rings();
  std::vector<float> v(size_t(nr), 0.f);
  if (given.empty()) {
    for (int r = band.ring_min; r <= band.ring_max; ++r) v[size_t(r)] = 1.f / float(band.ring_max - band.ring_min + 1);
    return v;
  }
  CUGMM_REQUIRE(given.size() == size_t(nr), "projector: " + std::to_string(given.size()) + " ring weights for " +
                                                std::to_string(nr) + " rings");
  double sum = 0;
  for (int r = band.ring_min; r <= band.ring_max; ++r) {
    CUGMM_REQUIRE(std::isfinite(given[size_t(r)]) && given[size_t(r)] >= 0.f,
                  "projector: ring weight " + std::to_string(r) + " is negative or not finite");
    sum += given[size_t(r)];
  }
  CUGMM_REQUIRE(sum > 0, "projector: the ring weights of the scored rings sum to 0");
  for (int r = band.ring_min; r <= band.ring_max; ++r) v[size_t(r)] = float(given[size_t(r)] / sum);
  return v;
}

namespace detail {

ProjectionStrategy resolve_strategy(ProjectionStrategy s) {
  // The same on both backends (projector.h), so CPU and GPU runs are comparable step by step.
  return s == ProjectionStrategy::automatic ? ProjectionStrategy::splat_fft : s;
}

void check_host_inputs(const ProjectionBatch& in, const ProjectionOutputs* out, const FourierBand& band,
                       int num_gaussians, bool need_data) {
  CUGMM_REQUIRE(in.count >= 0, "negative batch size");
  if (in.count == 0) return;
  const size_t row = size_t(5) * num_gaussians;
  CUGMM_REQUIRE(in.params && in.views, "projector: missing parameters or views");
  CUGMM_REQUIRE(in.params_stride == 0 || in.params_stride == row,
                "projector: params_stride must be 0 (shared) or 5G = " + std::to_string(row));
  CUGMM_REQUIRE(!need_data || in.data, "projector: missing particle data");
  if (out) CUGMM_REQUIRE(out->score, "projector: the score output is required");
  const size_t rows = in.params_stride ? size_t(in.count) : 1;
  const float pixel = float(band.pixel_size);
  const size_t g = size_t(num_gaussians);
  // Every value is checked in parallel (a training batch holds millions); only a batch that fails is scanned
  // again in order, for the first bad entry's message.
  const size_t values = rows * g + (need_data ? size_t(in.count) * band.size() : 0);
  // The inner loops are branch-free (no early exit); the data's is one comparison per value (fabs(x) <= max
  // is false for NaN and infinities, as !isfinite), which vectorises.
  bool ok = true;
#pragma omp parallel for schedule(static) reduction(&& : ok) if (values > (size_t(1) << 16))
  for (size_t r = 0; r < rows; ++r) {
    const float* p = in.params + r * row;
    bool row_ok = true;
    for (size_t j = 0; j < g; ++j)
      row_ok &= gaussian_in_bounds(p[j], p[g + j], p[2 * g + j], p[3 * g + j], p[4 * g + j], pixel, band.box);
    ok = ok && row_ok;
  }
  if (need_data) {
    const float* d = reinterpret_cast<const float*>(in.data);
    const size_t parts = size_t(in.count);  // one particle's coefficients per iteration
    const size_t n = 2 * band.size();
#pragma omp parallel for schedule(static) reduction(&& : ok) if (values > (size_t(1) << 16))
    for (size_t i = 0; i < parts; ++i) {
      int bad = 0;
      for (size_t c = 0; c < n; ++c) bad |= !(std::fabs(d[i * n + c]) <= std::numeric_limits<float>::max());
      ok = ok && bad == 0;
    }
  }
  for (int i = 0; ok && i < in.count; ++i) ok = view_is_finite(in.views[i]);
  if (ok) return;
  for (size_t r = 0; r < rows; ++r) {
    const float* p = in.params + r * row;
    for (size_t j = 0; j < g; ++j) {
      if (gaussian_in_bounds(p[j], p[g + j], p[2 * g + j], p[3 * g + j], p[4 * g + j], pixel, band.box)) continue;
      const char* col[] = {"x", "y", "z", "amplitude", "width"};
      for (int c = 0; c < 5; ++c)
        if (!std::isfinite(p[c * g + j]))
          CUGMM_FAIL("projector: non-finite Gaussian parameter (row " + std::to_string(r) + ", Gaussian " +
                     std::to_string(j) + ", " + col[c] + ")");
      CUGMM_FAIL("projector: Gaussian " + std::to_string(j) + " (row " + std::to_string(r) + ") has width " +
                 std::to_string(p[4 * g + j]) + " Å, outside [" + std::to_string(kMinWidthPx * pixel) + ", " +
                 std::to_string(kMaxWidthBoxFraction * band.box * pixel) + "] Å (" + std::to_string(kMinWidthPx) +
                 " px to 1/" + std::to_string(int(1 / kMaxWidthBoxFraction)) + " of the box)");
    }
  }
  for (int i = 0; i < in.count; ++i)
    if (!view_is_finite(in.views[i])) CUGMM_FAIL("projector: non-finite pose or CTF for particle " + std::to_string(i));
  if (need_data)
    for (size_t i = 0; i < size_t(in.count) * band.size(); ++i)
      if (!std::isfinite(in.data[i].real()) || !std::isfinite(in.data[i].imag()))
        CUGMM_FAIL("projector: non-finite particle data (particle " + std::to_string(i / band.size()) +
                   ", coefficient " + std::to_string(i % band.size()) + ")");
}

float min_width(const float* params, size_t rows, size_t stride, int num_gaussians) {
  // The widths were checked finite (check_host_inputs), so a plain comparison gives fmin's result (and the
  // minimum does not depend on the order): one inline compare per width, where fmin was a libm call (a
  // training batch holds 800,000 widths). Serial: waking the other threads costs more on a loaded machine.
  float m = INFINITY;
  for (size_t r = 0; r < rows; ++r) {
    const float* s = params + r * stride + 4 * size_t(num_gaussians);
    float row_min = INFINITY;
    for (int j = 0; j < num_gaussians; ++j) row_min = std::min(row_min, s[j]);
    m = std::min(m, row_min);
  }
  return m;
}

}  // namespace detail

std::unique_ptr<Projector> make_projector(Context& cx, const FourierBand& band, int num_gaussians,
                                          const ProjectorOptions& options) {
  CUGMM_REQUIRE(num_gaussians > 0, "the projector needs at least one Gaussian");
  CUGMM_REQUIRE(band.size() > 0 && band.box >= 4, "the projector needs a non-empty Fourier band");
  CUGMM_REQUIRE(band.partner.size() == band.size() && band.ctf_points.size() == band.size(),
                "projector: the Fourier band was not made by make_fourier_band");
  CUGMM_REQUIRE(options.max_batch > 0, "projector: max_batch must be positive");
  if (cx.device() == Device::cpu) return detail::make_cpu_projector(cx, band, num_gaussians, options);
#ifdef CUGMM_HAVE_CUDA
  CUGMM_REQUIRE(cuda_available(), "CUDA projector requested but no GPU is usable: " + cuda_info().reason);
  return detail::make_cuda_projector(cx, band, num_gaussians, options);
#else
  CUGMM_FAIL("this build of cugmm has no CUDA backend");
#endif
}

}  // namespace cugmm
