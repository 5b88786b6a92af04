// `cugmm reconstruct`: half-maps, full map and their FSC from particles (all, or a subset by a column's
// values, a list of rows, or the images a second STAR file names), by direct Fourier inversion with CTF
// correction (engine/reconstruct.h) on the CPU or CUDA backend.
//
// Outputs in --out: half1.mrc, half2.mrc, full.mrc, fsc.txt, fsc.png and, last, fsc.json: a directory
// without fsc.json is an unfinished run (the old one is removed first; every file is written under a
// temporary name and renamed).
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "cli/command.h"
#include "cli/files.h"
#include "core/error.h"
#include "engine/fsc.h"
#include "core/log.h"
#include "engine/reconstruct.h"
#include "io/atomic_file.h"
#include "io/image_read.h"
#include "io/mrc.h"
#include "io/particles.h"
#include "io/plot.h"
#include "io/star.h"

namespace fs = std::filesystem;

namespace cugmm::cli {

namespace {

// The loop whose rows are the particles (data_particles in 3.1, the only loop with rlnImageName in 3.0).
const io::StarBlock& particle_block(const io::ParticleSet& set) {
  for (const io::StarBlock& b : set.star.blocks)
    if (b.is_loop && b.column("rlnImageName") >= 0 && b.rows.size() == set.particles.size()) return b;
  throw InputError(set.source, "", "no particle table with rlnImageName");
}

bool as_number(const std::string& s, double& v) {
  char* end = nullptr;
  v = std::strtod(s.c_str(), &end);
  return end != s.c_str() && *end == 0;
}

std::vector<size_t> rows_by_column(const io::ParticleSet& set, const std::string& column, const std::string& values) {
  const io::StarBlock& b = particle_block(set);
  int c = b.require_column(column, set.source);
  std::vector<std::string> want;
  std::stringstream ss(values);
  for (std::string v; std::getline(ss, v, ',');)
    if (!v.empty()) want.push_back(v);
  CUGMM_REQUIRE(!want.empty(), "--subset-values: no values given");
  std::vector<size_t> rows;
  for (size_t r = 0; r < b.rows.size(); ++r) {
    const std::string& cell = b.rows[r][size_t(c)];
    double x, y;
    bool num = as_number(cell, x);
    for (const std::string& w : want)
      if (cell == w || (num && as_number(w, y) && x == y)) { rows.push_back(r); break; }
  }
  return rows;
}

std::vector<size_t> rows_from_file(const std::string& path, size_t count) {
  std::ifstream f(path);
  if (!f) throw InputError(path, "", "cannot open");
  std::vector<size_t> rows;
  std::string line;
  for (long ln = 1; std::getline(f, line); ++ln) {
    size_t a = line.find_first_not_of(" \t\r");
    if (a == std::string::npos || line[a] == '#') continue;
    char* end = nullptr;
    long v = std::strtol(line.c_str() + a, &end, 10);
    while (end && (*end == ' ' || *end == '\t' || *end == '\r')) ++end;
    if (end == line.c_str() + a || *end != 0 || v < 0 || size_t(v) >= count)
      throw InputError(path, "line " + std::to_string(ln),
                       "expected a 0-based row below " + std::to_string(count) + ", got '" + quote_value(line) + "'");
    rows.push_back(size_t(v));
  }
  // A row listed twice would put one particle in both halves: keep its first mention.
  std::vector<char> seen(count, 0);
  std::vector<size_t> unique;
  for (size_t r : rows)
    if (!seen[r]++) unique.push_back(r);
  if (unique.size() < rows.size())
    log_warn(path + ": " + std::to_string(rows.size() - unique.size()) + " duplicate row(s) ignored (a particle is "
             "used once, in one half)");
  return unique;
}

// "000012@dir/a.mrcs" and "12@dir/a.mrcs" name the same image.
std::string image_key(const std::string& ref) {
  io::ImageRef r = io::parse_image_ref(ref);
  return std::to_string(r.index) + "@" + r.path;
}

std::vector<size_t> rows_by_star(const io::ParticleSet& set, const std::string& path) {
  io::StarFile other = io::read_star(path);
  std::set<std::string> names;
  for (const io::StarBlock& b : other.blocks) {
    int c = b.is_loop ? b.column("rlnImageName") : -1;
    if (c < 0) continue;
    for (const auto& row : b.rows) names.insert(image_key(row[size_t(c)]));
  }
  if (names.empty()) throw InputError(path, "", "no rlnImageName column");
  const io::StarBlock& b = particle_block(set);
  int c = b.require_column("rlnImageName", set.source);
  std::vector<size_t> rows;
  for (size_t r = 0; r < b.rows.size(); ++r)
    if (names.count(image_key(b.rows[r][size_t(c)]))) rows.push_back(r);
  return rows;
}

const char* ctf_name(CtfMode m) {
  return m == CtfMode::none ? "none" : m == CtfMode::phase_flipped ? "phase-flipped" : "full";
}

}  // namespace

static int run_reconstruct(Command& c) {
  std::string particles, out, root, sub_col, sub_val, sub_idx, sub_star, mask_path;
  ReconstructOptions opt;
  bool no_ctf = false;
  double mask_radius = 0, mask_edge = 6;
  c.text("--particles", particles, "particle STAR or cryoSPARC .cs file")->required();
  c.text("--out", out, "output directory")->required();
  c.text("--root", root, "directory that relative image paths are relative to");
  c.text("--subset-column", sub_col, "keep particles whose COLUMN (e.g. rlnClassNumber) ...");
  c.text("--subset-values", sub_val, "... has one of these comma-separated values");
  c.text("--subset-indices", sub_idx, "file of 0-based particle rows, one per line (duplicates ignored)");
  c.text("--subset-star", sub_star, "keep the particles whose rlnImageName this STAR lists");
  c.integer("--padding", opt.padding, "Fourier padding factor", 1, 4);
  c.number("--wiener-tau", opt.wiener_tau, "regulariser, relative to each shell's mean weight", 0, 1e6, true);
  c.number("--maxres", opt.maxres, "highest resolution inserted, Å (0: Nyquist)", 0, 1e6);
  c.flag("--no-ctf", no_ctf, "do not correct the CTF");
  c.text("--mask", mask_path, "mask (MRC, values 0..1) for the masked FSC");
  c.number("--mask-radius", mask_radius, "soft spherical mask radius, Å, for the masked FSC (0: none)", 0, 1e6);
  c.number("--mask-edge", mask_edge, "its raised-cosine edge width, Å", 0, 1e6);
  c.device_options();
  if (c.parse()) return 0;
  int nsub = !sub_col.empty() + !sub_idx.empty() + !sub_star.empty();
  if (nsub > 1) throw Error("give at most one of --subset-column, --subset-indices, --subset-star");
  if (sub_col.empty() != sub_val.empty()) throw Error("--subset-column and --subset-values go together");
  if (!mask_path.empty() && mask_radius > 0) throw Error("give --mask or --mask-radius, not both");
  check_reconstruct_options(opt, 0, 0);  // what does not depend on the data, before reading it
  if (no_ctf) opt.ctf = CtfMode::none;
  require_directory_name("--out", out);
  const std::vector<std::string> names = {"half1.mrc", "half2.mrc", "full.mrc", "fsc.txt", "fsc.png", "fsc.json"};
  FileSpec files{{particles}, {}, {out}};
  for (const std::string& nm : names) files.outputs.push_back((fs::path(out) / nm).string());
  for (const std::string& in : {sub_idx, sub_star, mask_path})
    if (!in.empty()) files.inputs.push_back(in);
  check_files(files, false);  // the directory is made only once the data are known to be good (below)
  auto t0 = std::chrono::steady_clock::now();

  io::ParticleReadOptions ropt;
  ropt.root = root;
  io::ParticleSet set = io::read_particles(particles, ropt);
  std::vector<size_t> rows;
  if (!sub_col.empty()) rows = rows_by_column(set, sub_col, sub_val);
  else if (!sub_idx.empty()) rows = rows_from_file(sub_idx, set.particles.size());
  else if (!sub_star.empty()) rows = rows_by_star(set, sub_star);
  else for (size_t i = 0; i < set.particles.size(); ++i) rows.push_back(i);
  if (rows.empty()) throw Error("reconstruct: the subset selects no particles");
  require_distinct_particles(set, rows);
  std::vector<std::string> stacks;
  for (size_t r : rows) stacks.push_back(set.particles[r].image_file);
  refuse_overwriting(files.outputs, stack_candidates(stacks, particles, root), "a stack " + particles + " names");
  // Everything that depends on the grid is checked before the back-projection, which is the long part.
  const io::OpticsGroup& g0 = set.optics.at(size_t(set.particles[rows[0]].optics));
  check_reconstruct_options(opt, g0.box_size, g0.pixel_size);
  std::vector<float> mask;
  if (!mask_path.empty()) {
    mask = read_mask(mask_path, g0.box_size);
    check_mask(mask, mask_path);
  } else if (mask_radius > 0) {
    check_sphere_mask(mask_radius, mask_edge, g0.box_size, g0.pixel_size);
    mask = soft_sphere_mask(g0.box_size, mask_radius / g0.pixel_size, mask_edge / g0.pixel_size);
    check_mask(mask, "--mask-radius");
  }
  const Device device = c.device();
  log_info("reconstruct: " + std::to_string(rows.size()) + " of " + std::to_string(set.particles.size()) +
           " particles on " + device_name(device));

  check_files(files);
  fs::remove(fs::path(out) / "fsc.json");  // from here until it is rewritten, the directory is unfinished

  HalfMaps maps = reconstruct_halves(set, rows, device, opt);
  const int n = maps.box;
  const float pix = float(maps.pixel_size);
  io::write_mrc((fs::path(out) / "half1.mrc").string(), maps.half1.data(), n, n, n, pix, false);
  io::write_mrc((fs::path(out) / "half2.mrc").string(), maps.half2.data(), n, n, n, pix, false);
  io::write_mrc((fs::path(out) / "full.mrc").string(), maps.full.data(), n, n, n, pix, false);

  FscCurve curve = fsc(maps.half1.data(), maps.half2.data(), n, maps.pixel_size);
  bool masked = !mask_path.empty() || mask_radius > 0;
  FscCurve mcurve;
  if (masked) {
    std::vector<float> a = apply_mask(maps.half1, mask), b = apply_mask(maps.half2, mask);
    mcurve = fsc(a.data(), b.data(), n, maps.pixel_size);
  }

  nlohmann::json jc = nlohmann::json::array();
  std::vector<double> fx, fy, my;
  for (int s = 1; s <= n / 2; ++s) {
    nlohmann::json e = {{"shell", s}, {"frequency", curve.frequency(s)}, {"resolution", curve.resolution(s)},
                        {"fsc", curve.value[s]}};
    if (masked) e["fsc_masked"] = mcurve.value[s];
    jc.push_back(e);
    fx.push_back(curve.frequency(s));
    fy.push_back(curve.value[s]);
    if (masked) my.push_back(mcurve.value[s]);
  }
  write_fsc_txt((fs::path(out) / "fsc.txt").string(), curve, masked ? &mcurve : nullptr);

  const FscCurve& best = masked ? mcurve : curve;
  double r143 = best.resolution_at(0.143), r05 = best.resolution_at(0.5);
  io::Plot plot;
  char title[128];
  if (best.crosses(0.143)) std::snprintf(title, sizeof title, "FSC half-maps: %.2f Å at 0.143", r143);
  else std::snprintf(title, sizeof title, "FSC half-maps: above 0.143 to Nyquist (%.2f A)", r143);
  plot.title(title).xlabel("spatial frequency (Å⁻¹)").ylabel("FSC").ylim(-0.1, 1.05).xlim(0, fx.back());
  plot.add_series("unmasked", fx, fy);
  if (masked) plot.add_series("masked", fx, my);
  plot.add_hline(0.143, "0.143");
  plot.add_hline(0.5, "0.5").color = 0xaaaaaa;
  plot.write_png((fs::path(out) / "fsc.png").string());

  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  nlohmann::json j;
  j["particles_file"] = particles;
  j["particles"] = rows.size();
  j["half1"] = maps.count[0];
  j["half2"] = maps.count[1];
  j["split"] = std::all_of(rows.begin(), rows.end(), [&](size_t r) {
                 int v = set.particles[r].random_subset;
                 return v == 1 || v == 2;
               }) ? "rlnRandomSubset" : "even/odd";
  j["box"] = n;
  j["pixel_size"] = maps.pixel_size;
  j["device"] = device_name(device);
  j["padding"] = opt.padding;
  j["wiener_tau"] = opt.wiener_tau;
  j["maxres"] = opt.maxres;
  j["ctf"] = ctf_name(maps.ctf);
  j["mask"] = !mask_path.empty() ? mask_path : mask_radius > 0 ? "sphere" : "none";
  if (mask_radius > 0) { j["mask_radius"] = mask_radius; j["mask_edge"] = mask_edge; }
  j["resolution_0143"] = r143;
  j["resolution_05"] = r05;
  j["resolution_0143_unmasked"] = curve.resolution_at(0.143);
  j["crosses_0143"] = best.crosses(0.143);  // false: the curve stays above it to Nyquist (a bound)
  j["seconds"] = secs;
  j["fsc"] = jc;
  j["files"] = {"half1.mrc", "half2.mrc", "full.mrc", "fsc.txt", "fsc.png"};
  io::write_file_atomic((fs::path(out) / "fsc.json").string(), j.dump(2) + "\n");

  std::printf("reconstruct: %zu particles (%zu + %zu), %d px at %.4g Å, CTF %s: %.2f Å at FSC 0.143%s%s, %.2f Å at "
              "0.5 (%.1f s) -> %s\n",
              rows.size(), maps.count[0], maps.count[1], n, maps.pixel_size, ctf_name(maps.ctf), r143,
              masked ? " (masked)" : "", best.crosses(0.143) ? "" : " (never below it: Nyquist bound)", r05, secs,
              out.c_str());
  return 0;
}

static RegisterCommand reg("reconstruct", "half-maps, full map and FSC from particles (direct Fourier inversion)",
                           run_reconstruct);

}  // namespace cugmm::cli
