// Per-particle pose refinement against each particle's own model (issue 14 item 4; `cugmm refine-pose`):
// the three angles and two shifts of every particle moved to maximise the training score (engine/training_score.h)
// of the particle against its parameters, coarse to fine in resolution.
//
// For each particle, per band of the schedule (maxres coarse to fine, minres fixed):
// - optionally first (first band only) a local search: the 26 rotations exp([w]x) A with w in
//   {-d, 0, d}^3 (d = search_deg) around the current pose, the best kept (or the current one), then the 8
//   shifts {-s, 0, s}^2 without 0 (s = search_px) likewise;
// - then quasi-Newton ascent with the projector's pose gradient g = d score / d (w, origin): in the local
//   coordinates (w radians, origin Å) about the current pose, the step alpha H g (H: a per-particle BFGS
//   estimate of the inverse Hessian of -score, starting as the diagonal that makes the first step
//   start_deg along the rotation gradient and start_px along the shift gradient, both halved at each later
//   band; each step at most 4 times those), the rotation composed as A <- exp([Δw]x) A. A step is kept
//   only when the score rises and the pose stays within max_change of the input pose; otherwise alpha is
//   cut to 0.3 alpha. The score never falls, so the ascent cannot diverge; a particle stops when its step
//   is below the tolerances or after `iterations` tries.
// The score's ring weights (options.weight_model) are re-estimated over every particle at its current pose
// before each band, so the stages run band by band over the whole set (not particle by particle).
// The rotation is kept as a matrix and turned into RELION Euler angles at the end (kernels/geometry.h).
// Batched: one training_score call per step for the batch's particles still moving, on the projector's device.
//
// Measured (noise-free, box 40 at 4 Å, 3 degrees / 1.5 px perturbation, bands 24,16,8): 47 of 48 particles
// within 0.8 degrees and 0.1 Å; the BFGS step replaced a normalised-gradient trust region that left them at
// 0.2-1 degree after 40 steps per band. One whose shift was off by 21 Å (5 px, beyond half a period of the
// 24 Å band's finest ring) climbed to a wrong optimum: max_change bounds such runaways.
#pragma once
#include <functional>
#include <vector>

#include "core/context.h"
#include "engine/particle_batch.h"
#include "engine/particle_cache.h"

namespace cugmm {

struct PoseRefineOptions {
  std::vector<double> bands = {20, 12, 8, 6, 4, 3};  // maxres (Å) of each stage, coarse to fine (to Nyquist at
                                                    // 1.5 Å/px; finer than Nyquist: clamped, one stage)
  double minres = kDefaultMinRes;           // Å, every stage
  double search_deg = 0, search_px = 0;     // local search step; 0 and 0: none
  int iterations = 40;                      // gradient steps per band (at most)
  double start_deg = 1.0, start_px = 0.5;   // first band's step radii; halved at each later band
  double tol_deg = 0.01, tol_px = 0.005;    // a particle stops when its step is below both
  double max_change_deg = 10, max_change_px = 5;  // farthest a pose may move from the input pose
  int batch = 64;
  CtfChoice ctf = CtfChoice::automatic;
  // The model the score's ring weights are estimated against (one 5G row; engine/ring_weights.h, as training
  // weighs its rings), over every particle at its input pose on the finest band; each stage keeps the weights
  // of its own rings. Empty: the plain FRC mean over each band's rings.
  std::vector<float> weight_model;
  // false: the shifts alone (the rotation part of every gradient is dropped and the local search keeps the
  // rotation): what `train` does against the neutral model before its features (TrainConfig::align_shifts).
  bool rotations = true;
};

// Fills rows (n x 5G, engine/projector.h layout, in Å on the cache's grid) with the parameters of the
// particles index[0..n) (cache order): each particle's own decoded model.
using ParticleParams = std::function<void(const size_t* index, int n, float* rows)>;

struct PoseRefineResult {
  std::vector<ParticlePose> before, after;  // cache order
  std::vector<float> score_before, score_after;  // at the finest band
  std::vector<double> angle_change_deg, shift_change_a;
  std::vector<float> ring_weights;  // the finest band's (sum 1); empty: the plain FRC
};

// The bands must be at most the cache's resolution (finer ones are refused) and coarse to fine.
PoseRefineResult refine_poses(Context& cx, const ParticleCache& cache, int gaussians, const ParticleParams& params,
                              const PoseRefineOptions& options);

// "20,12,8" -> bands (Å), checked: positive, strictly decreasing. Error naming `option`.
std::vector<double> parse_bands(const std::string& text, const std::string& option);

}  // namespace cugmm
