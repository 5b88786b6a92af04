#include "nn/adam.h"

#include <cmath>
#include <cstdint>

#include "core/error.h"
#include "io/json_fields.h"
#include "nn/checkpoint.h"

namespace cugmm::nn {

Adam::Adam(Sequential& net, const AdamConfig& cfg)
    : net_(net), cfg_(cfg), segs_(net.adam_segments()), m32_(net.context()), v32_(net.context()),
      m16_(net.context()), v16_(net.context()) {
  CUGMM_REQUIRE(cfg.lr >= 0 && cfg.beta1 >= 0 && cfg.beta1 < 1 && cfg.beta2 >= 0 && cfg.beta2 < 1 && cfg.eps > 0,
                "Adam: lr >= 0, 0 <= beta < 1 and eps > 0 are required");
  size_t n = net.num_params();
  if (cfg.moments == Moments::f32) {
    m32_.resize(n); v32_.resize(n);
    m32_.zero(); v32_.zero();
  } else {
    m16_.resize(n); v16_.resize(n);
    m16_.zero(); v16_.zero();  // bf16 zero is all-zero bits
  }
}

void Adam::step() {
  ++t_;
  AdamScalars s;
  s.lr = cfg_.lr;
  s.beta1 = cfg_.beta1;
  s.beta2 = cfg_.beta2;
  s.eps = cfg_.eps;
  s.bc1 = static_cast<float>(1.0 - std::pow(double(cfg_.beta1), double(t_)));
  s.bc2 = static_cast<float>(1.0 - std::pow(double(cfg_.beta2), double(t_)));
  s.wd = 0;
  s.grad_scale = cfg_.grad_scale;
  last_norm_ = 0;
  if (cfg_.clip_norm > 0) {
    last_norm_ = cfg_.grad_scale *
                 static_cast<float>(std::sqrt(ops::sum_squares(net_.context(), net_.grads(), net_.num_params())));
    if (!std::isfinite(last_norm_))
      throw Error("the " + cfg_.name + "'s gradient is not finite (norm " + std::to_string(last_norm_) + ", Adam step " +
                  std::to_string(t_) + ")");
    if (last_norm_ > cfg_.clip_norm) s.grad_scale = cfg_.grad_scale * cfg_.clip_norm / last_norm_;
  }
  const size_t skipped =
      cfg_.moments == Moments::f32
          ? ops::adam_f32(net_.context(), net_.params(), net_.grads(), m32_.data(), v32_.data(), segs_, s)
          : ops::adam_bf16(net_.context(), net_.params(), net_.grads(), m16_.data(), v16_.data(), segs_, s, cfg_.seed,
                           static_cast<uint64_t>(t_));
  if (skipped)
    throw Error("the " + cfg_.name + "'s gradient is not finite (" + std::to_string(skipped) + " of " +
                std::to_string(net_.num_params()) + " elements, Adam step " + std::to_string(t_) +
                "; not applied, the weights stay finite)");
}

void Adam::save(Checkpoint& ck, const std::string& prefix) const {
  ck.meta[prefix + "adam"] = {{"lr", cfg_.lr}, {"beta1", cfg_.beta1}, {"beta2", cfg_.beta2}, {"eps", cfg_.eps},
                              {"clip_norm", cfg_.clip_norm}, {"moments", cfg_.moments == Moments::f32 ? "f32" : "bf16"},
                              {"seed", cfg_.seed}, {"t", t_}};
  if (cfg_.moments == Moments::f32) {
    ck.put_f32(prefix + "adam.m", m32_);  // references: written from the buffers by ck.save()
    ck.put_f32(prefix + "adam.v", v32_);
  } else {
    ck.put_u16(prefix + "adam.m", m16_);
    ck.put_u16(prefix + "adam.v", v16_);
  }
}

void Adam::load(const Checkpoint& ck, const std::string& prefix) {
  if (!ck.meta.contains(prefix + "adam"))
    throw InputError(ck.source, prefix + "adam", "the checkpoint holds no optimizer state '" + prefix + "adam'");
  const auto& a = ck.meta[prefix + "adam"];
  std::string mom = a.at("moments").get<std::string>();
  std::string want = cfg_.moments == Moments::f32 ? "f32" : "bf16";
  if (mom != want)
    throw InputError(ck.source, prefix + "adam", "optimizer moments are " + mom + ", this optimizer keeps " + want);
  if (cfg_.moments == Moments::f32) {
    ck.read_f32(prefix + "adam.m", m32_);
    ck.read_f32(prefix + "adam.v", v32_);
  } else {
    ck.read_u16(prefix + "adam.m", m16_);
    ck.read_u16(prefix + "adam.v", v16_);
  }
  // Checked before conversion (io/json_fields.h): get<int64_t>() of 1e30 is undefined.
  t_ = int64_t(io::json_count(a, "t", uint64_t(INT64_MAX), ck.source, prefix + "adam"));
  cfg_.seed = io::json_count(a, "seed", UINT64_MAX, ck.source, prefix + "adam");
}

}  // namespace cugmm::nn
