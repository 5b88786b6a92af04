#include "engine/train_ops.h"

#include "core/error.h"
#include "kernels/philox.h"

namespace cugmm::train_ops {

#ifdef CUGMM_HAVE_CUDA
namespace cuda {
void decode_rows(Context&, const StepConsts&, const float*, const float*, float*, float*, int);
void cotangent(Context&, const StepConsts&, const float*, const float*, const float*, const float*, const float*,
               float*, int);
void rigid_project(Context&, const StepConsts&, const float*, const float*, float*, int, bool);
void accumulate_loss(Context&, const float*, const float*, int, double*);
void add_latent_noise(Context&, const float*, float*, const int64_t*, int, int, float, uint64_t, uint64_t);
size_t device_free_bytes();
void add_scaled(Context&, const float*, const float*, float, float*, size_t);
void* pinned_alloc(size_t);
void pinned_free(void*) noexcept;
void* event_create();
void event_destroy(void*) noexcept;
void event_record(Context&, void*);
void event_wait(void*);
void copy_to_device_async(Context&, void*, const void*, size_t);
}  // namespace cuda
#define CUGMM_TRAIN_DISPATCH(call) \
  if (cx.cuda()) return cuda::call
#else
#define CUGMM_TRAIN_DISPATCH(call) \
  if (cx.cuda()) throw Error("this cugmm was built without the CUDA backend")
#endif

void decode_rows(Context& cx, const StepConsts& k, const float* base, const float* raw, float* params,
                 float* row_reg, int rows) {
  if (rows <= 0) return;
  CUGMM_TRAIN_DISPATCH(decode_rows(cx, k, base, raw, params, row_reg, rows));
  const size_t w = size_t(5) * k.G;
#pragma omp parallel for schedule(static)
  for (int i = 0; i < rows; ++i) {
    const float* r = raw + i * w;
    float* p = params + i * w;
    double ws = 0, ms = 0;
    for (size_t c = 0; c < w; ++c) {
      bool inside;
      p[c] = step_param(k, base, r, int(c), inside);
    }
    for (int j = 0; j < k.G; ++j) {
      ms += p[3 * size_t(k.G) + j];
      ws += p[4 * size_t(k.G) + j];
    }
    RowReg g = row_regulariser(k, ws, ms);
    row_reg[3 * i] = g.reg;
    row_reg[3 * i + 1] = g.d_width;
    row_reg[3 * i + 2] = g.d_mass;
  }
}

void rigid_project(Context& cx, const StepConsts& k, const float* base, const float* in, float* out, int rows,
                   bool adjoint) {
  if (rows <= 0) return;
  CUGMM_TRAIN_DISPATCH(rigid_project(cx, k, base, in, out, rows, adjoint));
  const size_t w = size_t(5) * k.G;
#pragma omp parallel for schedule(static)
  for (int i = 0; i < rows; ++i) {
    const float* x = in + i * w;
    float* y = out + i * w;
    RigidSums acc{{0, 0, 0}, {0, 0, 0}};
    for (int j = 0; j < k.G; ++j) rigid_accumulate(k, base, x, j, adjoint, acc);
    for (int j = 0; j < k.G; ++j) {
      float p[3];
      rigid_apply(k, base, x, j, adjoint, acc, p);
      for (int a = 0; a < 3; ++a) y[size_t(a) * k.G + j] = p[a];
    }
    for (size_t c = 3 * size_t(k.G); c < w; ++c) y[c] = x[c];
  }
}

void cotangent(Context& cx, const StepConsts& k, const float* base, const float* raw, const float* mask,
               const float* grad_score, const float* row_reg, float* v, int rows) {
  if (rows <= 0) return;
  CUGMM_TRAIN_DISPATCH(cotangent(cx, k, base, raw, mask, grad_score, row_reg, v, rows));
  const size_t w = size_t(5) * k.G;
  const float inv = 1.f / float(rows);
#pragma omp parallel for schedule(static)
  for (int i = 0; i < rows; ++i) {
    RowReg g{row_reg[3 * i], row_reg[3 * i + 1], row_reg[3 * i + 2]};
    for (size_t c = 0; c < w; ++c)
      v[i * w + c] = step_cotangent(k, base, raw + i * w, mask, grad_score + i * w, g, int(c), inv);
  }
}

void accumulate_loss(Context& cx, const float* score, const float* row_reg, int rows, double* acc) {
  if (rows <= 0) return;
  CUGMM_TRAIN_DISPATCH(accumulate_loss(cx, score, row_reg, rows, acc));
  for (int i = 0; i < rows; ++i) {
    acc[0] += double(-score[i]) + double(row_reg[3 * i]);
    acc[1] += double(score[i]);
  }
}

void add_latent_noise(Context& cx, const float* z, float* out, const int64_t* index, int rows, int d, float sigma,
                      uint64_t seed, uint64_t epoch) {
  if (rows <= 0) return;
  CUGMM_TRAIN_DISPATCH(add_latent_noise(cx, z, out, index, rows, d, sigma, seed, epoch));
  for (int i = 0; i < rows; ++i)
    for (int j = 0; j < d; ++j) {
      const size_t e = size_t(i) * d + j;
      out[e] = z[e] + (sigma > 0 ? sigma * philox_normal(seed, epoch, uint64_t(index[i]) * d + j) : 0.f);
    }
}

void add_scaled(Context& cx, const float* v, const float* z, float coef, float* out, size_t n) {
  if (n == 0) return;
  CUGMM_TRAIN_DISPATCH(add_scaled(cx, v, z, coef, out, n));
  for (size_t i = 0; i < n; ++i) out[i] = v[i] + coef * z[i];
}

#ifdef CUGMM_HAVE_CUDA
void* pinned_alloc(size_t bytes) { return cuda::pinned_alloc(bytes); }
void pinned_free(void* p) noexcept { cuda::pinned_free(p); }
void* event_create() { return cuda::event_create(); }
void event_destroy(void* ev) noexcept { cuda::event_destroy(ev); }
void event_record(Context& cx, void* ev) { cuda::event_record(cx, ev); }
void event_wait(void* ev) { cuda::event_wait(ev); }
void copy_to_device_async(Context& cx, void* dst, const void* src, size_t bytes) {
  cuda::copy_to_device_async(cx, dst, src, bytes);
}
#else
static void no_cuda() { throw Error("this cugmm was built without the CUDA backend"); }
void* pinned_alloc(size_t) { no_cuda(); return nullptr; }
void pinned_free(void*) noexcept {}
void* event_create() { no_cuda(); return nullptr; }
void event_destroy(void*) noexcept {}
void event_record(Context&, void*) { no_cuda(); }
void event_wait(void*) { no_cuda(); }
void copy_to_device_async(Context&, void*, const void*, size_t) { no_cuda(); }
#endif

size_t device_free_bytes() {
#ifdef CUGMM_HAVE_CUDA
  return cuda::device_free_bytes();
#else
  return 0;
#endif
}

}  // namespace cugmm::train_ops
