// `cugmm simulate`: data sets with known ground truth.
//   --system NAME|FILE.json   the heterogeneity generator (engine/simulate_system.h): atoms -> band-limited
//                             maps -> its own Fourier-slice projector -> CTF -> noise, a truth table, the
//                             consensus map and, with --reference, the oracle reference (oracle.json)
//   --models A.txt,B.txt      Gaussian models through the engine's own projector (engine/simulate.h):
//                             self-consistent, for testing the projector, not ground truth for accuracy
#include <cstdio>
#include <filesystem>
#include <sstream>

#include "cli/command.h"
#include "cli/files.h"
#include "cli/limits.h"
#include "core/error.h"
#include "core/memory.h"
#include "engine/oracle_reference.h"
#include "engine/simulate.h"
#include "engine/simulate_system.h"
#include "io/model.h"

namespace fs = std::filesystem;

namespace cugmm::cli {

namespace {

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

HeteroSystem load_system(const std::string& spec) {
  for (const std::string& n : builtin_system_names())
    if (spec == n) return builtin_system(spec);
  if (fs::path(spec).extension() == ".json") return system_from_json(spec);
  return builtin_system(spec);  // throws, listing the built-in names
}

}  // namespace

static int run_simulate(Command& c) {
  std::string system, models, out;
  TruthSimOptions o;  // its defaults look like real data (engine/simulate_system.h)
  bool no_ctf = false, no_consensus = false, reference = false;
  long long seed = 1;
  OracleOptions ro;
  c.text("--system", system,
         "a built-in system (linear, rotation, composition, two-motions, small-part, c3-trimer) or a JSON description of "
         "motions of any "
         "PDB/mmCIF model (engine/hetero_system.h)");
  c.text("--models", models, "instead of --system: native Gaussian models, comma-separated (the engine's own "
                             "projector: for testing it, not ground truth)");
  c.text("--out", out, "output directory")->required();
  c.integer("--count", o.count, "number of particles", 2, kMaxCount);
  c.integer("--box", o.box, "box in pixels (--system)", 16, kMaxBox);
  c.number("--angpix", o.pixel, "pixel size in Å (--system)", 0, 100, true);
  c.number("--snr", o.snr, "mean whole-box variance of the CTF'd signal over the noise variance (0: no noise)", 0, 1e6);
  c.number("--noise-bfactor", o.noise_bfactor, "coloured noise: amplitude falls as exp(-B k^2/4), Å^2 (0: white)", 0, 1e5);
  c.number("--scale-sd", o.scale_sd, "per-particle scale exp(N(0, sd^2))", 0, 2);
  c.number("--junk", o.junk_fraction, "fraction of images holding noise alone", 0, 0.99);
  c.flag("--no-ctf", no_ctf, "do not apply a CTF");
  c.number("--defocus-min", o.defocus_min, "smallest mean defocus, Å", 0, 1e6, true);
  c.number("--defocus-max", o.defocus_max, "largest mean defocus, Å", 0, 1e6, true);
  c.number("--astigmatism", o.astigmatism, "largest |defocus U - V|, Å", 0, 1e5);
  c.number("--bfactor", o.bfactor, "CTF envelope B-factor, Å^2 (written as rlnCtfBfactor)", 0, 1e4);
  c.integer("--optics-groups", o.optics_groups, "optics groups (odd ones a 200 kV, Cs 2.0 mm scope)", 1, 64);
  c.number("--pose-error", o.pose_error_deg, "geodesic RMS error of the STAR rotations, degrees", 0, 45);
  c.number("--shift-error", o.shift_error_px, "standard deviation of the STAR origins' error per axis, pixels", 0, 1e4);
  c.number("--max-shift", o.max_shift_px, "true origins uniform in +-this, pixels", 0, 1e4);
  c.integer("--seed", seed, "random seed", 0, INT64_MAX);
  c.text("--name", o.name, "file name stem (a plain name: no directories)")->check(plain_name());
  c.integer("--oversample", o.oversample, "atom maps rendered this much finer, then Fourier-cropped", 1, 4);
  c.flag("--no-consensus", no_consensus, "do not reconstruct the consensus map");
  c.integer("--true-maps", o.true_maps, "write the true maps of this many evenly spaced states", 0, 1000);
  c.flag("--reference", reference, "compute the oracle reference (oracle.json; engine/oracle_reference.h)");
  c.integer("--reference-particles", ro.max_particles, "particles the oracle reference uses", 2, 1'000'000);
  c.integer("--reference-poses", ro.pose_samples, "pose samples per particle for the pose-marginalised reference", 1, 1000);
  c.device_options();
  if (c.parse()) return 0;
  o.ctf = !no_ctf;
  o.consensus = !no_consensus;
  o.seed = uint64_t(seed);
  require_directory_name("--out", out);
  if (system.empty() == models.empty()) throw Error("give one of --system (ground truth from atoms) or --models");
  const std::string star = (fs::path(out) / (o.name + ".star")).string(),
                    stack = (fs::path(out) / (o.name + ".mrcs")).string();

  if (!models.empty()) {
    for (const char* only : {"--box", "--angpix", "--noise-bfactor", "--scale-sd", "--junk", "--astigmatism", "--bfactor",
                             "--optics-groups", "--pose-error", "--shift-error", "--oversample", "--no-consensus",
                             "--true-maps", "--reference", "--reference-particles", "--reference-poses"})
      if (c.app.get_option(only)->count() > 0)
        throw Error(std::string(only) + " applies to --system only (--models uses the models' own box)");
    const std::vector<std::string> paths = split_commas(models);
    if (paths.empty()) throw Error("--models names no file");
    check_files({paths, {star, stack}, {out}}, false);
    std::vector<io::GaussianModel> ms;
    for (const std::string& p : paths) ms.push_back(io::read_model(p));
    SimulationOptions so;
    so.count = o.count;
    so.snr = o.snr;
    so.ctf = o.ctf;
    so.defocus_min = o.defocus_min;
    so.defocus_max = o.defocus_max;
    so.max_shift = o.max_shift_px;
    so.seed = o.seed;
    check_simulation_options(so, ms[0].box_size, o.name);
    check_files({paths, {star, stack}, {out}});
    so.device = c.device();
    SimulatedParticles sim = simulate_particles(ms, so, out, o.name);
    std::printf("wrote %s and %s: %d particles of %zu models (rlnClassNumber = the model shown)\n", sim.star.c_str(),
                sim.stack.c_str(), so.count, ms.size());
    return 0;
  }

  // --system: the system (and its atom file) and every option before the directory is made.
  std::vector<std::string> inputs;
  if (fs::path(system).extension() == ".json") inputs.push_back(system);
  check_files({inputs, {star, stack}, {out}}, false);
  HeteroSystem sys = load_system(system);
  const size_t plane = checked_mul(size_t(o.box), size_t(o.box), "--box");
  require_host_memory(checked_mul(checked_mul(plane, size_t(o.count), "--count"), 2 * sizeof(float), "--count"),
                      "simulate: " + std::to_string(o.count) + " images of " + std::to_string(o.box) + " px");
  check_files({inputs, {star, stack}, {out}});
  std::vector<float> images;
  SimulatedTruth res = simulate_system(sys, o, out, reference ? &images : nullptr);
  std::printf("wrote %s and %s: %d particles of system %s; truth in %s; noise sd %.4g; STAR pose error %.2f° RMS, "
              "%.2f px\n",
              res.star.c_str(), res.stack.c_str(), o.count, sys.name.c_str(), res.truth_csv.c_str(), res.noise_sigma,
              res.pose_error_rms_deg, res.shift_error_rms_px);
  if (reference) {
    OracleResult r = oracle_reference(sys, o, res, images, ro);
    const std::string path = (fs::path(out) / "oracle.json").string();
    write_oracle_json(path, r);
    for (const OracleFigure& f : r.figures)
      std::printf("oracle reference %s (%s): %.3f [%.3f, %.3f] with true poses, %.3f [%.3f, %.3f] "
                  "marginalised over the pose error\n",
                  f.metric.c_str(), f.motion.c_str(), f.true_pose.value, f.true_pose.lo, f.true_pose.hi,
                  f.marginal.value, f.marginal.lo, f.marginal.hi);
    std::printf("wrote %s (%zu particles, %d grid states, %d pose samples, %.1f s)\n", path.c_str(),
                r.particles.size(), r.grid_states, r.pose_samples, r.seconds);
  }
  return 0;
}

static RegisterCommand reg("simulate", "data sets with known ground truth (heterogeneous systems from atoms)",
                           run_simulate);

}  // namespace cugmm::cli
