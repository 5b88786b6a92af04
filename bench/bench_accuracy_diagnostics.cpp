// Why a trained latent misses what the oracle reference finds (issue 14; docs/accuracy.md "Diagnostics"):
// three measurements on one simulated data set (cugmm simulate) and, optionally, one trained run on it.
//
//   1. features  Is the truth in the encoder's input? The run's gradient features (the feature file, as the
//                encoder sees them), reduced to their top-k principal components (label-free, over every
//                particle), and a least-squares fit (intercept, ridge 1e-6) of each truth column on them,
//                5-fold cross-validated: R^2 for a motion, accuracy (prediction > 0.5) for a presence.
//                Beside it the same with each particle's feature row scaled to unit RMS.
//   1b. noise-whitened (--noise-whitened M) The same read-out on the top k components of the generalized
//                eigenproblem C v = lambda N v (signal-to-noise, not variance): N is the covariance of the run's
//                features of M noise-only images (engine/noise_features.h), shrunk towards its diagonal by each
//                --shrink a (default 0.2); with a held-out half of the noise images whitened by the other
//                half's N as the pure-noise check (its top eigenvalues against the Marchenko-Pastur edge).
//   2. ceiling   Does the score reward the truth, particle by particle? Per particle, models at its own true
//                state except the one truth column varied (a presence: there / absent; a motion: a grid of 13
//                states over its range), scored against the particle with its STAR pose and CTF by
//                (a) the plain FRC mean over rings, (b) the SNR-weighted FRC (the run's ring weights, or ones
//                estimated here), (c) a Gaussian log-likelihood with a per-ring noise variance estimated from
//                the data and the particle's scale fitted analytically. Presence: the fraction of particles
//                whose true model scores higher; motion: |Spearman| of the best-scoring state with the truth.
//                The models are the system's residue models (one Gaussian per residue, engine/residue_model.h),
//                so this is what a perfect decoder of that kind could reach with each score.
//   3. latent    The run's latent.txt: the metrics of DESIGN §7 (engine/oracle_reference.h score_latent_file),
//                the variance of each dimension, and the fraction of its variance a linear fit on the defocus
//                and on the view explains (engine/evenodd.h variance_explained).
//   4. decoder   (--decoder, with --run) The feature blocks alone (positions, amplitudes, widths: the section-1
//                read-out on each block's top-k principal components) and, for a presence motion, the single
//                feature "sum of the amplitude features of the Gaussians the part owns" (each neutral Gaussian
//                matched to its nearest residue); then the run's decoder at every particle's latent.txt point:
//                the part's decoded mass over the neutral model's, by the truth's state, and at +-2 SD along the
//                latent's principal axes (does the decoder have a removal direction at all?).

//   5. components (--components) A run that reads principal components (--feature-pca, plain or noise-
//                whitened): what each of its top 12 components holds (component_info: its variance, the
//                truth's, the view's, the defocus' and the pose error's R^2 on it, the share of its top 1% of
//                particles, the latent's R^2 on it).
//
//   bench_accuracy_diagnostics --system NAME|FILE.json --data SIMULATE_DIR --cache CACHE [--run TRAIN_DIR]
//                              [--model NEUTRAL.txt] [--no-features] [--no-ceiling] [--out diagnostics.json]
//                              [--noise-whitened M [--shrink a]...] [--decoder] [--components]
// The data set must be the simulator's (its truth table and simulation.json give the states, box and pixel).
#include <Eigen/Dense>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <numeric>
#include <sstream>

#include "bench/common.h"
#include "core/context.h"
#include "core/error.h"
#include "engine/evenodd.h"
#include "engine/features.h"
#include "engine/hetero_system.h"
#include "engine/latent_metrics.h"
#include "engine/model_params.h"
#include "engine/oracle_reference.h"
#include "engine/particle_cache.h"
#include "engine/residue_model.h"
#include "engine/ring_weights.h"
#include "engine/system_imager.h"
#include "engine/train_outputs.h"
#include "engine/trainer.h"
#include "engine/noise_features.h"
#include "io/model.h"
#include "io/particles.h"
#include "kernels/geometry.h"
#include "nn/checkpoint.h"

using namespace cugmm;
namespace fs = std::filesystem;

