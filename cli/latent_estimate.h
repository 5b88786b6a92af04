// `--latent-estimate encoder|posterior` of `train`, `embed` and `evenodd`: which latent point latent.txt holds
// for each particle, the encoder's (the default) or the posterior mean of engine/latent_posterior.h. With
// posterior, latent_encoder.txt beside it keeps the encoder's points (analyze reads latent.txt). The
// estimate itself is the engine's (apply_latent_estimate, engine/latent_posterior.h), which the library
// API applies too.
#pragma once
#include <string>

#include "cli/command.h"
#include "engine/latent_posterior.h"

namespace cugmm::cli {

struct LatentEstimateOptions : LatentEstimate {
  std::string estimate = "encoder";

  void declare(Command& c);
  void finish(uint64_t seed, int batch);  // the run's seed; particles per posterior chunk
};

}  // namespace cugmm::cli
