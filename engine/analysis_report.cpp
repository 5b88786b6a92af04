#include "engine/analysis_report.h"

#include <cstdio>
#include <filesystem>
#include <sstream>

#include "io/atomic_file.h"
#include "io/text.h"

namespace fs = std::filesystem;

namespace cugmm {

namespace {
std::string fmt(const char* f, double v) { return io::format_number(f, v); }
}  // namespace

void write_pca_txt(const std::string& path, const Pca& p) {
  std::ostringstream o;
  o << "# component  variance  explained  unit direction in the latent (z1..zd)\n";
  for (size_t k = 0; k < p.variance.size(); ++k) {
    o << k + 1 << ' ' << fmt("%.6g", p.variance[k]) << ' ' << fmt("%.6f", p.explained[k]);
    for (size_t c = 0; c < p.components.cols; ++c) o << ' ' << fmt("%.6f", p.components(k, c));
    o << '\n';
  }
  io::write_file_atomic(path, o.str());
}

void write_clusters_txt(const std::string& path, const LatentClusters& c) {
  std::ostringstream o;
  o << "# cluster (1-based) of each particle, in the input's order\n";
  for (int l : c.labels) o << l + 1 << '\n';
  io::write_file_atomic(path, o.str());
}

std::string AnalyzeReport::rel(const std::string& path) const {
  return fs::path(path).lexically_relative(fs::path(out_)).generic_string();
}

std::string explained_text(const std::vector<double>& explained) {
  std::string s;
  for (double e : explained) s += (s.empty() ? "" : " ") + fmt("%.0f%%", 100 * e);
  return s;
}

void AnalyzeReport::pca(const Pca& p) { explained_ = p.explained; }

void AnalyzeReport::picture(const std::string& path, const std::string& caption) {
  md_pictures_.push_back("![" + caption + "](" + rel(path) + ")\n\n*" + caption + "* (`" + rel(path) + "`)\n");
}

void AnalyzeReport::path(const LatentPath& p, const PathFiles& f, const nlohmann::json& info) {
  std::string line = "| " + p.name + " | `" + rel(f.trajectory) + "`, `" + p.name + "/vol_001.mrc` ... `" +
                     rel(f.maps.back()) + "`, `" + rel(f.arrows) + "`, `" + rel(f.path_txt) + "` | " +
                     fmt("%.3g", p.t.front()) + " .. " + fmt("%.3g", p.t.back());
  if (info.contains("mean_displacement_inside_A"))
    line += " | " + fmt("%.2f", info["mean_displacement_inside_A"].get<double>()) + " / " +
            fmt("%.2f", info["mean_displacement_outside_A"].get<double>());
  md_paths_.push_back(line + " |");
  // Commands and options as ChimeraX's documentation gives them (open: vseries, coordsets; checked by
  // tests/test_analyze.cpp).
  cxc_.push_back("# " + p.name + ": density maps as a volume series (vseries play #N plays model #N), Gaussians as "
                 "a trajectory (coordset #M 1, plays model #M), motion arrows");
  cxc_.push_back("open " + p.name + "/vol_*.mrc vseries true");
  cxc_.push_back("open " + rel(f.trajectory) + " coordsets true");
  cxc_.push_back("open " + rel(f.arrows));
}

void AnalyzeReport::local(const LocalMotions& lm, size_t inside, size_t gaussians) {
  std::string s = "The domain holds " + std::to_string(inside) + " of " + std::to_string(gaussians) +
                  " Gaussians. Generalised eigenvalues (domain motion over the rest's, per unit latent step, averaged "
                  "over " + std::to_string(lm.points) + " particles):";
  for (double v : lm.eigenvalues) s += " " + fmt("%.3g", v);
  md_local_.push_back(s + ".\n");
}

void AnalyzeReport::cluster(const std::string& name, const nlohmann::json& info) {
  std::string line = "| " + name + " | " + std::to_string(info["particles"].get<size_t>()) + " | `" + name +
                     "/centre.mrc` (.txt .cif .cmm) | `subsets/" + name + ".star` | ";
  if (info.contains("resolution_0143_A"))
    line += "`" + name + "/full.mrc`, half1/half2, fsc.txt: " + fmt("%.1f Å", info["resolution_0143_A"].get<double>()) +
            (info["fsc_crosses_0143"].get<bool>() ? "" : " (Nyquist bound)");
  else
    line += "-";
  md_clusters_.push_back(line + " |");
  cxc_.push_back("# " + name + ": the decoded model at its centre particle (markers and map)");
  cxc_.push_back("open " + name + "/centre.cmm");
  cxc_.push_back("open " + name + "/centre.mrc");
  if (info.contains("resolution_0143_A")) cxc_.push_back("open " + name + "/full.mrc");
}

void AnalyzeReport::subset(const std::string& file, size_t particles, const std::string& what) {
  md_subsets_.push_back("| `" + file + "` | " + std::to_string(particles) + " | " + what + " |");
}

void AnalyzeReport::write_cxc(const std::string& path) const {
  std::ostringstream o;
  // Relative paths: ChimeraX runs a command file from the file's own directory, so the folder can move.
  o << "# cugmm analyze: open in ChimeraX with `open analyze.cxc` (paths are relative to this file)\n";
  for (const std::string& l : cxc_) o << l << '\n';
  o << "view\n";
  io::write_file_atomic(path, o.str());
}

void AnalyzeReport::write_markdown(const std::string& path) const {
  std::ostringstream o;
  o << "# cugmm analyze\n\nRun: `" << run_ << "`. Open everything in ChimeraX with `open analyze.cxc`.\n\n";
  o << "## Latent space\n\nVariance explained per principal component: " << explained_text(explained_)
    << " (`pca.txt`: variance, fraction, direction).\n\n";
  for (const std::string& s : md_pictures_) o << s << '\n';
  if (!md_paths_.empty()) {
    o << "## Trajectories\n\nEach from the 5th to the 95th percentile of the particles along its direction, through "
         "the latent mean. Gaussians: one MODEL per frame; maps: on the neutral model's grid; arrows: first to last "
         "frame.\n\n| path | files | coordinate range |"
      << (md_local_.empty() ? "" : " mean displacement in / out of the domain (Å) |") << "\n|---|---|---|"
      << (md_local_.empty() ? "" : "---|") << "\n";
    for (const std::string& s : md_paths_) o << s << '\n';
    o << '\n';
  }
  if (!md_local_.empty()) {
    o << "## Localised motions\n\n";
    for (const std::string& s : md_local_) o << s;
    o << "\n`local1`, `local2`: the directions that move the domain most relative to the rest; `local_sum`, "
         "`local_diff`: their sum and difference.\n\n";
  }
  if (!md_clusters_.empty()) {
    o << "## Clusters\n\nCentres are the particle nearest each cluster's mean (`clusters.txt`: each particle's "
         "cluster). Reconstructions: half-maps, full map and FSC of the cluster's particles.\n\n"
         "| cluster | particles | decoded model at the centre | particles (RELION 3.1) | reconstruction, FSC 0.143 |\n"
         "|---|---|---|---|---|\n";
    for (const std::string& s : md_clusters_) o << s << '\n';
    o << '\n';
  }
  if (!md_subsets_.empty()) {
    o << "## Subsets\n\n| file | particles | selection |\n|---|---|---|\n";
    for (const std::string& s : md_subsets_) o << s << '\n';
    o << '\n';
  }
  o << "`analyze.json` holds every figure above.\n";
  io::write_file_atomic(path, o.str());
}

}  // namespace cugmm
