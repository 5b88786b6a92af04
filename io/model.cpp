// The native model file, its dispatch by extension, and the ChimeraX outputs (.cmm markers, .bild arrows).
#include "io/model.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/input_file.h"
#include "io/model_frame.h"
#include "io/text.h"

namespace cugmm::io {

namespace {

// %.9g round-trips every float and %.17g every double, which makes the native file lossless.
std::string fmt(const char* f, double v) { return format_number(f, v); }
std::string f9(float v) { return fmt("%.9g", double(v)); }

// Blue (0) through green to red (1): the usual ramp for "how much".
void ramp(double t, double rgb[3]) {
  t = std::clamp(t, 0.0, 1.0);
  rgb[0] = std::clamp(2 * t - 1, 0.0, 1.0);
  rgb[1] = 1 - std::abs(2 * t - 1);
  rgb[2] = std::clamp(1 - 2 * t, 0.0, 1.0);
}

}  // namespace

void check_model(const GaussianModel& m, const std::string& path, bool need_frame) {
  const size_t g = m.x.size();
  if (m.y.size() != g || m.z.size() != g || m.amplitude.size() != g || m.width.size() != g)
    throw Error("model for " + path + ": x, y, z, amplitude and width differ in length");
  if (need_frame && !(m.box_size > 0 && m.pixel_size > 0 && std::isfinite(m.pixel_size)))
    throw Error("model for " + path + ": box size " + std::to_string(m.box_size) + " and pixel size " +
                fmt("%g", m.pixel_size) + " must be positive to place it in a map frame");
  for (size_t j = 0; j < g; ++j) {
    if (!(std::isfinite(m.x[j]) && std::isfinite(m.y[j]) && std::isfinite(m.z[j]) && std::isfinite(m.amplitude[j])))
      throw Error("model for " + path + ": Gaussian " + std::to_string(j + 1) + " has a value that is not finite");
    if (!(m.width[j] > 0) || !std::isfinite(m.width[j]))
      throw Error("model for " + path + ": Gaussian " + std::to_string(j + 1) + " has width " +
                  fmt("%g", m.width[j]) + " (must be > 0)");
  }
}

// ---- native -------------------------------------------------------------------------------------

void write_model(const std::string& path, const GaussianModel& m) {
  check_model(m, path, false);
  std::string out;
  out.reserve(64 + m.size() * 64);
  out += "# cugmm Gaussian model: x y z (A from the box centre, voxel N/2), amplitude (integrated mass), width s (A)\n";
  out += "box_size " + std::to_string(m.box_size) + " pixel_size " + fmt("%.17g", m.pixel_size) + "\n";
  for (size_t j = 0; j < m.size(); ++j)
    out += f9(m.x[j]) + ' ' + f9(m.y[j]) + ' ' + f9(m.z[j]) + ' ' + f9(m.amplitude[j]) + ' ' + f9(m.width[j]) + '\n';
  write_file_atomic(path, out);
}

GaussianModel read_model(const std::string& path) {
  input_file_size(path);  // a directory or a device is named as such, and never read
  std::ifstream f(path);
  if (!f) throw InputError(path, "", "cannot open");
  GaussianModel m;
  bool have_header = false;
  std::string line;
  for (long n = 1; std::getline(f, line); ++n) {
    std::string_view t = line;
    t = trim(t.substr(0, t.find('#')));  // '#' starts a comment, on its own line or after the values
    if (t.empty()) continue;
    const std::string rec = "line " + std::to_string(n);
    std::vector<std::string> v = split_fields(t);
    if (!have_header) {
      // "box_size N pixel_size P", or just "N P".
      if (v.size() == 4 && v[0] == "box_size" && v[2] == "pixel_size") v = {v[1], v[3]};
      if (v.size() != 2)
        throw InputError(path, rec, "expected the header 'box_size N pixel_size P' before the Gaussians");
      long box = parse_long(v[0], path, rec + ", box size");
      double px = parse_double(v[1], path, rec + ", pixel size");
      if (box <= 0 || box > 1 << 20) throw InputError(path, rec, "box size " + v[0] + " is not a positive size");
      if (!(px > 0) || !std::isfinite(px)) throw InputError(path, rec, "pixel size " + v[1] + " is not positive");
      m.box_size = int(box), m.pixel_size = px;
      have_header = true;
      continue;
    }
    if (v.size() != 5)
      throw InputError(path, rec, std::to_string(v.size()) + " fields, expected 5 (x y z amplitude width)");
    static const char* names[5] = {"x", "y", "z", "amplitude", "width"};
    float val[5];
    for (int k = 0; k < 5; ++k) {
      double d = parse_double(v[k], path, rec + ", " + names[k]);
      // Past FLT_MAX + half an ulp a float would round to infinity.
      if (!std::isfinite(d) || std::abs(d) >= 3.4028235677973366e38) throw InputError(path, rec + ", " + names[k], "'" + excerpt(v[k]) + "' is not finite");
      val[k] = float(d);
    }
    if (!(val[4] > 0)) throw InputError(path, rec + ", width", "'" + excerpt(v[4]) + "' is not positive");
    m.x.push_back(val[0]), m.y.push_back(val[1]), m.z.push_back(val[2]);
    m.amplitude.push_back(val[3]), m.width.push_back(val[4]);
  }
  if (!have_header) throw InputError(path, "", "empty: no 'box_size N pixel_size P' header");
  if (m.size() == 0) throw InputError(path, "", "no Gaussians");
  return m;
}

GaussianModel load_any_model(const std::string& path, int box_size, double pixel_size) {
  const std::string e = lower_extension(path);
  if (e == ".txt" || e == ".gmm") return read_model(path);
  if (e == ".pdb" || e == ".ent" || e == ".cif" || e == ".mmcif") {
    if (box_size <= 0 || !(pixel_size > 0))
      throw InputError(path, "", "pseudo-atoms are in the map frame: reading them needs the box size and pixel size");
    return read_pseudo_atoms(path, box_size, pixel_size);
  }
  throw InputError(path, "", "unknown model format '" + e + "' (readable: .txt .gmm, .pdb .ent, .cif .mmcif)");
}

// ---- ChimeraX ----------------------------------------------------------------------------------

void write_cmm(const std::string& path, const GaussianModel& m) {
  check_model(m, path, true);
  const double off = map_frame_offset(m);
  double amax = 0;
  for (float a : m.amplitude) amax = std::max(amax, double(std::abs(a)));
  std::ostringstream o;
  o << "<marker_set name=\"" << std::filesystem::path(path).stem().string() << "\">\n";
  for (size_t j = 0; j < m.size(); ++j) {
    double rgb[3];
    ramp(amax > 0 ? std::abs(m.amplitude[j]) / amax : 0, rgb);  // colour: amplitude relative to the largest
    // radius 2 s: where the Gaussian falls to e^-2 of its peak, about the blob a map contour shows.
    o << "<marker id=\"" << j + 1 << "\" x=\"" << fmt("%.4f", m.x[j] + off) << "\" y=\"" << fmt("%.4f", m.y[j] + off)
      << "\" z=\"" << fmt("%.4f", m.z[j] + off) << "\" r=\"" << fmt("%.3f", rgb[0]) << "\" g=\"" << fmt("%.3f", rgb[1])
      << "\" b=\"" << fmt("%.3f", rgb[2]) << "\" radius=\"" << fmt("%.4f", 2.0 * m.width[j]) << "\"/>\n";
  }
  o << "</marker_set>\n";
  write_file_atomic(path, o.str());
}

void write_bild_arrows(const std::string& path, const GaussianModel& from, const GaussianModel& to, double min_length) {
  check_model(from, path, true);
  check_model(to, path, true);
  if (from.size() != to.size() || from.box_size != to.box_size || from.pixel_size != to.pixel_size)
    throw Error("arrows for " + path + ": the two models differ in Gaussian count, box size or pixel size");
  const double off = map_frame_offset(from);
  std::vector<double> len(from.size());
  double lmax = 0;
  for (size_t j = 0; j < from.size(); ++j) {
    len[j] = std::hypot(double(to.x[j]) - from.x[j], double(to.y[j]) - from.y[j], double(to.z[j]) - from.z[j]);
    lmax = std::max(lmax, len[j]);
  }
  // Shafts a quarter of the median width thick: visible beside the Gaussians at any scale, never fatter.
  std::vector<float> w(from.width);
  std::nth_element(w.begin(), w.begin() + long(w.size() / 2), w.end());
  const double r1 = w.empty() ? 0.25 : 0.25 * w[w.size() / 2], r2 = 2.5 * r1, rho = 0.75;
  std::ostringstream o;
  // ChimeraX's BILD reader takes only lines starting with '.' (it warns about any other line as unsupported
  // text): the header is a .comment directive.
  o << ".comment cugmm motions: " << from.size() << " Gaussians, arrows longer than " << min_length << " A, coloured by length\n";
  for (size_t j = 0; j < from.size(); ++j) {
    if (!(len[j] > min_length)) continue;
    double rgb[3];
    ramp(lmax > min_length ? (len[j] - min_length) / (lmax - min_length) : 1, rgb);
    o << ".color " << fmt("%.3f", rgb[0]) << ' ' << fmt("%.3f", rgb[1]) << ' ' << fmt("%.3f", rgb[2]) << '\n';
    o << ".arrow " << fmt("%.4f", from.x[j] + off) << ' ' << fmt("%.4f", from.y[j] + off) << ' '
      << fmt("%.4f", from.z[j] + off) << ' ' << fmt("%.4f", to.x[j] + off) << ' ' << fmt("%.4f", to.y[j] + off) << ' '
      << fmt("%.4f", to.z[j] + off) << ' ' << fmt("%.4f", r1) << ' ' << fmt("%.4f", r2) << ' ' << rho << '\n';
  }
  write_file_atomic(path, o.str());
}

}  // namespace cugmm::io
