// Particles from RELION STAR 3.0 / 3.1+ and cryoSPARC .cs (converted to a STAR 3.1 document first), with
// image paths resolved and every stack's header checked, so bad input fails here, naming the row, and not
// hours into training.
#include "io/particles.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <tuple>

#include "core/error.h"
#include "io/cs.h"
#include "io/input_file.h"
#include "io/mrc.h"
#include "io/text.h"

namespace fs = std::filesystem;

namespace cugmm::io {

namespace {

bool ends_with(const std::string& s, const std::string& e) {
  return s.size() >= e.size() && s.compare(s.size() - e.size(), e.size(), e) == 0;
}

// Column positions of one table, looked up once per label rather than once per row (a million-row
// file asks ~20 labels per row). Keyed by the literal's address, with a string compare on a miss.
class Columns {
 public:
  explicit Columns(const StarBlock& b) : b_(b) {}
  const StarBlock& block() const { return b_; }
  int operator()(const char* label) const {
    for (const auto& e : cache_)
      if (e.first == label) return e.second;
    cache_.emplace_back(label, b_.column(label));
    return cache_.back().second;
  }

 private:
  const StarBlock& b_;
  mutable std::vector<std::pair<const char*, int>> cache_;
};

// Reads the columns of one table row by name; absent columns give the fallback. Error text (file, row,
// column) is only built when a value is bad.
class Row {
 public:
  Row(const Columns& cols, size_t r, const std::string& file) : cols_(cols), r_(r), file_(file) {}
  std::string record() const { return "data_" + cols_.block().name + " row " + std::to_string(r_ + 1); }
  const std::string& file() const { return file_; }
  bool has(const char* label) const { return cols_(label) >= 0; }
  double num(const char* label, double fallback) const {
    int c = cols_(label);
    if (c < 0) return fallback;
    const std::string& t = cell(c);
    char* end = nullptr;
    errno = 0;
    double v = std::strtod(t.c_str(), &end);
    if (end == t.c_str() || *end != '\0' || errno == ERANGE) return parse_double(t, file_, where(label));
    // "nan" and "inf" parse, but must not reach a kernel.
    if (!std::isfinite(v)) throw InputError(file_, where(label), "'" + excerpt(t) + "' is not a finite number");
    return v;
  }
  long integer(const char* label, long fallback) const {
    int c = cols_(label);
    if (c < 0) return fallback;
    const std::string& t = cell(c);
    char* end = nullptr;
    errno = 0;
    long v = std::strtol(t.c_str(), &end, 10);
    if (end == t.c_str() || *end != '\0' || errno == ERANGE) return parse_long(t, file_, where(label));
    return v;
  }
  std::string str(const char* label) const {
    int c = cols_(label);
    return c < 0 ? std::string() : cell(c);
  }

