// The per-particle score that training maximises, in one place: the trainer's step and `cugmm refine-pose`
// both call it, so a change to what training fits (the loss) changes what pose refinement fits with it.
#pragma once
#include "engine/projector.h"

namespace cugmm {

// score[i] of each particle of `in` against its parameters (the value training maximises, loss = -score
// plus regularisers), with d score / d parameters (per particle, as `grad_params` is laid out by
// GradReduce::per_particle) and d score / d pose (count x 5, engine/projector.h) where those are not null.
// Pointers on the projector's side (device memory for CUDA, queued on its context's stream).
void fit_score(Projector& pr, const ProjectionBatch& in, float* score, float* grad_params, float* grad_pose);

}  // namespace cugmm
