// Fixed-order column reductions for nn/ops_cuda.cu (bias gradients, batch-norm statistics and backward
// sums): out[c] = sum over rows r of term(r, c), K sums at a time.
//
// Pass 1: a grid of (column tiles of kTileCols) x (row chunks); in a block, threadIdx.x is the column
// (a warp reads 32 neighbouring floats of a row: coalesced) and threadIdx.y one of kLanes row lanes,
// each summing its rows of the chunk in order; the lanes meet in a fixed shared-memory tree and the
// block writes one partial per (chunk, column). Pass 2: one thread per column adds the partials in chunk
// order and hands the sums to `finish(c, sums)`. The chunking depends on the shape only, so the result is
// bit-identical run to run (and GPU to GPU); no atomics. A 256 x 512 batch gives 16 x 8 = 128 blocks,
// where one thread per column gave 2.
#pragma once
#include <cuda_runtime.h>

#include <algorithm>

#include "core/buffer.h"
#include "core/cuda_check.h"

namespace cugmm::nn::cuda {

constexpr int kTileCols = 32, kLanes = 8;
constexpr int kChunkRowsMin = 32, kChunksMax = 128;

template <int K, class Term>
__global__ void col_partials_k(Term term, int rows, int cols, int chunk_rows, float* part) {
  __shared__ float sh[K][kLanes][kTileCols];
  const int c = blockIdx.x * kTileCols + threadIdx.x;
  const int r0 = blockIdx.y * chunk_rows, r1 = min(rows, r0 + chunk_rows);
  float s[K];
  for (int k = 0; k < K; ++k) s[k] = 0.f;
  if (c < cols)
    for (int r = r0 + threadIdx.y; r < r1; r += kLanes) {
      float t[K];
      term(r, c, t);
      for (int k = 0; k < K; ++k) s[k] += t[k];
    }
  for (int k = 0; k < K; ++k) sh[k][threadIdx.y][threadIdx.x] = s[k];
  __syncthreads();
  for (int w = kLanes / 2; w > 0; w /= 2) {
    if (threadIdx.y < w)
      for (int k = 0; k < K; ++k) sh[k][threadIdx.y][threadIdx.x] += sh[k][threadIdx.y + w][threadIdx.x];
    __syncthreads();
  }
  if (threadIdx.y == 0 && c < cols)
    for (int k = 0; k < K; ++k) part[(size_t(blockIdx.y) * K + k) * cols + c] = sh[k][0][threadIdx.x];
}

template <int K, class Finish>
__global__ void col_finish_k(Finish finish, const float* part, int chunks, int cols) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= cols) return;
  float s[K];
  for (int k = 0; k < K; ++k) s[k] = 0.f;
  for (int b = 0; b < chunks; ++b)
    for (int k = 0; k < K; ++k) s[k] += part[(size_t(b) * K + k) * cols + c];
  finish(c, s);
}

// `part` is the caller's workspace on cx's stream (grown here as needed).
template <int K, class Term, class Finish>
void col_reduce(const Context& cx, Buffer<float>& part, int rows, int cols, Term term, Finish finish) {
  if (rows <= 0 || cols <= 0) return;
  const int chunks = std::min(kChunksMax, (rows + kChunkRowsMin - 1) / kChunkRowsMin);
  const int chunk_rows = (rows + chunks - 1) / chunks;
  part.resize(size_t(chunks) * K * cols);
  auto s = static_cast<cudaStream_t>(cx.stream());
  dim3 grid((cols + kTileCols - 1) / kTileCols, chunks), block(kTileCols, kLanes);
  col_partials_k<K><<<grid, block, 0, s>>>(term, rows, cols, chunk_rows, part.data());
  CUGMM_CHECK_LAUNCH();
  constexpr int kFinishThreads = 256;
  col_finish_k<K><<<(cols + kFinishThreads - 1) / kFinishThreads, kFinishThreads, 0, s>>>(finish, part.data(),
                                                                                            chunks, cols);
  CUGMM_CHECK_LAUNCH();
}

}  // namespace cugmm::nn::cuda
