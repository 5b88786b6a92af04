#include "engine/viewer_data.h"

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "engine/latent_metrics.h"
#include "engine/trainer.h"
#include "io/star.h"

namespace fs = std::filesystem;

namespace cugmm {

namespace {

float parse_value(const std::string& text, const std::string& file, const std::string& where) {
  char* end;
  const double v = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != 0 || !std::isfinite(v)) throw InputError(file, where, "'" + text + "' is not a finite number");
  return float(v);
}

// The document's text split at the particle rows: write_star puts each row on its own line and ends each
// block with a blank line, so with the particle loop last its rows are the n lines before the final one.
void split_star(const io::StarFile& star, const std::string& path, ViewerInput& in) {
  if (star.blocks.empty() || star.blocks.back().name != "particles" || !star.blocks.back().is_loop)
    throw InputError(path, "", "the particle table is not the file's last block (not written by cugmm train/embed?)");
  const std::string text = io::star_text(star);
  std::vector<std::string> lines;
  std::istringstream ss(text);
  for (std::string l; std::getline(ss, l);) lines.push_back(l);
  const size_t n = star.blocks.back().rows.size();
  if (lines.size() < n + 1 || !lines.back().empty()) CUGMM_FAIL("STAR text does not end with its rows and a blank line");
  const size_t first = lines.size() - 1 - n;
  for (size_t i = 0; i < first; ++i) in.star_header += lines[i] + "\n";
  in.star_rows.assign(lines.begin() + long(first), lines.end() - 1);
}

void read_truth(const std::string& path, ViewerInput& in) {
  std::ifstream f(path);
  if (!f) throw InputError(path, "", "cannot read");
  std::string line;
  std::vector<std::string> names;
  if (!std::getline(f, line)) throw InputError(path, "", "is empty");
  {
    std::istringstream ss(line);
    for (std::string c; std::getline(ss, c, ',');) names.push_back(c);
  }
  std::vector<std::vector<float>> cols(names.size());
  size_t row = 0;
  while (std::getline(f, line)) {
    if (line.empty()) continue;
    ++row;
    std::istringstream ss(line);
    size_t c = 0;
    for (std::string v; std::getline(ss, v, ','); ++c) {
      if (c >= names.size()) throw InputError(path, "line " + std::to_string(row + 1), "has more values than the header");
      cols[c].push_back(parse_value(v, path, "line " + std::to_string(row + 1)));
    }
    if (c != names.size()) throw InputError(path, "line " + std::to_string(row + 1), "has fewer values than the header");
  }
  if (row != in.n)
    throw InputError(path, "", "has " + std::to_string(row) + " rows; the run has " + std::to_string(in.n) + " particles");
  for (size_t c = 0; c < names.size(); ++c)
    if (names[c] != "index") in.colourings.emplace_back("truth: " + names[c], std::move(cols[c]));
}

}  // namespace

void analyse_latent(ViewerInput& in, int clusters) {
  const size_t d = size_t(in.d);
  CUGMM_REQUIRE(in.latent.size() == in.n * d && in.n >= 2, "analyse_latent: n x d latent values, n >= 2");
  Matrix x(in.n, d);
  for (size_t i = 0; i < x.values.size(); ++i) x.values[i] = in.latent[i];
  in.mean.assign(d, 0.0);
  for (size_t i = 0; i < in.n; ++i)
    for (size_t j = 0; j < d; ++j) in.mean[j] += x(i, j) / double(in.n);
  const Pca p = pca(x);
  in.components = p.components.values;
  in.explained = p.explained;
  in.clusters.clear();
  in.cluster_count = 0;
  if (clusters > 0) {
    GmmOptions o;
    o.restarts = 2;  // a view, not a metric: one good fit is enough and 100,000 points stay quick
    in.clusters = fit_gmm(x, clusters, o).labels;
    in.cluster_count = clusters;
  }
}

ViewerInput read_viewer_input(const std::string& run_dir, const std::string& truth_csv, int clusters, Context& cx) {
  ViewerInput in;
  const std::string ckpt = (fs::path(run_dir) / "model.ckpt").string(),
                    star_path = (fs::path(run_dir) / "particles.star").string();
  TrainedModel m = load_trained(ckpt, cx);
  in.d = m.config.latent;
  in.G = int(m.neutral.size());
  in.box = m.neutral.box_size;
  in.pixel = m.neutral.pixel_size;
  in.neutral = m.neutral_params;
  in.k = step_consts(m.config, m.neutral_params, m.cache_box, m.cache_pixel);  // as decode_points()
  in.arch = m.decoder->arch();
  in.params = m.decoder->params_to_host();
  in.state = m.decoder->state_to_host();

  const io::StarFile star = io::read_star(star_path);
  const io::StarBlock* pb = star.find("particles");
  if (!pb) throw InputError(star_path, "", "has no data_particles block");
  const io::StarBlock& b = *pb;
  std::vector<int> zc;
  for (int j = 0; j < in.d; ++j) zc.push_back(b.require_column("rlnCugmmLatent" + std::to_string(j + 1), star_path));
  in.n = b.rows.size();
  if (in.n < 2) throw InputError(star_path, "", "has fewer than 2 particles");
  in.latent.resize(in.n * size_t(in.d));
  const int frc = b.column("rlnCugmmFrc");
  std::vector<float> fit;
  for (size_t i = 0; i < in.n; ++i) {
    const std::string where = "particle row " + std::to_string(i + 1);
    for (int j = 0; j < in.d; ++j) in.latent[i * size_t(in.d) + size_t(j)] = parse_value(b.rows[i][size_t(zc[size_t(j)])], star_path, where);
    if (frc >= 0) fit.push_back(parse_value(b.rows[i][size_t(frc)], star_path, where));
  }
  if (frc >= 0) in.colourings.emplace_back("fit (FRC)", std::move(fit));
  split_star(star, star_path, in);
  if (!truth_csv.empty()) read_truth(truth_csv, in);
  analyse_latent(in, clusters);
  return in;
}

}  // namespace cugmm
