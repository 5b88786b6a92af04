// Accuracy of symmetry expansion and of focused training with signal subtraction (issue 18 item 3), run as
// the commands a user types (the `cugmm` program built with the project; each command line is printed and
// recorded in the JSON), scored with the metrics the oracle reference uses (engine/oracle_reference.h):
//
//  symmetry  `simulate --system c3-trimer` (three copies of a subunit about z, one of them slides 20 Å) ->
//            fit-map -> `train --sym C3` (only the first asymmetric unit moves). Per symmetry copy k, the
//            linear-motion figure (|Spearman| of PC1 with the truth) and the canonical correlation (any linear
//            read-out of the latent) of the rows of copy k: the copy whose
//            first unit holds the moving subunit (computed from the geometry: R_k^-1 of that subunit's
//            centre lies in unit 0) must recover the motion, the others not; beside it the oracle reference.
//  focus     `simulate --system linear` (an arm slides beside a rigid core that is most of the mass) ->
//            fit-map -> a mask around the arm's swept volume -> `train --focus-mask MASK` with
//            `--subtract neutral` and with `--subtract none` (the same Gaussians move): both figures beside
//            the oracle reference, and the paired bootstrap of the difference of their canonical correlations.
//  symfocus  the same C3 set with `--sym C3 --focus-mask UNIT` (UNIT: the first asymmetric unit): each copy
//            keeps only the subunit it sees in unit 0 (subtracted at its own pose A R_k), per copy as above,
//            with the subtraction's seconds and bytes (a per-copy cache).
//
//   bench_symmetry [--quick] [--cugmm PATH] [--count N] [--epochs E] [--snr S] [--dir DIR] [--reuse]
//                  [--out bench_symmetry.json] [--only symmetry|symfocus|focus]
// --reuse: in an existing --dir, commands whose outputs are there are not run again.
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "bench/common.h"
#include "core/error.h"
#include "engine/atom_map.h"
#include "engine/hetero_system.h"
#include "engine/latent_metrics.h"
#include "engine/oracle_reference.h"
#include "engine/symmetry.h"
#include "engine/train_outputs.h"
#include "io/mrc.h"

using namespace cugmm;
namespace fs = std::filesystem;

