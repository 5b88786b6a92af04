#include "cli/latent_estimate.h"

namespace cugmm::cli {

void LatentEstimateOptions::declare(Command& c) {
  c.text("--latent-estimate", estimate, "latent.txt per particle: encoder (its point) or posterior (the posterior "
                                        "mean around it, 2 x pairs + 1 decodes and projections per particle)");
  c.integer("--posterior-pairs", posterior.pairs, "posterior: antithetic sample pairs per particle", 1, 4096);
  c.number("--posterior-width", posterior.width, "posterior: proposal SD in units of the latent prior's", 0, 100, true);
}

void LatentEstimateOptions::finish(uint64_t seed, int batch) {
  use_posterior = parse_latent_estimate(estimate);
  posterior.seed = seed;
  posterior.batch = batch;
}

}  // namespace cugmm::cli
