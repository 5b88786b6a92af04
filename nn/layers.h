// What a network is made of: a list of layer specifications, serialisable to JSON (the checkpoint
// header stores it, and a checkpoint is only loaded into the same architecture).
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "kernels/nn_act.h"

namespace cugmm::nn {

enum class LayerKind { dense, act, dropout, batchnorm };

// Initialisation of a dense layer's weights (biases start at 0). auto_: He-uniform when the next layer
// is a ReLU-type activation, Glorot-uniform otherwise, zero for a residual network's last layer.
enum class Init { auto_, he_uniform, glorot_uniform, zero };

struct LayerSpec {
  LayerKind kind = LayerKind::dense;
  int out = 0;                 // dense: output width
  bool bias = true;            // dense
  Init init = Init::auto_;     // dense
  float init_gain = 1;         // dense: multiplies the init range (e.g. a small nonzero start)
  Act act = Act::identity;     // act
  float slope = 0.01f;         // leaky_relu
  float p = 0;                 // dropout probability
  float eps = 1e-5f, momentum = 0.1f;  // batchnorm
  float lr_scale = 1;          // learning-rate factor of this layer's parameters (its Adam group)
  float weight_decay = 0;      // L2 coefficient on dense weights: the loss gains wd/2 |W|^2
};

inline LayerSpec dense(int out, bool bias = true, float weight_decay = 0) {
  LayerSpec s;
  s.kind = LayerKind::dense; s.out = out; s.bias = bias; s.weight_decay = weight_decay;
  return s;
}
inline LayerSpec activation(Act a, float slope = 0.01f) {
  LayerSpec s;
  s.kind = LayerKind::act; s.act = a; s.slope = slope;
  return s;
}
inline LayerSpec relu() { return activation(Act::relu); }
inline LayerSpec leaky_relu(float slope = 0.01f) { return activation(Act::leaky_relu, slope); }
inline LayerSpec sigmoid() { return activation(Act::sigmoid); }
inline LayerSpec tanh_act() { return activation(Act::tanh); }
inline LayerSpec dropout(float p) {
  LayerSpec s;
  s.kind = LayerKind::dropout; s.p = p;
  return s;
}
inline LayerSpec batchnorm(float momentum = 0.1f, float eps = 1e-5f) {
  LayerSpec s;
  s.kind = LayerKind::batchnorm; s.momentum = momentum; s.eps = eps;
  return s;
}

// A sequential network. residual: output = base + Δ(input), see nn/sequential.h.
struct Arch {
  int in = 0;
  std::vector<LayerSpec> layers;
  bool residual = false;

  nlohmann::json to_json() const;
  static Arch from_json(const nlohmann::json& j);  // throws cugmm::Error on a malformed description
};

const char* layer_kind_name(LayerKind k);
const char* act_name(Act a);

}  // namespace cugmm::nn