namespace {

std::string g_cugmm = CUGMM_EXE_PATH;
nlohmann::json g_commands = nlohmann::json::array();

bool g_reuse = false;

// Runs `cugmm ARGS` (output appended to LOG), recording the command and its seconds; with --reuse, not when
// `done` (the file the command writes last) exists already.
double step(const std::string& args, const std::string& log, const std::string& done) {
  const std::string line = "cugmm " + args;
  if (g_reuse && fs::exists(done)) {
    std::printf("(reused) $ %s\n", line.c_str());
    g_commands.push_back({{"command", line}, {"reused", true}});
    return 0;
  }
  std::printf("$ %s\n", line.c_str());
  std::fflush(stdout);
  const auto t0 = std::chrono::steady_clock::now();
  const int rc = std::system((g_cugmm + " " + args + " >> " + log + " 2>&1").c_str());
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  g_commands.push_back({{"command", line}, {"seconds", s}});
  if (rc != 0) throw Error("bench_symmetry: step failed (see " + log + "): " + line);
  return s;
}

nlohmann::json read_json(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw Error("bench_symmetry: " + path + " was not written");
  return nlohmann::json::parse(f);
}

// The truth column `col` (0-based after the index) of NAME_truth.csv, in STAR order.
std::vector<double> truth_column(const std::string& csv, size_t col) {
  std::ifstream f(csv);
  std::string line;
  std::getline(f, line);
  std::vector<double> v;
  while (std::getline(f, line)) {
    std::stringstream ss(line);
    std::string cell;
    for (size_t k = 0; k <= col + 1 && std::getline(ss, cell, ','); ++k)
      if (k == col + 1) v.push_back(std::stod(cell));
  }
  return v;
}

// Latent rows (every `stride`-th from `first`, n of them) as a matrix.
Matrix latent_rows(const std::vector<float>& z, int d, size_t stride, size_t first, size_t n) {
  CUGMM_REQUIRE(z.size() == n * stride * size_t(d), "bench_symmetry: latent rows and truth differ in number");
  Matrix latent(n, size_t(d));
  for (size_t i = 0; i < n; ++i)
    for (int k = 0; k < d; ++k) latent(i, size_t(k)) = z[(i * stride + first) * size_t(d) + size_t(k)];
  return latent;
}

nlohmann::json interval_json(const Interval& v) { return {{"value", v.value}, {"lo95", v.lo}, {"hi95", v.hi}}; }

// The canonical correlation of a latent with one truth: how much of the motion any linear read-out of the
// latent recovers. Unlike |Spearman(PC1)| it does not depend on which principal axis carries the motion,
// which is arbitrary when the latent's two largest variances are close.
double motion_cc(const Matrix& latent, const std::vector<double>& truth) {
  return canonical_correlations(latent, Matrix(truth.size(), 1, truth))[0];
}

// The linear-motion figure (DESIGN §7, the oracle reference's metric) and the canonical correlation of latent
// rows against one truth, each with its bootstrap interval.
nlohmann::json linear_figure(const HeteroSystem& sys, const std::vector<float>& z, int d, size_t stride, size_t first,
                             const std::vector<double>& truth) {
  const Matrix latent = latent_rows(z, d, stride, first, truth.size());
  Matrix t(truth.size(), 1, truth);
  BootstrapOptions bo;
  bo.resamples = 100;
  for (const MetricFigure& m : score_latent(sys, latent, t, bo))
    if (m.metric == "linear_motion") {
      nlohmann::json f = interval_json(m.value);
      f["canonical_correlation"] = interval_json(bootstrap(latent, truth, motion_cc, bo));
      return f;
    }
  throw Error("bench_symmetry: no linear-motion figure");
}

// Paired bootstrap of cc(a) - cc(b) for two latents of the same particles: each resample draws the same
// particles for both, so the interval is that of the difference itself, not of two overlapping figures.
Interval paired_cc_difference(const Matrix& a, const Matrix& b, const std::vector<double>& truth) {
  Matrix both(a.rows, a.cols + b.cols);
  for (size_t i = 0; i < a.rows; ++i) {
    for (size_t k = 0; k < a.cols; ++k) both(i, k) = a(i, k);
    for (size_t k = 0; k < b.cols; ++k) both(i, a.cols + k) = b(i, k);
  }
  const size_t da = a.cols;
  auto diff = [da](const Matrix& m, const std::vector<double>& t) {
    Matrix x(m.rows, da), y(m.rows, m.cols - da);
    for (size_t i = 0; i < m.rows; ++i)
      for (size_t k = 0; k < m.cols; ++k) (k < da ? x(i, k) : y(i, k - da)) = m(i, k);
    return motion_cc(x, t) - motion_cc(y, t);
  };
  BootstrapOptions bo;
  bo.resamples = 1000;
  return bootstrap(both, truth, diff, bo);
}

std::string figure_text(const nlohmann::json& f) {
  char buf[96];
  std::snprintf(buf, sizeof buf, "%.3f [%.3f, %.3f]", f["value"].get<double>(), f["lo95"].get<double>(),
                f["hi95"].get<double>());
  return buf;
}

int latent_dims(const std::string& run_json) {
  std::ifstream f(run_json);
  if (!f) throw Error("bench_symmetry: " + run_json + " was not written");
  return nlohmann::json::parse(f).at("config").at("latent").get<int>();
}

nlohmann::json oracle_linear(const std::string& oracle_json) {
  const nlohmann::json doc = read_json(oracle_json);  // (kept alive: the loop below reads into it)
  for (const auto& f : doc["figures"])
    if (f["metric"] == "linear_motion") return f;
  throw Error("bench_symmetry: " + oracle_json + " has no linear-motion figure");
}

// The copy of a C3 expansion whose first asymmetric unit holds chain B (engine/symmetry.h: copy k sees what
// lies at R_k u at u).
size_t moving_copy(const HeteroSystem& sys, const SymmetryGroup& g, const Vec3<double>& shift) {
  const std::vector<char> sel = io::select_atoms(sys.atoms, "B");
  Vec3<double> c{0, 0, 0};
  double w = 0;
  for (size_t i = 0; i < sel.size(); ++i)
    if (sel[i]) {
      const io::Atom& a = sys.atoms.atoms[i];
      c = {c.x + a.x + shift.x, c.y + a.y + shift.y, c.z + a.z + shift.z};
      w += 1;
    }
  c = {c.x / w, c.y / w, c.z / w};
  for (size_t k = 0; k < g.order(); ++k)
    if (asymmetric_units(g, {mul(transpose(g.operators[k]), c)})[0] == 0) return k;
  throw Error("bench_symmetry: no copy sees chain B in the first unit");
}

// The first asymmetric unit of `g` (engine/symmetry.h) as a mask on the model's grid: every voxel whose
// position (Å from the box centre) lies in unit 0, so the mask holds the Gaussians of that unit.
void write_unit_mask(const SymmetryGroup& g, int box, double pixel, const std::string& path) {
  std::vector<Vec3<double>> points;
  points.reserve(size_t(box) * box * box);
  for (int z = 0; z < box; ++z)
    for (int y = 0; y < box; ++y)
      for (int x = 0; x < box; ++x) points.push_back({(x - box / 2) * pixel, (y - box / 2) * pixel, (z - box / 2) * pixel});
  const std::vector<int> unit = asymmetric_units(g, points);
  std::vector<float> mask(points.size());
  for (size_t i = 0; i < mask.size(); ++i) mask[i] = unit[i] == 0 ? 1.f : 0.f;
  io::write_mrc(path, mask.data(), box, box, box, float(pixel), false);
}

// Voxels within `radius` Å of chain B's atoms at the ends and middle of its motion: the arm's swept volume.
void write_arm_mask(const HeteroSystem& sys, int box, double pixel, double radius, const std::string& path) {
  const Vec3<double> shift = centring_shift(sys.atoms, box, pixel);  // file -> map frame (voxel i at i * pixel)
  std::vector<float> mask(size_t(box) * box * box, 0.f);
  const Motion& m = sys.motions[0];
  const std::vector<char> sel = io::select_atoms(sys.atoms, "B");
  for (double s : {m.lo, 0.5 * (m.lo + m.hi), m.hi}) {
    const io::AtomicModel at = atoms_at_state(sys, {s});
    for (size_t i = 0; i < at.atoms.size(); ++i) {
      if (!sel[i]) continue;
      const double ax = (at.atoms[i].x + shift.x) / pixel, ay = (at.atoms[i].y + shift.y) / pixel,
                   az = (at.atoms[i].z + shift.z) / pixel, r = radius / pixel;
      for (int z = std::max(0, int(az - r)); z <= std::min(box - 1, int(az + r) + 1); ++z)
        for (int y = std::max(0, int(ay - r)); y <= std::min(box - 1, int(ay + r) + 1); ++y)
          for (int x = std::max(0, int(ax - r)); x <= std::min(box - 1, int(ax + r) + 1); ++x)
            if ((x - ax) * (x - ax) + (y - ay) * (y - ay) + (z - az) * (z - az) <= r * r)
              mask[(size_t(z) * box + y) * box + x] = 1.f;
    }
  }
  io::write_mrc(path, mask.data(), box, box, box, float(pixel), false);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    bool quick = false;
    std::string out = "bench_symmetry.json", dir, only;
    int count = 0, epochs = 0;
    double snr = 0.1;
    for (int i = 1; i < argc; ++i) {
      std::string a = argv[i];
      auto next = [&] { return std::string(i + 1 < argc ? argv[++i] : ""); };
      if (a == "--quick") quick = true;
      else if (a == "--cugmm") g_cugmm = next();
      else if (a == "--count") count = std::stoi(next());
      else if (a == "--epochs") epochs = std::stoi(next());
      else if (a == "--snr") snr = std::stod(next());
      else if (a == "--dir") dir = next();
      else if (a == "--out") out = next();
      else if (a == "--only") only = next();
      else if (a == "--reuse") g_reuse = true;
      else {
        std::fprintf(stderr, "usage: bench_symmetry [--quick] [--cugmm PATH] [--count N] [--epochs E] [--snr S] "
                             "[--dir DIR] [--reuse] [--out FILE] [--only symmetry|symfocus|focus]\n");
        return 2;
      }
    }
    if (count == 0) count = quick ? 600 : 2000;
    if (epochs == 0) epochs = quick ? 8 : 20;
    if (dir.empty()) dir = (fs::temp_directory_path() / ("bench_symmetry_" + std::to_string(::getpid()))).string();
    fs::create_directories(dir);
    const std::string log = dir + "/commands.log";
    const int box = 64;
    const double pixel = 3;
    const std::string n = std::to_string(count), ep = std::to_string(epochs), sn = std::to_string(snr);
    const std::string ref = " --reference --reference-particles " + std::to_string(std::min(count, quick ? 200 : 500)) +
                            " --reference-poses 8";
    // The training defaults (docs/accuracy.md), so the figures follow them.
    const std::string recipe = " --epochs " + ep + " --threads 0";
    // A data set of a built-in system with its oracle reference, and the neutral model of its consensus map.
    auto simulate_and_fit = [&](const std::string& system, const std::string& d) {
      step("simulate --system " + system + " --out " + d + " --count " + n + " --box 64 --angpix 3 --snr " + sn + ref, log,
           d + "/particles.star");
      step("fit-map " + d + "/consensus.mrc --half-maps " + d + "/consensus_half1.mrc " + d +
               "/consensus_half2.mrc --out " + d + "/neutral",
           log, d + "/neutral/fit.json");
    };
    nlohmann::json doc;
    doc["benchmark"] = "symmetry";
    doc["machine"] = bench::machine();
    doc["particles"] = count;
    doc["epochs"] = epochs;
    doc["snr"] = snr;
    doc["box"] = box;
    doc["pixel_A"] = pixel;

    // c3-trimer expanded by C3 (run `name`, extra options `extra`): per copy the motion figures, beside the
    // oracle reference.
    auto c3_run = [&](const std::string& name, const std::string& extra) {
      const std::string d = dir + "/c3";
      simulate_and_fit("c3-trimer", d);
      const SymmetryGroup g = make_symmetry_group("C3");
      if (!extra.empty()) write_unit_mask(g, box, pixel, d + "/unit_mask.mrc");
      const double s = step("train --particles " + d + "/particles.star --model " + d + "/neutral/model.txt --out " + d +
                                "/" + name + " --cache " + d + "/particles.cugmm-cache --sym C3" + extra + recipe,
                            log, d + "/" + name + "/run.json");
      const HeteroSystem sys = builtin_system("c3-trimer");
      const Vec3<double> sh = centring_shift(sys.atoms, box, pixel);
      const double c0 = box / 2 * pixel;
      const size_t moving = moving_copy(sys, g, {sh.x - c0, sh.y - c0, sh.z - c0});
      const std::vector<double> truth = truth_column(d + "/particles_truth.csv", 0);
      const int dim = latent_dims(d + "/" + name + "/run.json");
      const std::vector<float> z = read_latent_txt(d + "/" + name + "/latent.txt", dim);
      nlohmann::json per_copy = nlohmann::json::array();
      for (size_t k = 0; k < g.order(); ++k) {
        nlohmann::json f = linear_figure(sys, z, dim, g.order(), k, truth);
        f["copy"] = k + 1;
        f["sees_moving_subunit"] = k == moving;
        per_copy.push_back(f);
        std::printf("%s: C3 copy %zu%s: linear motion %s, canonical correlation %s\n", name.c_str(), k + 1,
                    k == moving ? " (moving subunit)" : "", figure_text(f).c_str(),
                    figure_text(f["canonical_correlation"]).c_str());
      }
      const nlohmann::json oracle = oracle_linear(d + "/oracle.json");
      std::printf("oracle reference (linear motion): true poses %s, pose-marginalised %s\n",
                  oracle["true_pose"]["value"].dump().c_str(), oracle["pose_marginalised"]["value"].dump().c_str());
      const nlohmann::json rj = read_json(d + "/" + name + "/run.json");
      nlohmann::json res = {{"system", "c3-trimer"}, {"group", "C3"}, {"moving_copy", moving + 1}, {"per_copy", per_copy},
                            {"oracle_reference", oracle}, {"seconds", s}, {"timings_s", rj["timings_s"]},
                            {"gaussians_trained", rj["gaussians"]}};
      if (rj.contains("focus")) res["focus"] = rj["focus"];
      return res;
    };
    if (only.empty() || only == "symmetry") doc["symmetry"] = c3_run("run_sym", "");
    // --sym with --focus-mask on the first asymmetric unit: each copy keeps only the subunit it sees in unit 0.
    if (only.empty() || only == "symfocus") doc["symmetry_focus"] = c3_run("run_sym_focus", " --focus-mask " + dir + "/c3/unit_mask.mrc");
    if (only.empty() || only == "focus") {
      const std::string d = dir + "/focus";
      simulate_and_fit("linear", d);
      const HeteroSystem sys = builtin_system("linear");
      write_arm_mask(sys, box, pixel, 6, d + "/arm_mask.mrc");
      nlohmann::json runs;
      const std::vector<double> truth = truth_column(d + "/particles_truth.csv", 0);
      std::vector<Matrix> latents;
      for (const char* mode : {"neutral", "none"}) {
        const std::string rd = d + "/run_subtract_" + mode;
        const double s = step("train --particles " + d + "/particles.star --model " + d + "/neutral/model.txt --out " +
                                  rd + " --cache " + d + "/particles.cugmm-cache --focus-mask " + d +
                                  "/arm_mask.mrc --subtract " + mode + recipe,
                              log, rd + "/run.json");
        const int dim = latent_dims(rd + "/run.json");
        const std::vector<float> z = read_latent_txt(rd + "/latent.txt", dim);
        latents.push_back(latent_rows(z, dim, 1, 0, truth.size()));
        nlohmann::json f = linear_figure(sys, z, dim, 1, 0, truth);
        f["seconds"] = s;
        const nlohmann::json rj = read_json(rd + "/run.json");
        f["gaussians_trained"] = rj["gaussians"];
        if (rj.contains("focus")) f["focus"] = rj["focus"];
        runs[std::string("subtract_") + mode] = f;
        std::printf("focus --subtract %s: linear motion %s, canonical correlation %s\n", mode, figure_text(f).c_str(),
                    figure_text(f["canonical_correlation"]).c_str());
      }
      const Interval gain = paired_cc_difference(latents[0], latents[1], truth);
      runs["cc_gain_of_subtraction"] = interval_json(gain);
      std::printf("canonical correlation, subtract neutral minus none: %.3f [%.3f, %.3f] (paired bootstrap)\n",
                  gain.value, gain.lo, gain.hi);
      const nlohmann::json oracle = oracle_linear(d + "/oracle.json");
      std::printf("oracle reference (linear motion): true poses %s, pose-marginalised %s\n",
                  oracle["true_pose"]["value"].dump().c_str(), oracle["pose_marginalised"]["value"].dump().c_str());
      doc["focus"] = {{"system", "linear"}, {"mask", "voxels within 6 Å of the arm at the ends and middle of its motion"},
                      {"runs", runs}, {"oracle_reference", oracle}};
    }
    doc["commands"] = g_commands;
    doc["directory"] = dir;
    bench::write_json(out, doc);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_symmetry: %s\n", e.what());
    return 1;
  }
}
