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
constexpr uint64_t kMixtureStream = 0x6d6978747572ULL;       // "mixtur": the mixture proposal's normals
constexpr uint64_t kMixturePick = 0x7069636bULL;             // "pick": its choice of component
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

namespace {

// Every particle's C candidate latent points (cand: n x C x d, particle-major) scored against the particle with
// the training score: n x C scores.
std::vector<float> score_candidates(const TrainedModel& m, Context& cx, const ParticleBatcher& batcher,
                                    const std::vector<float>& cand, size_t n, size_t C, int batch) {
  const int d = m.config.latent;
  // Candidates, particle-major: particle i of a chunk owns decoder rows i * Cpad .. i * Cpad + C - 1 (the rest
  // zero). Everything a particle's scores depend on is then the same whatever the chunk: BLAS tiles rows in
  // blocks of 16 (so a block of Cpad rows at a multiple of 16 is computed alike wherever it sits), and the
  // projector, whose splat widening depends on the narrowest width in the call (projector.h), is called on one
  // particle's candidates at a time.
  const size_t Cpad = (C + 15) / 16 * 16, B = size_t(std::max(batch, 1));
  const StepConsts k = step_consts(m.config, m.neutral_params, batcher.band().box, batcher.band().pixel_size);
  const size_t W = 5 * size_t(k.G), nb = batcher.band().size();
  auto projector = make_training_projector(cx, batcher.band(), m.ring_weights, k.G, m.config.pooled);
  Buffer<float> base(cx), zdev(cx), params(cx), rowreg(cx), score(cx, C);
  Buffer<ParticleView> views(cx);
  Buffer<cfloat> data(cx);
  base.upload(m.neutral_params);
  std::vector<float> scores(n * C), zhost;
  std::vector<ParticleView> vhost(C);
  std::vector<cfloat> dhost(C * nb);
  Progress progress("posterior", n);
  for (size_t first = 0; first < n; first += B) {
    const size_t b = std::min(B, n - first);
    zhost.assign(b * Cpad * size_t(d), 0.f);
    for (size_t i = 0; i < b; ++i)
      std::copy(cand.begin() + long((first + i) * C * size_t(d)), cand.begin() + long((first + i + 1) * C * size_t(d)),
                zhost.begin() + long(i * Cpad * size_t(d)));
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
  return scores;
}

// The self-normalised importance-sampling mean of candidates 1 .. C-1 of each particle from their log weights
// (n x (C - 1)), and the effective number of samples.
void weighted_means(const std::vector<float>& cand, const std::vector<double>& logw, size_t n, size_t C, int d,
                    std::vector<float>& mean, std::vector<float>& ess) {
  mean.assign(n * size_t(d), 0.f);
  ess.assign(n, 0.f);
  for (size_t g = 0; g < n; ++g) {
    const double* lw = logw.data() + g * (C - 1);
    const double top = *std::max_element(lw, lw + C - 1);
    double sw = 0, sww = 0;
    std::vector<double> acc(size_t(d), 0.0);
    for (size_t c = 1; c < C; ++c) {
      const double w = std::exp(lw[c - 1] - top);
      sw += w;
      sww += w * w;
      for (int r = 0; r < d; ++r) acc[size_t(r)] += w * cand[(g * C + c) * size_t(d) + size_t(r)];
    }
    for (int r = 0; r < d; ++r) mean[g * size_t(d) + size_t(r)] = float(acc[size_t(r)] / sw);
    ess[g] = float(sw * sw / sww);
  }
}

}  // namespace

PosteriorLatent posterior_latent(const TrainedModel& m, Context& cx, const ParticleBatcher& batcher,
                                 const std::vector<float>& encoder_latent, const PosteriorOptions& o) {
  const auto t0 = std::chrono::steady_clock::now();
  const int d = m.config.latent, P = o.pairs;
  const size_t n = encoder_latent.size() / size_t(d), C = 2 * size_t(P) + 1;
  CUGMM_REQUIRE(encoder_latent.size() == n * size_t(d), "posterior_latent: n x d encoder points");
  if (P < 1) throw Error("the posterior latent needs at least one sample pair");
  if (!(o.width > 0)) throw Error("the posterior latent's proposal width must be positive");
  const GaussianPrior prior = fit_gaussian_prior(encoder_latent, d);
  std::vector<float> cand(n * C * size_t(d));  // per particle: e, then P antithetic pairs
  for (size_t g = 0; g < n; ++g) {  // g: the particle's index in the cache, which keys its draws
    const float* e = encoder_latent.data() + g * size_t(d);
    float* cz = cand.data() + g * C * size_t(d);
    std::copy(e, e + d, cz);
    for (int p = 0; p < P; ++p)
      for (int r = 0; r < d; ++r) {
        double off = 0;
        for (int q = 0; q <= r; ++q)
          off += prior.chol[size_t(r * d + q)] * philox_normal(o.seed ^ kPosteriorStream, g, uint64_t(p) * uint64_t(d) + uint64_t(q));
        cz[size_t(1 + 2 * p) * size_t(d) + size_t(r)] = float(e[r] + o.width * off);
        cz[size_t(2 + 2 * p) * size_t(d) + size_t(r)] = float(e[r] - o.width * off);
      }
  }
  const std::vector<float> scores = score_candidates(m, cx, batcher, cand, n, C, o.batch);

  PosteriorLatent out;
  out.scale = likelihood_scale(scores, n, P);
  out.prior_mean = prior.mean;
  out.prior_cov = prior.cov;
  out.evaluations = int(C);
  std::vector<double> logw(n * (C - 1));
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
      logw[g * (C - 1) + c - 1] = out.scale * scores[g * C + c] - 0.5 * qp + 0.5 * qq / (o.width * o.width);
    }
  }
  weighted_means(cand, logw, n, C, d, out.mean, out.ess);
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return out;
}

