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
  static TrainSettings paper();     // `--preset paper`: the published e2gmm recipe (plain FRC, ReLU, lr 1e-4, ...)
  // Networks.
  int latent, hidden, depth;
  bool leaky;
  float dropout;
  // Optimiser and loss.
  float lr, l2, noise, reg_width, reg_mass, latent_reg;
  bool l2_auto;                     // `--l2 auto` (the default): l2 = min(1e-3, 6 / training particles), set by the run;
                                    // false: l2 as given
  float lr_half_life;               // `--lr-half-life`: the learning rate halves every this many epochs (0: constant)
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
  // The score: `pooled`, one correlation over the band with each coefficient weighted by its ring's measured
  // inverse noise variance (`--loss white`, the default); else snr_weighted, the FRC's rings weighted by their
  // measured signal (`--loss snr`); else their plain mean (both false: `--loss frc`).
  bool pooled, snr_weighted;
  bool radial_gain;                 // with pooled: the neutral model times its measured per-ring gain (`--loss gain`)
  bool align_shifts;                // each particle's shifts aligned to the neutral model before the features
                                    // (false: `--no-align-shifts`; not with poses_from)
  int coarse_epochs;                // epochs scored on the coarse band first (0: none)
  double coarse_res;                // the coarse band's finest resolution, Å
  int positions_first;              // epochs in which only the positions move, then every kind move allows
  double position_unit;             // what a decoder output of 1 moves a centre by, Å (0: one pixel)
  bool rigid_free;                  // `--rigid remove`: the six rigid-body modes out of the decoder's positions
  int feature_pca;                  // `--feature-pca`: the encoder reads the features' top K principal components
                                    // (0: all 5G features)
  bool feature_pca_whiten;          // `--feature-pca-whiten`: each component at unit variance
  bool feature_noise_whiten;        // `--feature-whiten noise`: components by signal-to-noise (the features of
                                    // noise-only images as the noise covariance), not by variance
  std::string feature_noise_solver; // `--feature-whiten-solver`: "auto", "dense" or "streamed"
  bool feature_view_nuisance;       // with it, `--feature-whiten noise+view`: the features' view-dependent mean
                                    // counted as noise too
  bool feature_row_rms;             // `--feature-row-rms`: each particle's feature row scaled to unit RMS
  float input_dropout;              // `--input-dropout`: dropout on the encoder's input
  bool feature_split;               // `--feature-split`: features from the even half of the coefficients, the
                                    // score from the odd half
  bool encoder_reads_positions, encoder_reads_amplitudes, encoder_reads_widths;  // `--encoder-reads`: the
                                    // kinds whose feature columns the encoder reads (not with feature_pca)
  int warm_start;                   // `--warm-start`: epochs with the latent fixed to the top input components
                                    // first (0: none; below epochs, latent <= feature_pca, no fixed_latent)
  std::string symmetry;             // `--sym`: C1 (none), Cn, Dn, T, O, I, I1-I4; with no movable_gaussians the
                                    // first asymmetric unit moves
  int box;                          // train on particles Fourier-cropped to this box (0: their own)
  bool resume;                      // continue the run in the run directory from its checkpoint
  // Not part of the checkpoint's settings: what the run reads and writes besides.
  std::string poses_from;           // train with this particle file's poses, matched by rlnImageName ("": none)
  std::string fixed_latent;         // `--fixed-latent`: a latent.txt the decoder is trained on, the encoder
                                    // fitted to it ("": the encoder's points)
  std::string focus_mask;           // focused analysis: only the Gaussians in this mask (MRC) move ("": none)
  std::string subtract;             // with focus_mask: "neutral" (subtract the rest), "decoded" or "none"
  std::string decoded_run;          // subtract "decoded": the run whose decoder gives each particle's model
  bool recentre;                    // with subtraction: the mask's centre moved to the box centre
  std::string latent_estimate;      // latent.txt per particle: "encoder" or "posterior"
  int posterior_pairs;              // posterior: antithetic sample pairs per particle
  double posterior_width;           // posterior: proposal SD in units of the latent prior's
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

// `cugmm refine-pose`'s options (README "refine-pose"): each particle's pose refined against its own model.
struct PoseSettings {
  PoseSettings();
  std::vector<double> bands;        // maxres of each stage, Å, coarse to fine (`--bands`)
  double minres;                    // lowest resolution in the score, Å; NaN: a run's own (with one model: 100)
  double search_deg, search_px;     // a local grid search first (`--search DEG,PX`); 0 and 0: none
  double max_change_deg, max_change_px;  // no pose moves farther from the input's (`--max-change`)
  int iterations;                   // gradient steps per band (at most)
  int batch;                        // particles per batch
  // The score (`--loss`): "snr" (rings weighted by their signal measured at the current poses), "frc" (their
  // plain mean) or "" (snr; with a run, frc only when it trained with --loss frc).
  std::string loss;
  bool shifts_only;                 // the shifts alone, the angles kept (`--shifts-only`)
  std::string ctf;                  // with one model: "auto", "full", "flipped" or "none" (a run uses its own)
  // With a run: the particles' latent points (count x latent_dim, particle-file order; `--latent`); empty:
  // the run's encoder.
  std::vector<float> latent;
};

// `cugmm analyze`'s options (README "Analysing a trained run"); names follow them (--k is clusters, --axes
// axes, --no-reconstruct is reconstruct = false, ...), defaults are the program's.
struct AnalysisSettings {
  int clusters = 3;                 // Gaussian-mixture components (0: none), 0 to 50
  int pcs = 2;                      // trajectories along this many principal components, 0 to 64
  int frames = 10;                  // frames per trajectory, 5th to 95th percentile of the particles; 2 to 200
  uint64_t seed = 1;                // of the clustering
  std::vector<int> axes;            // also picture these two latent axes (1-based, e.g. {1, 3}); empty: none
  double arrow_scale = 1;           // motion arrows: the 5th-95th percentile motion times this (> 0)
  double min_arrow = 0.1;           // arrows shorter than this (Å, after scaling) are left out
  // Localised motions: the domain as a mask (MRC on the neutral model's grid) or as 0-based Gaussian indices
  // and ranges ("0-99,150", `--domain-gaussians`); one of them or neither.
  std::string mask, domain_gaussians;
  int local = 2;                    // localised directions written, 1 to 64 (with a domain)
  // A subset of the particles near a latent point (latent_dim numbers): within `radius` or the `nearest` K,
  // one of the two. Empty point: none.
  std::vector<double> point;
  double radius = 0;
  size_t nearest = 0;
  // A subset with coordinate in [range_lo, range_hi] along range_axis: "pcN" or, with a domain, "localN"
  // (`--range AXIS:LO:HI`). Empty axis: none.
  std::string range_axis;
  double range_lo = 0, range_hi = 0;
  bool reconstruct = true;          // each cluster's particles reconstructed from their images
  std::string root;                 // directory relative image paths of the run's particles are relative to
  std::string fold;                 // a --sym run: "copy-with-largest-motion" (also "") or "mean" (`--fold`)
};

}  // namespace cugmm
