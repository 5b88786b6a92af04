// The training settings `cugmm train` and `cugmm evenodd` share: one declaration of the options, so both
// commands train the same way from the same flags.
#pragma once
#include <string>

#include "cli/command.h"
#include "engine/particle_cache.h"
#include "engine/symmetry.h"
#include "engine/trainer.h"
#include "io/model.h"

namespace cugmm::cli {

struct TrainOptions {
  TrainConfig config;
  CacheOptions cache;  // root and box from the options; particles and maxres are the command's
  std::string move = "positions,amplitudes,widths", encoder_reads = "positions,amplitudes,widths", mask, gaussians, preset, ctf = "auto", fprec = "fp16", loss, rigid, feature_whiten;
  std::string sym = "C1";
  std::string l2 = "auto";  // --l2: auto or a number (TrainConfig::l2_auto)
  SymmetryGroup group;  // from --sym (finish())
  long long seed = 1;
  bool relu = false, no_align_shifts = false;
  double lr, lr_half_life, noise, reg_width, reg_mass, dropout, explode, latent_reg, input_dropout;

  TrainOptions();
  // Every option but the particles, model, output and cache.
  void declare(Command& c);
  // After parsing: the config completed and checked (a bad value names its option); --preset paper
  // refuses a line that changes part of the recipe it fixes.
  void finish(const Command& c);
  // The mask's files (empty: none), to check before any work.
  std::vector<std::string> inputs() const;
  // --mask or --gaussians against the model: which Gaussians may move; with --sym and neither, the
  // Gaussians of the first asymmetric unit (engine/symmetry.h asymmetric_units).
  void select_gaussians(const io::GaussianModel& model);
};

}  // namespace cugmm::cli
