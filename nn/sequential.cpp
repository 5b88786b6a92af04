#include "nn/sequential.h"

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "core/error.h"
#include "kernels/philox.h"
#include "io/json_fields.h"
#include "nn/checkpoint.h"

namespace cugmm::nn {

namespace {
// Philox streams: initialisation streams have the top bit set, dropout streams never do.
constexpr uint64_t kInitStream = 1ull << 63;
uint64_t dropout_stream(uint64_t step, size_t layer) { return (step << 16) | layer; }
bool relu_type(const LayerSpec& s) {
  return s.kind == LayerKind::act && (s.act == Act::relu || s.act == Act::leaky_relu);
}
}  // namespace

Sequential::Sequential(const Arch& arch, Context& cx, uint64_t seed) : arch_(arch), cx_(cx), seed_(seed) {
  validate();
  width_.push_back(arch_.in);
  size_t np = 0, nstate = 0, nstat = 0, row = 0;
  for (size_t l = 0; l < arch_.layers.size(); ++l) {
    Layer L;
    L.spec = arch_.layers[l];
    L.in = width_.back();
    L.out = L.spec.kind == LayerKind::dense ? L.spec.out : L.in;
    std::string id = std::to_string(l) + ".";
    switch (L.spec.kind) {
      case LayerKind::dense:
        L.w = np;
        tensors_.push_back({id + "weight", np, size_t(L.out) * L.in, L.spec.lr_scale, L.spec.weight_decay});
        np += size_t(L.out) * L.in;
        if (L.spec.bias) {
          L.b = np;
          tensors_.push_back({id + "bias", np, size_t(L.out), L.spec.lr_scale, 0.f});
          np += L.out;
        }
        break;
      case LayerKind::batchnorm:
        L.w = np;
        L.b = np + L.out;
        tensors_.push_back({id + "gamma", np, size_t(L.out), L.spec.lr_scale, 0.f});
        tensors_.push_back({id + "beta", np + L.out, size_t(L.out), L.spec.lr_scale, 0.f});
        np += 2 * size_t(L.out);
        L.run = nstate;
        nstate += 2 * size_t(L.out);
        L.stat = nstat;
        nstat += 2 * size_t(L.out);
        break;
      default: break;
    }
    // An activation works in place on the output of a dense or batch-norm layer (whose only other
    // reader is that layer's backward, which needs its input, not its output); anywhere else it
    // gets its own output so no one else's saved values change under them.
    bool in_place = L.spec.kind == LayerKind::act && l > 0 &&
                    (arch_.layers[l - 1].kind == LayerKind::dense || arch_.layers[l - 1].kind == LayerKind::batchnorm);
    if (!in_place) {
      L.slot = row;
      row += L.out;
    }
    width_.push_back(L.out);
    layers_.push_back(L);
  }
  acts_ = Buffer<float>(cx_);
  v_[0] = Buffer<float>(cx_);
  v_[1] = Buffer<float>(cx_);
  params_ = Buffer<float>(cx_, np);
  grads_ = Buffer<float>(cx_, np);
  grads_.zero();
  state_ = Buffer<float>(cx_, nstate);
  stats_ = Buffer<float>(cx_, nstat);
  base_ = Buffer<float>(cx_);
  acts_row_ = row;
  initialise();
}

void Sequential::validate() const {
  CUGMM_REQUIRE(arch_.in > 0, "network input width must be positive");
  CUGMM_REQUIRE(!arch_.layers.empty(), "network has no layers");
  for (const LayerSpec& s : arch_.layers) {
    if (s.kind == LayerKind::dense) CUGMM_REQUIRE(s.out > 0, "dense layer width must be positive");
    if (s.kind == LayerKind::dropout) CUGMM_REQUIRE(s.p >= 0 && s.p < 1, "dropout probability must be in [0, 1)");
    if (s.kind == LayerKind::act && s.act == Act::leaky_relu)
      CUGMM_REQUIRE(s.slope > 0, "leaky ReLU slope must be positive (backward reads the sign from the output)");
    if (s.kind == LayerKind::batchnorm) CUGMM_REQUIRE(s.eps > 0, "batch-norm eps must be positive");
  }
  if (!arch_.residual) return;
  // See the header: these are what make Δ(0) = 0 exactly.
  CUGMM_REQUIRE(arch_.layers.back().kind == LayerKind::dense, "a residual network must end with a dense layer");
  for (const LayerSpec& s : arch_.layers) {
    if (s.kind == LayerKind::dense)
      CUGMM_REQUIRE(!s.bias, "a residual network's dense layers must be bias-free (so that Δ(0) = 0)");
    if (s.kind == LayerKind::act)
      CUGMM_REQUIRE(act_keeps_zero(s.act),
                    std::string("a residual network cannot use ") + act_name(s.act) + " (it moves 0, so Δ(0) != 0)");
    CUGMM_REQUIRE(s.kind != LayerKind::batchnorm, "a residual network cannot use batch-norm (its shift moves 0)");
  }
}

void Sequential::initialise() {
  std::vector<float> p(params_.size(), 0.f);
  for (size_t l = 0; l < layers_.size(); ++l) {
    const Layer& L = layers_[l];
    if (L.spec.kind == LayerKind::batchnorm) {
      for (int c = 0; c < L.out; ++c) p[L.w + c] = 1.f;  // gamma = 1, beta = 0
      continue;
    }
    if (L.spec.kind != LayerKind::dense) continue;
    Init init = L.spec.init;
    if (init == Init::auto_) {
      bool last_dense = true;
      for (size_t k = l + 1; k < layers_.size(); ++k) last_dense &= layers_[k].spec.kind != LayerKind::dense;
      if (arch_.residual && last_dense) init = Init::zero;
      else if (l + 1 < layers_.size() && relu_type(layers_[l + 1].spec)) init = Init::he_uniform;
      else init = Init::glorot_uniform;
    }
    if (init == Init::zero) continue;
    double limit = init == Init::he_uniform ? std::sqrt(6.0 / L.in) : std::sqrt(6.0 / (L.in + L.out));
    limit *= L.spec.init_gain;
    // Element i takes philox_uniform(seed, stream, i): word i % 4 of draw i / 4, so one draw per four
    // elements, in parallel (at G = 100,000 the two 5G x 512 layers are 5e8 draws otherwise).
    const size_t n = size_t(L.out) * L.in, draws = (n + 3) / 4;
    float* w = p.data() + L.w;
#pragma omp parallel for schedule(static) if (n >= (size_t(1) << 16))
    for (size_t d = 0; d < draws; ++d) {
      const U32x4 words = philox_draw(seed_, kInitStream | l, d);
      for (size_t k = 0, i = 4 * d; k < 4 && i < n; ++k, ++i)
        w[i] = static_cast<float>((2.0 * uniform_from_word(words.v[k]) - 1.0) * limit);
    }
  }
  params_.upload(p);
  std::vector<float> st(state_.size());
  for (const Layer& L : layers_)
    if (L.spec.kind == LayerKind::batchnorm)
      for (int c = 0; c < L.out; ++c) {
        st[L.run + c] = 0.f;           // running mean
        st[L.run + L.out + c] = 1.f;   // running var
      }
  state_.upload(st);
}

void Sequential::set_base(const std::vector<float>& base) {
  CUGMM_REQUIRE(arch_.residual, "set_base on a network that is not residual");
  CUGMM_REQUIRE(base.size() == size_t(out_features()),
                "residual base has " + std::to_string(base.size()) + " values, the output " +
                    std::to_string(out_features()));
  base_.upload(base);
  base_zero_ = std::all_of(base.begin(), base.end(), [](float b) { return b == 0.f; });
}

void Sequential::params_from_host(const std::vector<float>& p) {
  CUGMM_REQUIRE(p.size() == params_.size(), "parameter count differs");
  params_.upload(p);
}

const float* Sequential::forward(const float* x, int batch, Mode mode, uint64_t step) {
  CUGMM_REQUIRE(batch > 0, "forward: empty batch");
  CUGMM_REQUIRE(!arch_.residual || base_.size() == size_t(out_features()), "residual network without a base");
  CUGMM_REQUIRE(mode == Mode::infer || batch > 1 || !has_batchnorm(),
                "batch-norm in training needs a batch of at least 2");
  batch_ = batch;
  mode_ = mode;
  step_ = step;
  acts_.resize(size_t(batch) * acts_row_);
  const bool train = mode == Mode::train;
  const float* cur = x;
  float* cur_w = nullptr;  // cur when it is ours to modify
  for (size_t l = 0; l < layers_.size(); ++l) {
    Layer& L = layers_[l];
    size_t n = size_t(batch) * L.out;
    float* own = L.slot == SIZE_MAX ? nullptr : acts_.data() + L.slot * batch;
    L.x = cur;
    float* p = params_.data();
    switch (L.spec.kind) {
      case LayerKind::dense:
        ops::dense_fwd(cx_, cur, p + L.w, L.spec.bias ? p + L.b : nullptr, own, batch, L.in, L.out);
        cur_w = own;
        break;
      case LayerKind::act:
        if (own) {
          mem_copy(cx_.device(), own, cx_.device(), cur, n * sizeof(float), cx_.stream());
          cur_w = own;
        }
        ops::act_fwd(cx_, L.spec.act, L.spec.slope, cur_w, n);
        break;
      case LayerKind::dropout:
        if (train && L.spec.p > 0) {
          ops::dropout(cx_, L.spec.p, seed_, dropout_stream(step, l), cur, own, n, first_element(L.out));
          cur_w = own;
        }  // else the identity: cur passes through
        break;
      case LayerKind::batchnorm: {
        float* st = state_.data() + L.run;
        float* sv = stats_.data() + L.stat;
        if (train) {
          const BnSync sync = comm_ ? bn_sync() : BnSync{};
          ops::bn_fwd_train(cx_, cur, own, p + L.w, p + L.b, sv, sv + L.out, st, st + L.out, L.spec.momentum,
                            L.spec.eps, batch, L.out, comm_ ? &sync : nullptr);
        }
        else
          ops::bn_fwd_infer(cx_, cur, own, p + L.w, p + L.b, st, st + L.out, sv, sv + L.out, L.spec.eps, batch,
                            L.out);
        cur_w = own;
        break;
      }
    }
    cur = cur_w ? cur_w : cur;
    L.y = cur;
  }
  // Last layer is dense. A zero base (the trainer's decoder: decode_rows adds the neutral model) is skipped:
  // adding +0 changes no value but the sign of a -0, which every later use (base + scale x out) maps to
  // the same result, and it was a full pass over batch x 5G values.
  if (arch_.residual && !base_zero_) ops::add_rows(cx_, cur_w, base_.data(), batch, out_features());
  return cur;
}

BnSync Sequential::bn_sync() {
  size_t widest = 0;
  for (const Layer& L : layers_)
    if (L.spec.kind == LayerKind::batchnorm) widest = std::max(widest, size_t(L.out));
  if (sync_.size() < 2 * widest) sync_ = Buffer<float>(cx_, 2 * widest);
  BnSync s;
  Comm* comm = comm_;
  Context& cx = cx_;
  s.sum = [comm, &cx](float* p, size_t n) { comm->allreduce_sum(cx, p, n); };
  s.rows = batch_ * comm_->size();
  s.scratch = sync_.data();
  return s;
}

uint64_t Sequential::first_element(int cols) const {
  return comm_ ? uint64_t(comm_->rank()) * uint64_t(batch_) * uint64_t(cols) : 0;
}

bool Sequential::has_batchnorm() const {
  for (const Layer& L : layers_)
    if (L.spec.kind == LayerKind::batchnorm) return true;
  return false;
}

// The cotangent as a buffer we may overwrite: the caller's v_out is copied once, ours is used as is.
float* Sequential::writable_v(const float* v, size_t n, int& which) {
  if (which >= 0) return v_[which].data();
  v_[0].resize(n);
  mem_copy(cx_.device(), v_[0].data(), cx_.device(), v, n * sizeof(float), cx_.stream());
  which = 0;
  return v_[0].data();
}

const float* Sequential::backward(const float* v_out, bool need_input_grad) {
  CUGMM_REQUIRE(batch_ > 0, "backward before forward");
  const bool train = mode_ == Mode::train;
  const int B = batch_;
  // Layers before the first one with parameters only matter for the input gradient.
  size_t stop = 0;
  if (!need_input_grad)
    while (stop < layers_.size() && layers_[stop].spec.kind != LayerKind::dense &&
           layers_[stop].spec.kind != LayerKind::batchnorm)
      ++stop;
  const float* v = v_out;
  int which = -1;  // which of v_ holds v; -1: the caller's buffer
  float* p = params_.data();
  float* g = grads_.data();
  for (size_t l = layers_.size(); l-- > stop;) {
    Layer& L = layers_[l];
    size_t n = size_t(B) * L.out;
    bool want_vx = l > 0 || need_input_grad;
    int other = which == 0 ? 1 : 0;
    switch (L.spec.kind) {
      case LayerKind::dense: {
        if (want_vx) v_[other].resize(size_t(B) * L.in);
        const bool hooked = hook_ && hook_->takes(l);
        if (hooked) hook_->take(l, L.x, v, B, L.in, L.out);
        ops::dense_bwd(cx_, L.x, p + L.w, v, hooked ? nullptr : g + L.w,
                       L.spec.bias && !hooked ? g + L.b : nullptr, want_vx ? v_[other].data() : nullptr, B, L.in,
                       L.out);
        if (hook_ && !hooked) {
          hook_->ready(L.w, size_t(L.in) * L.out);
          if (L.spec.bias) hook_->ready(L.b, size_t(L.out));
        }
        if (want_vx) {
          v = v_[other].data();
          which = other;
        }
        break;
      }
      case LayerKind::act: {
        float* vw = writable_v(v, n, which);
        ops::act_bwd(cx_, L.spec.act, L.spec.slope, L.y, vw, n);
        v = vw;
        break;
      }
      case LayerKind::dropout:
        if (train && L.spec.p > 0) {
          float* vw = writable_v(v, n, which);
          ops::dropout(cx_, L.spec.p, seed_, dropout_stream(step_, l), vw, vw, n, first_element(L.out));
          v = vw;
        }
        break;
      case LayerKind::batchnorm: {
        float* vx = nullptr;
        if (want_vx) {
          v_[other].resize(n);
          vx = v_[other].data();
        }
        const float* sv = stats_.data() + L.stat;
        const BnSync sync = comm_ && train ? bn_sync() : BnSync{};
        ops::bn_bwd(cx_, train, L.x, v, p + L.w, sv, sv + L.out, vx, g + L.w, g + L.b, B, L.out,
                    comm_ && train ? &sync : nullptr);
        if (hook_) {
          hook_->ready(L.w, size_t(L.out));
          hook_->ready(L.b, size_t(L.out));
        }
        if (want_vx) {
          v = vx;
          which = other;
        }
        break;
      }
    }
  }
  if (!need_input_grad) return nullptr;
  // A network of parameter-free layers that never touched v: hand back a copy, not the caller's buffer.
  if (which < 0) return writable_v(v, size_t(B) * arch_.in, which);
  return v;
}

std::vector<Sequential::DenseLayer> Sequential::dense_layers() const {
  std::vector<DenseLayer> d;
  for (size_t l = 0; l < layers_.size(); ++l) {
    const Layer& L = layers_[l];
    if (L.spec.kind == LayerKind::dense) d.push_back({l, L.in, L.out, L.w, L.spec.bias ? L.b : SIZE_MAX});
  }
  return d;
}

std::vector<AdamSegment> Sequential::adam_segments() const {
  std::vector<AdamSegment> s;
  for (const ParamTensor& t : tensors_) s.push_back({t.offset, t.offset + t.size, t.lr_scale, t.wd});
  return s;
}

double Sequential::l2_penalty() const {
  double s = 0;
  for (const ParamTensor& t : tensors_)
    if (t.wd > 0) s += 0.5 * t.wd * ops::sum_squares(cx_, params_.data() + t.offset, t.size);
  return s;
}

void Sequential::save(Checkpoint& ck, const std::string& prefix) const {
  ck.meta[prefix + "arch"] = arch_.to_json();
  ck.meta[prefix + "seed"] = seed_;
  ck.put_f32(prefix + "params", params_);  // references: written from the buffers by ck.save()
  ck.put_f32(prefix + "state", state_);
  if (arch_.residual) ck.put_f32(prefix + "base", base_);
}

void Sequential::load(const Checkpoint& ck, const std::string& prefix) {
  if (!ck.meta.contains(prefix + "arch"))
    throw InputError(ck.source, prefix + "arch", "the checkpoint holds no network '" + prefix + "'");
  const nlohmann::json& theirs = ck.meta[prefix + "arch"];
  if (theirs != arch_.to_json())
    throw InputError(ck.source, prefix + "arch",
                     "architecture mismatch: the checkpoint has " + theirs.dump() + ", this network is " +
                         arch_.to_json().dump());
  ck.read_f32(prefix + "params", params_);
  ck.read_f32(prefix + "state", state_);
  if (arch_.residual) base_.upload(ck.get_f32(prefix + "base", size_t(out_features())));
  seed_ = io::json_count(ck.meta, (prefix + "seed").c_str(), UINT64_MAX, ck.source, prefix + "seed");
}

}  // namespace cugmm::nn
