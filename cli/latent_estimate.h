// `--latent-estimate encoder|posterior` of `train`, `embed` and `evenodd`: which latent point latent.txt holds
// for each particle, the encoder's (the default) or the posterior mean of engine/latent_posterior.h. With
// posterior, latent_encoder.txt beside it keeps the encoder's points (analyze reads latent.txt).
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/command.h"
#include "engine/latent_posterior.h"

namespace cugmm::cli {

struct LatentEstimateOptions {
  std::string estimate = "encoder";
  PosteriorOptions posterior;
  bool use_posterior = false;  // after finish()

  void declare(Command& c);
  void finish(uint64_t seed, int batch);  // the run's seed; particles per posterior chunk
};

// With the posterior chosen: `latent` (the encoder's points, n x d, cache order) replaced by the posterior
// means, and what was done (K, ESS, timings, cost per particle) for run.json; null JSON otherwise.
nlohmann::json apply_latent_estimate(const LatentEstimateOptions& o, const TrainedModel& m, Context& cx,
                                     const ParticleBatcher& batcher, std::vector<float>& latent);

}  // namespace cugmm::cli
