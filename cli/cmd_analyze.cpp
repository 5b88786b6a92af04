// `cugmm analyze RUN --out DIR`: a trained run turned into things to look at and act on (issue 15): PCA
// of the latent, clusters with a reconstruction from each cluster's particles, pictures, trajectories along
// the first PCs and along localised directions, particle subsets, a --sym run's copies folded back, one
// ChimeraX script and a report. The analysis is the library API's (Engine::analyze, engine/api/analyze_run.cpp):
// this command reads its options into AnalysisSettings, checks its files and prints what was written.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "cli/command.h"
#include "cli/files.h"
#include "core/error.h"
#include "cugmm/engine.h"
#include "engine/analysis_report.h"
#include "engine/api/workflows.h"

namespace fs = std::filesystem;

namespace cugmm::cli {

namespace {

// "pc1:-1.5:2" / "local2:0:3" -> axis name, lo, hi (the axis and LO < HI are the library's checks).
void parse_range(const std::string& s, std::string& axis, double& lo, double& hi) {
  const size_t a = s.find(':'), b = a == std::string::npos ? a : s.find(':', a + 1);
  if (b == std::string::npos) throw Error("--range: expected AXIS:LO:HI (e.g. pc1:-1:1), got '" + quote_value(s) + "'");
  axis = s.substr(0, a);
  std::vector<float> v = parse_numbers(s.substr(a + 1, b - a - 1) + " " + s.substr(b + 1), "--range");
  if (v.size() != 2) throw Error("--range: LO and HI must be two numbers with LO < HI");
  lo = v[0];
  hi = v[1];
}

// "1,3" -> {1, 3} (which axes the latent has is the library's check).
std::vector<int> parse_axes(const std::string& s) {
  std::string text = s;
  for (char& ch : text)
    if (ch == ',') ch = ' ';
  std::vector<int> axes;
  for (float v : parse_numbers(text, "--axes")) {
    if (v != std::floor(v) || std::abs(v) > 1e6)
      throw Error("--axes: '" + quote_value(s) + "' is not two latent axes I,J (1-based integers, e.g. 1,2)");
    axes.push_back(int(v));
  }
  return axes;
}

}  // namespace

static int run_analyze(Command& c) {
  std::string run, out, axes, point_text, range_text;
  AnalysisSettings s;  // the library's defaults (include/cugmm/settings.h)
  int nearest = 0;
  bool no_reconstruct = !s.reconstruct;
  long long seed = (long long)s.seed;
  c.text("RUN", run, "a `cugmm train` run directory (model.ckpt, latent.txt, particles.star, run.json)")->required();
  c.text("--out", out, "output directory (report.md, analyze.cxc, analyze.json and the files they list)")->required();
  c.integer("--k", s.clusters, "clusters (a Gaussian mixture of the latent points; 0: none)", 0, 50);
  c.integer("--pcs", s.pcs, "trajectories along this many principal components", 0, 64);
  c.integer("--frames", s.frames, "frames per trajectory (5th to 95th percentile)", 2, 200);
  c.text("--axes", axes, "also picture latent axes I,J (1-based, e.g. 1,3)");
  c.number("--arrow-scale", s.arrow_scale, "motion arrows: the 5th-95th percentile motion times this", 0, 1e4, true);
  c.number("--min-arrow", s.min_arrow, "arrows shorter than this (Å, after scaling) are left out", 0, 1e4);
  c.text("--mask", s.mask, "a domain (MRC on the neutral model's grid): latent directions that move it most");
  c.text("--domain-gaussians", s.domain_gaussians, "the domain as 0-based Gaussian indices and ranges, e.g. 0-99,150");
  c.integer("--local", s.local, "localised directions to write (with --mask or --domain-gaussians)", 1, 64);
  c.text("--point", point_text, "a latent point (d numbers): subset of the particles near it");
  c.number("--radius", s.radius, "... within this latent distance", 0, 1e30, true);
  c.integer("--nearest", nearest, "... or the K nearest", 1, 1 << 30);
  c.text("--range", range_text, "subset with coordinate in [LO, HI] along pcN or localN: AXIS:LO:HI");
  c.flag("--no-reconstruct", no_reconstruct, "skip the reconstruction from each cluster's particles");
  c.text("--root", s.root, "directory that relative image paths of the run's particles are relative to");
  c.integer("--seed", seed, "random seed of the clustering", 0, (1ll << 62));
  c.text("--fold", s.fold, "a --sym run: per particle, copy-with-largest-motion (default) or mean of its copies "
                           "(fold.txt)");
  c.device_options();
  if (c.parse()) return 0;
  s.seed = uint64_t(seed);
  s.nearest = size_t(nearest);
  s.reconstruct = !no_reconstruct;
  if (!axes.empty()) s.axes = parse_axes(axes);
  if (!point_text.empty())
    for (float v : parse_numbers(point_text, "--point")) s.point.push_back(v);
  if (!range_text.empty()) parse_range(range_text, s.range_axis, s.range_lo, s.range_hi);
  check_analysis_settings(s);
  require_directory_name("--out", out);
  const fs::path rd(run), od(out);
  FileSpec files{{(rd / "model.ckpt").string(), (rd / "latent.txt").string(), (rd / "particles.star").string(),
                  (rd / "run.json").string()},
                 {},
                 {out}};  // created by the analysis, once it has read and checked every input
  if (!s.mask.empty()) files.inputs.push_back(s.mask);
  for (const char* n : {"report.md", "analyze.cxc", "analyze.json", "pca.txt", "clusters.txt", "fold.txt", "fold.png"})
    files.outputs.push_back((od / n).string());
  check_files(files, false);
  const auto t0 = std::chrono::steady_clock::now();

  EngineOptions eo;
  eo.device = device_name(c.device());
  Engine engine(eo);
  const Run r = engine.open_run(run);
  const Analysis a = engine.analyze(r, s, out);
  std::printf("analyze: %zu particles, latent %d: PCA %s; %d cluster(s); %zu trajectories -> %s/report.md (%.1f s)\n",
              r.latent().size() / size_t(r.latent_dim()), r.latent_dim(), explained_text(a.explained).c_str(),
              s.clusters, a.trajectories.size(), out.c_str(),
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  return 0;
}

static RegisterCommand reg("analyze", "PCA, clusters, trajectories, localised motions and subsets of a trained run",
                           run_analyze);

}  // namespace cugmm::cli
