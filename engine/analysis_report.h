// What an analysis (`cugmm analyze`, Engine::analyze with a directory: engine/api/analyze_run.cpp) tells the
// user about its outputs: report.md (pictures inline, every file and what it is), analyze.cxc (one ChimeraX
// script that opens the trajectories as volume series and coordinate sets, the arrows and the cluster
// centres) and the small text tables (pca.txt, clusters.txt).
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "engine/analysis_files.h"
#include "engine/fsc.h"
#include "engine/latent_analysis.h"
#include "engine/local_motion.h"

namespace cugmm {

void write_pca_txt(const std::string& path, const Pca& p);
void write_clusters_txt(const std::string& path, const LatentClusters& c);  // one label (1-based) per particle
// "62% 30% ...": the variance explained per principal component, as the report and the program say it.
std::string explained_text(const std::vector<double>& explained);

class AnalyzeReport {
 public:
  AnalyzeReport(const std::string& out_dir, const std::string& run) : out_(out_dir), run_(run) {}
  void pca(const Pca& p);
  void picture(const std::string& path, const std::string& caption);
  void path(const LatentPath& p, const PathFiles& f, const nlohmann::json& info);
  void local(const LocalMotions& lm, size_t inside, size_t gaussians);
  void cluster(const std::string& name, const nlohmann::json& info);
  void subset(const std::string& file, size_t particles, const std::string& what);
  void write_cxc(const std::string& path) const;
  void write_markdown(const std::string& path) const;

 private:
  std::string rel(const std::string& path) const;  // relative to the output directory
  std::string out_, run_;
  std::vector<double> explained_;
  std::vector<std::string> md_pictures_, md_paths_, md_clusters_, md_subsets_, md_local_;
  std::vector<std::string> cxc_;
};

}  // namespace cugmm
