#include "nn/layers.h"

#include "core/error.h"

namespace cugmm::nn {

namespace {
const char* const kKinds[] = {"dense", "act", "dropout", "batchnorm"};
const char* const kActs[] = {"identity", "relu", "leaky_relu", "sigmoid", "tanh"};
const char* const kInits[] = {"auto", "he_uniform", "glorot_uniform", "zero"};

template <size_t N>
int index_of(const char* const (&names)[N], const std::string& s, const char* what) {
  for (size_t i = 0; i < N; ++i)
    if (s == names[i]) return static_cast<int>(i);
  throw Error(std::string("unknown ") + what + " '" + s + "' in network description");
}
}  // namespace

const char* layer_kind_name(LayerKind k) { return kKinds[static_cast<int>(k)]; }
const char* act_name(Act a) { return kActs[static_cast<int>(a)]; }

nlohmann::json Arch::to_json() const {
  nlohmann::json j;
  j["in"] = in;
  j["residual"] = residual;
  j["layers"] = nlohmann::json::array();
  for (const LayerSpec& s : layers) {
    nlohmann::json l{{"kind", layer_kind_name(s.kind)}, {"lr_scale", s.lr_scale}};
    switch (s.kind) {
      case LayerKind::dense:
        l["out"] = s.out; l["bias"] = s.bias; l["init"] = kInits[static_cast<int>(s.init)];
        l["init_gain"] = s.init_gain; l["weight_decay"] = s.weight_decay;
        break;
      case LayerKind::act: l["act"] = act_name(s.act); l["slope"] = s.slope; break;
      case LayerKind::dropout: l["p"] = s.p; break;
      case LayerKind::batchnorm: l["eps"] = s.eps; l["momentum"] = s.momentum; break;
    }
    j["layers"].push_back(l);
  }
  return j;
}

namespace {

// A layer size in a network description, checked before conversion: get<int>() of 1e99 is undefined. A
// missing key is json's out_of_range, reported as malformed by from_json.
int size_field(const nlohmann::json& o, const char* key) {
  const nlohmann::json& v = o.at(key);
  if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > (int64_t(1) << 30))
    throw Error(std::string("malformed network description: '") + key + "' is " + v.dump() + ", not a layer size");
  return int(v.get<int64_t>());
}

}  // namespace

Arch Arch::from_json(const nlohmann::json& j) {
  try {
    Arch a;
    a.in = size_field(j, "in");
    a.residual = j.at("residual").get<bool>();
    for (const auto& l : j.at("layers")) {
      LayerSpec s;
      s.kind = static_cast<LayerKind>(index_of(kKinds, l.at("kind").get<std::string>(), "layer kind"));
      s.lr_scale = l.at("lr_scale").get<float>();
      switch (s.kind) {
        case LayerKind::dense:
          s.out = size_field(l, "out"); s.bias = l.at("bias").get<bool>();
          s.init = static_cast<Init>(index_of(kInits, l.at("init").get<std::string>(), "init"));
          s.init_gain = l.at("init_gain").get<float>(); s.weight_decay = l.at("weight_decay").get<float>();
          break;
        case LayerKind::act:
          s.act = static_cast<Act>(index_of(kActs, l.at("act").get<std::string>(), "activation"));
          s.slope = l.at("slope").get<float>();
          break;
        case LayerKind::dropout: s.p = l.at("p").get<float>(); break;
        case LayerKind::batchnorm: s.eps = l.at("eps").get<float>(); s.momentum = l.at("momentum").get<float>(); break;
      }
      a.layers.push_back(s);
    }
    return a;
  } catch (const nlohmann::json::exception& e) {
    throw Error(std::string("malformed network description: ") + e.what());
  }
}

}  // namespace cugmm::nn