PosteriorLatent mixture_posterior_latent(const TrainedModel& m, Context& cx, const ParticleBatcher& batcher,
                                         const std::vector<float>& encoder_latent, const GmmFit& prior,
                                         const Matrix& noise, double scale, const PosteriorOptions& o) {
  const auto t0 = std::chrono::steady_clock::now();
  const int d = m.config.latent, P = o.pairs;
  const size_t n = encoder_latent.size() / size_t(d), C = 2 * size_t(P) + 1, K = prior.weights.size();
  CUGMM_REQUIRE(encoder_latent.size() == n * size_t(d), "mixture_posterior_latent: n x d encoder points");
  CUGMM_REQUIRE(K >= 1 && prior.deconvolved.size() == K && prior.means.rows == K && prior.means.cols == size_t(d),
                "mixture_posterior_latent: the prior is not a deconvolved mixture in the latent's dimensions");
  CUGMM_REQUIRE(noise.rows == size_t(d) && noise.cols == size_t(d), "mixture_posterior_latent: the noise is not d x d");
  if (P < 1) throw Error("the posterior latent needs at least one sample pair");
  if (!(scale > 0)) throw Error("the mixture posterior needs a positive likelihood scale K");
  using Mat = Eigen::MatrixXd;
  const auto eig = [&](const Matrix& a) {
    Mat out(d, d);
    for (int r = 0; r < d; ++r)
      for (int c = 0; c < d; ++c) out(r, c) = a(size_t(r), size_t(c));
    return out;
  };
  const Mat sn = eig(noise), sn_inv = sn.inverse();
  std::vector<Mat> gain(K), root(K), c_inv(K);
  std::vector<double> log_norm(K);
  for (size_t k = 0; k < K; ++k) {
    const Mat s = eig(prior.deconvolved[k]), c = s + sn;
    const Eigen::LLT<Mat> llt(c);
    if (llt.info() != Eigen::Success) throw Error("mixture_posterior_latent: S_k + noise is not positive definite");
    c_inv[k] = llt.solve(Mat::Identity(d, d));
    gain[k] = s * c_inv[k];
    Eigen::SelfAdjointEigenSolver<Mat> es(s - gain[k] * s);
    root[k] = es.eigenvectors() * es.eigenvalues().cwiseMax(0.0).cwiseSqrt().asDiagonal();
    log_norm[k] = std::log(prior.weights[k]) - llt.matrixLLT().diagonal().array().log().sum();
  }
  std::vector<float> cand(n * C * size_t(d));
  std::vector<double> logr(K);
  for (size_t g = 0; g < n; ++g) {
    const float* e = encoder_latent.data() + g * size_t(d);
    float* cz = cand.data() + g * C * size_t(d);
    std::copy(e, e + d, cz);
    Eigen::VectorXd y(d);
    for (int r = 0; r < d; ++r) y(r) = e[r];
    for (size_t k = 0; k < K; ++k) {
      Eigen::VectorXd dy(d);
      for (int r = 0; r < d; ++r) dy(r) = y(r) - prior.means(k, size_t(r));
      logr[k] = log_norm[k] - 0.5 * dy.dot(c_inv[k] * dy);
    }
    const double top = *std::max_element(logr.begin(), logr.end());
    double total = 0;
    for (double& v : logr) total += (v = std::exp(v - top));
    for (int p = 0; p < P; ++p) {
      double u = philox_uniform(o.seed ^ kMixturePick, g, uint64_t(p)) * total, acc = 0;
      size_t k = K - 1;
      for (size_t j = 0; j < K; ++j)
        if ((acc += logr[j]) > u) { k = j; break; }
      Eigen::VectorXd mk(d), w(d);
      for (int r = 0; r < d; ++r) {
        mk(r) = prior.means(k, size_t(r));
        w(r) = philox_normal(o.seed ^ kMixtureStream, g, uint64_t(p) * uint64_t(d) + uint64_t(r));
      }
      const Eigen::VectorXd b = mk + gain[k] * (y - mk), off = root[k] * w;
      for (int r = 0; r < d; ++r) {
        cz[size_t(1 + 2 * p) * size_t(d) + size_t(r)] = float(b(r) + off(r));
        cz[size_t(2 + 2 * p) * size_t(d) + size_t(r)] = float(b(r) - off(r));
      }
    }
  }
  const std::vector<float> scores = score_candidates(m, cx, batcher, cand, n, C, o.batch);
  std::vector<double> logw(n * (C - 1));
  for (size_t g = 0; g < n; ++g)
    for (size_t c = 1; c < C; ++c) {
      Eigen::VectorXd dz(d);
      for (int r = 0; r < d; ++r) dz(r) = double(cand[(g * C) * size_t(d) + size_t(r)]) - cand[(g * C + c) * size_t(d) + size_t(r)];
      logw[g * (C - 1) + c - 1] = scale * scores[g * C + c] + 0.5 * dz.dot(sn_inv * dz);
    }
  PosteriorLatent out;
  out.scale = scale;
  out.evaluations = int(C);
  weighted_means(cand, logw, n, C, d, out.mean, out.ess);
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
