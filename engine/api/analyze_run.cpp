// `cugmm analyze` and Engine::analyze (issue 15, issue 20): a trained run turned into things to look at and act
// on. PCA of the latent, clusters (centres snapped to real particles) with a reconstruction from each
// cluster's particles, trajectories along the first PCs and along localised directions (a domain by mask or
// Gaussian indices; engine/local_motion.h), particle subsets as RELION STAR files (and .cs for a run trained
// on a cryoSPARC file), a --sym run's copies folded back per particle; in memory and, given a directory,
// written there with pictures, one ChimeraX script and a report (engine/analysis_report.h).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/log.h"
#include "engine/analysis_files.h"
#include "engine/analysis_report.h"
#include "engine/api/convert.h"
#include "engine/api/workflows.h"
#include "engine/fsc.h"
#include "engine/gaussian_mask.h"
#include "engine/local_motion.h"
#include "engine/model_params.h"
#include "engine/reconstruct.h"
#include "io/atomic_file.h"
#include "io/cs.h"
#include "io/mrc.h"
#include "io/plot.h"

namespace fs = std::filesystem;

namespace cugmm {

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

// "pcN" / "localN" -> N (0 when the prefix differs).
int axis_number(const std::string& axis, const char* prefix) {
  const size_t n = std::char_traits<char>::length(prefix);
  return axis.rfind(prefix, 0) == 0 ? std::atoi(axis.c_str() + n) : 0;
}

std::vector<Gaussians> decoded_frames(const std::vector<float>& params, size_t n, const io::GaussianModel& neutral) {
  const size_t W = 5 * neutral.size();
  std::vector<Gaussians> g;
  for (size_t k = 0; k < n; ++k)
    g.push_back(from_model(model_from_params(std::vector<float>(params.begin() + long(k * W), params.begin() + long((k + 1) * W)),
                                             neutral)));
  return g;
}

}  // namespace

void check_analysis_settings(const AnalysisSettings& s) {
  if (s.clusters < 0 || s.clusters > 50) throw Error("AnalysisSettings::clusters: 0 to 50, not " + std::to_string(s.clusters));
  if (s.pcs < 0 || s.pcs > 64) throw Error("AnalysisSettings::pcs: 0 to 64, not " + std::to_string(s.pcs));
  if (s.frames < 2 || s.frames > 200) throw Error("AnalysisSettings::frames: 2 to 200, not " + std::to_string(s.frames));
  if (s.local < 1 || s.local > 64) throw Error("AnalysisSettings::local: 1 to 64, not " + std::to_string(s.local));
  if (!(s.arrow_scale > 0 && s.arrow_scale <= 1e4)) throw Error("AnalysisSettings::arrow_scale: above 0, at most 1e4");
  if (!(s.min_arrow >= 0 && s.min_arrow <= 1e4)) throw Error("AnalysisSettings::min_arrow: 0 to 1e4");
  if (!(s.radius >= 0 && std::isfinite(s.radius))) throw Error("AnalysisSettings::radius: a finite number >= 0");
  if (!s.mask.empty() && !s.domain_gaussians.empty()) throw Error("give --mask or --domain-gaussians, not both");
  if (!s.point.empty() && (s.radius > 0) == (s.nearest > 0)) throw Error("--point needs --radius or --nearest (one of them)");
  if (s.point.empty() && (s.radius > 0 || s.nearest > 0)) throw Error("--radius and --nearest go with --point");
  if (!s.range_axis.empty() && !(s.range_lo < s.range_hi)) throw Error("--range: LO and HI must be two numbers with LO < HI");
  if (!s.fold.empty()) parse_fold_rule(s.fold);
}

