// A sequential MLP on either backend. All trainable parameters live in one flat array (and their
// gradients in another of the same layout), so the optimizer is one flat pass; batch-norm running
// statistics live in a separate flat `state` array; activations in one workspace.
//
// Residual networks (Arch::residual): output = base + Δ(input), base a given vector (the decoder's
// neutral model, 5G values). Δ(0) = 0 is guaranteed by construction, in every mode, for any weights:
// every dense layer is bias-free and every activation maps 0 to exactly 0 (ReLU, leaky ReLU, tanh,
// identity; dropout keeps 0), and batch-norm (whose shift moves 0) is refused. A zero input then stays
// exactly zero through every layer (0 * w sums to exactly 0), so output == base bit for bit at z = 0.
// The last dense layer starts at zero, so before training output == base for every z.
// The price: with only ReLU-type activations Δ is positively homogeneous (Δ(a z) = a Δ(z), a > 0), so
// motions are linear along each ray from the origin; tanh layers make them curve.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/buffer.h"
#include "core/comm.h"
#include "core/context.h"
#include "nn/layers.h"
#include "nn/ops.h"

namespace cugmm::nn {

class Checkpoint;

// Watches backward for the data-parallel gradient exchange (engine/data_parallel.h), so that it can start
// exchanging a layer's gradients while the layers before it are still going backward.
class GradientHook {
 public:
  virtual ~GradientHook() = default;
  // Whether dense layer `layer`'s parameter gradients are the hook's: backward then computes only the
  // input gradient and hands the hook the layer's input x (rows x in, valid until the next forward) and
  // output cotangent v (rows x out, valid only during the call), from which it forms d W = v^T x itself.
  virtual bool takes(size_t layer) const = 0;
  virtual void take(size_t layer, const float* x, const float* v, int rows, int in, int out) = 0;
  // Gradients [offset, offset + n) of the flat array are final on this rank.
  virtual void ready(size_t offset, size_t n) = 0;
};

enum class Mode { train, infer };

// Where one parameter tensor sits in the flat array.
struct ParamTensor {
  std::string name;  // "3.weight", "3.bias", "5.gamma", ...
  size_t offset, size;
  float lr_scale, wd;
};

class Sequential {
 public:
  // Initialises the parameters from Philox(seed) on the host (identical on both backends). Everything
  // lives on cx's device and, on CUDA, is queued on its stream; cx must outlive the network.
  Sequential(const Arch& arch, Context& cx, uint64_t seed);

  const Arch& arch() const { return arch_; }
  Device device() const { return cx_.device(); }
  Context& context() const { return cx_; }
  int in_features() const { return arch_.in; }
  int out_features() const { return width_.back(); }
  uint64_t seed() const { return seed_; }

  // Data-parallel training (issue 19): each training forward of `batch` rows is this rank's slice of a
  // global batch of comm.size() x batch rows, the rank's rows starting at comm.rank() x batch. Batch-norm
  // then normalises with the whole batch's statistics (its column sums added over the ranks, forward and
  // backward) and dropout draws each row's mask by its global row, so the ranks together compute what
  // one process computes on the global batch. The parameter gradients stay this rank's share: the
  // caller adds them over the ranks (comm.allreduce_sum) before the optimizer. Null: one process.
  void set_comm(Comm* comm) { comm_ = comm && comm->size() > 1 ? comm : nullptr; }
  // Null: none. The hook outlives the network's backward calls.
  void set_gradient_hook(GradientHook* hook) { hook_ = hook; }
  // The dense layers: index, shape, and their weight (out x in) and bias offsets in the flat array (bias
  // SIZE_MAX: none).
  struct DenseLayer {
    size_t layer;
    int in, out;
    size_t w, b;
  };
  std::vector<DenseLayer> dense_layers() const;

  // The residual base (out_features() values, host memory). Required before forward when residual.
  void set_base(const std::vector<float>& base);

  // x: batch x in_features on this device; the caller keeps it alive until backward. Returns
  // batch x out_features on this device (valid until the next forward; on CUDA, queued on the
  // context's stream: read it with a Buffer download or after cx.synchronize()). `step` picks the dropout
  // masks (stream = step and layer), so a resumed run replays the same masks.
  const float* forward(const float* x, int batch, Mode mode, uint64_t step = 0);
  // v_out: d loss / d output (batch x out_features, on this device, left unchanged). Overwrites the
  // parameter gradients. Returns d loss / d input when need_input_grad, else nullptr and the input
  // gradient is never computed (the encoder's 5G-wide input).
  const float* backward(const float* v_out, bool need_input_grad);

  float* params() { return params_.data(); }
  const float* params() const { return params_.data(); }
  float* grads() { return grads_.data(); }
  const float* grads() const { return grads_.data(); }
  size_t num_params() const { return params_.size(); }
  const std::vector<ParamTensor>& tensors() const { return tensors_; }
  std::vector<AdamSegment> adam_segments() const;
  // sum over weight tensors of wd/2 |W|^2: the L2 term whose gradient the optimizer adds.
  double l2_penalty() const;

  std::vector<float> params_to_host() const { return params_.to_host(); }
  void params_from_host(const std::vector<float>& p);
  std::vector<float> state_to_host() const { return state_.to_host(); }

  // Bytes of parameters + gradients + state, and of the activation workspace at its current size.
  size_t param_bytes() const { return params_.bytes() + grads_.bytes() + state_.bytes() + base_.bytes(); }
  size_t workspace_bytes() const { return acts_.bytes() + stats_.bytes() + v_[0].bytes() + v_[1].bytes(); }

  // Checkpoint entries under `prefix` ("encoder.", ...): architecture, seed, parameters, running stats.
  void save(Checkpoint& ck, const std::string& prefix) const;
  // Refuses a checkpoint whose architecture differs (naming the difference).
  void load(const Checkpoint& ck, const std::string& prefix);

 private:
  struct Layer {
    LayerSpec spec;
    int in = 0, out = 0;
    size_t w = 0, b = 0;          // dense: weight (out x in) and bias offsets; batchnorm: gamma, beta
    size_t run = 0;               // batchnorm: running mean (out) then running var (out) in state_
    size_t stat = 0;              // batchnorm: saved mean then rstd in stats_
    size_t slot = SIZE_MAX;       // offset of this layer's own output in acts_ (SIZE_MAX: in place)
    const float* x = nullptr;     // input seen by the last forward
    const float* y = nullptr;     // output of the last forward
  };
  void validate() const;
  bool has_batchnorm() const;
  void initialise();
  float* writable_v(const float* v, size_t n, int& which);

  Arch arch_;
  Context& cx_;
  uint64_t seed_;
  std::vector<int> width_;  // width_[0] = in, width_[l + 1] = output width of layer l
  std::vector<Layer> layers_;
  std::vector<ParamTensor> tensors_;
  Buffer<float> params_, grads_, state_, base_;
  Buffer<float> acts_, stats_, v_[2];
  Comm* comm_ = nullptr;
  GradientHook* hook_ = nullptr;
  Buffer<float> sync_;  // batch-norm's scratch under a comm (2 x widest batch-norm layer)
  BnSync bn_sync();
  uint64_t first_element(int cols) const;  // dropout's first Philox element of this rank's rows
  size_t acts_row_ = 0;  // workspace floats per batch row
  bool base_zero_ = false;  // the residual base is all zeros: forward skips adding it
  int batch_ = 0;
  Mode mode_ = Mode::infer;
  uint64_t step_ = 0;
};

}  // namespace cugmm::nn
