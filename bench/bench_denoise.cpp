// Does a deconvolved prior make the lid's two states two clusters? (issue 14, docs/accuracy.md round 10c: the
// feasibility test of `--latent-estimate denoised`, which was not built because this says no.)
//
// The encoder's point is taken as y = z + n, n ~ N(0, Sigma_n); the data set's z as a Gaussian mixture fitted
// to y by extreme deconvolution, K by BIC (engine/latent_denoise.h); each point replaced by E[z | y]. Here
// Sigma_n is the UPPER BOUND on what a real estimate could do: the residual covariance of y after a least-
// squares fit on the truth (per continuous motion a cubic in it, per full turn cos/sin of 1-3 times the angle,
// a presence indicator and its products with the continuous motions, and the product of two continuous
// motions), so the noise is as well known as the truth allows.
//
//   runs      (--work DIR --run NAME) every kept run DIR/SYSTEM_snr0.1_seedS/NAME/latent.txt: the DESIGN §7
//             metrics of the encoder's points and of E[z | y], K and the BIC; for a presence, also E[z | y]
//             under a 2-component prior built from the truth's classes (S_c = the class's covariance of y minus
//             Sigma_n, eigenvalues clipped at 1e-3: what the posterior could do if the mixture held the two
//             states) and under the fitted mixture at fixed K (--fixed-k).
//   posterior (--posterior, presence systems) the closest variant: the decoder's likelihood exp(K s(z)) with the
//             fitted mixture, and with the truth's classes, as the prior (latent_posterior.h
//             mixture_posterior_latent), beside the plain posterior (Gaussian prior; its K is used). 2 x 33 decodes
//             and projections per particle.
//   synthetic (--synthetic) 4-D points: a uniform slide of half-width h along x, two equal states +-sep/2
//             along y, isotropic unit noise known exactly: the composition figure of y and of E[z | y].
//
//   bench_denoise --work acc --run run_nwv25 [--systems a,b] [--seeds 3] [--cap 6] [--fixed-k 2,4,8,12]
//                 [--posterior] [--synthetic [--synthetic-n 2000]] [--out denoised.json]
#include <Eigen/Dense>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>

#include "bench/common.h"
#include "core/context.h"
#include "core/error.h"
#include "engine/hetero_system.h"
#include "engine/latent_denoise.h"
#include "engine/latent_posterior.h"
#include "engine/particle_cache.h"
#include "engine/trainer.h"
#include "engine/oracle_reference.h"
#include "engine/train_outputs.h"

using namespace cugmm;

namespace {

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string t; std::getline(ss, t, ',');) out.push_back(t);
  return out;
}

// The truth's regressors for one kept particle (the header's list).
std::vector<double> regressors(const HeteroSystem& sys, const Matrix& truth, size_t i) {
  std::vector<double> row{1.0}, cont;
  double present = -1;
  for (size_t k = 0; k < sys.motions.size(); ++k) {
    const Motion& m = sys.motions[k];
    const double v = truth(i, k);
    if (m.kind == Motion::Kind::present) {
      present = v;
      row.push_back(v);
    } else if (m.circular()) {
      for (int h = 1; h <= 3; ++h) {
        row.push_back(std::cos(h * v));
        row.push_back(std::sin(h * v));
      }
    } else {
      const double lo = m.kind == Motion::Kind::rotate ? m.lo * M_PI / 180 : m.lo;
      const double hi = m.kind == Motion::Kind::rotate ? m.hi * M_PI / 180 : m.hi;
      const double t = (v - 0.5 * (lo + hi)) / (0.5 * (hi - lo));
      for (double p : {t, t * t, t * t * t}) row.push_back(p);
      cont.push_back(t);
    }
  }
  if (present >= 0)
    for (double t : cont) {
      row.push_back(present * t);
      row.push_back(present * t * t);
    }
  if (cont.size() == 2) row.push_back(cont[0] * cont[1]);
  return row;
}

