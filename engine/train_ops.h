// The batched operations of a training step outside the networks and the projector (kernels/train_step.h
// holds their maths), one entry point per operation for both backends: host loops on a CPU context, small
// kernels queued on the context's stream on CUDA (engine/train_ops_cuda.cu; nothing waits). Pointers live
// on the context's device.
#pragma once
#include <cstdint>

#include "core/context.h"
#include "kernels/train_step.h"

namespace cugmm::train_ops {

// Per row of `rows`: params = base + scale x raw with widths clamped, and row_reg[3 i..] = the row's
// regulariser value, d reg / d width, d reg / d amplitude (kernels/train_step.h row_regulariser).
void decode_rows(Context& cx, const StepConsts& k, const float* base, const float* raw, float* params,
                 float* row_reg, int rows);
// out = P in (adjoint: P^T in) for every row: the rigid-body modes removed from the position columns
// (kernels/train_step.h rigid_accumulate / rigid_apply), the other columns copied. in != out.
void rigid_project(Context& cx, const StepConsts& k, const float* base, const float* in, float* out, int rows,
                   bool adjoint);
// v = d loss / d raw (rows x 5G), from the score gradient of the same rows (step_cotangent).
void cotangent(Context& cx, const StepConsts& k, const float* base, const float* raw, const float* mask,
               const float* grad_score, const float* row_reg, float* v, int rows);
// acc[0] += sum over rows of (-score_i + reg_i), acc[1] += sum of score_i, in row order (deterministic).
void accumulate_loss(Context& cx, const float* score, const float* row_reg, int rows, double* acc);
// out[i, j] = z[i, j] + sigma N(0, 1), the draw keyed by (seed, stream = epoch, element = index[i] x d + j):
// a particle's noise depends on who it is and the epoch, never on its place in a batch.
void add_latent_noise(Context& cx, const float* z, float* out, const int64_t* index, int rows, int d, float sigma,
                      uint64_t seed, uint64_t epoch);

}  // namespace cugmm::train_ops

namespace cugmm::train_ops {
// out = v + coef x z, element-wise over n: the latent penalty's gradient (coef = 2 lambda / B) added to the
// decoder's input gradient before the encoder's backward.
void add_scaled(Context& cx, const float* v, const float* z, float coef, float* out, size_t n);
// Free memory of the current CUDA device (0 without CUDA).
size_t device_free_bytes();

// Host staging for the per-batch uploads on CUDA (CUDA only; each throws without it). A copy from pageable
// memory makes the host wait for the stream first (CUDA's rule for pageable transfers), which would put a
// host round trip in every step; from pinned memory it is queued and returns at once, so the host gathers
// the next batch while the device computes. A slot is written again only after the event recorded after
// its copies has completed.
void* pinned_alloc(size_t bytes);
void pinned_free(void* p) noexcept;
void* event_create();
void event_destroy(void* ev) noexcept;
void event_record(Context& cx, void* ev);
void event_wait(void* ev);  // the host waits for the event
void copy_to_device_async(Context& cx, void* dst, const void* src, size_t bytes);
}  // namespace cugmm::train_ops
