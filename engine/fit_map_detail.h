// Internals of engine/fit_map.cpp shared with its input and output files (not an API).
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "engine/fit_map.h"

namespace cugmm::fit_detail {

inline std::string name_or(const std::string& path, const char* fallback) { return path.empty() ? fallback : path; }

// Every check of FitMapInputs against the map (InputError naming the file).
void validate_inputs(const FitMapInputs& in, const FitMapOptions& opt);

// The map times the mask (the map itself without one).
std::vector<float> masked(const io::Image& map, const std::vector<float>& mask);

// The automatic threshold (FitMapOptions::threshold) over the voxels inside the mask.
double auto_threshold(const std::vector<float>& mm, const std::vector<float>& mask);

// Voxels above the threshold inside the mask, and their summed density (the mass to share out).
struct AboveThreshold {
  std::vector<size_t> voxels;
  double mass = 0;
};
AboveThreshold above_threshold(const std::vector<float>& mm, const std::vector<float>& mask, double threshold);

// The width bounds of a round at resolution res (FitMapOptions).
inline double target_width(double res) { return 0.225 * res; }
double min_width(const FitMapOptions& opt, double pixel, double res);
double max_width(double pixel, double res);

// The options that change the result (every FitMapOptions field but paths, threads and the checkpoint),
// by name; a threshold left automatic (NaN) is null. fit.json and the checkpoint key record them.
nlohmann::json tuning_json(const FitMapOptions& opt);

// Adam's state within one round (engine/fit_map.cpp's run_adam): empty `history` is a round not started.
struct AdamState {
  std::vector<float> m, v;        // 5 G moments, parameter groups x, y, z, amplitude, width
  std::vector<double> history;    // the loss at each step so far (the step count is its size)
  double a_ref = 0;               // the round's mean amplitude at its start (the amplitude step's scale)
};

// What a fit needs to continue where it stopped (engine/fit_map_checkpoint.cpp).
struct FitState {
  int round = 0;                  // the round under way (0-based); adam.history empty: not started yet
  io::GaussianModel model;        // after the rounds before and adam.history.size() steps of `round`
  AdamState adam;
  std::vector<FitRound> rounds;   // the completed rounds' records
  long dropped_by_mask = 0;
  double round_seconds = 0;       // time spent in `round` so far
  double seconds = 0;             // time spent in the whole fit so far
};

// The checkpoint key of a fit: its inputs' content (grid, pixel size, size and CRC-32 of the values),
// tuning_json(opt) and the device.
nlohmann::json checkpoint_key(const FitMapInputs& in, const FitMapOptions& opt, const std::string& device);

// Atomic (nn/checkpoint.h). `rounds`: the fit's round count, recorded so a load can check `round`.
void save_fit_state(const std::string& path, const nlohmann::json& key, int rounds, const FitState& s);

// The state in `path` when the file exists, is whole and was written for `key` and a fit of `rounds`
// rounds; otherwise nullopt, after a warning that names the file and says why it is not used (damaged,
// or another fit's: which input or option differs).
std::optional<FitState> load_fit_state(const std::string& path, const nlohmann::json& key, int rounds);

}  // namespace cugmm::fit_detail
