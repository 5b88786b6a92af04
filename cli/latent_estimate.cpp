#include "cli/latent_estimate.h"

#include <algorithm>
#include <cstdio>

#include "core/log.h"

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

nlohmann::json apply_latent_estimate(const LatentEstimateOptions& o, const TrainedModel& m, Context& cx,
                                     const ParticleBatcher& batcher, std::vector<float>& latent) {
  if (!o.use_posterior) return nullptr;
  const PosteriorLatent p = posterior_latent(m, cx, batcher, latent, o.posterior);
  std::vector<float> ess = p.ess;
  std::sort(ess.begin(), ess.end());
  const double n = double(ess.size());
  char line[256];
  std::snprintf(line, sizeof line,
                "posterior latent: K = %.4g per unit of score, median effective samples %.1f of %d, "
                "%d evaluations per particle, %.3g s (%.3g ms per particle)",
                p.scale, ess[ess.size() / 2], 2 * o.posterior.pairs, p.evaluations, p.seconds, 1e3 * p.seconds / n);
  log_info(line);
  latent = p.mean;
  return {{"estimate", "posterior"}, {"pairs", o.posterior.pairs}, {"width", o.posterior.width},
          {"seed", o.posterior.seed}, {"scale_K", p.scale}, {"prior_mean", p.prior_mean}, {"prior_cov", p.prior_cov},
          {"evaluations_per_particle", p.evaluations}, {"ess_median", ess[ess.size() / 2]},
          {"ess_min", ess.front()}, {"seconds", p.seconds}, {"ms_per_particle", 1e3 * p.seconds / n},
          {"encoder_points", "latent_encoder.txt"}};
}

}  // namespace cugmm::cli
