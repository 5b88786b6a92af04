// Reading, checking and defaulting fit-map's inputs.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <tuple>
#include <utility>

#include "core/error.h"
#include "engine/fit_map.h"
#include "engine/fit_map_detail.h"
#include "io/mrc.h"
#include "io/star.h"

namespace cugmm {

namespace fit_detail {

namespace {

void check_same_grid(const io::Image& a, const io::Image& map, const std::string& file, const std::string& map_name) {
  if (a.nx != map.nx || a.ny != map.ny || a.nz != map.nz)
    throw InputError(file, "", "grid " + std::to_string(a.nx) + "x" + std::to_string(a.ny) + "x" + std::to_string(a.nz) +
                                   " differs from " + map_name + "'s " + std::to_string(map.nx) + "^3");
  if (std::fabs(a.pixel_size - map.pixel_size) > 1e-3 * map.pixel_size)
    throw InputError(file, "", "pixel size " + std::to_string(a.pixel_size) + " Å differs from " + map_name + "'s " +
                                   std::to_string(map.pixel_size) + " Å");
}

}  // namespace

void validate_inputs(const FitMapInputs& in, const FitMapOptions& opt) {
  const std::string mp = name_or(opt.map_path, "map");
  const io::Image& m = in.map;
  if (m.voxels() == 0 || m.data.size() != m.voxels()) throw InputError(mp, "", "the map is empty");
  if (m.nx != m.ny || m.nx != m.nz)
    throw InputError(mp, "", "the map is not cubic (" + std::to_string(m.nx) + "x" + std::to_string(m.ny) + "x" +
                                 std::to_string(m.nz) + "): fit-map needs an n^3 volume");
  if (m.nx % 2 != 0 || m.nx < 8) throw InputError(mp, "", "the box must be even and at least 8, not " + std::to_string(m.nx));
  if (!(m.pixel_size > 0)) throw InputError(mp, "", "the map has no pixel size");
  auto [lo, hi] = std::minmax_element(m.data.begin(), m.data.end());
  if (!(*hi > *lo)) throw InputError(mp, "", "the map is constant (" + std::to_string(*lo) + "): nothing to fit");
  if (in.half1.has_value() != in.half2.has_value())
    throw InputError(name_or(opt.half1_path, "half-maps"), "", "give both half-maps or neither");
  if (in.half1) {
    check_same_grid(*in.half1, m, name_or(opt.half1_path, "half-map 1"), mp);
    check_same_grid(*in.half2, m, name_or(opt.half2_path, "half-map 2"), mp);
  }
  if (!in.mask.empty() && in.mask.size() != m.voxels())
    throw InputError(name_or(opt.mask_path, "mask"), "", "not on the map's " + std::to_string(m.nx) + "^3 grid");
  if (in.init) {
    const double half = m.nx / 2 * double(m.pixel_size);
    const io::GaussianModel& g = *in.init;
    if (g.size() == 0) throw InputError(name_or(opt.init_path, "init"), "", "the model holds no Gaussians");
    for (size_t j = 0; j < g.size(); ++j) {
      const double c[3] = {g.x[j], g.y[j], g.z[j]};
      for (double v : c)
        if (!std::isfinite(v) || v < -half || v >= half)
          throw InputError(name_or(opt.init_path, "init"), "Gaussian " + std::to_string(j + 1),
                           "centre (" + std::to_string(g.x[j]) + ", " + std::to_string(g.y[j]) + ", " +
                               std::to_string(g.z[j]) + ") Å from the box centre lies outside the " +
                               std::to_string(m.nx) + "-pixel box");
    }
  }
}

std::vector<float> masked(const io::Image& map, const std::vector<float>& mask) {
  return mask.empty() ? map.data : apply_mask(map.data, mask);
}

double auto_threshold(const std::vector<float>& mm, const std::vector<float>& mask) {
  double s = 0, s2 = 0, mx = -1e300;
  size_t n = 0;
  for (size_t i = 0; i < mm.size(); ++i) {
    if (!mask.empty() && mask[i] < 0.5f) continue;
    s += mm[i];
    s2 += double(mm[i]) * mm[i];
    mx = std::max(mx, double(mm[i]));
    ++n;
  }
  if (n == 0) return 0;
  const double mean = s / n, sd = std::sqrt(std::max(0.0, s2 / n - mean * mean));
  return std::min(mean + 1.5 * sd, 0.25 * mx);
}

AboveThreshold above_threshold(const std::vector<float>& mm, const std::vector<float>& mask, double threshold) {
  AboveThreshold a;
  for (size_t i = 0; i < mm.size(); ++i)
    if (mm[i] > threshold && (mask.empty() || mask[i] >= 0.5f)) {
      a.voxels.push_back(i);
      a.mass += mm[i];
    }
  return a;
}

double min_width(const FitMapOptions& opt, double pixel, double res) {
  return std::max(opt.min_width_pixels * pixel, 0.1 * res);
}
double max_width(double pixel, double res) { return std::max(3 * target_width(res), 2 * pixel); }

}  // namespace fit_detail

io::GaussianModel coarse_grain_atoms(const io::AtomicModel& atoms, int box, double pixel, double min_width) {
  // Residues in file order: (chain, residue) keys, first appearance decides the Gaussian's index.
  std::map<std::pair<std::string, int>, size_t> index;
  struct Acc { double m = 0, x = 0, y = 0, z = 0, r2 = 0; };
  std::vector<Acc> acc;
  for (const io::Atom& a : atoms.atoms) {
    auto [it, fresh] = index.emplace(std::make_pair(a.chain, a.residue), acc.size());
    if (fresh) acc.emplace_back();
    Acc& c = acc[it->second];
    c.m += a.electrons;
    c.x += a.electrons * a.x; c.y += a.electrons * a.y; c.z += a.electrons * a.z;
    c.r2 += a.electrons * (double(a.x) * a.x + double(a.y) * a.y + double(a.z) * a.z);
  }
  io::GaussianModel g;
  g.box_size = box;
  g.pixel_size = pixel;
  g.resize(acc.size());
  const double centre = box / 2 * pixel;  // the map frame's box centre
  for (size_t j = 0; j < acc.size(); ++j) {
    const Acc& c = acc[j];
    const double mx = c.x / c.m, my = c.y / c.m, mz = c.z / c.m;
    // rms distance of the electrons from their centre, per axis (an isotropic Gaussian's sigma)
    const double var = std::max(0.0, c.r2 / c.m - (mx * mx + my * my + mz * mz)) / 3;
    g.x[j] = float(mx - centre); g.y[j] = float(my - centre); g.z[j] = float(mz - centre);
    g.amplitude[j] = float(c.m);
    g.width[j] = float(std::max(min_width, std::sqrt(var)));
  }
  return g;
}

namespace {

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// The half-maps a RELION postprocess STAR names, resolved against the current directory (where RELION
// projects are run from), else against the STAR file's own directory.
std::pair<std::string, std::string> postprocess_half_maps(const std::string& star) {
  io::StarFile f = io::read_star(star);
  const io::StarBlock* g = f.find("general");
  if (!g || g->rows.empty()) throw InputError(star, "data_general", "not a RELION postprocess STAR (no data_general)");
  auto path = [&](const char* label) {
    std::string p = g->rows[0][g->require_column(label, star)];
    if (!p.empty() && p[0] != '/' && !std::filesystem::exists(p)) {
      std::filesystem::path alt = std::filesystem::path(star).parent_path() / p;
      if (std::filesystem::exists(alt)) p = alt.string();
    }
    return p;
  };
  return {path("rlnUnfilteredMapHalf1"), path("rlnUnfilteredMapHalf2")};
}

}  // namespace

FitMapInputs load_fit_map_inputs(const FitMapOptions& opt_in) {
  if (opt_in.map_path.empty()) throw InputError("map", "", "no map given");
  FitMapOptions opt = opt_in;
  if (ends_with(opt.half1_path, ".star") && opt.half2_path.empty())
    std::tie(opt.half1_path, opt.half2_path) = postprocess_half_maps(opt.half1_path);
  FitMapInputs in;
  in.map = io::read_mrc(opt.map_path);
  if (opt.half1_path.empty() != opt.half2_path.empty())
    throw InputError(opt.half1_path.empty() ? opt.half2_path : opt.half1_path, "", "give both half-maps or neither");
  if (!opt.half1_path.empty()) {
    in.half1 = io::read_mrc(opt.half1_path);
    in.half2 = io::read_mrc(opt.half2_path);
  }
  const int n = in.map.nx;
  if (!opt.mask_path.empty()) {
    io::Image mk = io::read_mrc(opt.mask_path);
    if (mk.nx != n || mk.ny != in.map.ny || mk.nz != in.map.nz)
      throw InputError(opt.mask_path, "", "grid " + std::to_string(mk.nx) + "x" + std::to_string(mk.ny) + "x" +
                                              std::to_string(mk.nz) + " differs from the map's");
    if (mk.pixel_size > 0 && std::fabs(mk.pixel_size - in.map.pixel_size) > 1e-3 * in.map.pixel_size)
      throw InputError(opt.mask_path, "", "pixel size " + std::to_string(mk.pixel_size) + " Å differs from the map's " +
                                              std::to_string(in.map.pixel_size) + " Å");
    in.mask = read_mask(opt.mask_path, n);
  }
  if (!opt.init_path.empty()) {
    const std::string& p = opt.init_path;
    std::string ext = p.substr(p.find_last_of('.') == std::string::npos ? p.size() : p.find_last_of('.'));
    for (char& ch : ext) ch = char(std::tolower(static_cast<unsigned char>(ch)));
    if (ext == ".txt" || ext == ".gmm") in.init = io::read_model(p);
    else in.init = coarse_grain_atoms(io::read_atoms(p), n, in.map.pixel_size, in.map.pixel_size);
  }
  fit_detail::validate_inputs(in, opt);
  return in;
}

}  // namespace cugmm