 private:
  const std::string& cell(int c) const { return cols_.block().rows[r_][size_t(c)]; }
  std::string where(const char* label) const { return record() + ", _" + label; }
  const Columns& cols_;
  size_t r_;
  const std::string& file_;
};

// Pixel size from whichever convention the table uses (DESIGN §3); 0 when it says nothing. A value that
// is given must be positive: replacing it silently by the MRC header's would hide a broken STAR file.
double pixel_size_of(const Row& row) {
  auto positive = [&](const char* label, double v) {
    if (!(v > 0))
      throw InputError(row.file(), row.record() + ", _" + label, "pixel size " + format_fixed(v) + " is not positive");
    return v;
  };
  if (row.has("rlnImagePixelSize")) return positive("rlnImagePixelSize", row.num("rlnImagePixelSize", 0));
  if (row.has("rlnPixelSize")) return positive("rlnPixelSize", row.num("rlnPixelSize", 0));
  if (row.has("rlnDetectorPixelSize") && row.has("rlnMagnification")) {
    double mag = row.num("rlnMagnification", 0);
    if (mag <= 0) throw InputError(row.file(), row.record(), "rlnMagnification must be positive");
    return positive("rlnDetectorPixelSize", 1e4 * row.num("rlnDetectorPixelSize", 0) / mag);
  }
  return 0;
}

// The optics values a row of either table may carry; `g` supplies the fallbacks.
void read_optics_values(const Row& row, OpticsGroup& g) {
  double px = pixel_size_of(row);
  if (px > 0) g.pixel_size = px;
  const long box = row.integer("rlnImageSize", g.box_size);
  // Checked before the int conversion: a long beyond int would wrap into a plausible box.
  if (box < 0 || box > 65536 || (row.has("rlnImageSize") && box == 0))
    throw InputError(row.file(), row.record() + ", _rlnImageSize", std::to_string(box) + " is not a box size (1-65536 px)");
  g.box_size = int(box);
  g.voltage = row.num("rlnVoltage", g.voltage);
  g.cs = row.num("rlnSphericalAberration", g.cs);
  g.amp_contrast = row.num("rlnAmplitudeContrast", g.amp_contrast);
  g.phase_flipped = row.integer("rlnCtfDataArePhaseFlipped", g.phase_flipped ? 1 : 0) != 0;
}

// The particle table: data_particles in 3.1+, otherwise the first table that names images.
const StarBlock* particle_block(const StarFile& star) {
  if (const StarBlock* b = star.find("particles"); b && b->is_loop) return b;
  for (const auto& b : star.blocks)
    if (b.is_loop && b.column("rlnImageName") >= 0) return &b;
  return nullptr;
}

// Finds an image file: as given if absolute, else against the current directory, --root, and the
// particle file's directory, in that order; for a .cs also the directory above (cryoSPARC paths are
// relative to the project directory, and a job's files sit one level below it).
class PathResolver {
 public:
  PathResolver(const std::string& file, const std::string& root, bool cs) : file_(file), root_(root) {
    fs::path d = fs::path(file).parent_path();
    if (d.empty()) d = ".";
    dirs_.push_back(d.string());
    if (cs) dirs_.push_back((d / "..").lexically_normal().string());
  }
  const std::string& resolve(const std::string& name, const std::string& record) {
    auto it = cache_.find(name);
    if (it != cache_.end()) return it->second;
    std::vector<std::string> tried;
    if (fs::path(name).is_absolute()) {
      tried.push_back(name);
    } else {
      tried.push_back(name);
      if (!root_.empty()) tried.push_back((fs::path(root_) / name).string());
      for (const auto& d : dirs_) tried.push_back((fs::path(d) / name).string());
    }
    std::error_code ec;
    for (const auto& t : tried) {
      // Absolute, so a later change of directory does not lose it.
      if (fs::is_regular_file(t, ec))
        return cache_.emplace(name, fs::absolute(t).lexically_normal().string()).first->second;
      // Found, but a directory or a device: say so (input_file_size names what it is), not "not found".
      if (fs::exists(t, ec)) {
        try {
          input_file_size(t);
        } catch (const InputError& e) {
          throw InputError(file_, record, "image file " + std::string(e.what()));
        }
      }
    }
    std::string where;
    for (const auto& t : tried) where += (where.empty() ? "" : ", ") + excerpt(t, 200);
    throw InputError(file_, record,
                     "image file '" + excerpt(name, 200) + "' not found (looked for " + where +
                         (root_.empty() ? "; --root sets the RELION project directory)" : ")"));
  }