AnalysisInputs prepare_analysis(const std::string& run_dir, const TrainedModel& m, const std::vector<float>& latent,
                                const AnalysisSettings& s) {
  check_analysis_settings(s);
  AnalysisInputs in;
  in.run_dir = run_dir;
  in.model = &m;
  const fs::path rd(run_dir);
  const std::string rj_path = (rd / "run.json").string(), star = (rd / "particles.star").string();
  std::ifstream rj(rj_path);
  const nlohmann::json runinfo = nlohmann::json::parse(rj, nullptr, false);
  if (runinfo.is_discarded() || !runinfo.contains("particles"))
    throw InputError(rj_path, "", "not a run.json of `cugmm train` (no \"particles\")");
  in.source = runinfo["particles"].get<std::string>();
  const int d = m.config.latent, G = int(m.neutral.size());
  in.latent = latent;
  const size_t N = latent.size() / size_t(d);
  in.z = Matrix(N, size_t(d), std::vector<double>(latent.begin(), latent.end()));
  io::ParticleReadOptions sopt;
  sopt.check_images = false;  // subsets keep the paths as written
  in.table = io::read_particles(star, sopt);
  if (in.table.particles.size() != N)
    throw InputError(star, "", "has " + std::to_string(in.table.particles.size()) + " particles, latent.txt " +
                                   std::to_string(N));
  // A --sym run: latent.txt and particles.star hold one row per copy (rows r*n .. r*n+n-1 of particle r).
  in.group = make_symmetry_group(m.config.symmetry);
  const size_t copies = in.group.order();
  if (N % copies != 0)
    throw InputError((rd / "latent.txt").string(), "", "has " + std::to_string(N) + " rows, not whole sets of the " +
                                                           std::to_string(copies) + " " + in.group.name +
                                                           " copies the run was trained with");
  in.fold = parse_fold_rule(s.fold.empty() ? "copy-with-largest-motion" : s.fold);
  if (!s.fold.empty() && copies == 1) throw Error("--fold: the run has no symmetry expansion (trained without --sym)");
  const int k = s.clusters;
  if (k > 0 && N < size_t(2 * k)) throw Error("--k " + std::to_string(k) + ": needs at least 2 particles per cluster");
  if (!s.axes.empty()) {
    const std::vector<int>& a = s.axes;
    if (a.size() != 2 || a[0] < 1 || a[1] < 1 || a[0] > d || a[1] > d || a[0] == a[1])
      throw Error("--axes: two different latent axes between 1 and " + std::to_string(d) + ", e.g. 1,2");
  }
  if (!s.mask.empty()) in.inside = gaussians_in_mask(s.mask, m.neutral);
  if (!s.domain_gaussians.empty()) in.inside = parse_gaussian_list(s.domain_gaussians, G);
  if (!s.point.empty() && s.point.size() != size_t(d))
    throw Error("--point: the latent has " + std::to_string(d) + " dimensions");
  if (!s.range_axis.empty()) {
    const int pc = axis_number(s.range_axis, "pc"), loc = axis_number(s.range_axis, "local");
    if (!(pc >= 1 && pc <= d) && !(!in.inside.empty() && loc >= 1 && loc <= std::min(s.local, d)))
      throw Error("--range: the axis is pc1..pc" + std::to_string(d) + " or, with a domain, local1..local" +
                  std::to_string(std::min(s.local, d)) + " (got '" + quote_value(s.range_axis) + "')");
  }
  if (k > 0 && s.reconstruct) {  // the training input with its images, for the clusters' reconstructions
    io::ParticleReadOptions ropt;
    ropt.root = s.root;
    in.images = io::read_particles(in.source, ropt);
    if (copies > 1) in.images = expand_particle_set(in.images, in.group);  // the copies' poses, as particles.star
    if (in.images.particles.size() != N)
      throw InputError(in.source, "", "has " + std::to_string(in.images.particles.size()) + " particles; the run has " +
                                          std::to_string(N));
  }
  return in;
}

