// The per-particle score that training maximises (loss = -score + the regularisers of kernels/train_step.h),
// in one place: training, embedding, the posterior latent (latent_posterior.h) and pose refinement (pose_refine.h) all call these two
// functions, so a change of the training score (its projector options, its weighting of the rings) reaches
// every one of them at once.
#pragma once
#include <memory>
#include <vector>

#include "core/context.h"
#include "engine/fourier_band.h"
#include "engine/projector.h"

namespace cugmm {

// The projector training uses for a run's settings, on the context's device.
// ring_weights: the run's per-ring score weights (engine/ring_weights.h; empty: the plain FRC mean); pooled:
// they weight the coefficients of one pooled correlation instead (ProjectorOptions::pooled, `--loss white`).
std::unique_ptr<Projector> make_training_projector(Context& cx, const FourierBand& band,
                                                   const std::vector<float>& ring_weights, int G, bool pooled = false);

// score[n] (and, when grad is not null, d score / d params per particle, n x 5G; when grad_pose is not null,
// d score / d pose, n x 5 as engine/projector.h lays it out: pose refinement) of n particles against
// parameter rows (params_stride 5G: one row per particle; 0: one shared row). Pointers on the projector's
// device; on CUDA the work is queued, not waited for.
void training_score(Projector& pr, const float* params, size_t params_stride, const ParticleView* views,
                    const cfloat* data, int n, float* score, float* grad, float* grad_pose = nullptr);

}  // namespace cugmm
