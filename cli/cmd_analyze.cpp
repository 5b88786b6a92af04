// `cugmm analyze RUN --out DIR`: a trained run turned into things to look at and act on (issue 15): PCA
// of the latent, clusters (centres snapped to real particles) with a reconstruction from each cluster's
// particles, pictures, trajectories along the first PCs and along localised directions (--mask or
// --domain-gaussians; engine/local_motion.h), particle subsets as RELION STAR files, one ChimeraX script
// and a report (cli/analyze_report.cpp).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cli/analyze_report.h"
#include "cli/command.h"
#include "cli/files.h"
#include "core/error.h"
#include "core/log.h"
#include "cugmm/settings.h"
#include "engine/analysis_files.h"
#include "engine/fsc.h"
#include "engine/gaussian_mask.h"
#include "engine/latent_analysis.h"
#include "engine/local_motion.h"
#include "engine/model_params.h"
#include "engine/reconstruct.h"
#include "engine/symmetry.h"
#include "engine/train_outputs.h"
#include "engine/trainer.h"
#include "io/atomic_file.h"
#include "io/cs.h"
#include "io/mrc.h"
#include "io/particles.h"
#include "io/plot.h"

namespace fs = std::filesystem;

namespace cugmm::cli {

namespace {

std::string two(int k) {
  char b[16];
  std::snprintf(b, sizeof b, "%02d", k);
  return b;
}

void scatter_plots(const std::string& base, const std::string& xl, const std::string& yl, const std::vector<double>& x,
                   const std::vector<double>& y, const LatentClusters* cl, const std::vector<double>& cx,
                   const std::vector<double>& cy, AnalyzeReport& rep) {
  io::Plot d;
  d.title("particles in the latent space, by density").xlabel(xl).ylabel(yl).colorbar_label("relative density");
  d.add_density_scatter("", x, y);
  d.write_png(base + "_density.png");
  rep.picture(base + "_density.png", "particles on " + xl + " / " + yl + ", coloured by local density");
  if (!cl) return;
  io::Plot c;
  c.title("particles in the latent space, by cluster").xlabel(xl).ylabel(yl);
  c.add_clusters(x, y, [&] {
    std::vector<int> l;
    for (int v : cl->labels) l.push_back(v + 1);
    return l;
  }());
  {
    io::PlotSeries& s = c.add_scatter("centres (real particles)", cx, cy);
    s.color = 0x010101;  // black (0 would mean "next palette colour")
    s.point_radius = 5;
  }
  c.write_png(base + "_clusters.png");
  rep.picture(base + "_clusters.png", "particles on " + xl + " / " + yl + ", coloured by cluster; black: the particle "
                                      "nearest each cluster's mean");
}

// "pc1:-1.5:2" / "local2:0:3" -> axis name, lo, hi.
void parse_range(const std::string& s, std::string& axis, double& lo, double& hi) {
  const size_t a = s.find(':'), b = a == std::string::npos ? a : s.find(':', a + 1);
  if (b == std::string::npos) throw Error("--range: expected AXIS:LO:HI (e.g. pc1:-1:1), got '" + quote_value(s) + "'");
  axis = s.substr(0, a);
  std::vector<float> v = parse_numbers(s.substr(a + 1, b - a - 1) + " " + s.substr(b + 1), "--range");
  if (v.size() != 2 || !(v[0] < v[1])) throw Error("--range: LO and HI must be two numbers with LO < HI");
  lo = v[0];
  hi = v[1];
}

}  // namespace

static int run_analyze(Command& c) {
  std::string run, out, root, axes, mask_path, domain, point_text, range_text, fold_text;
  const AnalysisSettings defaults;  // the library's (include/cugmm/settings.h): one source of the defaults
  int k = defaults.clusters, pcs = defaults.pcs, frames = defaults.frames, nlocal = 2, nearest = 0;
  double arrow_scale = 1, min_arrow = 0.1, radius = 0;
  bool no_reconstruct = false;
  long long seed = (long long)defaults.seed;
  c.text("RUN", run, "a `cugmm train` run directory (model.ckpt, latent.txt, particles.star, run.json)")->required();
  c.text("--out", out, "output directory (report.md, analyze.cxc, analyze.json and the files they list)")->required();
  c.integer("--k", k, "clusters (a Gaussian mixture of the latent points; 0: none)", 0, 50);
  c.integer("--pcs", pcs, "trajectories along this many principal components", 0, 64);
  c.integer("--frames", frames, "frames per trajectory (5th to 95th percentile)", 2, 200);
  c.text("--axes", axes, "also picture latent axes I,J (1-based, e.g. 1,3)");
  c.number("--arrow-scale", arrow_scale, "motion arrows: the 5th-95th percentile motion times this", 0, 1e4, true);
  c.number("--min-arrow", min_arrow, "arrows shorter than this (Å, after scaling) are left out", 0, 1e4);
  c.text("--mask", mask_path, "a domain (MRC on the neutral model's grid): latent directions that move it most");
  c.text("--domain-gaussians", domain, "the domain as 0-based Gaussian indices and ranges, e.g. 0-99,150");
  c.integer("--local", nlocal, "localised directions to write (with --mask or --domain-gaussians)", 1, 64);
  c.text("--point", point_text, "a latent point (d numbers): subset of the particles near it");
  c.number("--radius", radius, "... within this latent distance", 0, 1e30, true);
  c.integer("--nearest", nearest, "... or the K nearest", 1, 1 << 30);
  c.text("--range", range_text, "subset with coordinate in [LO, HI] along pcN or localN: AXIS:LO:HI");
  c.flag("--no-reconstruct", no_reconstruct, "skip the reconstruction from each cluster's particles");
  c.text("--root", root, "directory that relative image paths of the run's particles are relative to");
  c.integer("--seed", seed, "random seed of the clustering", 0, (1ll << 62));
  c.text("--fold", fold_text, "a --sym run: per particle, copy-with-largest-motion (default) or mean of its copies "
                              "(fold.txt)");
  c.device_options();
  if (c.parse()) return 0;
  if (!mask_path.empty() && !domain.empty()) throw Error("give --mask or --domain-gaussians, not both");
  if (!point_text.empty() && (radius > 0) == (nearest > 0)) throw Error("--point needs --radius or --nearest (one of them)");
  if (point_text.empty() && (radius > 0 || nearest > 0)) throw Error("--radius and --nearest go with --point");
  require_directory_name("--out", out);
  const fs::path rd(run), od(out);
  FileSpec files{{(rd / "model.ckpt").string(), (rd / "latent.txt").string(), (rd / "particles.star").string(),
                  (rd / "run.json").string()},
                 {},
                 {out}};
  if (!mask_path.empty()) files.inputs.push_back(mask_path);
  for (const char* n : {"report.md", "analyze.cxc", "analyze.json", "pca.txt", "clusters.txt", "fold.txt", "fold.png"})
    files.outputs.push_back((od / n).string());
  check_files(files, false);
  const auto t0 = std::chrono::steady_clock::now();

  // Inputs, all before any work.
  std::ifstream rj(files.inputs[3]);
  const nlohmann::json runinfo = nlohmann::json::parse(rj, nullptr, false);
  if (runinfo.is_discarded() || !runinfo.contains("particles"))
    throw InputError(files.inputs[3], "", "not a run.json of `cugmm train` (no \"particles\")");
  const std::string source = runinfo["particles"].get<std::string>();
  const Device device = c.device();
  Context cx(device);
  TrainedModel m = load_trained(files.inputs[0], cx);
  const int d = m.config.latent, G = int(m.neutral.size());
  const std::vector<float> zf = read_latent_txt(files.inputs[1], d);
  const size_t N = zf.size() / size_t(d);
  Matrix z(N, size_t(d), std::vector<double>(zf.begin(), zf.end()));
  io::ParticleReadOptions sopt;
  sopt.check_images = false;  // subsets keep the paths as written
  io::ParticleSet table = io::read_particles(files.inputs[2], sopt);
  if (table.particles.size() != N)
    throw InputError(files.inputs[2], "", "has " + std::to_string(table.particles.size()) + " particles, latent.txt " +
                                              std::to_string(N));
  // A --sym run: latent.txt and particles.star hold one row per copy (rows r*n .. r*n+n-1 of particle r).
  const SymmetryGroup group = make_symmetry_group(m.config.symmetry);
  const size_t copies = group.order();
  if (N % copies != 0)
    throw InputError(files.inputs[1], "", "has " + std::to_string(N) + " rows, not whole sets of the " +
                                              std::to_string(copies) + " " + group.name + " copies the run was trained with");
  const FoldRule fold = parse_fold_rule(fold_text.empty() ? "copy-with-largest-motion" : fold_text);
  if (!fold_text.empty() && copies == 1) throw Error("--fold: the run has no symmetry expansion (trained without --sym)");
  pcs = std::min(pcs, d);
  if (k > 0 && N < size_t(2 * k)) throw Error("--k " + std::to_string(k) + ": needs at least 2 particles per cluster");
  int ax[2] = {0, 0};
  if (!axes.empty()) {
    std::vector<float> a = parse_numbers(std::string(axes).replace(axes.find(',') == std::string::npos ? 0 : axes.find(','), 1, " "), "--axes");
    if (a.size() != 2 || a[0] < 1 || a[1] < 1 || a[0] > d || a[1] > d || a[0] == a[1] || a[0] != int(a[0]) || a[1] != int(a[1]))
      throw Error("--axes: two different latent axes between 1 and " + std::to_string(d) + ", e.g. 1,2");
    ax[0] = int(a[0]);
    ax[1] = int(a[1]);
  }
  std::vector<char> inside;
  if (!mask_path.empty()) inside = gaussians_in_mask(mask_path, m.neutral);
  if (!domain.empty()) inside = parse_gaussian_list(domain, G);
  std::vector<double> point;
  if (!point_text.empty()) {
    for (float v : parse_numbers(point_text, "--point")) point.push_back(v);
    if (point.size() != size_t(d)) throw Error("--point: the latent has " + std::to_string(d) + " dimensions");
  }
  std::string range_axis;
  double range_lo = 0, range_hi = 0;
  if (!range_text.empty()) {
    parse_range(range_text, range_axis, range_lo, range_hi);
    const bool pc = range_axis.rfind("pc", 0) == 0, loc = range_axis.rfind("local", 0) == 0;
    const int n = std::atoi(range_axis.c_str() + (pc ? 2 : 5));
    if (!(pc && n >= 1 && n <= d) && !(loc && !inside.empty() && n >= 1 && n <= std::min(nlocal, d)))
      throw Error("--range: the axis is pc1..pc" + std::to_string(d) + " or, with a domain, local1..local" +
                  std::to_string(std::min(nlocal, d)) + " (got '" + quote_value(range_axis) + "')");
  }
  io::ParticleSet set;  // the training input with its images, for the clusters' reconstructions
  if (k > 0 && !no_reconstruct) {
    io::ParticleReadOptions ropt;
    ropt.root = root;
    set = io::read_particles(source, ropt);
    if (copies > 1) set = expand_particle_set(set, group);  // the copies' poses, as particles.star has them
    if (set.particles.size() != N)
      throw InputError(source, "", "has " + std::to_string(set.particles.size()) + " particles; the run has " + std::to_string(N));
  }
  check_files(files);
  AnalyzeReport rep(out, run);
  // A subset as RELION STAR and, when training read a cryoSPARC .cs, also as .cs (+ .csg) for cryoSPARC:
  // row i of the run's particles.star is record i of that file.
  // (Not for a --sym run: a .cs cannot hold several poses of one particle.)
  const bool from_cs = fs::path(source).extension() == ".cs" && copies == 1;
  auto write_subset = [&](const std::string& name, const std::vector<size_t>& rows) {
    io::write_particle_subset((od / "subsets" / (name + ".star")).string(), table, rows);
    if (from_cs) io::write_cs_subset((od / "subsets" / (name + ".cs")).string(), source, rows);
  };

  // PCA, clusters and the PC trajectories: the library's analysis (Engine::analyze computes the same).
  const LatentSummary summary = summarise_latent(z, k, pcs, frames, uint64_t(seed));
  const Pca& p = summary.pca;
  write_pca_txt((od / "pca.txt").string(), p);
  rep.pca(p);
  const std::vector<double>& mean = summary.mean;
  const LatentClusters& cl = summary.clusters;
  if (k > 0) write_clusters_txt((od / "clusters.txt").string(), cl);
  // Pictures.
  auto col = [&](const Matrix& mtx, size_t j) { return mtx.column(j); };
  std::vector<double> cx1, cy1, cx2, cy2;
  if (k > 0)
    for (size_t r = 0; r < size_t(k); ++r) {
      if (d >= 2) {
        cx1.push_back(p.scores(cl.centre[r], 0));
        cy1.push_back(p.scores(cl.centre[r], 1));
      }
      if (ax[0]) {
        cx2.push_back(z(cl.centre[r], size_t(ax[0] - 1)));
        cy2.push_back(z(cl.centre[r], size_t(ax[1] - 1)));
      }
    }
  if (d >= 2) scatter_plots((od / "latent_pc1_pc2").string(), "PC1", "PC2", col(p.scores, 0), col(p.scores, 1), k > 0 ? &cl : nullptr, cx1, cy1, rep);
  if (ax[0])
    scatter_plots((od / ("latent_z" + std::to_string(ax[0]) + "_z" + std::to_string(ax[1]))).string(),
                  "z" + std::to_string(ax[0]), "z" + std::to_string(ax[1]), col(z, size_t(ax[0] - 1)),
                  col(z, size_t(ax[1] - 1)), k > 0 ? &cl : nullptr, cx2, cy2, rep);

  // Trajectories: PCs, then localised directions and the sum and difference of the first two.
  std::vector<LatentPath> paths = summary.paths;
  const DecodeFn decode = [&](const std::vector<float>& zz, int n) { return decode_points(m, cx, zz, n); };
  LocalMotions lm;
  if (!inside.empty()) {
    lm = local_motions(z, inside, decode);
    const int nl = std::min(nlocal, d);
    for (int j = 0; j < nl; ++j)
      paths.push_back(latent_path("local" + std::to_string(j + 1), z, mean,
                                  std::vector<double>(lm.directions.values.begin() + j * d, lm.directions.values.begin() + (j + 1) * d), frames));
    if (nl >= 2) {
      std::vector<double> s(static_cast<size_t>(d)), df(static_cast<size_t>(d));
      for (int c2 = 0; c2 < d; ++c2) {
        s[size_t(c2)] = lm.directions(0, size_t(c2)) + lm.directions(1, size_t(c2));
        df[size_t(c2)] = lm.directions(0, size_t(c2)) - lm.directions(1, size_t(c2));
      }
      paths.push_back(latent_path("local_sum", z, mean, s, frames));
      paths.push_back(latent_path("local_diff", z, mean, df, frames));
    }
  }
  nlohmann::json jpaths = nlohmann::json::array();
  for (const LatentPath& lp : paths) {
    std::vector<float> pts(lp.points.values.begin(), lp.points.values.end());
    const std::vector<float> params = decode(pts, int(lp.t.size()));
    const PathFiles f = write_path_files(out, lp, params, m.neutral, arrow_scale, min_arrow);
    const size_t W = 5 * size_t(G);
    nlohmann::json e = {{"name", lp.name}, {"direction", lp.direction}, {"t", lp.t}};
    if (!inside.empty()) {
      const Displacement dsp = mean_displacement(std::vector<float>(params.begin(), params.begin() + long(W)),
                                                 std::vector<float>(params.end() - long(W), params.end()), inside);
      e["mean_displacement_inside_A"] = dsp.inside;
      e["mean_displacement_outside_A"] = dsp.outside;
    }
    jpaths.push_back(e);
    rep.path(lp, f, e);
  }
  if (!inside.empty()) rep.local(lm, size_t(std::count(inside.begin(), inside.end(), 1)), size_t(G));

  // Per cluster: the decoded model at its centre, its particles, and their reconstruction.
  nlohmann::json jclusters = nlohmann::json::array();
  if (k > 0 || !point.empty() || !range_axis.empty()) fs::create_directories(od / "subsets");
  for (int r = 0; r < k; ++r) {
    const std::string name = "cluster_" + two(r + 1);
    fs::create_directories(od / name);
    std::vector<float> zc(zf.begin() + long(cl.centre[size_t(r)] * size_t(d)), zf.begin() + long((cl.centre[size_t(r)] + 1) * size_t(d)));
    write_point_files((od / name / "centre").string(), model_from_params(decode(zc, 1), m.neutral));
    std::vector<size_t> rows;
    for (size_t i = 0; i < N; ++i)
      if (cl.labels[i] == r) rows.push_back(i);
    write_subset(name, rows);
    nlohmann::json e = {{"cluster", r + 1}, {"particles", rows.size()}, {"centre_particle", cl.centre[size_t(r)]},
                        {"centre_latent", std::vector<double>(zc.begin(), zc.end())}};
    // A --sym run: the reconstruction takes each image once (it refuses an image twice, which could put it in
    // both halves), so a particle with several copies in the cluster contributes its first one.
    std::vector<size_t> images;
    for (size_t i : rows)
      if (images.empty() || images.back() / copies != i / copies) images.push_back(i);
    if (!no_reconstruct && images.size() >= 4) {
      HalfMaps hm = reconstruct_halves(set, images, device, ReconstructOptions{});
      e["reconstructed_images"] = images.size();
      const int n = hm.box;
      for (auto [fname, vol] : {std::pair<const char*, const std::vector<float>*>{"half1.mrc", &hm.half1},
                                {"half2.mrc", &hm.half2}, {"full.mrc", &hm.full}})
        io::write_mrc((od / name / fname).string(), vol->data(), n, n, n, float(hm.pixel_size), false);
      const FscCurve curve = fsc(hm.half1.data(), hm.half2.data(), n, hm.pixel_size);
      write_fsc_txt((od / name / "fsc.txt").string(), curve);
      e["resolution_0143_A"] = curve.resolution_at(0.143);
      e["fsc_crosses_0143"] = curve.crosses(0.143);
    }
    jclusters.push_back(e);
    rep.cluster(name, e);
  }

  // Subsets asked for.
  nlohmann::json jsubsets = nlohmann::json::object();
  if (!point.empty()) {
    std::vector<size_t> rows = radius > 0 ? rows_within(z, point, radius) : rows_nearest(z, point, size_t(nearest));
    std::sort(rows.begin(), rows.end());
    write_subset("point", rows);
    jsubsets["point"] = {{"point", point}, {"particles", rows.size()}};
    rep.subset("subsets/point.star", rows.size(), radius > 0 ? "within " + std::to_string(radius) + " of --point"
                                                              : "the " + std::to_string(nearest) + " nearest to --point");
  }
  if (!range_axis.empty()) {
    const auto it = std::find_if(paths.begin(), paths.end(), [&](const LatentPath& lp) { return lp.name == range_axis; });
    const std::vector<double> coord = it != paths.end() ? it->coordinate
        : latent_path(range_axis, z, mean, std::vector<double>(p.components.values.begin() + (std::atoi(range_axis.c_str() + 2) - 1) * d,
                                                               p.components.values.begin() + std::atoi(range_axis.c_str() + 2) * d), 2).coordinate;
    std::vector<size_t> rows = rows_in_range(coord, range_lo, range_hi);
    write_subset("range", rows);
    jsubsets["range"] = {{"axis", range_axis}, {"lo", range_lo}, {"hi", range_hi}, {"particles", rows.size()}};
    rep.subset("subsets/range.star", rows.size(), range_axis + " coordinate in [" + std::to_string(range_lo) + ", " +
                                                      std::to_string(range_hi) + "]");
  }

  // Symmetry copies folded back per particle.
  nlohmann::json jfold;
  if (copies > 1) {
    std::vector<double> motion;
    // Decoded in chunks of at most ~200 MB of parameters.
    const size_t chunk = std::max<size_t>(1, std::min<size_t>(4096, 50'000'000 / (5 * size_t(G))));
    Progress progress("decoding the copies", N);
    for (size_t first = 0; first < N; first += chunk) {
      const size_t n = std::min(chunk, N - first);
      const std::vector<float> params =
          decode(std::vector<float>(zf.begin() + long(first * d), zf.begin() + long((first + n) * d)), int(n));
      const std::vector<double> r = rms_displacement(params, m.neutral_params, n);
      motion.insert(motion.end(), r.begin(), r.end());
      progress.add(n);
    }
    progress.finish();
    const FoldedCopies fc = fold_copies(z, copies, motion, fold);
    write_fold_txt((od / "fold.txt").string(), fc, copies, motion, k > 0 ? cl.labels : std::vector<int>{}, fold_rule_name(fold));
    std::vector<double> copy_no, count(copies, 0.0);
    for (size_t q = 0; q < copies; ++q) copy_no.push_back(double(q + 1));
    for (int q : fc.chosen) count[size_t(q)] += 1;
    io::Plot pl;
    pl.title("copy that moves most, per particle (" + group.name + ")").xlabel("symmetry copy").ylabel("particles");
    pl.add_series("particles", copy_no, count);
    pl.write_png((od / "fold.png").string());
    rep.picture((od / "fold.png").string(), "for each particle, which of its " + group.name +
                                                " copies decodes to the largest motion (fold.txt lists them all)");
    jfold = {{"group", group.name}, {"copies", copies}, {"particles", N / copies}, {"rule", fold_rule_name(fold)},
             {"file", "fold.txt"}, {"largest_motion_copy_counts", count}};
  }

  nlohmann::json j;
  j["run"] = fs::absolute(run).string();
  j["particles"] = N;
  j["latent"] = d;
  j["gaussians"] = G;
  j["pca_explained"] = p.explained;
  j["paths"] = jpaths;
  j["clusters"] = jclusters;
  j["subsets"] = jsubsets;
  if (copies > 1) j["symmetry"] = jfold;
  if (!inside.empty()) {
    j["local"] = {{"eigenvalues", lm.eigenvalues}, {"eps", lm.eps}, {"points", lm.points},
                  {"domain_gaussians", std::count(inside.begin(), inside.end(), 1)}};
  }
  j["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  rep.write_cxc((od / "analyze.cxc").string());
  rep.write_markdown((od / "report.md").string());
  io::write_file_atomic((od / "analyze.json").string(), j.dump(2) + "\n");
  std::printf("analyze: %zu particles, latent %d: PCA %s; %d cluster(s); %zu trajectories -> %s/report.md (%.1f s)\n", N, d,
              rep.explained_text().c_str(), k, paths.size(), out.c_str(), j["seconds"].get<double>());
  return 0;
}

static RegisterCommand reg("analyze", "PCA, clusters, trajectories, localised motions and subsets of a trained run",
                           run_analyze);

}  // namespace cugmm::cli
