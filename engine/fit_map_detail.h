// Internals of engine/fit_map.cpp shared with its input and output files (not an API).
#pragma once
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

}  // namespace cugmm::fit_detail
