// `cugmm info FILE`: what a file holds, for every format cugmm reads (images, STAR, .cs, models), so a
// user can check an input before a long job.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <map>

#include "cli/command.h"
#include "cli/files.h"
#include "cli/limits.h"
#include "core/error.h"
#include "io/text.h"
#include "io/cs.h"
#include "io/image_read.h"
#include "io/model.h"
#include "io/mrc.h"
#include "io/npy.h"
#include "io/particles.h"

namespace cugmm::cli {

namespace {

bool is_model_ext(const std::string& e) {
  return e == ".txt" || e == ".gmm" || e == ".pdb" || e == ".ent" || e == ".cif" || e == ".mmcif";
}

const char* mode_name(int mode) {
  switch (mode) {
    case 0: return "int8";
    case 1: return "int16";
    case 2: return "float32";
    case 6: return "uint16";
    case 12: return "float16";
    default: return "?";
  }
}

// Value statistics streamed one section at a time (stacks larger than RAM), merged with Chan's formula
// so the spread is not lost to cancellation in sum-of-squares.
void info_image(const std::string& path) {
  io::ImageInfo ii = io::read_image_info(path);
  io::ImageStack st(path);
  std::string kind = ii.is_volume ? "volume" : (ii.nz > 1 ? "stack of " + std::to_string(ii.nz) + " images" : "image");
  if (ii.format == io::ImageFormat::Mrc) {
    io::MrcHeader h = io::read_mrc_header(path);
    std::printf("%s: MRC %s, %d x %d x %d, mode %d (%s), %s-endian\n", path.c_str(), kind.c_str(), h.nx, h.ny, h.nz,
                h.mode, mode_name(h.mode), h.little_endian ? "little" : "big");
  } else {
    std::printf("%s: TIFF %s, %d x %d x %d\n", path.c_str(), kind.c_str(), ii.nx, ii.ny, ii.nz);
  }
  if (ii.pixel_size > 0)
    std::printf("pixel size: %.4f Å\n", ii.pixel_size);
  else
    std::printf("pixel size: not recorded in the file\n");
  std::vector<float> sec(size_t(ii.nx) * ii.ny);
  double vmin = std::numeric_limits<double>::infinity(), vmax = -vmin, mean = 0, m2 = 0;
  double n = 0;
  for (long z = 0; z < st.count(); ++z) {
    st.read_section(z, sec.data());
    double s = 0;
    for (float v : sec) {
      s += v;
      vmin = std::min(vmin, double(v));
      vmax = std::max(vmax, double(v));
    }
    double nb = double(sec.size()), mb = s / nb, q = 0;
    for (float v : sec) q += (v - mb) * (v - mb);
    double delta = mb - mean, nt = n + nb;
    mean += delta * nb / nt;
    m2 += q + delta * delta * n * nb / nt;
    n = nt;
  }
  if (n > 0)
    std::printf("values: min %.6g, max %.6g, mean %.6g, rms %.6g (about the mean)\n", vmin, vmax, mean,
                std::sqrt(m2 / n));
}

// 0 when the file is a readable particle file, 1 when it is a STAR file but not one (the reason printed).
int info_star(const std::string& path, const std::string& root) {
  io::StarFile star = io::read_star(path);
  std::printf("%s: RELION STAR, ", path.c_str());
  if (star.version)
    std::printf("version %d (RELION 3.1+ layout)\n", star.version);
  else
    std::printf("no '# version' line (RELION 3.0 layout)\n");
  std::printf("blocks:\n");
  for (const auto& b : star.blocks)
    std::printf("  data_%-20s %s, %zu row(s), %zu column(s)\n", b.name.c_str(), b.is_loop ? "table" : "key-value",
                b.rows.size(), b.columns.size());

  io::ParticleReadOptions opt;
  opt.root = root;
  opt.require_poses = false;
  opt.check_images = false;
  io::ParticleSet set;
  try {
    set = io::read_particles(path, opt);
  } catch (const InputError& e) {
    std::fprintf(stderr, "cugmm info: error: not a readable particle file: %s\n", e.what());
    return 1;
  }
  // Box sizes the STAR file leaves out come from the stacks; an error there is reported, not fatal.
  std::string images;
  opt.check_images = true;
  try {
    io::ParticleSet full = io::read_particles(path, opt);
    std::map<std::string, int> stacks;
    for (const auto& p : full.particles) stacks[p.image_file]++;
    images = "all found, " + std::to_string(stacks.size()) + " file(s)";
    set.optics = full.optics;
  } catch (const InputError& e) {
    images = std::string("not all readable: ") + e.what();
  }

  const io::StarBlock* parts = nullptr;
  for (const auto& b : set.star.blocks)
    if (b.is_loop && b.column("rlnImageName") >= 0 && (!parts || b.name == "particles")) parts = &b;
  std::vector<size_t> per_group(set.optics.size(), 0);
  for (const auto& p : set.particles) per_group[size_t(p.optics)]++;
  bool poses = parts && parts->column("rlnAngleRot") >= 0 && parts->column("rlnAngleTilt") >= 0 &&
               parts->column("rlnAnglePsi") >= 0;
  std::printf("particles: %zu in data_%s; optics groups: %zu; poses: %s; CTF: %s\n", set.particles.size(),
              parts ? parts->name.c_str() : "?", set.optics.size(), poses ? "yes" : "no", set.has_ctf ? "yes" : "no");
  for (size_t g = 0; g < set.optics.size(); ++g) {
    const auto& o = set.optics[g];
    char px[64] = "pixel size unknown";
    if (o.pixel_size > 0) std::snprintf(px, sizeof px, "%.4f Å/px", o.pixel_size);
    std::string box = o.box_size > 0 ? "box " + std::to_string(o.box_size) + " px" : "box unknown";
    std::printf("  group %d '%s': %s, %s, %.0f kV, Cs %.2f mm, Q0 %.3f%s; %zu particle(s)\n", o.number,
                o.name.c_str(), px, box.c_str(), o.voltage, o.cs, o.amp_contrast,
                o.phase_flipped ? ", phase-flipped" : "", per_group[g]);
  }
  if (parts) {
    std::printf("columns of data_%s:", parts->name.c_str());
    for (const auto& c : parts->columns) std::printf(" %s", c.c_str());
    std::printf("\n");
  }
  std::printf("images: %s\n", images.c_str());
  return 0;
}

void info_npy(const std::string& path) {
  io::NpyArray a = io::read_npy(path);
  std::printf("%s: NumPy structured array (cryoSPARC .cs), %zu record(s) of %zu bytes, %zu field(s)\n", path.c_str(),
              a.records, a.record_bytes, a.fields.size());
  for (const auto& f : a.fields) {
    std::string shape;
    for (size_t d : f.shape) shape += (shape.empty() ? "shape (" : ", ") + std::to_string(d);
    if (!shape.empty()) shape += ")";
    std::printf("  %-32s %-6s %s\n", f.name.empty() ? "(unnamed)" : f.name.c_str(), f.type.c_str(), shape.c_str());
  }
  if (!a.field("blob/path")) return;
  std::printf("poses: %s\n", a.field("alignments3D/pose") ? "yes (alignments3D/pose)" : "no (no alignments3D/pose)");
  io::StarFile star = io::cs_to_star(path, false);
  const io::StarBlock* optics = star.find("optics");
  if (!optics) return;
  int c_px = optics->column("rlnImagePixelSize"), c_box = optics->column("rlnImageSize");
  std::printf("optics groups: %zu\n", optics->rows.size());
  for (const auto& r : optics->rows)
    std::printf("  group %s: %s Å/px, box %s px\n", r[1].c_str(), c_px >= 0 ? r[size_t(c_px)].c_str() : "?",
                c_box >= 0 ? r[size_t(c_box)].c_str() : "?");
}

void info_model(const std::string& path, int box, double angpix) {
  io::GaussianModel m = io::load_any_model(path, box, angpix);
  std::printf("%s: Gaussian model, %zu Gaussians, made for box %d px at %.4f Å/px\n", path.c_str(), m.size(),
              m.box_size, m.pixel_size);
  if (m.size() == 0) return;
  auto range = [](const std::vector<float>& v, const char* what) {
    auto [lo, hi] = std::minmax_element(v.begin(), v.end());
    double s = 0;
    for (float x : v) s += x;
    std::printf("%s: min %.6g, max %.6g, mean %.6g\n", what, double(*lo), double(*hi), s / double(v.size()));
  };
  range(m.amplitude, "amplitude (mass)");
  double total = 0;
  for (float a : m.amplitude) total += a;
  std::printf("total mass: %.6g\n", total);
  range(m.width, "width (Å)");
  range(m.x, "x (Å from the box centre)");
  range(m.y, "y (Å from the box centre)");
  range(m.z, "z (Å from the box centre)");
}

}  // namespace

static int run_info(Command& c) {
  std::string root, path;
  int box = 0;
  double angpix = 0;
  c.text("FILE", path, "image, stack, STAR, .cs or model file")->required();
  c.text("--root", root, "STAR: where relative image paths resolve (the RELION project directory)");
  c.integer("--box", box, "PDB/mmCIF pseudo-atoms: the box (pixels) of their map frame", 0, kMaxBox);
  c.number("--angpix", angpix, "PDB/mmCIF pseudo-atoms: the pixel size (Å) of their map frame", 0, 1e4);
  if (c.parse()) return 0;
  check_files({{path}, {}, {}});
  const std::string e = io::lower_extension(path);
  if (e == ".star")
    return info_star(path, root);
  else if (e == ".cs" || e == ".npy")
    info_npy(path);
  else if (is_model_ext(e))
    info_model(path, box, angpix);
  else
    info_image(path);
  return 0;
}

static RegisterCommand reg("info", "describe an image, STAR, .cs or model file", run_info);

}  // namespace cugmm::cli
