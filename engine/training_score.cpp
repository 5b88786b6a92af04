#include "engine/training_score.h"

#include "engine/trainer.h"

namespace cugmm {

std::unique_ptr<Projector> make_training_projector(Context& cx, const FourierBand& band,
                                                   const std::vector<float>& ring_weights, int G, bool pooled) {
  ProjectorOptions po;
  po.ring_weights = ring_weights;
  po.pooled = pooled;
  return make_projector(cx, band, G, po);
}

void training_score(Projector& pr, const float* params, size_t params_stride, const ParticleView* views,
                    const cfloat* data, int n, float* score, float* grad, float* grad_pose) {
  ProjectionBatch in;
  in.count = n;
  in.params = params;
  in.params_stride = params_stride;
  in.views = views;
  in.data = data;
  ProjectionOutputs o;
  o.score = score;
  o.grad_params = grad;
  o.grad_reduce = GradReduce::per_particle;
  o.grad_pose = grad_pose;
  pr.run(in, o);
}

}  // namespace cugmm