namespace {

nlohmann::json read_json(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw Error(path + " cannot be read");
  return nlohmann::json::parse(f);
}

// The truth table: per particle its states (one per motion) and whether it is junk.
struct Truth {
  std::vector<std::vector<double>> state;
  std::vector<char> junk;
};
Truth read_truth(const std::string& csv, size_t motions) {
  std::ifstream f(csv);
  if (!f) throw InputError(csv, "", "cannot be read");
  std::string line;
  std::getline(f, line);
  Truth t;
  while (std::getline(f, line)) {
    std::stringstream ss(line);
    std::string cell;
    std::vector<double> r;
    while (std::getline(ss, cell, ',')) r.push_back(std::atof(cell.c_str()));
    if (r.size() < motions + 2) throw InputError(csv, "", "fewer columns than the system's motions");
    t.state.emplace_back(r.begin() + 1, r.begin() + 1 + long(motions));
    t.junk.push_back(r[motions + 1] != 0);
  }
  return t;
}

// ---- 1. features -----------------------------------------------------------------------------------------

// 5-fold cross-validated fit of y on X's columns (an intercept added): R^2 (continuous) or accuracy (binary).
double cv_fit(const Eigen::MatrixXd& X, const std::vector<double>& y, bool binary) {
  const Eigen::Index n = X.rows(), k = X.cols();
  std::vector<double> pred(size_t(n), 0.0);
  for (int fold = 0; fold < 5; ++fold) {
    std::vector<Eigen::Index> tr;
    for (Eigen::Index i = 0; i < n; ++i)
      if (i % 5 != fold) tr.push_back(i);
    Eigen::MatrixXd A(Eigen::Index(tr.size()), k + 1);
    Eigen::VectorXd b(Eigen::Index(tr.size()));
    for (size_t r = 0; r < tr.size(); ++r) {
      A(Eigen::Index(r), 0) = 1;
      A.row(Eigen::Index(r)).tail(k) = X.row(tr[r]);
      b(Eigen::Index(r)) = y[size_t(tr[r])];
    }
    Eigen::MatrixXd AtA = A.transpose() * A;
    AtA.diagonal().array() += 1e-6 * (AtA.diagonal().mean() + 1e-30);
    const Eigen::VectorXd w = AtA.ldlt().solve(A.transpose() * b);
    for (Eigen::Index i = fold; i < n; i += 5) pred[size_t(i)] = w(0) + X.row(i).dot(w.tail(k));
  }
  if (binary) {
    size_t right = 0;
    for (size_t i = 0; i < y.size(); ++i) right += (pred[i] > 0.5) == (y[i] > 0.5);
    return double(right) / double(y.size());
  }
  const double mean = std::accumulate(y.begin(), y.end(), 0.0) / double(y.size());
  double res = 0, tot = 0;
  for (size_t i = 0; i < y.size(); ++i) {
    res += (y[i] - pred[i]) * (y[i] - pred[i]);
    tot += (y[i] - mean) * (y[i] - mean);
  }
  return 1 - res / tot;
}

// Each truth column fitted on the top k columns of P (scores, best first) for each k of ks up to kmax:
// printed, and stored as out[motion][k].
void read_out(const HeteroSystem& sys, const Truth& t, const std::vector<size_t>& rows, const Eigen::MatrixXd& P,
              const std::vector<int>& ks, int kmax, nlohmann::json& out) {
  for (size_t m = 0; m < sys.motions.size(); ++m) {
    const bool binary = sys.motions[m].kind == Motion::Kind::present;
    std::vector<double> y;
    for (size_t i : rows) y.push_back(t.state[i][m]);
    std::string line = "  " + sys.motions[m].name + (binary ? " accuracy" : " R^2") + ":";
    for (int k : ks) {
      if (k > kmax) break;
      const double v = cv_fit(P.leftCols(k), y, binary);
      out[sys.motions[m].name][std::to_string(k)] = v;
      char b[48];
      std::snprintf(b, sizeof b, " k=%d %.3f", k, v);
      line += b;
    }
    std::printf("%s\n", line.c_str());
  }
}

nlohmann::json feature_info(const HeteroSystem& sys, const std::string& path, const Truth& t,
                            const std::vector<size_t>& rows) {
  const FeatureFile f(path, nlohmann::json());
  const size_t W = f.width(), n = rows.size();
  std::vector<float> buf(n * W);
  f.gather(rows.data(), int(n), buf.data());
  nlohmann::json out = nlohmann::json::object();
  for (int variant = 0; variant < 2; ++variant) {
    Eigen::MatrixXd X{Eigen::Index(n), Eigen::Index(W)};
    for (size_t i = 0; i < n; ++i) {
      double ss = 0;
      for (size_t c = 0; c < W; ++c) ss += double(buf[i * W + c]) * buf[i * W + c];
      const double s = variant == 1 ? 1 / std::sqrt(ss / double(W) + 1e-30) : 1.0;
      for (size_t c = 0; c < W; ++c) X(Eigen::Index(i), Eigen::Index(c)) = s * buf[i * W + c];
    }
    X.rowwise() -= X.colwise().mean();
    Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es(X.transpose() * X / double(n));
    const Eigen::MatrixXd P = X * es.eigenvectors().rowwise().reverse();  // scores, by decreasing variance
    const char* name = variant == 0 ? "as_stored" : "row_normalised";
    std::printf("features (%s): cross-validated fit of the truth on the top-k principal components\n", name);
    read_out(sys, t, rows, P, {2, 4, 10, 25, 50, 100, 200, 400}, std::min(int(W), int(n) / 3), out[name]);
  }
  return out;
}

// ---- 1b. noise-whitened features ---------------------------------------------------------------------------

// The run's features of `count` noise-only images (engine/noise_features.h), views and CTFs from its cache.
std::vector<float> noise_features_of(const std::string& run, const std::string& cache_path, size_t count,
                                     uint64_t seed) {
  Context cx(Device::cpu);
  const TrainedModel m = load_trained(run + "/model.ckpt", cx);
  const ParticleCache cache(cache_path);
  const ParticleBatcher batcher(cache, training_band(cache, m.config.minres, m.config.maxres), m.config.ctf);
  std::vector<size_t> all(cache.count());
  std::iota(all.begin(), all.end(), size_t(0));
  return noise_features(cx, batcher, m.neutral_params, m.ring_weights, m.config.pooled, m.norm, all, count, seed);
}

// The generalized eigenproblem C v = lambda N v (engine/noise_features.h fit_noise_whitened_pca, N shrunk
// by each of `shrinks`), the same cross-validated read-out of the truth as feature_info on the top k
// components. Check: a held-out half of the noise images, whitened by the N of the other half, has the
// Marchenko-Pastur spectrum of pure noise (top eigenvalue near (1 + sqrt(W / m))^2); its top ones reported.
nlohmann::json whitened_info(const HeteroSystem& sys, const std::string& path, const Truth& t,
                             const std::vector<size_t>& rows, const std::vector<float>& noise,
                             const std::vector<double>& shrinks) {
  const FeatureFile f(path, nlohmann::json());
  const size_t W = f.width(), n = rows.size(), m = noise.size() / W, half = m / 2;
  CUGMM_REQUIRE(noise.size() == m * W, "noise features of another width than the run's");
  const std::vector<float> noise_a(noise.begin(), noise.begin() + std::ptrdiff_t(half * W));
  // The held-out half centred: the noise rows' mean is not the particles' (the normalisation's), and the fit
  // takes the rows as centred (a mean left in would stand as one spurious top eigenvalue).
  std::vector<float> noise_b(noise.begin() + std::ptrdiff_t(half * W), noise.end());
  std::vector<double> mean(W, 0.0);
  for (size_t i = 0; i < m - half; ++i)
    for (size_t c = 0; c < W; ++c) mean[c] += noise_b[i * W + c] / double(m - half);
  for (size_t i = 0; i < m - half; ++i)
    for (size_t c = 0; c < W; ++c) noise_b[i * W + c] -= float(mean[c]);
  std::vector<size_t> held(m - half);
  std::iota(held.begin(), held.end(), size_t(0));
  const RowSource held_rows = [&](const size_t* index, int k, float* out) {
    for (int i = 0; i < k; ++i) std::copy_n(noise_b.data() + index[i] * W, W, out + size_t(i) * W);
  };
  const RowSource feature_rows = [&](const size_t* index, int k, float* out) { f.gather(index, k, out); };
  std::vector<float> buf(n * W);
  f.gather(rows.data(), int(n), buf.data());
  nlohmann::json out = nlohmann::json::object();
  out["noise_images"] = m;
  const int kmax = int(std::min<size_t>(100, n / 3));
  for (double a : shrinks) {
    char name[32];
    std::snprintf(name, sizeof name, "shrink_%.2f", a);
    const FeatureTransform noise_only = fit_noise_whitened_pca(held_rows, W, held, noise_a, 10, false, a);
    const double mp_noise = std::pow(1 + std::sqrt(double(W) / double(m - half)), 2);
    std::printf("noise-whitened (shrink %.2f): held-out noise top eigenvalues %.2f %.2f %.2f (MP edge %.2f)\n", a,
                noise_only.variance[0], noise_only.variance[1], noise_only.variance[2], mp_noise);
    out[name]["heldout_noise_top"] = noise_only.variance;
    out[name]["heldout_noise_mp_edge"] = mp_noise;
    const FeatureTransform tr = fit_noise_whitened_pca(feature_rows, W, rows, noise, kmax, false, a);
    const std::vector<double>& lambda = tr.variance;
    const double mp = std::pow(1 + std::sqrt(double(W) / double(n)), 2);
    int above = 0;
    while (above < int(lambda.size()) && lambda[size_t(above)] > mp) ++above;
    std::printf("  features: top eigenvalues %.2f %.2f %.2f %.2f, %d above the MP edge %.2f\n", lambda[0], lambda[1],
                lambda[2], lambda[3], above, mp);
    out[name]["eigenvalues"] = lambda;
    out[name]["above_mp_edge"] = above;
    out[name]["mp_edge"] = mp;
    // The components' scores: the rows times the basis (width x kmax).
    const Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>
        X(buf.data(), Eigen::Index(n), Eigen::Index(W)), B(tr.basis.data(), Eigen::Index(W), kmax);
    Eigen::MatrixXd P = (X.cast<double>() * B.cast<double>());
    P.rowwise() -= P.colwise().mean();
    read_out(sys, t, rows, P, {2, 4, 10, 25, 100}, kmax, out[name]);
  }
  return out;
}

// ---- 2. the score's ceiling ------------------------------------------------------------------------------

// Per residue Gaussian: its neutral centre, the motions that move it, its chain's presence motion.
struct ResidueModels {
  io::GaussianModel neutral;
  std::vector<std::vector<int>> motions;  // per Gaussian
  Vec3<double> to_atoms;                  // Å from the box centre -> the atoms' frame
};
ResidueModels residue_models(const HeteroSystem& sys, int box, double pixel) {
  ResidueModels r;
  r.neutral = residue_model(sys, box, pixel);
  const SystemImager imager(sys, box, pixel, 1);
  const double c = (box / 2) * pixel;
  r.to_atoms = {c - imager.atom_shift().x, c - imager.atom_shift().y, c - imager.atom_shift().z};
  std::map<std::pair<std::string, int>, size_t> seen;  // residue_model's order: first appearance
  for (size_t i = 0; i < sys.atoms.atoms.size(); ++i) {
    const io::Atom& a = sys.atoms.atoms[i];
    if (!seen.emplace(std::make_pair(a.chain, a.residue), r.motions.size()).second) continue;
    std::vector<int> ms;
    for (size_t k = 0; k < sys.motions.size(); ++k)
      if (sys.motions[k].atoms[i]) ms.push_back(int(k));
    r.motions.push_back(ms);
  }
  CUGMM_REQUIRE(r.motions.size() == r.neutral.size(), "residue bookkeeping");
  return r;
}

// The residue model's parameter row (5G) at `state` (absent residues keep their place with amplitude 0).
std::vector<float> params_at(const HeteroSystem& sys, const ResidueModels& rm, const std::vector<double>& state) {
  std::vector<float> p = params_from_model(rm.neutral);
  const size_t G = rm.neutral.size();
  for (size_t j = 0; j < G; ++j) {
    if (rm.motions[j].empty()) continue;
    const Rigid r = body_map(sys, rm.motions[j], state);
    const Vec3<double> x{p[j] + rm.to_atoms.x, p[G + j] + rm.to_atoms.y, p[2 * G + j] + rm.to_atoms.z};
    const Vec3<double> y = apply(r, x);
    p[j] = float(y.x - rm.to_atoms.x);
    p[G + j] = float(y.y - rm.to_atoms.y);
    p[2 * G + j] = float(y.z - rm.to_atoms.z);
    if (!r.present) p[3 * G + j] = 0;
  }
  return p;
}

// Per-ring sums of one particle against one model: num, mm, dd per ring.
struct Rings {
  std::vector<double> num, mm, dd;
};
Rings ring_sums(const FourierBand& band, const cfloat* half, const cfloat* data) {
  Rings r;
  r.num.assign(size_t(band.num_rings()), 0.0);
  r.mm = r.dd = r.num;
  for (size_t b = 0; b < band.size(); ++b) {
    const std::complex<double> m = half[band.fft_index[b]], d = data[b];
    const double w = band.weight[b];
    const size_t q = band.ring[b];
    r.num[q] += w * (m * std::conj(d)).real();
    r.mm[q] += w * std::norm(m);
    r.dd[q] += w * std::norm(d);
  }
  return r;
}

nlohmann::json score_ceiling(const HeteroSystem& sys, const ParticleCache& cache, const Truth& t,
                             const std::vector<size_t>& rows, std::vector<float> ring_weights,
                             const std::vector<float>& neutral_params) {
  Context cx(Device::cpu);
  const FourierBand band = training_band(cache, kDefaultMinRes, 0);
  const ParticleBatcher batcher(cache, band, CtfChoice::automatic);
  const ResidueModels rm = residue_models(sys, cache.box(), cache.pixel_size());
  auto projector = make_projector(cx, band, int(rm.neutral.size()));
  auto neutral_projector = make_projector(cx, band, int(neutral_params.size() / 5));
  const int nr = band.num_rings(), N = cache.box();
  const size_t hp = size_t(N) * (N / 2 + 1);
  if (ring_weights.empty()) {
    std::vector<size_t> all(cache.count());
    std::iota(all.begin(), all.end(), size_t(0));
    ring_weights = estimate_ring_weights(cx, batcher, neutral_params, all).weight;
  }
  ring_weights = score_ring_weights(band, ring_weights);
  // The noise variance per coefficient of each ring: what the data hold beyond their best fit by the
  // neutral model (ring by ring, scale free), averaged over the particles.
  std::vector<double> noise(size_t(nr), 0.0), count(size_t(nr), 0.0);
  for (size_t b = 0; b < band.size(); ++b) count[band.ring[b]] += band.weight[b];
  std::vector<cfloat> half(hp), data(band.size());
  ParticleView view;
  for (size_t i : rows) {
    batcher.gather(&i, 1, &view, data.data());
    neutral_projector->render_host({1, neutral_params.data(), 0, &view, nullptr}, half.data());
    const Rings s = ring_sums(band, half.data(), data.data());
    for (int r = band.ring_min; r < nr; ++r)
      noise[size_t(r)] += (s.dd[size_t(r)] - (s.mm[size_t(r)] > 0 ? s.num[size_t(r)] * s.num[size_t(r)] / s.mm[size_t(r)] : 0)) /
                          (count[size_t(r)] * double(rows.size()));
  }
  // The three scores of a particle's ring sums.
  auto scores = [&](const Rings& s) {
    double plain = 0, snr = 0, a = 0, bsum = 0;
    int rings = 0;
    for (int r = band.ring_min; r < nr; ++r) {
      const size_t q = size_t(r);
      const double frc = s.mm[q] > 0 && s.dd[q] > 0 ? s.num[q] / std::sqrt(s.mm[q] * s.dd[q]) : 0;
      plain += frc;
      ++rings;
      snr += ring_weights[q] * frc;
      a += s.num[q] / noise[q];
      bsum += s.mm[q] / noise[q];
    }
    // max over the scale c >= 0 of -(1/2) sum |D - c M|^2 / sigma^2 (up to the model-free constant)
    const double like = a > 0 ? 0.5 * a * a / bsum : 0;
    return std::array<double, 3>{plain / rings, snr, like};
  };
  const char* names[3] = {"frc", "snr_frc", "gaussian_likelihood"};
  nlohmann::json out = nlohmann::json::object();
  for (size_t m = 0; m < sys.motions.size(); ++m) {
    const Motion& mo = sys.motions[m];
    const bool binary = mo.kind == Motion::Kind::present;
    std::vector<double> states;
    if (binary) states = {0, 1};
    else
      for (int s = 0; s < 13; ++s) states.push_back(mo.lo + (mo.hi - mo.lo) * s / 12);
    std::array<std::vector<double>, 3> best;
    std::vector<double> truth;
    for (size_t i : rows) {
      batcher.gather(&i, 1, &view, data.data());
      std::array<double, 3> top{-1e300, -1e300, -1e300};
      std::array<double, 3> arg{0, 0, 0};
      for (double v : states) {
        std::vector<double> st = t.state[i];
        st[m] = v;
        const std::vector<float> p = params_at(sys, rm, st);
        projector->render_host({1, p.data(), 0, &view, nullptr}, half.data());
        const std::array<double, 3> sc = scores(ring_sums(band, half.data(), data.data()));
        for (int k = 0; k < 3; ++k)
          if (sc[size_t(k)] > top[size_t(k)]) { top[size_t(k)] = sc[size_t(k)]; arg[size_t(k)] = v; }
      }
      for (int k = 0; k < 3; ++k) best[size_t(k)].push_back(arg[size_t(k)]);
      truth.push_back(t.state[i][m]);
    }
    std::string line = "  " + mo.name + (binary ? " (fraction of particles the true model wins):" : " (|Spearman| of the best state):");
    for (int k = 0; k < 3; ++k) {
      double v;
      if (binary) {
        size_t right = 0;
        for (size_t i = 0; i < truth.size(); ++i) right += (best[size_t(k)][i] > 0.5) == (truth[i] > 0.5);
        v = double(right) / double(truth.size());
      } else {
        v = std::abs(spearman(best[size_t(k)], truth));
      }
      out[mo.name][names[k]] = v;
      char b[64];
      std::snprintf(b, sizeof b, " %s %.3f", names[k], v);
      line += b;
    }
    std::printf("%s\n", line.c_str());
  }
  return out;
}

// ---- 3. the latent ---------------------------------------------------------------------------------------

// The pose error each particle carries (STAR pose against the true one, from the truth table) in the model
// frame: the rotation error as a small rotation vector (3, radians) and the shift error as the model's
// translation (3, Å), with their squares and products (a latent may follow the error's size, not its sign).
// `all` the six and their 21 products; `rotation` and `shift` each's own three and six products.
struct PoseErrorRegressors {
  Matrix all, rotation, shift;
};
PoseErrorRegressors pose_error_regressors(const std::string& data_dir, const io::ParticleSet& set, size_t n) {
  std::ifstream f(data_dir + "/particles_truth.csv");
  std::string row;
  std::getline(f, row);
  std::map<std::string, size_t> col;
  {
    std::stringstream ss(row);
    std::string c;
    for (size_t k = 0; std::getline(ss, c, ','); ++k) col[c] = k;
  }
  Matrix pe(n, 27), pr(n, 9), ps(n, 9);
  for (size_t i = 0; i < n && std::getline(f, row); ++i) {
    std::stringstream ss(row);
    std::string c;
    std::vector<double> r;
    while (std::getline(ss, c, ',')) r.push_back(std::atof(c.c_str()));
    const io::Particle& p = set.particles[i];
    const Mat3<double> A = euler_to_matrix(p.rot, p.tilt, p.psi);
    const Mat3<double> T = euler_to_matrix(r[col.at("rot")], r[col.at("tilt")], r[col.at("psi")]);
    // E = T^T A: the error as a rotation of the model (A = T E), its small-angle vector from the skew part.
    double e[9];
    for (int a = 0; a < 3; ++a)
      for (int b = 0; b < 3; ++b) {
        e[3 * a + b] = 0;
        for (int q = 0; q < 3; ++q) e[3 * a + b] += T(q, a) * A(q, b);
      }
    // The shift error as a translation of the model (A^T (dx, dy, 0)): what a decoder could mimic.
    const double dx = p.origin_x - r[col.at("origin_x_A")], dy = p.origin_y - r[col.at("origin_y_A")];
    const double v[6] = {(e[7] - e[5]) / 2, (e[2] - e[6]) / 2, (e[3] - e[1]) / 2,
                         A(0, 0) * dx + A(1, 0) * dy, A(0, 1) * dx + A(1, 1) * dy, A(0, 2) * dx + A(1, 2) * dy};
    size_t q = 0;
    for (int a = 0; a < 6; ++a) pe(i, q++) = v[a];
    for (int a = 0; a < 6; ++a)
      for (int b = a; b < 6; ++b) pe(i, q++) = v[a] * v[b];
    size_t qr = 0, qs = 0;  // the rotation's and the shift's own terms
    for (int a = 0; a < 3; ++a) { pr(i, qr++) = v[a]; ps(i, qs++) = v[3 + a]; }
    for (int a = 0; a < 3; ++a)
      for (int b = a; b < 3; ++b) { pr(i, qr++) = v[a] * v[b]; ps(i, qs++) = v[3 + a] * v[3 + b]; }
  }
  return {pe, pr, ps};
}

nlohmann::json latent_info(const HeteroSystem& sys, const std::string& run, const std::string& data_dir,
                           const std::string& cache_path) {
  const int d = read_json(run + "/run.json").at("config").at("latent");
  nlohmann::json out = nlohmann::json::object();
  BootstrapOptions bo;
  bo.resamples = 20;
  std::string line;
  for (const MetricFigure& m : score_latent_file(sys, run + "/latent.txt", d, data_dir + "/particles_truth.csv", bo)) {
    out["metrics"][m.metric + " (" + m.motion + ")"] = m.value.value;
    char b[96];
    std::snprintf(b, sizeof b, " %s %.3f", m.metric.c_str(), m.value.value);
    line += b;
  }
  const std::vector<float> z = read_latent_txt(run + "/latent.txt", d);
  const size_t n = z.size() / size_t(d);
  Matrix L(n, size_t(d), std::vector<double>(z.begin(), z.end()));
  std::vector<double> var(size_t(d), 0.0);
  for (int k = 0; k < d; ++k) {
    double s = 0, s2 = 0;
    for (size_t i = 0; i < n; ++i) { s += L(i, size_t(k)); s2 += L(i, size_t(k)) * L(i, size_t(k)); }
    var[size_t(k)] = s2 / double(n) - (s / double(n)) * (s / double(n));
  }
  out["variance"] = var;
  const io::ParticleSet set = io::read_particles(data_dir + "/particles.star");
  std::vector<size_t> all(n);
  std::iota(all.begin(), all.end(), size_t(0));
  out["r2_defocus"] = variance_explained(L, defocus_regressors(set, all));
  out["r2_view"] = variance_explained(L, view_regressors(set, all));
  {
    const PoseErrorRegressors pose = pose_error_regressors(data_dir, set, n);
    out["r2_pose_error"] = variance_explained(L, pose.all);
    out["r2_pose_rotation"] = variance_explained(L, pose.rotation);
    out["r2_pose_shift"] = variance_explained(L, pose.shift);
  }
  // How much of each truth a linear map of the whole latent holds (whatever its axes and their variances).
  const Truth t = read_truth(data_dir + "/particles_truth.csv", sys.motions.size());
  std::string probe;
  for (size_t m = 0; m < sys.motions.size(); ++m) {
    Matrix y(n, 1);
    for (size_t i = 0; i < n; ++i) y(i, 0) = t.state[i][m];
    const double r2 = variance_explained(y, L);
    out["truth_r2"][sys.motions[m].name] = r2;
    probe += " " + sys.motions[m].name + " " + std::to_string(r2).substr(0, 5);
  }
  (void)cache_path;
  std::printf("latent:%s; truth R^2 on the latent:%s\n  variance per dimension:", line.c_str(), probe.c_str());
  for (double v : var) std::printf(" %.3g", v);
  std::printf("\n  variance explained by the defocus %.3f, by the view %.3f, by the pose error %.3f (rotation %.3f, "
              "shift %.3f)\n", out["r2_defocus"].get<double>(), out["r2_view"].get<double>(),
              out["r2_pose_error"].get<double>(), out["r2_pose_rotation"].get<double>(),
              out["r2_pose_shift"].get<double>());
  return out;
}

// ---- 4. the decoder and the feature blocks (round 8) -------------------------------------------------------

// Per neutral Gaussian: the presence motion of its nearest residue (-1: none). Diagnostic bookkeeping with the
// truth's geometry: which Gaussians a removed part owns.
std::vector<int> presence_owner(const HeteroSystem& sys, const std::vector<float>& neutral, int box, double pixel,
                                double& mean_distance) {
  const ResidueModels rm = residue_models(sys, box, pixel);
  const std::vector<float> rp = params_from_model(rm.neutral);
  const size_t G = neutral.size() / 5, R = rm.neutral.size();
  std::vector<int> owner(G, -1);
  mean_distance = 0;
  for (size_t j = 0; j < G; ++j) {
    double best = 1e300;
    size_t arg = 0;
    for (size_t r = 0; r < R; ++r) {
      double d2 = 0;
      for (int a = 0; a < 3; ++a) d2 += std::pow(double(neutral[a * G + j]) - rp[a * R + r], 2);
      if (d2 < best) { best = d2; arg = r; }
    }
    mean_distance += std::sqrt(best) / double(G);
    for (int m : rm.motions[arg])
      if (sys.motions[size_t(m)].kind == Motion::Kind::present) owner[j] = m;
  }
  return owner;
}

// (a) The feature blocks alone (positions 3G columns, amplitudes G, widths G): the same read-out as section 1 on
// each block's top-k principal components; and the single feature "sum of the amplitude features of the
// Gaussians a presence motion owns" (the first-order signal of removing that part). (b) The decoder: each
// particle's decoded model (latent.txt through the run's decoder), the mass of each presence motion's Gaussians
// relative to the neutral model's, by the truth's state, and along the latent's principal axes at +-2 SD.
nlohmann::json decoder_info(const HeteroSystem& sys, const std::string& run, const Truth& t,
                            const std::vector<size_t>& rows) {
  Context cx(Device::cpu);
  const TrainedModel m = load_trained(run + "/model.ckpt", cx);
  const size_t W = m.neutral_params.size(), G = W / 5, n = rows.size();
  double dist = 0;
  const std::vector<int> owner = presence_owner(sys, m.neutral_params, m.neutral.box_size, m.neutral.pixel_size, dist);
  nlohmann::json out = nlohmann::json::object();
  out["owner_mean_distance_A"] = dist;
  std::printf("decoder and feature blocks (Gaussians matched to residues: mean distance %.2f Å)\n", dist);
  const FeatureFile f(run + "/features.cugmm-features", nlohmann::json());
  std::vector<float> buf(n * W);
  f.gather(rows.data(), int(n), buf.data());
  const char* block_names[3] = {"positions", "amplitudes", "widths"};
  const size_t block_lo[3] = {0, 3 * G, 4 * G}, block_hi[3] = {3 * G, 4 * G, 5 * G};
  for (int blk = 0; blk < 3; ++blk) {
    const size_t w = block_hi[blk] - block_lo[blk];
    Eigen::MatrixXd X{Eigen::Index(n), Eigen::Index(w)};
    for (size_t i = 0; i < n; ++i)
      for (size_t c = 0; c < w; ++c) X(Eigen::Index(i), Eigen::Index(c)) = buf[i * W + block_lo[blk] + c];
    X.rowwise() -= X.colwise().mean();
    const double total = X.squaredNorm() / double(n);
    Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es(X.transpose() * X / double(n));
    const Eigen::MatrixXd P = X * es.eigenvectors().rowwise().reverse();
    std::printf(" block %s (%zu columns, variance %.1f):\n", block_names[blk], w, total);
    out["blocks"][block_names[blk]]["variance"] = total;
    read_out(sys, t, rows, P, {2, 4, 10, 25, 50, 100, 200}, std::min(int(w), int(n) / 3), out["blocks"][block_names[blk]]);
  }
  for (size_t mo = 0; mo < sys.motions.size(); ++mo) {
    if (sys.motions[mo].kind != Motion::Kind::present) continue;
    const std::string& name = sys.motions[mo].name;
    std::vector<size_t> own;
    double a0 = 0;
    for (size_t j = 0; j < G; ++j)
      if (owner[j] == int(mo)) { own.push_back(j); a0 += m.neutral_params[3 * G + j]; }
    Eigen::MatrixXd x(Eigen::Index(n), 1);
    std::vector<double> y;
    for (size_t i = 0; i < n; ++i) {
      double s = 0;
      for (size_t j : own) s += buf[i * W + 3 * G + j];
      x(Eigen::Index(i), 0) = s;
      y.push_back(t.state[rows[i]][mo]);
    }
    const double acc1 = cv_fit(x, y, true);
    // The decoded models: the part's mass relative to the neutral model's, per particle.
    const int d = m.config.latent;
    const std::vector<float> z = read_latent_txt(run + "/latent.txt", d);
    const size_t N = z.size() / size_t(d);
    const std::vector<float> p = decode_points(m, cx, z, int(N));
    std::vector<double> frac(N);
    for (size_t i = 0; i < N; ++i) {
      double s = 0;
      for (size_t j : own) s += p[i * W + 3 * G + j];
      frac[i] = s / a0;
    }
    double sum[2] = {0, 0}, cnt[2] = {0, 0};
    for (size_t i : rows) {
      const int k = t.state[i][mo] > 0.5 ? 1 : 0;
      sum[k] += frac[i];
      cnt[k] += 1;
    }
    const double lo = *std::min_element(frac.begin(), frac.end()), hi = *std::max_element(frac.begin(), frac.end());
    // The latent's principal axes at +-2 SD around its mean.
    Eigen::MatrixXd L(Eigen::Index(N), d);
    for (size_t i = 0; i < N; ++i)
      for (int k = 0; k < d; ++k) L(Eigen::Index(i), k) = z[i * size_t(d) + size_t(k)];
    const Eigen::RowVectorXd mu = L.colwise().mean();
    const Eigen::MatrixXd Lc = L.rowwise() - mu;
    Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es(Lc.transpose() * Lc / double(N));
    std::vector<float> ends;
    for (int k = d - 1; k >= 0; --k)
      for (double sgn : {-2.0, 2.0}) {
        const Eigen::VectorXd q = mu.transpose() + sgn * std::sqrt(std::max(0.0, es.eigenvalues()(k))) * es.eigenvectors().col(k);
        for (int c = 0; c < d; ++c) ends.push_back(float(q(c)));
      }
    const std::vector<float> pe = decode_points(m, cx, ends, 2 * d);
    std::vector<double> axis_frac;
    std::string axes;
    for (int r = 0; r < 2 * d; ++r) {
      double s = 0;
      for (size_t j : own) s += pe[size_t(r) * W + 3 * G + j];
      axis_frac.push_back(s / a0);
      char b[32];
      std::snprintf(b, sizeof b, "%s%.3f", r % 2 ? "/" : " ", s / a0);
      axes += b;
    }
    std::printf(" %s: %zu Gaussians (%.1f%% of the mass); read-out from their summed amplitude features %.3f;\n"
                "  decoded mass of the part / neutral: truth absent %.3f, present %.3f, range over particles %.3f..%.3f;\n"
                "  at -2/+2 SD along the latent's principal axes (largest first):%s\n",
                name.c_str(), own.size(), 100 * a0 / std::accumulate(m.neutral_params.begin() + long(3 * G),
                                                                     m.neutral_params.begin() + long(4 * G), 0.0),
                acc1, sum[0] / cnt[0], sum[1] / cnt[1], lo, hi, axes.c_str());
    nlohmann::json& o = out["presence"][name];
    o["gaussians"] = own.size();
    o["summed_amplitude_feature_accuracy"] = acc1;
    o["decoded_fraction_absent"] = sum[0] / cnt[0];
    o["decoded_fraction_present"] = sum[1] / cnt[1];
    o["decoded_fraction_min"] = lo;
    o["decoded_fraction_max"] = hi;
    o["decoded_fraction_axes_pm2sd"] = axis_frac;
  }
  return out;
}

// ---- 5. the encoder's input components -------------------------------------------------------------------

// Regressors of a truth column: the state and its square, and for a rotation the cosine and sine of the
// angle too (a full turn is circular, so a linear fit on the degrees alone understates it).
Matrix truth_regressors(const Motion& mo, const Truth& t, size_t motion, size_t n) {
  const bool turn = mo.kind == Motion::Kind::rotate;
  Matrix r(n, turn ? 4 : 2);
  for (size_t i = 0; i < n; ++i) {
    const double s = t.state[i][motion];
    r(i, 0) = s;
    r(i, 1) = s * s;
    if (turn) r(i, 2) = std::cos(s * M_PI / 180), r(i, 3) = std::sin(s * M_PI / 180);
  }
  return r;
}

// A run that reads principal components (--feature-pca, by variance or noise-whitened): what each of its top
// components holds, scored over every particle. Per component: its variance (lambda, signal-to-noise + 1, for
// noise-whitened ones), the fraction of it explained by each truth (truth_regressors), by the view, the
// defocus and the pose error (the latent's regressors) and by the particle's amplitude, the fraction its
// mean over the particle's 20 nearest views predicts (any smooth function of the view), the share of its sum
// of squares that its top 1% of particles hold (a Gaussian's is 0.085; far above it a few particles make the
// component), and the fraction of it a linear map of the trained latent holds (which components the latent
// follows).
nlohmann::json component_info(const HeteroSystem& sys, const std::string& run, const std::string& data_dir,
                              const Truth& t) {
  Context cx(Device::cpu);
  const TrainedModel m = load_trained(run + "/model.ckpt", cx);
  const FeatureTransform& tr = m.transform;
  nlohmann::json out = nlohmann::json::object();
  if (tr.k == 0) return out;
  const FeatureFile f(run + "/features.cugmm-features", nlohmann::json());
  const size_t W = f.width(), n = f.count(), K = size_t(tr.k), shown = std::min<size_t>(K, 12);
  std::vector<size_t> all(n);
  std::iota(all.begin(), all.end(), size_t(0));
  std::vector<float> x(n * W);
  f.gather(all.data(), int(n), x.data());
  if (tr.row_rms) scale_rows_to_unit_rms(x.data(), n, W);
  const Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>
      X(x.data(), Eigen::Index(n), Eigen::Index(W)), B(tr.basis.data(), Eigen::Index(W), Eigen::Index(K));
  const Eigen::MatrixXd P = X.cast<double>() * B.cast<double>();
  const io::ParticleSet set = io::read_particles(data_dir + "/particles.star");
  const Matrix view = view_regressors(set, all), defocus = defocus_regressors(set, all);
  // Each particle's 20 nearest views (beam directions, view_regressors' first three columns): a component
  // that is any smooth function of the view, not only the quadratic view_regressors fit, is predicted by
  // its mean over them (the particle itself left out).
  const size_t knn = 20;
  std::vector<std::vector<size_t>> near(n);
  for (size_t i = 0; i < n; ++i) {
    std::vector<std::pair<double, size_t>> dist;
    for (size_t q = 0; q < n; ++q)
      if (q != i) dist.push_back({-(view(i, 0) * view(q, 0) + view(i, 1) * view(q, 1) + view(i, 2) * view(q, 2)), q});
    std::partial_sort(dist.begin(), dist.begin() + std::ptrdiff_t(knn), dist.end());
    for (size_t q = 0; q < knn; ++q) near[i].push_back(dist[q].second);
  }
  const PoseErrorRegressors pose = pose_error_regressors(data_dir, set, n);
  // The particle's own amplitude: the simulator's per-particle scale (truth column "scale"), and the RMS of
  // its normalised feature row (its overall gradient scale), with their squares.
  Matrix amplitude(n, 4);
  {
    std::ifstream tf(data_dir + "/particles_truth.csv");
    std::string row, c;
    std::getline(tf, row);
    std::stringstream hs(row);
    size_t scale_col = 0;
    for (size_t k = 0; std::getline(hs, c, ','); ++k)
      if (c == "scale") scale_col = k;
    CUGMM_REQUIRE(scale_col > 0, data_dir + "/particles_truth.csv: no scale column");
    for (size_t i = 0; i < n && std::getline(tf, row); ++i) {
      std::stringstream ss(row);
      for (size_t k = 0; k <= scale_col; ++k) std::getline(ss, c, ',');
      const double sc = std::atof(c.c_str());
      double rms = 0;
      for (size_t q = 0; q < W; ++q) rms += double(x[i * W + q]) * x[i * W + q];
      rms = std::sqrt(rms / double(W));
      amplitude(i, 0) = sc, amplitude(i, 1) = sc * sc, amplitude(i, 2) = rms, amplitude(i, 3) = rms * rms;
    }
  }
  const int d = read_json(run + "/run.json").at("config").at("latent");
  const std::vector<float> z = read_latent_txt(run + "/latent.txt", d);
  CUGMM_REQUIRE(z.size() == n * size_t(d), run + "/latent.txt: not one row per particle of the feature file");
  const Matrix L(n, size_t(d), std::vector<double>(z.begin(), z.end()));
  std::printf("the run's %zu input components (top %zu): variance; R^2 of", K, shown);
  for (const Motion& mo : sys.motions) std::printf(" %s,", mo.name.c_str());
  std::printf(" view, view (20 nearest), defocus, pose error, amplitude, top-1%% share, latent\n");
  for (size_t j = 0; j < shown; ++j) {
    Matrix c(n, 1);
    double ss = 0;
    std::vector<double> sq(n);
    for (size_t i = 0; i < n; ++i) c(i, 0) = P(Eigen::Index(i), Eigen::Index(j));
    const double mean = std::accumulate(c.values.begin(), c.values.end(), 0.0) / double(n);
    for (size_t i = 0; i < n; ++i) ss += sq[i] = (c(i, 0) - mean) * (c(i, 0) - mean);
    std::sort(sq.begin(), sq.end(), std::greater<double>());
    const double top = std::accumulate(sq.begin(), sq.begin() + std::ptrdiff_t(std::max<size_t>(1, n / 100)), 0.0);
    nlohmann::json r;
    r["variance"] = j < tr.variance.size() ? tr.variance[j] : 0.0;
    std::printf("  %2zu: %7.2f;", j + 1, r["variance"].get<double>());
    for (size_t mi = 0; mi < sys.motions.size(); ++mi) {
      const double v = variance_explained(c, truth_regressors(sys.motions[mi], t, mi, n));
      r["truth_r2"][sys.motions[mi].name] = v;
      std::printf(" %.3f", v);
    }
    r["r2_view"] = variance_explained(c, view);
    r["r2_defocus"] = variance_explained(c, defocus);
    r["r2_pose_error"] = variance_explained(c, pose.all);
    r["r2_amplitude"] = variance_explained(c, amplitude);
    {
      double res = 0;
      for (size_t i = 0; i < n; ++i) {
        double around = 0;
        for (size_t q : near[i]) around += c(q, 0) / double(knn);
        res += (c(i, 0) - around) * (c(i, 0) - around);
      }
      r["r2_view_knn"] = ss > 0 ? 1 - res / ss : 0.0;
    }
    r["top1_share"] = ss > 0 ? top / ss : 0.0;
    r["r2_latent"] = variance_explained(c, L);
    std::printf(" | %.3f %.3f %.3f %.3f %.3f | %.3f | %.3f\n", r["r2_view"].get<double>(),
                r["r2_view_knn"].get<double>(), r["r2_defocus"].get<double>(),
                r["r2_pose_error"].get<double>(), r["r2_amplitude"].get<double>(), r["top1_share"].get<double>(),
                r["r2_latent"].get<double>());
    out["components"].push_back(r);
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    std::string system, data, cache_path, run, model, out = "diagnostics.json";
    bool ceiling = true, features = true, decoder = false, components = false;
    size_t noise_images = 0;  // --noise-whitened M: M noise-only images (section 1b)
    std::vector<double> shrinks;
    for (int i = 1; i < argc; ++i) {
      const std::string a = argv[i];
      auto next = [&]() -> std::string {
        if (i + 1 >= argc) throw Error(a + " needs a value");
        return argv[++i];
      };
      if (a == "--system") system = next();
      else if (a == "--data") data = next();
      else if (a == "--cache") cache_path = next();
      else if (a == "--run") run = next();
      else if (a == "--model") model = next();
      else if (a == "--out") out = next();
      else if (a == "--no-ceiling") ceiling = false;
      else if (a == "--no-features") features = false;
      else if (a == "--decoder") decoder = true;
      else if (a == "--components") components = true;
      else if (a == "--noise-whitened") noise_images = std::stoul(next());
      else if (a == "--shrink") shrinks.push_back(std::stod(next()));
      else throw Error("unknown option " + a + " (see the header of bench/bench_accuracy_diagnostics.cpp)");
    }
    if (system.empty() || data.empty() || cache_path.empty()) throw Error("--system, --data and --cache are needed");
    const HeteroSystem sys = system.size() > 5 && system.substr(system.size() - 5) == ".json" ? system_from_json(system)
                                                                                             : builtin_system(system);
    const Truth t = read_truth(data + "/particles_truth.csv", sys.motions.size());
    std::vector<size_t> rows;
    for (size_t i = 0; i < t.junk.size(); ++i)
      if (!t.junk[i]) rows.push_back(i);
    nlohmann::json doc;
    doc["benchmark"] = "accuracy_diagnostics";
    doc["machine"] = bench::machine();
    doc["system"] = system;
    doc["data"] = data;
    doc["run"] = run;
    std::vector<float> ring_weights, neutral_params;
    if (!run.empty()) {
      if (features) doc["features"] = feature_info(sys, run + "/features.cugmm-features", t, rows);
      if (noise_images > 0) {
        if (shrinks.empty()) shrinks = {0.2};
        doc["noise_whitened"] = whitened_info(sys, run + "/features.cugmm-features", t, rows,
                                              noise_features_of(run, cache_path, noise_images, 1), shrinks);
      }
      const nn::Checkpoint ck = nn::Checkpoint::load(run + "/model.ckpt");
      if (ck.meta.contains("ring_count")) ring_weights = ck.get_f32("ring_weights", ck.meta.at("ring_count").get<size_t>());
      neutral_params = ck.get_f32("neutral", 5 * size_t(ck.meta.at("gaussians").get<int>()));
      doc["latent"] = latent_info(sys, run, data, cache_path);
      if (decoder) doc["decoder"] = decoder_info(sys, run, t, rows);
      if (components) doc["components"] = component_info(sys, run, data, t);
    } else if (!model.empty()) {
      neutral_params = params_from_model(io::read_model(model));
    }
    if (ceiling) {
      CUGMM_REQUIRE(!neutral_params.empty(), "the score ceiling needs --run or --model (the neutral model)");
      ParticleCache cache(cache_path);
      std::printf("score ceiling (residue models at each particle's true state, STAR poses):\n");
      doc["ceiling"] = score_ceiling(sys, cache, t, rows, ring_weights, neutral_params);
    }
    bench::write_json(out, doc);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_accuracy_diagnostics: %s\n", e.what());
    return 1;
  }
}
