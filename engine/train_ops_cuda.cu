// CUDA side of engine/train_ops.h: one block per row for the row sums (a fixed-size CUB block reduction in
// double: deterministic, no atomics), flat grid loops for the element-wise parts.
#include <cub/block/block_reduce.cuh>

#include "core/cuda_check.h"
#include "engine/train_ops.h"
#include "kernels/philox.h"

namespace cugmm::train_ops::cuda {
namespace {

constexpr int kThreads = 256;
cudaStream_t stream_of(const Context& cx) { return static_cast<cudaStream_t>(cx.stream()); }

__global__ void decode_rows_k(StepConsts k, const float* base, const float* raw, float* params, float* row_reg) {
  using Reduce = cub::BlockReduce<double, kThreads>;
  __shared__ typename Reduce::TempStorage tmp;
  __shared__ double mass_total;
  const size_t w = size_t(5) * k.G, row = blockIdx.x;
  const float* r = raw + row * w;
  float* p = params + row * w;
  double ws = 0, ms = 0;
  for (size_t c = threadIdx.x; c < w; c += kThreads) {
    bool inside;
    const float v = step_param(k, base, r, int(c), inside);
    p[c] = v;
    if (c >= 4 * size_t(k.G)) ws += v;
    else if (c >= 3 * size_t(k.G)) ms += v;
  }
  double mt = Reduce(tmp).Sum(ms);
  if (threadIdx.x == 0) mass_total = mt;
  __syncthreads();
  double wt = Reduce(tmp).Sum(ws);
  if (threadIdx.x == 0) {
    RowReg g = row_regulariser(k, wt, mass_total);
    row_reg[3 * row] = g.reg;
    row_reg[3 * row + 1] = g.d_width;
    row_reg[3 * row + 2] = g.d_mass;
  }
}

__global__ void cotangent_k(StepConsts k, const float* base, const float* raw, const float* mask,
                            const float* grad_score, const float* row_reg, float* v, int rows) {
  const size_t w = size_t(5) * k.G, n = w * rows;
  const float inv = 1.f / float(rows);
  for (size_t e = blockIdx.x * size_t(blockDim.x) + threadIdx.x; e < n; e += size_t(blockDim.x) * gridDim.x) {
    const size_t i = e / w, c = e % w;
    RowReg g{row_reg[3 * i], row_reg[3 * i + 1], row_reg[3 * i + 2]};
    v[e] = step_cotangent(k, base, raw + i * w, mask, grad_score + i * w, g, int(c), inv);
  }
}

// One block per row: the six sums (block reductions in double, fixed order), then the update.
__global__ void rigid_project_k(StepConsts k, const float* base, const float* in, float* out, bool adjoint) {
  using Reduce = cub::BlockReduce<double, kThreads>;
  __shared__ typename Reduce::TempStorage tmp;
  __shared__ RigidSums total;
  const size_t w = size_t(5) * k.G, row = blockIdx.x;
  const float* x = in + row * w;
  float* y = out + row * w;
  RigidSums acc{{0, 0, 0}, {0, 0, 0}};
  for (int j = threadIdx.x; j < k.G; j += kThreads) rigid_accumulate(k, base, x, j, adjoint, acc);
  for (int a = 0; a < 6; ++a) {
    double& v = a < 3 ? acc.s[a] : acc.l[a - 3];
    const double t = Reduce(tmp).Sum(v);
    if (threadIdx.x == 0) (a < 3 ? total.s[a] : total.l[a - 3]) = t;
    __syncthreads();
  }
  for (int j = threadIdx.x; j < k.G; j += kThreads) {
    float p[3];
    rigid_apply(k, base, x, j, adjoint, total, p);
    for (int a = 0; a < 3; ++a) y[size_t(a) * k.G + j] = p[a];
  }
  for (size_t c = 3 * size_t(k.G) + threadIdx.x; c < w; c += kThreads) y[c] = x[c];
}

__global__ void accumulate_loss_k(const float* score, const float* row_reg, int rows, double* acc) {
  double a = acc[0], s = acc[1];
  for (int i = 0; i < rows; ++i) {  // row order, as on the CPU: B adds, negligible beside the step
    a += double(-score[i]) + double(row_reg[3 * i]);
    s += double(score[i]);
  }
  acc[0] = a;
  acc[1] = s;
}

__global__ void noise_k(const float* z, float* out, const int64_t* index, int rows, int d, float sigma, uint64_t seed,
                        uint64_t epoch) {
  const int e = blockIdx.x * blockDim.x + threadIdx.x;
  if (e >= rows * d) return;
  const int i = e / d, j = e % d;
  out[e] = z[e] + (sigma > 0 ? sigma * philox_normal(seed, epoch, uint64_t(index[i]) * d + j) : 0.f);
}

__global__ void add_scaled_k(const float* v, const float* z, float coef, float* out, size_t n) {
  for (size_t e = blockIdx.x * size_t(blockDim.x) + threadIdx.x; e < n; e += size_t(blockDim.x) * gridDim.x)
    out[e] = v[e] + coef * z[e];
}

int blocks_for(size_t n) { return int(std::min<size_t>((n + kThreads - 1) / kThreads, 65535u * 16u)); }

}  // namespace

void decode_rows(Context& cx, const StepConsts& k, const float* base, const float* raw, float* params, float* row_reg,
                 int rows) {
  decode_rows_k<<<rows, kThreads, 0, stream_of(cx)>>>(k, base, raw, params, row_reg);
  CUGMM_CHECK_LAUNCH();
}

void cotangent(Context& cx, const StepConsts& k, const float* base, const float* raw, const float* mask,
               const float* grad_score, const float* row_reg, float* v, int rows) {
  cotangent_k<<<blocks_for(size_t(5) * k.G * rows), kThreads, 0, stream_of(cx)>>>(k, base, raw, mask, grad_score,
                                                                                   row_reg, v, rows);
  CUGMM_CHECK_LAUNCH();
}

void rigid_project(Context& cx, const StepConsts& k, const float* base, const float* in, float* out, int rows,
                   bool adjoint) {
  rigid_project_k<<<rows, kThreads, 0, stream_of(cx)>>>(k, base, in, out, adjoint);
  CUGMM_CHECK_LAUNCH();
}

void accumulate_loss(Context& cx, const float* score, const float* row_reg, int rows, double* acc) {
  accumulate_loss_k<<<1, 1, 0, stream_of(cx)>>>(score, row_reg, rows, acc);
  CUGMM_CHECK_LAUNCH();
}

void add_latent_noise(Context& cx, const float* z, float* out, const int64_t* index, int rows, int d, float sigma,
                      uint64_t seed, uint64_t epoch) {
  noise_k<<<blocks_for(size_t(rows) * d), kThreads, 0, stream_of(cx)>>>(z, out, index, rows, d, sigma, seed, epoch);
  CUGMM_CHECK_LAUNCH();
}

void add_scaled(Context& cx, const float* v, const float* z, float coef, float* out, size_t n) {
  add_scaled_k<<<blocks_for(n), kThreads, 0, stream_of(cx)>>>(v, z, coef, out, n);
  CUGMM_CHECK_LAUNCH();
}

void* pinned_alloc(size_t bytes) {
  void* p = nullptr;
  CUGMM_CHECK(cudaMallocHost(&p, bytes));
  return p;
}
void pinned_free(void* p) noexcept { if (p) cudaFreeHost(p); }
void* event_create() {
  cudaEvent_t e;
  CUGMM_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
  return e;
}
void event_destroy(void* ev) noexcept { if (ev) cudaEventDestroy(static_cast<cudaEvent_t>(ev)); }
void event_record(Context& cx, void* ev) { CUGMM_CHECK(cudaEventRecord(static_cast<cudaEvent_t>(ev), stream_of(cx))); }
void event_wait(void* ev) { CUGMM_CHECK(cudaEventSynchronize(static_cast<cudaEvent_t>(ev))); }
void copy_to_device_async(Context& cx, void* dst, const void* src, size_t bytes) {
  if (bytes) CUGMM_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream_of(cx)));
}

size_t device_free_bytes() {
  size_t free_b = 0, total_b = 0;
  if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return free_b;
}

}  // namespace cugmm::train_ops::cuda
