#include "engine/fit_score.h"

namespace cugmm {

void fit_score(Projector& pr, const ProjectionBatch& in, float* score, float* grad_params, float* grad_pose) {
  ProjectionOutputs o;
  o.score = score;
  o.grad_params = grad_params;
  o.grad_reduce = GradReduce::per_particle;
  o.grad_pose = grad_pose;
  pr.run(in, o);
}

}  // namespace cugmm
