// Adam over a Sequential's flat parameter array, on the network's Context: one pass per step (bias
// correction, per-group learning-rate factors and L2 coefficients, global-norm gradient clipping, all in
// one update).
//
// Low-memory mode (moments = bf16): the two moments are stored as bfloat16 with stochastic rounding
// (kernels/nn_adam.h), halving the optimizer state from 8 to 4 bytes per parameter; the update stays
// fused (clip scale, L2 and the step in one read-modify-write of p, m, v). bench_mlp reports its memory
// and tests/test_nn_adam.cpp its effect on the regression problem's final loss.
#pragma once
#include <cstdint>
#include <string>

#include "core/buffer.h"
#include "nn/sequential.h"

namespace cugmm::nn {

enum class Moments { f32, bf16 };

struct AdamConfig {
  float lr = 1e-4f;
  float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;
  float clip_norm = 0;          // > 0: scale the gradient so its global L2 norm is at most this
  Moments moments = Moments::f32;
  uint64_t seed = 0x5eed;       // Philox seed of the bf16 stochastic rounding
  // Multiplies the gradient before the update (and before clipping's norm): 1 / R when the gradient is the
  // sum of R data-parallel ranks' shares, each scaled by 1 / (its own batch), so the update is the global
  // batch's mean (exact for R a power of two).
  float grad_scale = 1;
  std::string name = "network"; // in messages: "the decoder's gradient is not finite"
};

class Adam {
 public:
  Adam(Sequential& net, const AdamConfig& cfg);

  // One update from net.grads() (which it leaves unchanged). Non-finite gradient elements are not applied;
  // the CPU throws cugmm::Error naming the network and the step, CUDA flags the Context (its next
  // synchronize() throws), so the weights and moments stay finite either way.
  void step();
  int64_t steps() const { return t_; }
  float last_grad_norm() const { return last_norm_; }  // before clipping; 0 when clipping is off
  const AdamConfig& config() const { return cfg_; }
  void set_lr(float lr) { cfg_.lr = lr; }
  size_t state_bytes() const { return m32_.bytes() + v32_.bytes() + m16_.bytes() + v16_.bytes(); }

  // Checkpoint entries under `prefix`: settings, step count and both moments.
  void save(Checkpoint& ck, const std::string& prefix) const;
  // Refuses moments of another precision or size.
  void load(const Checkpoint& ck, const std::string& prefix);

 private:
  Sequential& net_;
  AdamConfig cfg_;
  std::vector<AdamSegment> segs_;
  Buffer<float> m32_, v32_;
  Buffer<uint16_t> m16_, v16_;
  int64_t t_ = 0;
  float last_norm_ = 0;
};

}  // namespace cugmm::nn
