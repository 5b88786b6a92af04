// fit-map's checkpoint (FitMapOptions::checkpoint): the state of a fit after a round or a check, keyed to
// what the fit's result depends on, in nn/checkpoint.h's format (atomic, CRC-32).
#include <cmath>
#include <filesystem>
#include <utility>

#include "core/error.h"
#include "core/log.h"
#include "engine/fit_map_detail.h"
#include "io/json_fields.h"
#include "nn/checkpoint.h"

namespace cugmm::fit_detail {

namespace {

constexpr const char* kKind = "cugmm fit-map state";

// A volume's identity: its grid, pixel size and values (size and CRC-32).
nlohmann::json values_key(const std::vector<float>& v) {
  return {{"values", v.size()}, {"crc32", nn::crc32(0, v.data(), v.size() * sizeof(float))}};
}

nlohmann::json image_key(const io::Image& im) {
  nlohmann::json k = values_key(im.data);
  k["grid"] = {im.nx, im.ny, im.nz};
  k["pixel_size"] = im.pixel_size;
  return k;
}

nlohmann::json curve_to_json(const FscCurve& c) {
  return {{"box", c.box}, {"pixel_size", c.pixel_size}, {"value", c.value}, {"count", c.count}};
}

FscCurve curve_from_json(const nlohmann::json& j) {
  FscCurve c;
  c.box = j.at("box");
  c.pixel_size = j.at("pixel_size");
  c.value = j.at("value").get<std::vector<double>>();
  c.count = j.at("count").get<std::vector<long>>();
  return c;
}

// Why `saved` is not `now`: the first input that differs, or every option that does.
std::string key_difference(const nlohmann::json& saved, const nlohmann::json& now) {
  if (!saved.is_object() || saved.value("kind", "") != kKind) return "it is not a fit-map checkpoint";
  for (const auto& [what, noun] : {std::pair<const char*, const char*>{"map", "the map"},
                                   {"half_maps", "the half-map pair"}, {"mask", "the mask"},
                                   {"init", "the --init model"}})
    if (saved.value(what, nlohmann::json()) != now.at(what)) return std::string(noun) + " differs from this run's";
  if (saved.value("device", "") != now.at("device"))
    return "it was written on " + saved.value("device", std::string("?")) + ", this run is on " +
           now.at("device").get<std::string>();
  std::string opts;
  const nlohmann::json so = saved.value("options", nlohmann::json::object());
  for (const auto& [name, value] : now.at("options").items())
    if (so.value(name, nlohmann::json()) != value)
      opts += (opts.empty() ? "" : ", ") + name + " " + so.value(name, nlohmann::json()).dump() + " there, " +
              value.dump() + " here";
  return opts.empty() ? "its key differs from this run's" : "its options differ: " + opts;
}

}  // namespace

nlohmann::json tuning_json(const FitMapOptions& o) {
  return {{"res", o.res}, {"threshold", std::isfinite(o.threshold) ? nlohmann::json(o.threshold) : nlohmann::json()},
          {"ngauss", o.ngauss}, {"seed", o.seed}, {"start_gaussians", o.start_gaussians},
          {"start_res", o.start_res}, {"min_rounds", o.min_rounds}, {"round_iterations", o.round_iterations},
          {"final_iterations", o.final_iterations}, {"check_every", o.check_every},
          {"converge_tol", o.converge_tol}, {"lr_position", o.lr_position}, {"lr_width", o.lr_width},
          {"lr_amplitude", o.lr_amplitude}, {"min_width_pixels", o.min_width_pixels}, {"whiten", o.whiten},
          {"stop_fsc", o.stop_fsc}, {"mask_keep", o.mask_keep}};
}

nlohmann::json checkpoint_key(const FitMapInputs& in, const FitMapOptions& opt, const std::string& device) {
  nlohmann::json k;
  k["kind"] = kKind;
  k["map"] = image_key(in.map);
  k["half_maps"] = in.half1 ? nlohmann::json::array({image_key(*in.half1), image_key(*in.half2)}) : nlohmann::json();
  k["mask"] = in.mask.empty() ? nlohmann::json() : values_key(in.mask);
  if (in.init) {
    const io::GaussianModel& g = *in.init;
    nlohmann::json parts = nlohmann::json::array();
    for (const std::vector<float>* v : {&g.x, &g.y, &g.z, &g.amplitude, &g.width}) parts.push_back(values_key(*v));
    k["init"] = parts;
  } else {
    k["init"] = nullptr;
  }
  k["options"] = tuning_json(opt);
  k["device"] = device;
  return k;
}

void save_fit_state(const std::string& path, const nlohmann::json& key, int rounds, const FitState& s) {
  nn::Checkpoint ck;
  ck.meta["key"] = key;
  ck.meta["rounds_total"] = rounds;
  ck.meta["round"] = s.round;
  ck.meta["gaussians"] = s.model.size();
  ck.meta["box"] = s.model.box_size;
  ck.meta["pixel_size"] = s.model.pixel_size;
  ck.meta["history"] = s.adam.history;  // JSON doubles round-trip exactly
  ck.meta["a_ref"] = s.adam.a_ref;
  ck.meta["dropped_by_mask"] = s.dropped_by_mask;
  ck.meta["round_seconds"] = s.round_seconds;
  ck.meta["seconds"] = s.seconds;
  nlohmann::json done = nlohmann::json::array();
  for (const FitRound& fr : s.rounds)
    done.push_back({{"index", fr.index}, {"gaussians", fr.gaussians}, {"resolution", fr.resolution},
                    {"iterations", fr.iterations}, {"loss", fr.loss}, {"fsc", curve_to_json(fr.fsc)},
                    {"seconds", fr.seconds}});
  ck.meta["done"] = done;
  ck.put_f32("x", s.model.x);
  ck.put_f32("y", s.model.y);
  ck.put_f32("z", s.model.z);
  ck.put_f32("amplitude", s.model.amplitude);
  ck.put_f32("width", s.model.width);
  if (!s.adam.history.empty()) {
    ck.put_f32("adam.m", s.adam.m);
    ck.put_f32("adam.v", s.adam.v);
  }
  ck.save(path);
}

std::optional<FitState> load_fit_state(const std::string& path, const nlohmann::json& key, int rounds) {
  if (!std::filesystem::exists(path)) return std::nullopt;
  const std::string ignored = "; not resumed: the fit starts afresh (and replaces it)";
  try {
    nn::Checkpoint ck = nn::Checkpoint::load(path);
    const nlohmann::json& m = ck.meta;
    const nlohmann::json saved = m.value("key", nlohmann::json());
    if (saved != key) {
      log_warn("fit-map: " + path + " is another fit's checkpoint (" + key_difference(saved, key) + ")" + ignored);
      return std::nullopt;
    }
    // Integers checked before conversion (io/json_fields.h): get<int>() of 1e99 is undefined.
    auto count = [&](const nlohmann::json& o, const char* k, uint64_t max) { return io::json_count(o, k, max, path, k); };
    FitState s;
    s.round = int(count(m, "round", 1u << 20));
    const size_t g = count(m, "gaussians", 1ull << 32);
    if (count(m, "rounds_total", 1u << 20) != uint64_t(rounds) || s.round >= rounds)
      throw InputError(path, "", "round " + std::to_string(s.round) + " of " + m.at("rounds_total").dump() +
                                     " does not fit this fit's " + std::to_string(rounds) + " rounds");
    s.model.box_size = int(count(m, "box", 1u << 15));
    s.model.pixel_size = m.at("pixel_size");
    s.model.x = ck.get_f32("x", g);
    s.model.y = ck.get_f32("y", g);
    s.model.z = ck.get_f32("z", g);
    s.model.amplitude = ck.get_f32("amplitude", g);
    s.model.width = ck.get_f32("width", g);
    s.adam.history = m.at("history").get<std::vector<double>>();
    s.adam.a_ref = m.at("a_ref");
    if (!s.adam.history.empty()) {
      s.adam.m = ck.get_f32("adam.m", 5 * g);
      s.adam.v = ck.get_f32("adam.v", 5 * g);
    }
    s.dropped_by_mask = long(count(m, "dropped_by_mask", 1ull << 40));
    s.round_seconds = m.at("round_seconds");
    s.seconds = m.at("seconds");
    for (const nlohmann::json& fr : m.at("done"))
      s.rounds.push_back({int(count(fr, "index", 1u << 20)), long(count(fr, "gaussians", 1ull << 32)), fr.at("resolution"),
                          int(count(fr, "iterations", 1u << 30)), fr.at("loss"),
                          curve_from_json(fr.at("fsc")), fr.at("seconds")});
    if (int(s.rounds.size()) != s.round)
      throw InputError(path, "", std::to_string(s.rounds.size()) + " rounds recorded before round " +
                                     std::to_string(s.round + 1));
    return s;
  } catch (const Error& e) {
    log_warn(std::string("fit-map: cannot resume: ") + e.what() + ignored);  // e names the file
  } catch (const nlohmann::json::exception& e) {
    log_warn("fit-map: cannot resume: " + path + ": its state is incomplete (" + e.what() + ")" + ignored);
  }
  return std::nullopt;
}

}  // namespace cugmm::fit_detail