nlohmann::json figures(const HeteroSystem& sys, const Matrix& latent, const Matrix& truth, std::string& line) {
  BootstrapOptions bo;
  bo.resamples = 2;  // the value on all particles is what is reported; the intervals are bench_accuracy's
  nlohmann::json j = nlohmann::json::object();
  for (const MetricFigure& m : score_latent(sys, latent, truth, bo)) {
    j[m.metric + " (" + m.motion + ")"] = m.value.value;
    char b[96];
    std::snprintf(b, sizeof b, " %s %.3f", m.metric.c_str(), m.value.value);
    line += b;
  }
  return j;
}

Matrix take(const Matrix& m, const std::vector<size_t>& rows) {
  Matrix out(rows.size(), m.cols);
  for (size_t i = 0; i < rows.size(); ++i)
    for (size_t c = 0; c < m.cols; ++c) out(i, c) = m(rows[i], c);
  return out;
}

// The closest variant (--posterior): the decoder's likelihood in place of the encoder's Gaussian noise, under
// the BIC mixture and under the truth's classes (latent_posterior.h mixture_posterior_latent), beside the
// plain posterior (a Gaussian prior) whose K both use. The run's model on the set's cache, as `embed` scores it.
void decoder_posteriors(const HeteroSystem& sys, const std::string& dir, const std::string& run, const Matrix& y,
                        const TruthTable& t, const Matrix& noise, const GmmFit& fitted, const GmmFit& classes,
                        nlohmann::json& j, std::string& line) {
  Context cx(Device::cpu);
  const TrainedModel m = load_trained(dir + "/" + run + "/model.ckpt", cx);
  const ParticleCache cache(dir + "/particles.cugmm-cache");
  if (cache.count() != y.rows) throw Error("bench_denoise: " + dir + "'s cache does not hold latent.txt's rows");
  const ParticleBatcher batcher = model_batcher(m, cache);
  const std::vector<float> e(y.values.begin(), y.values.end());
  const auto as_matrix = [&](const std::vector<float>& v) {
    Matrix out(y.rows, y.cols);
    for (size_t i = 0; i < v.size(); ++i) out.values[i] = v[i];
    return take(out, t.kept);
  };
  const PosteriorLatent plain = posterior_latent(m, cx, batcher, e);
  j["decoder_posterior"]["scale_K"] = plain.scale;
  line += "\n    decoder, Gaussian prior ";
  j["decoder_posterior"]["gaussian_prior"] = figures(sys, as_matrix(plain.mean), t.truth, line);
  const auto ess_median = [](std::vector<float> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  for (const auto& [name, prior] : {std::make_pair("fitted_mixture", &fitted), std::make_pair("truth_classes", &classes)}) {
    const PosteriorLatent p = mixture_posterior_latent(m, cx, batcher, e, *prior, noise, plain.scale);
    line += std::string("\n    decoder, ") + (std::string(name) == "fitted_mixture" ? "BIC mixture     " : "truth's classes ");
    j["decoder_posterior"][name] = figures(sys, as_matrix(p.mean), t.truth, line);
    j["decoder_posterior"][name]["ess_median"] = ess_median(p.ess);
    j["decoder_posterior"][name]["seconds"] = p.seconds;
  }
}

nlohmann::json one_run(const HeteroSystem& sys, const std::string& dir, const std::string& run, int cap,
                       const std::vector<int>& fixed_k, bool posterior) {
  std::ifstream rj(dir + "/" + run + "/run.json");
  if (!rj) throw Error("bench_denoise: " + dir + "/" + run + "/run.json is missing");
  const int d = nlohmann::json::parse(rj).at("config").at("latent");
  const std::vector<float> z = read_latent_txt(dir + "/" + run + "/latent.txt", d);
  const TruthTable t = read_truth_table(sys, dir + "/data/particles_truth.csv");
  const size_t n = z.size() / size_t(d), nk = t.kept.size();
  Matrix y{n, size_t(d)};
  for (size_t i = 0; i < y.values.size(); ++i) y.values[i] = z[i];
  const Matrix yk = take(y, t.kept);

  // Sigma_n: the residual covariance of the kept points after the fit on the truth's regressors.
  const size_t p = regressors(sys, t.truth, 0).size();
  Eigen::MatrixXd A{Eigen::Index(nk), Eigen::Index(p)}, Y{Eigen::Index(nk), Eigen::Index(d)};
  for (size_t i = 0; i < nk; ++i) {
    const std::vector<double> r = regressors(sys, t.truth, i);
    for (size_t c = 0; c < p; ++c) A(Eigen::Index(i), Eigen::Index(c)) = r[c];
    for (int c = 0; c < d; ++c) Y(Eigen::Index(i), c) = yk(i, size_t(c));
  }
  const Eigen::MatrixXd R = Y - A * A.colPivHouseholderQr().solve(Y);
  const Eigen::MatrixXd N = R.transpose() * R / double(nk - p);
  const Eigen::MatrixXd Yc = Y.rowwise() - Y.colwise().mean();
  const double share = N.trace() / (Yc.transpose() * Yc / double(nk - 1)).trace();
  Matrix noise{size_t(d), size_t(d)};
  for (int r = 0; r < d; ++r)
    for (int c = 0; c < d; ++c) noise(size_t(r), size_t(c)) = N(r, c);

  DenoiseOptions o;
  o.max_components = cap;
  const DenoisedLatent dl = denoise_latent(y, noise, o);
  nlohmann::json j = {{"noise_trace_share", share}, {"components", dl.components}, {"bic", denoise_json(dl, noise)["bic"]}};
  std::string line;
  char head[96];
  std::snprintf(head, sizeof head, "  noise %.2f of the trace, K %d\n    encoder points  ", share, dl.components);
  line += head;
  j["encoder"] = figures(sys, yk, t.truth, line);
  line += "\n    denoised        ";
  j["denoised"] = figures(sys, take(dl.mean, t.kept), t.truth, line);

  // For a presence: the posterior under the truth's two classes, and under the fitted mixture at fixed K.
  for (size_t m = 0; m < sys.motions.size(); ++m) {
    if (sys.motions[m].kind != Motion::Kind::present) continue;
    GmmFit classes;
    classes.means = Matrix(2, size_t(d));
    for (int c = 0; c < 2; ++c) {
      std::vector<size_t> members;
      for (size_t i = 0; i < nk; ++i)
        if ((t.truth(i, m) > 0.5) == (c == 1)) members.push_back(i);
      Eigen::MatrixXd M{Eigen::Index(members.size()), Eigen::Index(d)};
      for (size_t i = 0; i < members.size(); ++i) M.row(Eigen::Index(i)) = Y.row(Eigen::Index(members[i]));
      const Eigen::RowVectorXd mu = M.colwise().mean();
      const Eigen::MatrixXd Mc = M.rowwise() - mu;
      Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es(Mc.transpose() * Mc / double(members.size()) - N);
      const Eigen::MatrixXd S = es.eigenvectors() * es.eigenvalues().cwiseMax(1e-3).asDiagonal() * es.eigenvectors().transpose();
      classes.weights.push_back(double(members.size()) / double(nk));
      for (int r = 0; r < d; ++r) classes.means(size_t(c), size_t(r)) = mu(r);
      classes.deconvolved.emplace_back(size_t(d), size_t(d), std::vector<double>(S.data(), S.data() + d * d));
    }
    line += "\n    truth's classes ";
    j["truth_class_prior"] = figures(sys, deconvolved_posterior_mean(classes, noise, yk), t.truth, line);
    GmmOptions g;
    g.noise = noise;
    for (int k : fixed_k) {
      const GmmFit f = fit_gmm(y, k, g);
      char b[32];
      std::snprintf(b, sizeof b, "\n    K = %-2d         ", k);
      line += b;
      j["fixed_k"][std::to_string(k)] = figures(sys, take(deconvolved_posterior_mean(f, noise, y), t.kept), t.truth, line);
    }
    if (posterior) decoder_posteriors(sys, dir, run, y, t, noise, dl.prior, classes, j, line);
    break;
  }
  std::printf("%s\n", line.c_str());
  return j;
}

nlohmann::json synthetic(int n) {
  nlohmann::json out = nlohmann::json::array();
  const int d = 4;
  for (double sep : {2.0, 2.5, 2.9, 4.0})
    for (double half : {3.0, 6.0}) {
      std::mt19937_64 rng(5);
      std::normal_distribution<double> gauss;
      std::uniform_real_distribution<double> slide(-half, half);
      Matrix y{static_cast<size_t>(n), size_t(d)}, noise{size_t(d), size_t(d)};
      std::vector<double> cls(static_cast<size_t>(n), 0.0);
      for (size_t i = 0; i < size_t(n); ++i) {
        cls[i] = double(i % 2);
        const double zi[4] = {slide(rng), (cls[i] - 0.5) * sep, 0, 0};
        for (int c = 0; c < d; ++c) y(i, size_t(c)) = zi[c] + gauss(rng);
      }
      for (int c = 0; c < d; ++c) noise(size_t(c), size_t(c)) = 1;
      const DenoisedLatent dl = denoise_latent(y, noise);
      const double raw = composition_score(y, cls), den = composition_score(dl.mean, cls);
      std::printf("  synthetic sep %.1f half-width %.0f n %d: K %d, composition encoder-like %.3f, denoised %.3f\n",
                  sep, half, n, dl.components, raw, den);
      out.push_back({{"separation_noise_sd", sep}, {"slide_half_width", half}, {"points", n},
                     {"components", dl.components}, {"composition_points", raw}, {"composition_denoised", den}});
    }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    std::string work, run = "run_nwv25", out = "denoised.json";
    std::vector<std::string> systems = {"linear", "rotation", "composition", "two-motions", "small-part"};
    std::vector<int> fixed_k = {2, 4, 8, 12};
    int seeds = 3, cap = 6, syn_n = 2000;
    bool syn = false, posterior = false;
    for (int i = 1; i < argc; ++i) {
      const std::string a = argv[i];
      auto next = [&]() -> std::string {
        if (i + 1 >= argc) throw Error("bench_denoise: " + a + " needs a value");
        return argv[++i];
      };
      if (a == "--work") work = next();
      else if (a == "--run") run = next();
      else if (a == "--systems") systems = split(next());
      else if (a == "--seeds") seeds = std::stoi(next());
      else if (a == "--cap") cap = std::stoi(next());
      else if (a == "--fixed-k") {
        fixed_k.clear();
        for (const std::string& k : split(next())) fixed_k.push_back(std::stoi(k));
      } else if (a == "--synthetic") syn = true;
      else if (a == "--synthetic-n") syn_n = std::stoi(next());
      else if (a == "--posterior") posterior = true;
      else if (a == "--out") out = next();
      else throw Error("bench_denoise: unknown option " + a + " (see the header of bench/bench_denoise.cpp)");
    }
    if (work.empty() && !syn) throw Error("bench_denoise: give --work DIR (the kept runs) or --synthetic");
    nlohmann::json doc = {{"bench", "denoise"}, {"machine", bench::machine()}, {"run", run}, {"cap", cap},
                          {"noise", "residual covariance on the truth's regressors (an upper bound)"}};
    if (!work.empty())
      for (const std::string& s : systems)
        for (int seed = 1; seed <= seeds; ++seed) {
          const std::string dir = work + "/" + s + "_snr0.1_seed" + std::to_string(seed);
          std::printf("%s seed %d (%s)\n", s.c_str(), seed, dir.c_str());
          doc["runs"][s][std::to_string(seed)] = one_run(builtin_system(s), dir, run, cap, fixed_k, posterior);
          bench::write_json(out, doc);
        }
    if (syn) doc["synthetic"] = synthetic(syn_n);
    bench::write_json(out, doc);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
}
