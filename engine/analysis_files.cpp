#include "engine/analysis_files.h"

#include <cstdio>
#include <filesystem>
#include <sstream>

#include "core/error.h"
#include "engine/model_params.h"
#include "engine/render.h"
#include "io/atomic_file.h"
#include "io/mrc.h"

namespace fs = std::filesystem;

namespace cugmm {

namespace {
constexpr int kPdbMaxSerial = 99999;
}

PathFiles path_file_names(const std::string& dir, const std::string& name, int frames, int gaussians) {
  PathFiles f;
  const fs::path d(dir);
  f.trajectory = (d / (name + (gaussians <= kPdbMaxSerial ? ".pdb" : ".cif"))).string();
  f.arrows = (d / (name + "_arrows.bild")).string();
  f.path_txt = (d / (name + "_path.txt")).string();
  for (int k = 0; k < frames; ++k) {
    char v[32];
    std::snprintf(v, sizeof v, "vol_%03d.mrc", k + 1);
    f.maps.push_back((d / name / v).string());
  }
  return f;
}

PathFiles write_path_files(const std::string& dir, const LatentPath& path, const std::vector<float>& params,
                           const io::GaussianModel& neutral, double arrow_scale, double min_arrow) {
  const int frames = int(path.t.size());
  const size_t W = 5 * neutral.size();
  CUGMM_REQUIRE(params.size() == size_t(frames) * W, "write_path_files: frames x 5G parameters");
  PathFiles f = path_file_names(dir, path.name, frames, int(neutral.size()));
  fs::create_directories(fs::path(dir) / path.name);
  std::vector<io::GaussianModel> models;
  for (int k = 0; k < frames; ++k) {
    models.push_back(model_from_params(std::vector<float>(params.begin() + long(k * W), params.begin() + long((k + 1) * W)), neutral));
    io::write_mrc(f.maps[size_t(k)], render_volume(models.back()), false);
  }
  io::write_pseudo_atom_trajectory(f.trajectory, models);
  // Arrows from the first frame along (last - first) x scale: the motion's direction, visible at any size.
  io::GaussianModel to = models.front();
  for (size_t j = 0; j < to.size(); ++j) {
    to.x[j] += float(arrow_scale * (models.back().x[j] - models.front().x[j]));
    to.y[j] += float(arrow_scale * (models.back().y[j] - models.front().y[j]));
    to.z[j] += float(arrow_scale * (models.back().z[j] - models.front().z[j]));
  }
  io::write_bild_arrows(f.arrows, models.front(), to, min_arrow);
  std::ostringstream o;
  o << "# " << path.name << ": frame, coordinate t along the direction, latent point (origin + t * direction)\n# direction";
  char buf[48];
  for (double v : path.direction) { std::snprintf(buf, sizeof buf, " %.6g", v); o << buf; }
  o << "\n";
  for (int k = 0; k < frames; ++k) {
    std::snprintf(buf, sizeof buf, "%d %.6g", k + 1, path.t[size_t(k)]);
    o << buf;
    for (size_t c = 0; c < path.points.cols; ++c) { std::snprintf(buf, sizeof buf, " %.6g", path.points(size_t(k), c)); o << buf; }
    o << "\n";
  }
  io::write_file_atomic(f.path_txt, o.str());
  return f;
}

void write_point_files(const std::string& base, const io::GaussianModel& m) {
  io::write_model(base + ".txt", m);
  io::write_pseudo_atoms(base + ".cif", m);
  io::write_cmm(base + ".cmm", m);
  io::write_mrc(base + ".mrc", render_volume(m), false);
}

void write_fold_txt(const std::string& path, const FoldedCopies& f, size_t copies, const std::vector<double>& motion,
                    const std::vector<int>& labels, const std::string& rule) {
  const size_t n = f.chosen.size(), d = f.latent.cols;
  std::ostringstream o;
  o << "# cugmm fold: one line per particle (input order): particle, chosen copy (largest motion), motion_1.."
    << copies << " (RMS Å of the decoded centres from the neutral model)";
  if (!labels.empty()) o << ", cluster_1.." << copies;
  o << ", folded latent (" << d << " numbers, " << rule << ")\n";
  char buf[40];
  for (size_t r = 0; r < n; ++r) {
    o << (r + 1) << " " << (f.chosen[r] + 1);
    for (size_t k = 0; k < copies; ++k) {
      std::snprintf(buf, sizeof buf, " %.4f", motion[r * copies + k]);
      o << buf;
    }
    if (!labels.empty())
      for (size_t k = 0; k < copies; ++k) o << " " << (labels[r * copies + k] + 1);
    for (size_t j = 0; j < d; ++j) {
      std::snprintf(buf, sizeof buf, " %.7g", f.latent(r, j));
      o << buf;
    }
    o << "\n";
  }
  io::write_file_atomic(path, o.str());
}

}  // namespace cugmm
