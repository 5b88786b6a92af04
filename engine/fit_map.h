// `cugmm fit-map`: the neutral Gaussian model of a consensus map (DESIGN §1 step 1, issue 11).
//
// Progressive fit: start with min(256, G) Gaussians at a coarse resolution (50 Å, or --res when coarser),
// seeded on voxels above the threshold weighted by density; each round runs Adam on the least-squares loss
// of engine/gaussian_fourier3d.h within the round's band (whitened per shell: FitMapOptions::whiten, a
// measured change from plain least squares) until it converges, drops Gaussians whose centre
// left the mask, then doubles G by splitting the Gaussians with the largest real-space residual, and
// raises the resolution geometrically; the last round is at --res with G = --ngauss and runs until the
// stop rule holds or its iteration budget is spent.
//
// Stop rule (on the FSC between the rendered model and the map, both masked): >= 0.95 in every shell
// below --res for a noise-free map; with half-maps >= 0.95 C_ref, C_ref = sqrt(2F / (1 + F)).
//
// Documented defaults (FitMapOptions): see each field.
#pragma once
#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "core/context.h"
#include "engine/fsc.h"
#include "io/atoms.h"
#include "io/model.h"
#include "io/mrc.h"

namespace cugmm {

struct FitMapOptions {
  // Inputs (paths name the files in errors and in fit.json; load_fit_map_inputs reads them).
  std::string map_path;
  // Both or neither; or half1_path a RELION postprocess STAR (data_general: rlnUnfilteredMapHalf1/2,
  // relative paths from the current directory, else the STAR file's own) and half2_path empty.
  std::string half1_path, half2_path;
  std::string mask_path;
  std::string init_path;               // native model (.txt/.gmm) or PDB/mmCIF atoms
  // Target resolution, Å. 0: the half-maps' FSC-0.143 when given, else 3 pixels (no finer: at Nyquist
  // the Gaussians would be narrower than a pixel and alias). Never finer than 2.5 pixels.
  double res = 0;
  // Density threshold for seeding and the default G. NaN: automatic, min(mean + 1.5 sd, 0.25 max) of the
  // map inside the mask (the whole box without one): the first follows a molecule that fills a small part
  // of the box, the cap keeps it below the density when the molecule fills much of it.
  double threshold = std::numeric_limits<double>::quiet_NaN();
  // Final Gaussian count. 0: one per (res/2)^3 Å^3 of the volume above threshold, within [32, 200000].
  long ngauss = 0;
  uint64_t seed = 1;
  int threads = 0;                     // CPU threads (core/threads.h); 0 leaves the current setting
  // Tuning (documented defaults; fit.json records them).
  int start_gaussians = 256;
  double start_res = 50;          // Å; the first round is at max(start_res, res), at most box*pixel/3
  int min_rounds = 3;
  int round_iterations = 300;     // Adam steps per round at most
  int final_iterations = 1500;    // the last round's budget (checks the stop rule every check_every)
  int check_every = 100;
  double converge_tol = 2e-3;     // a round stops when the loss fell by < tol (relative) over 25 steps
  // Adam learning rates per step: positions and widths in units of the round's target width
  // s_r = 0.225 res_r (Å), amplitudes relative to the mean amplitude.
  double lr_position = 0.05, lr_width = 0.02, lr_amplitude = 0.02;
  // Width bounds (Å): [max(1 pixel, 0.1 res_r), max(3 s_r, 2 pixels)]; the lower bound keeps a Gaussian
  // at least a pixel wide (narrower ones alias), the upper stops one from smearing over the molecule.
  double min_width_pixels = 1.0;
  // Shell weights of the loss: w(shell) = P(shell)^-whiten, P the map's mean power per shell. 0 is plain
  // least squares (low shells dominate); 1 weighs every shell alike, as the FSC stop rule does, while the
  // loss still sees scale and width (it is least squares in every shell). Default 1: measured on a 64^3
  // atom map at 3 px (bench_fit_map --quick), FSC at the last shell 0.70 (plain) -> 0.94 (whitened).
  double whiten = 1;
  double stop_fsc = 0.95;         // of 1 (noise-free) or of C_ref (half-maps)
  double mask_keep = 0.5;         // a Gaussian whose centre sees mask < this is outside and dropped

