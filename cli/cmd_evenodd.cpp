// `cugmm evenodd PARTICLES MODEL --out DIR`: is the latent reproducible? (issue 15 item 4) The particles
// split in two (rlnRandomSubset, else even/odd rows), each half trained as `cugmm train` trains (the same
// options, cli/train_options.h, and the same Trainer) into DIR/half1 and DIR/half2 (run directories that
// `cugmm analyze` reads), then the comparisons and thresholds of engine/evenodd.h: evenodd.json, report.md.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/command.h"
#include "cli/files.h"
#include "cli/latent_estimate.h"
#include "cli/train_options.h"
#include "core/error.h"
#include "core/log.h"
#include "engine/evenodd.h"
#include "engine/fsc.h"
#include "engine/latent_analysis.h"
#include "engine/model_params.h"
#include "engine/particle_cache.h"
#include "engine/reconstruct.h"
#include "engine/train_outputs.h"
#include "engine/trainer.h"
#include "engine/api/workflows.h"
#include "io/atomic_file.h"
#include "io/particles.h"
#include "io/star.h"

namespace fs = std::filesystem;

namespace cugmm::cli {

namespace {

// One half's particles as a STAR file whose image names are absolute (the half file lives in DIR, not
// where the input's relative paths resolve).
void write_half_star(const std::string& path, const io::ParticleSet& set, const std::vector<size_t>& rows) {
  io::StarFile star = io::particle_subset_star(set, rows);
  for (auto& b : star.blocks) {
    const int c = b.is_loop ? b.column("rlnImageName") : -1;
    if (c < 0) continue;
    for (size_t i = 0; i < rows.size(); ++i) {
      const io::Particle& p = set.particles[rows[i]];
      b.rows[i][size_t(c)] = std::to_string(p.index + 1) + "@" + fs::absolute(p.image_file).string();
    }
  }
  io::write_star(path, star);
}

Matrix to_matrix(const std::vector<float>& v, size_t d) { return Matrix(v.size() / d, d, std::vector<double>(v.begin(), v.end())); }

// Positions at the 95th minus the 5th percentile along each of the first P PCs of a half's own latent.
std::vector<std::vector<double>> pc_fields(const TrainedModel& m, Context& cx, const Matrix& z, int P,
                                           std::vector<double>& rms) {
  const Pca p = pca(z);
  const std::vector<double> mean = latent_mean(z);
  const size_t d = z.cols, G = m.neutral.size();
  std::vector<std::vector<double>> fields;
  for (int j = 0; j < P; ++j) {
    const LatentPath lp = latent_path("pc", z, mean, std::vector<double>(p.components.values.begin() + long(j * d),
                                                                          p.components.values.begin() + long((j + 1) * d)), 2);
    const std::vector<float> pts(lp.points.values.begin(), lp.points.values.end());
    const std::vector<float> par = decode_points(m, cx, pts, 2);
    const io::GaussianModel a = model_from_params(std::vector<float>(par.begin(), par.begin() + long(5 * G)), m.neutral),
                            b = model_from_params(std::vector<float>(par.begin() + long(5 * G), par.end()), m.neutral);
    std::vector<double> f;
    double ss = 0;
    for (size_t g = 0; g < G; ++g)
      for (double v : {double(b.x[g]) - a.x[g], double(b.y[g]) - a.y[g], double(b.z[g]) - a.z[g]}) {
        f.push_back(v);
        ss += v * v;
      }
    rms.push_back(std::sqrt(ss / double(G)));
    fields.push_back(f);
  }
  return fields;
}

std::string yes(bool b) { return b ? "pass" : "FAIL"; }

}  // namespace

static int run_evenodd(Command& c) {
  TrainOptions to;
  TrainConfig& cfg = to.config;
  std::string particles, model_path, out;
  int k = 2, pcs = 2;
  c.text("PARTICLES", particles, "particle STAR or cryoSPARC .cs file")->required();
  c.text("MODEL", model_path, "the neutral model (native, PDB or mmCIF) on the particles' grid")->required();
  c.text("--out", out, "output directory: half1/, half2/ (run directories), evenodd.json, report.md")->required();
  to.declare(c);
  LatentEstimateOptions le;
  le.declare(c);
  c.integer("--k", k, "clusters compared (0: none)", 0, 6);
  c.integer("--pcs", pcs, "principal-component trajectories compared", 1, 6);
  c.device_options();
  if (c.parse()) return 0;
  to.finish(c);
  le.finish(cfg.seed, cfg.batch);
  require_directory_name("--out", out);
  const fs::path od(out);
  FileSpec files{{particles, model_path}, {}, {out, (od / "half1").string(), (od / "half2").string()}};
  for (const auto& f : to.inputs()) files.inputs.push_back(f);
  for (const char* n : {"evenodd.json", "report.md", "half1.star", "half2.star"}) files.outputs.push_back((od / n).string());
  for (const char* h : {"half1", "half2"})
    for (const char* n : {"latent.txt", "particles.star", "model.ckpt", "loss.txt", "loss.png", "run.json"})
      files.outputs.push_back((od / h / n).string());
  if (le.use_posterior)
    for (const char* h : {"half1", "half2"}) files.outputs.push_back((od / h / "latent_encoder.txt").string());
  check_files(files, false);

  io::ParticleReadOptions ropt;
  ropt.root = to.cache.root;
  io::ParticleSet set = io::read_particles(particles, ropt);
  refuse_premultiplied(set, to.config.ctf);
  const WorkingGrid native = choose_working_grid(set, 0);
  io::GaussianModel model = io::load_any_model(model_path, native.box, native.pixel);
  require_model_on_grid(model, model_path, native.box, native.pixel, particles);
  to.select_gaussians(model);
  bool by_subset = false;
  const std::vector<int> half = particle_halves(set, &by_subset);
  std::vector<size_t> rows[2];
  for (size_t i = 0; i < half.size(); ++i) rows[half[i] - 1].push_back(i);
  for (int h = 0; h < 2; ++h) {
    size_t n_val = 0;
    for (size_t i = 0; i < rows[h].size(); ++i) n_val += is_validation(i, cfg.val_fraction);
    if (rows[h].size() - n_val < size_t(cfg.batch) || rows[h].size() < size_t(4 * std::max(k, 1)))
      throw Error("half " + std::to_string(h + 1) + " has " + std::to_string(rows[h].size()) +
                  " particles: too few to train (--batch " + std::to_string(cfg.batch) + ") and compare");
  }
  // --sym: the halves split particles (a particle's copies stay in its half); everything after training is
  // over the copies: xset / xrows[h] are the expanded set and each half's rows in it (particle r -> r*n + k).
  const size_t copies = to.group.order();
  const io::ParticleSet xset = copies > 1 ? expand_particle_set(set, to.group) : set;
  std::vector<size_t> xrows[2];
  for (int h = 0; h < 2; ++h)
    for (size_t i : rows[h])
      for (size_t q = 0; q < copies; ++q) xrows[h].push_back(i * copies + q);
  const Device device = c.device();
  check_files(files);
  const auto t0 = std::chrono::steady_clock::now();
  log_info(std::string("evenodd: halves by ") + (by_subset ? "rlnRandomSubset" : "even/odd rows") + ": " +
           std::to_string(rows[0].size()) + " + " + std::to_string(rows[1].size()) + " particles");

  // Train each half exactly as `cugmm train` would.
  Context cx(device);
  std::vector<ParticleCache> caches;
  caches.reserve(2);
  std::vector<float> own[2];
  std::string dir[2], ckpt[2];
  for (int h = 0; h < 2; ++h) {
    dir[h] = (od / ("half" + std::to_string(h + 1))).string();
    const std::string star = (od / ("half" + std::to_string(h + 1) + ".star")).string();
    write_half_star(star, set, rows[h]);
    CacheOptions co = to.cache;
    co.particles = star;
    co.root.clear();
    co.maxres = cfg.maxres;
    caches.push_back(open_particle_cache(co, (fs::path(dir[h]) / "particles.cugmm-cache").string(), true));
    if (copies > 1) caches.back().expand(to.group.name, to.group.operators);
    const ParticleCache& cache = caches.back();
    Trainer trainer(cx, cache, model, cfg, dir[h]);
    log_info("evenodd: training half " + std::to_string(h + 1));
    trainer.prepare_features(false);
    const bool done = trainer.train(false);
    write_loss((fs::path(dir[h]) / "loss.txt").string(), (fs::path(dir[h]) / "loss.png").string(), trainer.history());
    if (!done) return 130;
    std::vector<float> score;
    trainer.embed(own[h], score);
    const std::vector<int64_t> src = output_rows(cache);
    if (le.use_posterior) {  // both files only once the posterior has succeeded
      const std::vector<float> encoder_points = own[h];
      apply_latent_estimate(le, load_trained(trainer.checkpoint_path(), cx), cx, trainer.batcher(), own[h]);
      write_latent_txt((fs::path(dir[h]) / "latent_encoder.txt").string(), encoder_points, cfg.latent, src, copies);
    }
    io::ParticleSet hs = io::read_particles(star, io::ParticleReadOptions{"", true, false});
    if (copies > 1) hs = expand_particle_set(hs, to.group);
    write_latent_txt((fs::path(dir[h]) / "latent.txt").string(), own[h], cfg.latent, src, copies);
    write_latent_star((fs::path(dir[h]) / "particles.star").string(), hs, own[h], score, cfg.latent, src);
    // Cache order is the half file's row order (source_row; copies consecutive); latent rows below index
    // xrows[h] in that order.
    for (size_t i = 0; i < cache.count(); ++i)
      CUGMM_REQUIRE(src[i] == int64_t(i), "evenodd: the cache reorders particles");
    nlohmann::json run = {{"cugmm_version", "0.1.0"}, {"command", "evenodd"}, {"half", h + 1},
                          {"particles", fs::absolute(star).string()}, {"model", fs::absolute(model_path).string()},
                          {"config", cfg.to_json()}, {"gaussians", model.size()}};
    io::write_file_atomic((fs::path(dir[h]) / "run.json").string(), run.dump(2) + "\n");
    ckpt[h] = trainer.checkpoint_path();
  }

  // Each encoder on every particle: zall[e] row i = particle i of the input through half e's encoder.
  TrainedModel tm[2] = {load_trained(ckpt[0], cx), load_trained(ckpt[1], cx)};
  const size_t N = xset.particles.size(), d = size_t(cfg.latent);
  Matrix zall[2] = {Matrix(N, d), Matrix(N, d)};
  for (int e = 0; e < 2; ++e)
    for (int h = 0; h < 2; ++h) {
      std::vector<float> z = own[h], score;
      if (e != h) {
        const ParticleCache& cache = caches[size_t(h)];
        embed_cache(tm[e], cx, cache, ckpt[e],
                    (fs::path(dir[e]) / ("cross_half" + std::to_string(h + 1) + ".cugmm-features")).string(), z, score);
        const ParticleBatcher batcher = model_batcher(tm[e], cache);
        apply_latent_estimate(le, tm[e], cx, batcher, z);
      }
      for (size_t i = 0; i < xrows[h].size(); ++i)
        for (size_t j = 0; j < d; ++j) zall[e](xrows[h][i], j) = z[i * d + j];
    }
  nlohmann::json j;
  j["particles"] = set.particles.size();
  j["latent_estimate"] = le.estimate;
  if (copies > 1) j["symmetry"] = {{"group", to.group.name}, {"copies", copies}, {"latent_rows", N}};
  j["halves"] = {{"by", by_subset ? "rlnRandomSubset" : "even/odd rows"}, {"count", {rows[0].size(), rows[1].size()}}};
  std::ostringstream md;
  md << "# cugmm evenodd\n\nHalves by " << (by_subset ? "rlnRandomSubset" : "even/odd rows") << ": " << rows[0].size()
     << " + " << rows[1].size() << " particles, trained in `half1/` and `half2/` (run directories for `cugmm analyze`).\n\n"
     << (copies > 1 ? "Symmetry expansion " + to.group.name + ": every comparison is over the " + std::to_string(N) +
                          " copies (a particle's copies stay in its half).\n\n"
                    : std::string())
     << "| comparison | value | threshold | verdict |\n| --- | --- | --- | --- |\n";
  char buf[256];

  // Latent: canonical correlations of the two encoders' latents of every particle.
  const std::vector<double> cc = canonical_correlations(zall[0], zall[1]);
  const bool ok_latent = !cc.empty() && cc[0] >= kEvenOddMinCanonical;
  j["latent"] = {{"canonical_correlations", cc}, {"threshold_first", kEvenOddMinCanonical}, {"pass", ok_latent}};
  std::snprintf(buf, sizeof buf, "| latent: first canonical correlation of the two encoders (all particles) | %.3f | >= %.2f | %s |\n",
                cc.empty() ? 0.0 : cc[0], kEvenOddMinCanonical, yes(ok_latent).c_str());
  md << buf;

  // Trajectories: each half's own PCs, decoded by its own decoder, matched.
  const int P = std::min(pcs, cfg.latent);
  std::vector<double> rms[2];
  std::vector<std::vector<double>> fields[2];
  for (int h = 0; h < 2; ++h) fields[h] = pc_fields(tm[h], cx, to_matrix(own[h], d), P, rms[h]);
  const FieldMatch fm = match_fields(fields[0], fields[1]);
  bool ok_traj = true;
  nlohmann::json jt = nlohmann::json::array();
  for (int p = 0; p < P; ++p) {
    const bool ok = fm.rmsd[size_t(p)] <= kEvenOddMaxTrajectory;
    // PC1 decides; later PCs are reported (a minor PC need not be reproducible when the latent has fewer motions).
    if (p == 0) ok_traj = ok;
    jt.push_back({{"pc_half1", p + 1}, {"pc_half2", fm.matched[size_t(p)] + 1}, {"relative_rmsd", fm.rmsd[size_t(p)]},
                  {"rms_motion_half1_A", rms[0][size_t(p)]}, {"rms_motion_half2_A", rms[1][size_t(fm.matched[size_t(p)])]},
                  {"pass", ok}});
    std::snprintf(buf, sizeof buf, "| trajectory: PC%d (half 1) vs PC%d (half 2), RMSD / motion (RMS motion %.2f and %.2f Å) | %.3f | <= %.2f | %s |\n",
                  p + 1, fm.matched[size_t(p)] + 1, rms[0][size_t(p)], rms[1][size_t(fm.matched[size_t(p)])],
                  fm.rmsd[size_t(p)], kEvenOddMaxTrajectory, yes(ok).c_str());
    md << buf;
  }
  j["trajectories"] = {{"threshold", kEvenOddMaxTrajectory}, {"pcs", jt}, {"pass", ok_traj}};

  // Clusters: each encoder's latent of every particle clustered, labels matched; maps from each half's own
  // particles of the matched clusters compared by FSC.
  bool ok_clusters = true;
  if (k > 0) {
    const LatentClusters ca = cluster_latent(zall[0], k, cfg.seed), cb = cluster_latent(zall[1], k, cfg.seed);
    const std::vector<int> perm = best_matching(ca.labels, cb.labels, k);
    size_t agree = 0;
    for (size_t i = 0; i < N; ++i) agree += perm[size_t(ca.labels[i])] == cb.labels[i];
    const double frac = double(agree) / double(N);
    ok_clusters = frac >= kEvenOddMinClusterAgree;
    nlohmann::json jc = nlohmann::json::array();
    // Each cluster's map from all its particles of one half: reconstruct_halves would split them again by
    // rlnRandomSubset (all one value within a half), so the copy it reads has none.
    // With --sym, a particle with several copies in a cluster contributes its first (each image once).
    io::ParticleSet whole = xset;
    for (auto& p : whole.particles) p.random_subset = 0;
    auto add = [&](std::vector<size_t>& v, size_t i) {
      if (v.empty() || v.back() / copies != i / copies) v.push_back(i);
    };
    for (int r = 0; r < k; ++r) {
      std::vector<size_t> ra, rb;
      for (size_t i : xrows[0]) if (ca.labels[i] == r) add(ra, i);
      for (size_t i : xrows[1]) if (cb.labels[i] == perm[size_t(r)]) add(rb, i);
      nlohmann::json e = {{"cluster_half1", r + 1}, {"cluster_half2", perm[size_t(r)] + 1}, {"particles_half1", ra.size()},
                          {"particles_half2", rb.size()}};
      if (ra.size() >= 4 && rb.size() >= 4) {
        const HalfMaps a = reconstruct_halves(whole, ra, device, ReconstructOptions{});
        const HalfMaps b = reconstruct_halves(whole, rb, device, ReconstructOptions{});
        const FscCurve f = fsc(a.full.data(), b.full.data(), a.box, a.pixel_size);
        const std::string name = "cluster_" + std::to_string(r + 1) + "_fsc.txt";
        write_fsc_txt((od / name).string(), f);
        e["fsc_file"] = name;
        e["resolution_05_A"] = f.resolution_at(0.5);
        e["resolution_0143_A"] = f.resolution_at(0.143);
        std::snprintf(buf, sizeof buf, "| cluster %d (half 1) vs %d (half 2): FSC of their maps (%zu, %zu particles) | %.1f Å at 0.143, %.1f Å at 0.5 | reported | |\n",
                      r + 1, perm[size_t(r)] + 1, ra.size(), rb.size(), f.resolution_at(0.143), f.resolution_at(0.5));
        md << buf;
      }
      jc.push_back(e);
    }
    j["clusters"] = {{"k", k}, {"agreement", frac}, {"threshold", kEvenOddMinClusterAgree}, {"matched", jc},
                     {"pass", ok_clusters}};
    std::snprintf(buf, sizeof buf, "| clusters: matched labels that agree (k = %d, chance ~%.2f) | %.3f | >= %.2f | %s |\n",
                  k, 1.0 / k, frac, kEvenOddMinClusterAgree, yes(ok_clusters).c_str());
    md << buf;
  }

  // Nuisance: each half's own latent regressed on defocus and on the view.
  bool ok_nuis = true;
  nlohmann::json jn = nlohmann::json::array();
  for (int h = 0; h < 2; ++h) {
    const Matrix z = to_matrix(own[h], d), df = defocus_regressors(xset, xrows[h]), vw = view_regressors(xset, xrows[h]);
    Matrix both(z.rows, df.cols + vw.cols);
    for (size_t i = 0; i < z.rows; ++i) {
      both(i, 0) = df(i, 0);
      for (size_t c2 = 0; c2 < vw.cols; ++c2) both(i, 1 + c2) = vw(i, c2);
    }
    const double r_df = variance_explained(z, df), r_vw = variance_explained(z, vw), r_both = variance_explained(z, both);
    const bool ok = r_both <= kEvenOddMaxNuisanceR2;
    ok_nuis = ok_nuis && ok;
    jn.push_back({{"half", h + 1}, {"r2_defocus", r_df}, {"r2_view", r_vw}, {"r2_defocus_and_view", r_both}, {"pass", ok}});
    std::snprintf(buf, sizeof buf, "| nuisance: half %d latent variance explained by defocus %.3f, view %.3f; both | %.3f | <= %.2f | %s |\n",
                  h + 1, r_df, r_vw, r_both, kEvenOddMaxNuisanceR2, yes(ok).c_str());
    md << buf;
  }
  j["nuisance"] = {{"threshold", kEvenOddMaxNuisanceR2}, {"halves", jn}, {"pass", ok_nuis}};

  const bool ok = ok_latent && ok_traj && ok_clusters && ok_nuis;
  j["reproducible"] = ok;
  j["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  md << "\n**" << (ok ? "Reproducible" : "Not reproducible") << "** (every comparison must pass).\n\n"
     << "Thresholds and why: README \"Reproducibility: cugmm evenodd\". Files: `evenodd.json` (every number), "
        "`half1.star`, `half2.star` (the halves), `half1/`, `half2/` (each half's run), `cluster_N_fsc.txt`.\n";
  io::write_file_atomic((od / "report.md").string(), md.str());
  io::write_file_atomic((od / "evenodd.json").string(), j.dump(2) + "\n");
  std::printf("%s", md.str().c_str());
  std::printf("evenodd: %s (%.1f s) -> %s/report.md\n", ok ? "reproducible" : "NOT reproducible", j["seconds"].get<double>(),
              out.c_str());
  return 0;
}

static RegisterCommand reg("evenodd", "train on two halves of the particles and say whether their latents agree",
                           run_evenodd);

}  // namespace cugmm::cli
