// Settings of the library API's jobs. Each constructor fills in the defaults `cugmm` uses for the same
// job (the engine's own settings structs are the one source), so a default-constructed TrainSettings
// trains exactly as `cugmm train` without options.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace cugmm {

// `cugmm train`'s options (README "train"); names follow them (--reg-width is reg_width, ...).
struct TrainSettings {
  TrainSettings();
  // Networks.
  int latent, hidden, depth;
  bool leaky;
  float dropout;
  // Optimiser and loss.
  float lr, l2, noise, reg_width, reg_mass, latent_reg;
  bool bf16_moments;
  int epochs, batch;
  double minres, maxres;            // Å (0: ring 1 / Nyquist)
  uint64_t seed;
  double val_fraction;
  // What may move: parameter kinds and Gaussians (0-based indices; empty: all).
  bool move_positions, move_amplitudes, move_widths;
  std::vector<int> movable_gaussians;
  std::string ctf;                  // "auto", "full", "flipped" or "none"
  std::string feature_precision;    // "fp16" or "fp32"
  int loss_every;                   // batches between loss read-backs
  float explode;                    // a batch loss above this is divergence
  int box;                          // train on particles Fourier-cropped to this box (0: their own)
  bool resume;                      // continue the run in the run directory from its checkpoint
};

// `cugmm fit-map`'s options (README "fit-map"): files by path, as the program reads them.
struct FitSettings {
  FitSettings();
  std::string map;                  // the consensus map (MRC); required
  std::string half1, half2;         // unfiltered half-maps (both or neither)
  std::string mask;                 // soft mask on the map's grid (optional)
  std::string init;                 // start from a native model or PDB/mmCIF atoms (optional)
  double res;                       // Å; 0: from the half-maps' FSC 0.143, else 3 pixels
  double threshold;                 // NaN: automatic
  long ngauss;                      // 0: from the volume above the threshold
  uint64_t seed;
};

// `cugmm analyze`'s core: PCA, clusters and trajectories of a run's latent points.
struct AnalysisSettings {
  int clusters = 3;                 // Gaussian-mixture components (0: none)
  int pcs = 2;                      // trajectories along this many principal components
  int frames = 10;                  // frames per trajectory, 5th to 95th percentile of the particles
  uint64_t seed = 1;                // of the clustering
};

}  // namespace cugmm