  // Resuming (not part of the result). `checkpoint`: a file (nn/checkpoint.h's format, CRC-checked) that
  // holds the fit's state after each completed round and every check_every Adam steps within a round,
  // keyed to the inputs' content (map, half-maps, mask, init model: size and CRC-32 of the values), the
  // tuning options above and the device (not threads: the CPU sums in a fixed order); empty: none. When it
  // exists, is whole and has this fit's key, the fit continues from it and gives, bit for bit, the model an
  // uninterrupted fit gives (the random draws are Philox, keyed by seed and round); otherwise it is
  // ignored with a warning saying why and replaced. write_fit_map_outputs removes it once the outputs are
  // complete.
  std::string checkpoint;
  // Called after each checkpoint is written with the round it resumes at (0-based) and the Adam steps of
  // that round already done (0: the round has not started); tests throw from it to stand for a kill.
  std::function<void(int round, int step)> on_checkpoint;
};

struct FitMapInputs {
  io::Image map;
  std::optional<io::Image> half1, half2;
  std::vector<float> mask;         // n^3 in [0, 1], empty = none
  std::optional<io::GaussianModel> init;  // already in the map's frame (Å from the box centre)
};

struct FitRound {
  int index = 0;
  long gaussians = 0;
  double resolution = 0;   // Å
  int iterations = 0;
  double loss = 0;         // normalised least squares in the round's band
  FscCurve fsc;            // model vs map (masked) at the end of the round
  double seconds = 0;
};

struct FitMapResult {
  io::GaussianModel model;
  FitMapOptions options;         // with every default resolved (res, threshold, ngauss)
  std::string device;
  std::vector<FitRound> rounds;
  FscCurve fsc;                  // final model vs map
  FscCurve half_fsc;             // half-maps (empty without)
  std::vector<double> c_ref;     // per shell, empty without half-maps
  double res_fsc05 = 0, res_fsc0143 = 0;  // Å, of `fsc`
  bool reached = false;          // the stop rule
  double worst_ratio = 0;        // min over shells below res of FSC / goal
  std::vector<int> failing_shells;
  std::string verdict;           // one line: reached, or how close, where and why not
  std::vector<std::string> warnings;
  long dropped_by_mask = 0;
  double seconds = 0;
};

// Reads the files named in `opt`, checks them (InputError naming the file: unreadable, empty or constant,
// non-cubic, another grid or pixel size, an init model outside the box).
FitMapInputs load_fit_map_inputs(const FitMapOptions& opt);

// Coarse-grains atoms to one Gaussian per (chain, residue): centre of electron mass, amplitude = the
// residue's electrons (relative masses kept), width = the electrons' rms radius, at least min_width Å.
// Coordinates: the file's frame is the map frame (x_Å = centre + N/2 pixel).
io::GaussianModel coarse_grain_atoms(const io::AtomicModel& atoms, int box, double pixel, double min_width);

// The fit. Checks the inputs as load_fit_map_inputs does (names from `opt`); progress per round. With
// opt.checkpoint: resumes from it when it is this fit's, and keeps it up to date (FitMapOptions).
FitMapResult fit_map(const FitMapInputs& in, const FitMapOptions& opt, Context& ctx);

// The stop rule on an FSC curve (half_fsc empty: noise-free). Fills reached, worst_ratio, failing_shells,
// verdict and c_ref of `r`.
void evaluate_stop_rule(FitMapResult& r, double res, int box, double pixel);

// Writes model.txt, model.cif, model.pdb (when G and B fit PDB's fields), model.cmm, model.mrc (on the
// map's grid and pixel size), fsc.txt, fsc.png and fit.json into `dir` (created); then removes the fit's
// checkpoint (r.options.checkpoint) and any temporary a killed writer of it left.
void write_fit_map_outputs(const std::string& dir, const FitMapInputs& in, const FitMapResult& r);

}  // namespace cugmm
