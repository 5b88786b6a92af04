#include "engine/latent_posterior.h"

#include <Eigen/Dense>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>

#include "core/error.h"
#include "core/log.h"
#include "engine/training_score.h"
#include "kernels/philox.h"
#include "nn/blas.h"

namespace cugmm {

namespace {
constexpr uint64_t kPosteriorStream = 0x706f737465726fULL;  // "postero": the Philox key of the proposals
}

bool parse_latent_estimate(const std::string& v) {
  if (v == "posterior") return true;
  if (v != "encoder") throw Error("--latent-estimate: '" + quote_value(v) + "' is not encoder or posterior");
  return false;
}

double likelihood_scale(const std::vector<float>& scores, size_t n, int pairs) {
  const size_t C = 2 * size_t(pairs) + 1;
  CUGMM_REQUIRE(pairs > 0 && scores.size() == n * C, "likelihood_scale: n x (2 pairs + 1) scores");
  double sb = 0, saa = 0;
  for (size_t i = 0; i < n; ++i) {
    const float* s = scores.data() + i * C;
    for (int p = 0; p < pairs; ++p) {
      const double plus = s[1 + 2 * p], minus = s[2 + 2 * p];
      sb += 2.0 * s[0] - plus - minus;
      saa += (plus - minus) * (plus - minus);
    }
  }
  if (!(sb > 0) || !(saa > 0) || !std::isfinite(sb / saa)) {
    char why[160];
    std::snprintf(why, sizeof why, "(mean curvature %.3g of the score, %.3g its slope's mean square)",
                  sb / double(n * size_t(pairs)), saa / double(n * size_t(pairs)));
    throw Error(std::string("the posterior latent needs the score to peak at the encoder's points, and here it "
                            "does not ") + why + ": is the run trained? Use --latent-estimate encoder");
  }
  return 4 * sb / saa;
}

GaussianPrior fit_gaussian_prior(const std::vector<float>& latent, int d) {
  const size_t n = latent.size() / size_t(d);
  CUGMM_REQUIRE(d > 0 && latent.size() == n * size_t(d), "fit_gaussian_prior: n x d latent values");
  if (n <= size_t(d)) throw Error("the latent prior needs more particles (" + std::to_string(n) + ") than dimensions");
  Eigen::MatrixXd z(Eigen::Index(n), d);
  for (size_t i = 0; i < n; ++i)
    for (int j = 0; j < d; ++j) z(Eigen::Index(i), j) = latent[i * size_t(d) + size_t(j)];
  const Eigen::RowVectorXd mu = z.colwise().mean();
  const Eigen::MatrixXd c = z.rowwise() - mu;
  Eigen::MatrixXd cov = (c.transpose() * c) / double(n - 1);
  // A ridge of 1e-9 of the mean variance keeps a collapsed axis invertible without moving a real one.
  cov.diagonal().array() += 1e-9 * std::max(cov.trace() / d, 1e-30);
  Eigen::LLT<Eigen::MatrixXd> llt(cov);
  if (llt.info() != Eigen::Success) throw Error("the encoder points' covariance is not positive definite");
  const Eigen::MatrixXd L = llt.matrixL(), inv = llt.solve(Eigen::MatrixXd::Identity(d, d));
  GaussianPrior g;
  for (int j = 0; j < d; ++j) g.mean.push_back(mu(j));
  for (int r = 0; r < d; ++r)
    for (int q = 0; q < d; ++q) {
      g.cov.push_back(cov(r, q));
      g.chol.push_back(L(r, q));
      g.inv.push_back(inv(r, q));
    }
  return g;
}

PosteriorLatent posterior_latent(const TrainedModel& m, Context& cx, const ParticleBatcher& batcher,
                                 const std::vector<float>& encoder_latent, const PosteriorOptions& o) {
  const auto t0 = std::chrono::steady_clock::now();
  const int d = m.config.latent, P = o.pairs;
  const size_t n = encoder_latent.size() / size_t(d), C = 2 * size_t(P) + 1;
  CUGMM_REQUIRE(encoder_latent.size() == n * size_t(d), "posterior_latent: n x d encoder points");
  if (P < 1) throw Error("the posterior latent needs at least one sample pair");
  if (!(o.width > 0)) throw Error("the posterior latent's proposal width must be positive");
  const GaussianPrior prior = fit_gaussian_prior(encoder_latent, d);

  // Candidates, particle-major: particle i of a chunk owns decoder rows i * Cpad .. i * Cpad + C - 1 (the rest
  // zero). Everything a particle's scores depend on is then the same whatever the chunk: BLAS tiles rows in
  // blocks of 16 (so a block of Cpad rows at a multiple of 16 is computed alike wherever it sits), and the
  // projector, whose splat widening depends on the narrowest width in the call (projector.h), is called on one
  // particle's candidates at a time.
  const size_t Cpad = (C + 15) / 16 * 16, B = size_t(std::max(o.batch, 1));
  const StepConsts k = step_consts(m.config, m.neutral_params, batcher.band().box, batcher.band().pixel_size);
  const size_t W = 5 * size_t(k.G), nb = batcher.band().size();
  auto projector = make_training_projector(cx, batcher.band(), m.ring_weights, k.G, m.config.pooled);
  Buffer<float> base(cx), zdev(cx), params(cx), rowreg(cx), score(cx, C);
  Buffer<ParticleView> views(cx);
  Buffer<cfloat> data(cx);
  base.upload(m.neutral_params);
  std::vector<float> cand(n * C * size_t(d)), scores(n * C);  // per particle: C candidates (d values / 1 score)
  std::vector<float> zhost;
  std::vector<ParticleView> vhost(C);
  std::vector<cfloat> dhost(C * nb);
  Progress progress("posterior", n);
  for (size_t first = 0; first < n; first += B) {
    const size_t b = std::min(B, n - first);
    zhost.assign(b * Cpad * size_t(d), 0.f);
    for (size_t i = 0; i < b; ++i) {
      const size_t g = first + i;  // the particle's index in the cache: its draws
      const float* e = encoder_latent.data() + g * size_t(d);
      float* cz = cand.data() + g * C * size_t(d);
      std::copy(e, e + d, cz);
      for (int p = 0; p < P; ++p) {
        for (int r = 0; r < d; ++r) {
          double off = 0;
          for (int q = 0; q <= r; ++q)
            off += prior.chol[size_t(r * d + q)] * philox_normal(o.seed ^ kPosteriorStream, g, uint64_t(p) * uint64_t(d) + uint64_t(q));
          cz[size_t(1 + 2 * p) * size_t(d) + size_t(r)] = float(e[r] + o.width * off);
          cz[size_t(2 + 2 * p) * size_t(d) + size_t(r)] = float(e[r] - o.width * off);
        }
      }
      std::copy(cz, cz + C * size_t(d), zhost.data() + i * Cpad * size_t(d));
    }
    zdev.upload(zhost);
    params.resize(b * Cpad * W);
    rowreg.resize(b * Cpad * 3);
    {
      // One BLAS thread: OpenBLAS splits rows between threads where it likes, and a row computed by another
      // kernel tile sums in another order (the result then depended on --threads).
      const nn::SerialBlas serial;
      decode_on_device(m, cx, k, base.data(), zdev.data(), int(b * Cpad), params.data(), rowreg.data());
    }
    for (size_t i = 0; i < b; ++i) {
      const size_t g = first + i;
      batcher.gather(&g, 1, vhost.data(), dhost.data());
      for (size_t c = 1; c < C; ++c) {
        vhost[c] = vhost[0];
        std::copy(dhost.begin(), dhost.begin() + long(nb), dhost.begin() + long(c * nb));
      }
      views.upload(vhost);
      data.upload(dhost);
      training_score(*projector, params.data() + i * Cpad * W, W, views.data(), data.data(), int(C), score.data(), nullptr);
      score.download(scores.data() + g * C, C);
    }
    cx.synchronize();
    progress.add(b);
  }
  progress.finish();

  PosteriorLatent out;
  out.scale = likelihood_scale(scores, n, P);
  out.prior_mean = prior.mean;
  out.prior_cov = prior.cov;
  out.evaluations = int(C);
  out.mean.assign(n * size_t(d), 0.f);
  out.ess.assign(n, 0.f);
  std::vector<double> logw(2 * size_t(P));
  for (size_t g = 0; g < n; ++g) {
    const float* cz = cand.data() + g * C * size_t(d);
    const float* e = cz;
    for (size_t c = 1; c < C; ++c) {
      const float* z = cz + c * size_t(d);
      // log prior - log proposal (constants dropped): -(z-mu)' S^-1 (z-mu)/2 + (z-e)' S^-1 (z-e)/(2 w^2).
      double qp = 0, qq = 0;
      for (int r = 0; r < d; ++r)
        for (int q = 0; q < d; ++q) {
          const double inv = prior.inv[size_t(r * d + q)];
          qp += (z[r] - prior.mean[size_t(r)]) * inv * (z[q] - prior.mean[size_t(q)]);
          qq += (z[r] - e[r]) * inv * (z[q] - e[q]);
        }
      logw[c - 1] = out.scale * scores[g * C + c] - 0.5 * qp + 0.5 * qq / (o.width * o.width);
    }
    const double top = *std::max_element(logw.begin(), logw.end());
    double sw = 0, sww = 0;
    std::vector<double> acc(size_t(d), 0.0);
    for (size_t c = 1; c < C; ++c) {
      const double w = std::exp(logw[c - 1] - top);
      sw += w;
      sww += w * w;
      for (int r = 0; r < d; ++r) acc[size_t(r)] += w * cz[c * size_t(d) + size_t(r)];
    }
    for (int r = 0; r < d; ++r) out.mean[g * size_t(d) + size_t(r)] = float(acc[size_t(r)] / sw);
    out.ess[g] = float(sw * sw / sww);
  }
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return out;
}

nlohmann::json apply_latent_estimate(const LatentEstimate& o, const TrainedModel& m, Context& cx,
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

}  // namespace cugmm
