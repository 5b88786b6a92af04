// What every benchmark shares: untimed warm-up then timed repetitions, the machine's description, and
// JSON output (nlohmann::json) next to the printed figures.
#pragma once
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "engine/particle_cache.h"
#include "io/model.h"

namespace cugmm::bench {

// Runs fn `warmup` times untimed, then repeatedly until at least `min_seconds` have passed (and at least
// `min_reps` times); returns seconds per call (the median of the timed calls).
double time_per_call(const std::function<void()>& fn, int warmup = 2, double min_seconds = 1.0, int min_reps = 3);

// CPU model, core count, the BLAS that runs (build and core type), and the GPU when present.
nlohmann::json machine();

// Writes `doc` to `path` (pretty) and says where.
void write_json(const std::string& path, const nlohmann::json& doc);

// G unit Gaussians of width 1.5 px scattered (Philox) in the middle of a box: the training benchmarks' model.
io::GaussianModel random_model(int G, int box, double pixel);

// `particles` particles simulated from random_model(G, box, 2 Å/px) at SNR 0.1 (CPU) into dir, and their
// cache: the training benchmarks' data set; seconds: the time both took.
struct RandomSet {
  io::GaussianModel model;
  ParticleCache cache;
  double seconds;
};
RandomSet random_set(int G, int box, int particles, const std::string& dir);

// Peak resident memory of this process (VmHWM), bytes.
size_t peak_rss_bytes();

}  // namespace cugmm::bench
