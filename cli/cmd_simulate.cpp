// `cugmm simulate`: particles with known ground truth from one or more models (engine/simulate.h).
#include <cstdio>
#include <sstream>

#include <filesystem>

#include "cli/command.h"
#include "cli/files.h"
#include "cli/limits.h"
#include "core/error.h"
#include "engine/simulate.h"
#include "io/model.h"

namespace fs = std::filesystem;

namespace cugmm::cli {

static int run_simulate(Command& c) {
  std::string models, out, name = "particles";
  SimulationOptions o;
  bool no_ctf = false;
  long long seed = 1;
  c.text("--models", models, "native model files, comma-separated; particle i shows model i mod count")->required();
  c.text("--out", out, "output directory (NAME.star + NAME.mrcs)")->required();
  c.integer("--count", o.count, "number of particles", 1, kMaxCount);
  c.number("--snr", o.snr, "signal variance / noise variance over the box (0: no noise)", 0, 1e6);
  c.flag("--no-ctf", no_ctf, "do not apply a CTF");
  c.number("--defocus-min", o.defocus_min, "smallest defocus, Å", 0, 1e6, true);
  c.number("--defocus-max", o.defocus_max, "largest defocus, Å", 0, 1e6, true);
  c.number("--max-shift", o.max_shift, "largest shift in pixels (at most half the box)", 0, double(kMaxBox / 2));
  c.integer("--seed", seed, "random seed", 0, INT64_MAX);
  c.text("--name", name, "file name stem (a plain name: no directories)")->check(plain_name());
  c.device_options();
  if (c.parse()) return 0;
  o.ctf = !no_ctf;
  o.seed = uint64_t(seed);
  require_directory_name("--out", out);
  std::vector<std::string> paths;
  std::stringstream ss(models);
  for (std::string item; std::getline(ss, item, ',');)
    if (!item.empty()) paths.push_back(item);
  if (paths.empty()) throw Error("--models names no file");
  const std::string star = (fs::path(out) / (name + ".star")).string(), stack = (fs::path(out) / (name + ".mrcs")).string();
  // The files, then the models and the options against their box; the directory is made last.
  check_files({paths, {star, stack}, {out}}, false);
  std::vector<io::GaussianModel> ms;
  for (const std::string& p : paths) ms.push_back(io::read_model(p));
  check_simulation_options(o, ms[0].box_size, name);
  check_files({paths, {star, stack}, {out}});
  o.device = c.device();
  SimulatedParticles sim = simulate_particles(ms, o, out, name);
  std::printf("wrote %s and %s: %d particles of %zu models (rlnClassNumber = the model shown)\n", sim.star.c_str(),
              sim.stack.c_str(), o.count, ms.size());
  return 0;
}

static RegisterCommand reg("simulate", "particles with known ground truth from models (views, CTF, noise)",
                           run_simulate);

}  // namespace cugmm::cli