 private:
  std::string file_, root_;
  std::vector<std::string> dirs_;
  std::map<std::string, std::string> cache_;
};

// Every distinct stack is opened once (header only): indices past the end and box sizes that contradict
// the optics table are reported here, and unknown box / pixel sizes are filled in.
void check_stacks(ParticleSet& set) {
  std::map<std::string, MrcHeader> headers;
  std::vector<bool> box_from_star(set.optics.size());
  for (size_t g = 0; g < set.optics.size(); ++g) box_from_star[g] = set.optics[g].box_size > 0;
  for (size_t i = 0; i < set.particles.size(); ++i) {
    const Particle& p = set.particles[i];
    std::string record = "row " + std::to_string(i + 1);
    auto it = headers.find(p.image_file);
    if (it == headers.end()) it = headers.emplace(p.image_file, read_mrc_header(p.image_file)).first;
    const MrcHeader& h = it->second;
    if (p.index >= h.nz)
      throw InputError(set.source, record,
                       "image " + std::to_string(p.index + 1) + "@" + p.image_file + " is past the end of that stack (" +
                           std::to_string(h.nz) + " images)");
    OpticsGroup& g = set.optics[p.optics];
    if (h.nx != h.ny)
      throw InputError(set.source, record, p.image_file + " holds " + std::to_string(h.nx) + " x " +
                                               std::to_string(h.ny) + " images; particles must be square");
    if (g.box_size == 0) g.box_size = h.nx;
    if (g.box_size != h.nx)
      throw InputError(set.source, record,
                       p.image_file + " holds " + std::to_string(h.nx) + " px images but optics group " +
                           std::to_string(g.number) + " has " + std::to_string(g.box_size) + " px" +
                           (box_from_star[p.optics] ? " (rlnImageSize)" : " (its first stack)"));
    if (g.pixel_size <= 0 && h.pixel_size > 0) g.pixel_size = h.pixel_size;
  }
}

}  // namespace

ParticleSet read_particles(const std::string& path, const std::string& root, bool require_poses) {
  ParticleReadOptions opt;
  opt.root = root;
  opt.require_poses = require_poses;
  return read_particles(path, opt);
}

ParticleSet read_particles(const std::string& path, const ParticleReadOptions& opt) {
  const bool require_poses = opt.require_poses;
  ParticleSet set;
  set.source = path;
  set.star = ends_with(path, ".cs") ? cs_to_star(path, require_poses) : read_star(path);
  const StarBlock* parts = particle_block(set.star);
  if (!parts) throw InputError(path, "", "no particle table (a data_ block with a loop_ holding _rlnImageName)");
  const int c_image = parts->require_column("rlnImageName", path);
  if (require_poses)
    for (const char* c : {"rlnAngleRot", "rlnAngleTilt", "rlnAnglePsi"}) parts->require_column(c, path);

  // Optics groups: the optics table (3.1+), or one group per distinct set of optics values (3.0).
  std::map<long, int> group_of_number;
  const StarBlock* optics = set.star.find("optics");
  if (optics && optics->is_loop && optics != parts) {
    if (optics->rows.empty()) throw InputError(path, "data_optics", "has no rows");
    Columns ocols(*optics);
    for (size_t r = 0; r < optics->rows.size(); ++r) {
      Row row(ocols, r, path);
      OpticsGroup g;
      const long number = row.integer("rlnOpticsGroup", long(r) + 1);
      if (number < 1 || number > 1000000)
        throw InputError(path, row.record() + ", _rlnOpticsGroup", std::to_string(number) + " is not an optics group number");
      g.number = int(number);
      g.name = row.str("rlnOpticsGroupName");
      read_optics_values(row, g);
      if (!group_of_number.emplace(g.number, int(set.optics.size())).second)
        throw InputError(path, row.record(), "optics group " + std::to_string(g.number) + " appears twice");
      set.optics.push_back(g);
    }
  }
  const bool star30 = set.optics.empty();
  using Key = std::tuple<double, int, double, double, double, bool>;
  std::map<Key, int> group_of_values;

  set.has_ctf = parts->column("rlnDefocusU") >= 0;
  PathResolver resolver(path, opt.root, ends_with(path, ".cs"));
  set.particles.reserve(parts->rows.size());
  Columns pcols(*parts);
  for (size_t r = 0; r < parts->rows.size(); ++r) {
    Row row(pcols, r, path);
    Particle p;

    int gi;
    if (star30) {
      OpticsGroup g;
      read_optics_values(row, g);
      Key key{g.pixel_size, g.box_size, g.voltage, g.cs, g.amp_contrast, g.phase_flipped};
      auto it = group_of_values.find(key);
      if (it == group_of_values.end()) {
        g.number = int(set.optics.size()) + 1;
        g.name = "opticsGroup" + std::to_string(g.number);
        it = group_of_values.emplace(key, int(set.optics.size())).first;
        set.optics.push_back(g);
      }
      gi = it->second;
    } else {
      long number = row.integer("rlnOpticsGroup", set.optics.size() == 1 ? set.optics[0].number : -1);
      if (number == -1) parts->require_column("rlnOpticsGroup", path);
      auto it = group_of_number.find(number);
      if (it == group_of_number.end())
        throw InputError(path, row.record(), "optics group " + std::to_string(number) + " is not in data_optics");
      gi = it->second;
    }
    const OpticsGroup& g = set.optics[gi];
    p.optics = gi;

    // rlnImageName: "index@stack" (1-based) or a single-image file.
    const std::string& name = parts->rows[r][c_image];
    std::string file = name;
    auto at = name.find('@');
    if (at != std::string::npos) {
      long idx = parse_long(name.substr(0, at), path, row.record() + ", _rlnImageName");
      if (idx < 1) throw InputError(path, row.record(), "image index in '" + excerpt(name, 200) + "' must be 1 or more");
      p.index = idx - 1;
      file = name.substr(at + 1);
    }
    if (file.empty()) throw InputError(path, row.record(), "empty image name '" + excerpt(name, 200) + "'");
    p.image_file = opt.check_images ? resolver.resolve(file, row.record()) : file;

    p.rot = row.num("rlnAngleRot", 0);
    p.tilt = row.num("rlnAngleTilt", 0);
    p.psi = row.num("rlnAnglePsi", 0);
    if (row.has("rlnOriginXAngst") || row.has("rlnOriginYAngst")) {
      p.origin_x = row.num("rlnOriginXAngst", 0);
      p.origin_y = row.num("rlnOriginYAngst", 0);
    } else if (row.has("rlnOriginX") || row.has("rlnOriginY")) {
      if (g.pixel_size <= 0)
        throw InputError(path, row.record(), "origins in pixels (rlnOriginX/Y) but no pixel size to convert them to Å");
      p.origin_x = row.num("rlnOriginX", 0) * g.pixel_size;
      p.origin_y = row.num("rlnOriginY", 0) * g.pixel_size;
    }

    CtfParams& c = p.ctf;
    c.voltage = row.num("rlnVoltage", g.voltage);
    c.cs = row.num("rlnSphericalAberration", g.cs);
    c.amp_contrast = row.num("rlnAmplitudeContrast", g.amp_contrast);
    c.defocus_u = row.num("rlnDefocusU", 0);
    c.defocus_v = row.num("rlnDefocusV", c.defocus_u);
    c.defocus_angle = row.num("rlnDefocusAngle", 0);
    c.phase_shift = row.num("rlnPhaseShift", 0);
    c.bfactor = row.num("rlnCtfBfactor", 0);
    c.scale = row.num("rlnCtfScalefactor", 1);
    if (c.amp_contrast < 0 || c.amp_contrast >= 1)
      throw InputError(path, row.record(), "rlnAmplitudeContrast " + format_fixed(c.amp_contrast) + " is outside [0, 1)");
    if (c.voltage <= 0) throw InputError(path, row.record(), "rlnVoltage must be positive");

    // Half-sets are 1 or 2 (RELION's convention); anything else would silently join no half or both.
    const long subset = row.integer("rlnRandomSubset", 0);
    if (row.has("rlnRandomSubset") && subset != 1 && subset != 2)
      throw InputError(path, row.record() + ", _rlnRandomSubset", std::to_string(subset) + " is not 1 or 2");
    p.random_subset = int(subset);
    set.particles.push_back(std::move(p));
  }
  if (opt.check_images) check_stacks(set);
  return set;
}

namespace {

// Columns RELION 3.1 keeps in the optics table; a 3.0 particle table loses them on conversion.
const char* const kOpticsOnly[] = {"rlnVoltage", "rlnSphericalAberration", "rlnAmplitudeContrast",
                                   "rlnMagnification", "rlnDetectorPixelSize", "rlnPixelSize",
                                   "rlnImagePixelSize", "rlnImageSize", "rlnCtfDataArePhaseFlipped",
                                   "rlnImageDimensionality"};

StarBlock optics_table(const ParticleSet& set) {
  StarBlock b;
  b.name = "optics";
  b.columns = {"rlnOpticsGroupName", "rlnOpticsGroup", "rlnImagePixelSize", "rlnImageDimensionality",
               "rlnVoltage", "rlnSphericalAberration", "rlnAmplitudeContrast", "rlnCtfDataArePhaseFlipped"};
  for (const auto& g : set.optics)
    b.rows.push_back({g.name.empty() ? "opticsGroup" + std::to_string(g.number) : g.name, std::to_string(g.number),
                      format_fixed(g.pixel_size), "2", format_fixed(g.voltage), format_fixed(g.cs), format_fixed(g.amp_contrast),
                      g.phase_flipped ? "1" : "0"});
  // A box size of 0 (images not opened) would mislead RELION; leave the column out instead.
  bool boxes_known = true;
  for (const auto& g : set.optics) boxes_known = boxes_known && g.box_size > 0;
  if (boxes_known) {
    int c = b.add_column("rlnImageSize");
    for (size_t i = 0; i < set.optics.size(); ++i) b.rows[i][c] = std::to_string(set.optics[i].box_size);
  }
  return b;
}

}  // namespace

StarFile particle_subset_star(const ParticleSet& set, const std::vector<size_t>& keep) {
  const StarBlock* parts = particle_block(set.star);
  if (!parts || parts->rows.size() != set.particles.size())
    CUGMM_FAIL("particle_subset_star: the set's STAR document does not match its particles");
  for (size_t i : keep)
    if (i >= set.particles.size()) CUGMM_FAIL("particle_subset_star: row " + std::to_string(i) + " out of range");

  StarFile out;
  out.version = set.star.version >= 30001 ? set.star.version : 30001;
  const StarBlock* optics = set.star.find("optics");
  StarBlock sub;
  sub.name = "particles";
  if (optics && optics != parts) {
    out.blocks.push_back(*optics);
    sub.columns = parts->columns;
    for (size_t i : keep) sub.rows.push_back(parts->rows[i]);
  } else {
    // STAR 3.0: optics values move to data_optics, pixel origins become Å, rows gain their group.
    out.blocks.push_back(optics_table(set));
    std::vector<int> kept_cols;
    for (size_t c = 0; c < parts->columns.size(); ++c) {
      const std::string& l = parts->columns[c];
      bool drop = l == "rlnOriginX" || l == "rlnOriginY" || l == "rlnOriginXAngst" || l == "rlnOriginYAngst" ||
                  l == "rlnOpticsGroup";
      for (const char* o : kOpticsOnly) drop = drop || l == o;
      if (!drop) {
        kept_cols.push_back(int(c));
        sub.columns.push_back(l);
      }
    }
    bool has_origin = parts->column("rlnOriginX") >= 0 || parts->column("rlnOriginY") >= 0 ||
                      parts->column("rlnOriginXAngst") >= 0 || parts->column("rlnOriginYAngst") >= 0;
    if (has_origin) sub.columns.insert(sub.columns.end(), {"rlnOriginXAngst", "rlnOriginYAngst"});
    sub.columns.push_back("rlnOpticsGroup");
    for (size_t i : keep) {
      std::vector<std::string> row;
      for (int c : kept_cols) row.push_back(parts->rows[i][c]);
      const Particle& p = set.particles[i];
      if (has_origin) row.insert(row.end(), {format_fixed(p.origin_x), format_fixed(p.origin_y)});
      row.push_back(std::to_string(set.optics[p.optics].number));
      sub.rows.push_back(std::move(row));
    }
  }
  out.blocks.push_back(std::move(sub));
  return out;
}

void write_particle_subset(const std::string& path, const ParticleSet& set, const std::vector<size_t>& keep) {
  write_star(path, particle_subset_star(set, keep));
}

}  // namespace cugmm::io