Analysis run_analysis(Context& cx, const AnalysisInputs& in, const AnalysisSettings& s, const std::string& out) {
  const auto t0 = std::chrono::steady_clock::now();
  const TrainedModel& m = *in.model;
  const bool writing = !out.empty();
  const fs::path od(out);
  const int d = m.config.latent, G = int(m.neutral.size()), k = s.clusters, pcs = std::min(s.pcs, d);
  const std::vector<float>& zf = in.latent;
  const Matrix& z = in.z;
  const size_t N = z.rows, copies = in.group.order();
  const std::vector<char>& inside = in.inside;
  const int nl = inside.empty() ? 0 : std::min(s.local, d);
  Progress progress("analyze", size_t(1 + (nl > 0) + pcs + nl + (nl >= 2 ? 2 : 0) + k));
  AnalyzeReport rep(out, in.run_dir);
  Analysis a;
  // A subset as RELION STAR and, when training read a cryoSPARC .cs, also as .cs (+ .csg) for cryoSPARC:
  // row i of the run's particles.star is record i of that file.
  // (Not for a --sym run: a .cs cannot hold several poses of one particle.)
  const bool from_cs = fs::path(in.source).extension() == ".cs" && copies == 1;
  auto write_subset = [&](const std::string& name, const std::vector<size_t>& rows) {
    if (!writing) return;
    io::write_particle_subset((od / "subsets" / (name + ".star")).string(), in.table, rows);
    if (from_cs) io::write_cs_subset((od / "subsets" / (name + ".cs")).string(), in.source, rows);
  };

  // PCA, clusters and the PC trajectories.
  const LatentSummary summary = summarise_latent(z, k, pcs, s.frames, s.seed);
  const Pca& p = summary.pca;
  a.explained = p.explained;
  a.components = p.components.values;
  if (writing) write_pca_txt((od / "pca.txt").string(), p);
  rep.pca(p);
  const std::vector<double>& mean = summary.mean;
  const LatentClusters& cl = summary.clusters;
  if (k > 0) {
    a.labels = cl.labels;
    a.centres = cl.centre;
    if (writing) write_clusters_txt((od / "clusters.txt").string(), cl);
  }
  progress.add();
  // Pictures.
  if (writing) {
    auto col = [&](const Matrix& mtx, size_t j) { return mtx.column(j); };
    const int ax0 = s.axes.empty() ? 0 : s.axes[0], ax1 = s.axes.empty() ? 0 : s.axes[1];
    std::vector<double> cx1, cy1, cx2, cy2;
    if (k > 0)
      for (size_t r = 0; r < size_t(k); ++r) {
        if (d >= 2) {
          cx1.push_back(p.scores(cl.centre[r], 0));
          cy1.push_back(p.scores(cl.centre[r], 1));
        }
        if (ax0) {
          cx2.push_back(z(cl.centre[r], size_t(ax0 - 1)));
          cy2.push_back(z(cl.centre[r], size_t(ax1 - 1)));
        }
      }
    if (d >= 2)
      scatter_plots((od / "latent_pc1_pc2").string(), "PC1", "PC2", col(p.scores, 0), col(p.scores, 1),
                    k > 0 ? &cl : nullptr, cx1, cy1, rep);
    if (ax0)
      scatter_plots((od / ("latent_z" + std::to_string(ax0) + "_z" + std::to_string(ax1))).string(),
                    "z" + std::to_string(ax0), "z" + std::to_string(ax1), col(z, size_t(ax0 - 1)),
                    col(z, size_t(ax1 - 1)), k > 0 ? &cl : nullptr, cx2, cy2, rep);
  }

  // Trajectories: PCs, then localised directions and the sum and difference of the first two.
  std::vector<LatentPath> paths = summary.paths;
  const DecodeFn decode = [&](const std::vector<float>& zz, int n) { return decode_points(m, cx, zz, n); };
  LocalMotions lm;
  if (!inside.empty()) {
    lm = local_motions(z, inside, decode);
    progress.add();
    for (int j = 0; j < nl; ++j)
      paths.push_back(latent_path("local" + std::to_string(j + 1), z, mean,
                                  std::vector<double>(lm.directions.values.begin() + j * d, lm.directions.values.begin() + (j + 1) * d),
                                  s.frames));
    if (nl >= 2) {
      std::vector<double> sum(static_cast<size_t>(d)), diff(static_cast<size_t>(d));
      for (int c = 0; c < d; ++c) {
        sum[size_t(c)] = lm.directions(0, size_t(c)) + lm.directions(1, size_t(c));
        diff[size_t(c)] = lm.directions(0, size_t(c)) - lm.directions(1, size_t(c));
      }
      paths.push_back(latent_path("local_sum", z, mean, sum, s.frames));
      paths.push_back(latent_path("local_diff", z, mean, diff, s.frames));
    }
    for (size_t j = 0; j < inside.size(); ++j)
      if (inside[j]) a.local.gaussians.push_back(int(j));
    a.local.eigenvalues = lm.eigenvalues;
    a.local.directions = lm.directions.values;
    a.local.eps = lm.eps;
    a.local.points = lm.points;
  }
  nlohmann::json jpaths = nlohmann::json::array();
  for (const LatentPath& lp : paths) {
    std::vector<float> pts(lp.points.values.begin(), lp.points.values.end());
    const std::vector<float> params = decode(pts, int(lp.t.size()));
    const size_t W = 5 * size_t(G);
    Trajectory t;
    t.name = lp.name;
    t.direction = lp.direction;
    t.t = lp.t;
    t.points = pts;
    t.frames = decoded_frames(params, lp.t.size(), m.neutral);
    t.coordinate = lp.coordinate;
    nlohmann::json e = {{"name", lp.name}, {"direction", lp.direction}, {"t", lp.t}};
    if (!inside.empty()) {
      const Displacement dsp = mean_displacement(std::vector<float>(params.begin(), params.begin() + long(W)),
                                                 std::vector<float>(params.end() - long(W), params.end()), inside);
      e["mean_displacement_inside_A"] = t.displacement_inside = dsp.inside;
      e["mean_displacement_outside_A"] = t.displacement_outside = dsp.outside;
    }
    jpaths.push_back(e);
    if (writing) rep.path(lp, write_path_files(out, lp, params, m.neutral, s.arrow_scale, s.min_arrow), e);
    a.trajectories.push_back(std::move(t));
    progress.add();
  }
  if (!inside.empty()) rep.local(lm, size_t(std::count(inside.begin(), inside.end(), 1)), size_t(G));

  // Per cluster: the decoded model at its centre, its particles, and their reconstruction.
  nlohmann::json jclusters = nlohmann::json::array();
  if (writing && (k > 0 || !s.point.empty() || !s.range_axis.empty())) fs::create_directories(od / "subsets");
  for (int r = 0; r < k; ++r) {
    const std::string name = "cluster_" + two(r + 1);
    if (writing) fs::create_directories(od / name);
    std::vector<float> zc(zf.begin() + long(cl.centre[size_t(r)] * size_t(d)), zf.begin() + long((cl.centre[size_t(r)] + 1) * size_t(d)));
    const io::GaussianModel centre = model_from_params(decode(zc, 1), m.neutral);
    a.centre_models.push_back(from_model(centre));
    if (writing) write_point_files((od / name / "centre").string(), centre);
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
    ClusterMap cm;
    if (s.reconstruct && images.size() >= 4) {
      HalfMaps hm = reconstruct_halves(in.images, images, cx.device(), ReconstructOptions{});
      e["reconstructed_images"] = images.size();
      const int n = hm.box;
      if (writing)
        for (auto [fname, vol] : {std::pair<const char*, const std::vector<float>*>{"half1.mrc", &hm.half1},
                                  {"half2.mrc", &hm.half2}, {"full.mrc", &hm.full}})
          io::write_mrc((od / name / fname).string(), vol->data(), n, n, n, float(hm.pixel_size), false);
      const FscCurve curve = fsc(hm.half1.data(), hm.half2.data(), n, hm.pixel_size);
      if (writing) write_fsc_txt((od / name / "fsc.txt").string(), curve);
      e["resolution_0143_A"] = cm.resolution = curve.resolution_at(0.143);
      e["fsc_crosses_0143"] = cm.crosses = curve.crosses(0.143);
      cm.images = images.size();
      cm.full.box = n;
      cm.full.pixel_size = hm.pixel_size;
      cm.full.data = std::move(hm.full);
      cm.fsc = curve.value;
    }
    a.cluster_maps.push_back(std::move(cm));
    jclusters.push_back(e);
    rep.cluster(name, e);
    progress.add();
  }

  // Subsets asked for.
  nlohmann::json jsubsets = nlohmann::json::object();
  if (!s.point.empty()) {
    std::vector<size_t> rows = s.radius > 0 ? rows_within(z, s.point, s.radius) : rows_nearest(z, s.point, s.nearest);
    std::sort(rows.begin(), rows.end());
    write_subset("point", rows);
    jsubsets["point"] = {{"point", s.point}, {"particles", rows.size()}};
    rep.subset("subsets/point.star", rows.size(), s.radius > 0 ? "within " + std::to_string(s.radius) + " of --point"
                                                                : "the " + std::to_string(s.nearest) + " nearest to --point");
    a.point_subset = rows;
  }
  if (!s.range_axis.empty()) {
    const auto it = std::find_if(paths.begin(), paths.end(), [&](const LatentPath& lp) { return lp.name == s.range_axis; });
    const int pc = axis_number(s.range_axis, "pc");
    const std::vector<double> coord = it != paths.end() ? it->coordinate
        : latent_path(s.range_axis, z, mean, std::vector<double>(p.components.values.begin() + (pc - 1) * d,
                                                                 p.components.values.begin() + pc * d), 2).coordinate;
    std::vector<size_t> rows = rows_in_range(coord, s.range_lo, s.range_hi);
    write_subset("range", rows);
    jsubsets["range"] = {{"axis", s.range_axis}, {"lo", s.range_lo}, {"hi", s.range_hi}, {"particles", rows.size()}};
    rep.subset("subsets/range.star", rows.size(), s.range_axis + " coordinate in [" + std::to_string(s.range_lo) + ", " +
                                                      std::to_string(s.range_hi) + "]");
    a.range_subset = rows;
  }

  // Symmetry copies folded back per particle.
  nlohmann::json jfold;
  if (copies > 1) {
    std::vector<double> motion;
    // Decoded in chunks of at most ~200 MB of parameters.
    const size_t chunk = std::max<size_t>(1, std::min<size_t>(4096, 50'000'000 / (5 * size_t(G))));
    Progress decoding("decoding the copies", N);
    for (size_t first = 0; first < N; first += chunk) {
      const size_t n = std::min(chunk, N - first);
      const std::vector<float> params =
          decode(std::vector<float>(zf.begin() + long(first * d), zf.begin() + long((first + n) * d)), int(n));
      const std::vector<double> r = rms_displacement(params, m.neutral_params, n);
      motion.insert(motion.end(), r.begin(), r.end());
      decoding.add(n);
    }
    decoding.finish();
    const FoldedCopies fc = fold_copies(z, copies, motion, in.fold);
    std::vector<double> copy_no, count(copies, 0.0);
    for (size_t q = 0; q < copies; ++q) copy_no.push_back(double(q + 1));
    for (int q : fc.chosen) count[size_t(q)] += 1;
    if (writing) {
      write_fold_txt((od / "fold.txt").string(), fc, copies, motion, k > 0 ? cl.labels : std::vector<int>{},
                     fold_rule_name(in.fold));
      io::Plot pl;
      pl.title("copy that moves most, per particle (" + in.group.name + ")").xlabel("symmetry copy").ylabel("particles");
      pl.add_series("particles", copy_no, count);
      pl.write_png((od / "fold.png").string());
      rep.picture((od / "fold.png").string(), "for each particle, which of its " + in.group.name +
                                                  " copies decodes to the largest motion (fold.txt lists them all)");
    }
    jfold = {{"group", in.group.name}, {"copies", copies}, {"particles", N / copies}, {"rule", fold_rule_name(in.fold)},
             {"file", "fold.txt"}, {"largest_motion_copy_counts", count}};
    a.fold.group = in.group.name;
    a.fold.copies = copies;
    a.fold.rule = fold_rule_name(in.fold);
    a.fold.chosen = fc.chosen;
    a.fold.motion = motion;
    a.fold.latent.assign(fc.latent.values.begin(), fc.latent.values.end());
  }
  progress.finish();
  if (!writing) return a;

  nlohmann::json j;
  j["run"] = fs::absolute(in.run_dir).string();
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
  return a;
}

}  // namespace cugmm
