// Ground-truth data sets made independently of the engine (issue 12): particles of a heterogeneous system
// (engine/hetero_system.h) imaged through the simulator's own path (atoms -> band-limited voxel maps ->
// Fourier-slice projection, engine/slice_projector.h) -> per-particle scale -> CTF -> noise, with the
// poses a consensus refinement would give (the true ones perturbed), written as RELION files.
//
// SNR: the mean over (non-junk) particles of the whole-box variance of the noise-free, CTF-modulated,
// scaled image, over the per-pixel variance of the noise. Coloured noise (noise_bfactor > 0) is white noise
// whose amplitude falls as exp(-B |k|^2 / 4), scaled to the same per-pixel variance.
//
// Files in the output directory (NAME = options.name):
//   NAME.mrcs, NAME.star     the particles (RELION 3.1; rlnRandomSubset 1/2 alternating; the STAR poses are
//                            the perturbed ones; no truth in the STAR file)
//   NAME_truth.csv           one row per particle, in STAR order: index, one column per motion (its state:
//                            degrees, Å, or 0/1), junk (1 = no particle in the image), scale, the true
//                            rot/tilt/psi (degrees) and origin_x/origin_y (Å), the pose error (degrees, the
//                            geodesic angle between true and STAR rotation), the shift error (Å)
//   consensus.mrc, consensus_half1.mrc, consensus_half2.mrc
//                            a reconstruction of the particles with the STAR poses (a user's consensus map)
//   true_state_NNN.mrc       with true_maps > 0: the true map of evenly spaced states (true_states.csv)
//   simulation.json          every option, the system, the noise level, the realised pose errors
// The STAR file is written last: a directory with it is complete.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "engine/hetero_system.h"
#include "engine/particle_batch.h"
#include "io/star.h"
#include "kernels/ctf.h"

namespace cugmm {

struct TruthSimOptions {
  std::string name = "particles";
  int count = 2000;
  int box = 64;
  double pixel = 3.0;             // Å
  double snr = 0.05;              // <= 0: no noise
  double noise_bfactor = 0;       // Å^2; 0 = white
  double scale_sd = 0.1;          // per-particle scale exp(N(0, sd^2))
  double junk_fraction = 0;       // images of noise alone
  bool ctf = true;
  double defocus_min = 10000, defocus_max = 25000;  // Å, mean defocus, uniform
  double astigmatism = 500;       // Å, |dU - dV| uniform in [0, astigmatism]
  double bfactor = 50;            // Å^2, the CTF envelope (written as rlnCtfBfactor when > 0)
  int optics_groups = 1;          // particle i in group i % groups; odd groups a 200 kV, Cs 2.0 mm scope
  double pose_error_deg = 2.0;    // geodesic RMS of the STAR rotations' error
  double shift_error_px = 0.5;    // standard deviation per axis of the STAR origins' error
  double max_shift_px = 3;        // true origins uniform in +-max_shift
  uint64_t seed = 1;
  int oversample = 2;             // atom maps rendered this much finer, then Fourier-cropped
  bool consensus = true;          // reconstruct the consensus map
  int true_maps = 0;              // true maps of this many states (evenly spaced along every motion)
};

struct SimulatedTruth {
  std::string star, stack, truth_csv, consensus;
  std::vector<std::string> motion_names;
  std::vector<std::vector<double>> state;   // particle x motion
  std::vector<char> junk;
  std::vector<double> scale;
  double noise_sigma = 0;                   // per-pixel noise standard deviation
  double pose_error_rms_deg = 0, shift_error_rms_px = 0;  // realised
};

// The images (count x box^2, STAR order) are returned in `images` when it is not null (the oracle
// reference uses them without reading the stack back).
SimulatedTruth simulate_system(const HeteroSystem& system, const TruthSimOptions& opt, const std::string& out_dir,
                               std::vector<float>* images = nullptr);

// The same random draws simulate_system makes for particle i (views, CTFs, states, errors), so the oracle
// reference can rebuild exactly what each image shows. Deterministic in (seed, i).
struct ParticleTruth {
  std::vector<double> state;
  bool junk = false;
  double scale = 1;
  Mat3<double> view, star_view;  // true and STAR rotation
  double origin_x = 0, origin_y = 0, star_origin_x = 0, star_origin_y = 0;  // Å
  CtfParams ctf;
  int optics_group = 0;
};
ParticleTruth draw_particle(const HeteroSystem& system, const TruthSimOptions& opt, size_t i);

// RMS over the particles (STAR order) of the geodesic angle (degrees) and of the shift (pixels) between
// `poses` and the truth of the simulation made with (system, opt).
struct PoseErrors {
  double deg = 0, px = 0;
};
PoseErrors pose_errors(const HeteroSystem& system, const TruthSimOptions& opt, const std::vector<ParticlePose>& poses);

// Issue 14 item 4's pose-refinement set: `count` particles at box 128, 1.5 Å/px, SNR 0.1, the STAR poses off by
// 3 degrees geodesic RMS and 1.5 px per axis, no consensus map, seed 3 (bench_refine_pose, test_refine_pose_score).
TruthSimOptions pose_refinement_set(int count);

// RELION 3.1's data_optics block for simulated images: one row per group, with each group's scope.
io::StarBlock optics_block(double pixel, int box, const std::vector<CtfParams>& groups);

// The coloured-noise amplitude filter exp(-B |k|^2 / 4) on the half-plane (box x (box/2 + 1)), and the mean
// of its square over the full plane (the factor by which it lowers a white noise's variance).
std::vector<float> noise_filter(int box, double pixel, double bfactor, double& mean_square);

}  // namespace cugmm
