// How far float rounding alone can move a result: the bound on how closely another backend can match the
// CPU oracle. At rings where the model's power is many orders below its peak (wide Gaussians near Nyquist),
// a ring's FRC is set by rounding in the splat and the FFT: a relative change of 1e-6 in the parameters (a few
// float ulps) moves the last rings of a box-32 particle by 1e-2 on the CPU alone, and the score by 7e-4
// (measured). The CUDA backend adds in another order (float atomics in the splat, cuFFT), so comparing it with a
// fixed tolerance at every ring fails for reasons that are not bugs. Instead each test runs the oracle a second
// time on jittered parameters and allows, per quantity, max(the fixed tolerance, kFactor x the oracle's own
// change). Where the result is well conditioned (the low and middle rings, the weighted scores) that change is
// ~1e-7 and the fixed tolerance rules, so a wrong CTF, ring or gradient still fails.
#pragma once

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

namespace cugmm::test {

constexpr double kJitter = 1e-6;  // relative, per parameter
constexpr double kFactor = 5;     // GPU-vs-CPU differences measured up to ~2x the oracle's change under jitter

inline std::vector<float> jittered(std::vector<float> v, unsigned seed = 1) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(-kJitter, kJitter);
  for (float& x : v) x = float(double(x) * (1 + u(rng)));
  return v;
}

inline double max_change(const std::vector<float>& a, const std::vector<float>& b) {
  double d = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) d = std::max(d, std::fabs(double(a[i]) - b[i]));
  return d;
}

// One tolerance for a whole quantity (scores, a gradient vector).
inline double tolerance(double fixed, const std::vector<float>& oracle, const std::vector<float>& oracle_jittered) {
  return std::max(fixed, kFactor * max_change(oracle, oracle_jittered));
}

// One tolerance per ring for FRC curves stored particle-major (count x rings): each ring's largest change.
inline std::vector<double> ring_tolerances(double fixed, const std::vector<float>& frc,
                                           const std::vector<float>& frc_jittered, size_t rings) {
  std::vector<double> t(rings, fixed);
  for (size_t i = 0; i < frc.size() && i < frc_jittered.size(); ++i)
    t[i % rings] = std::max(t[i % rings], kFactor * std::fabs(double(frc[i]) - frc_jittered[i]));
  return t;
}

}  // namespace cugmm::test
