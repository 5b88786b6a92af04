// `cugmm simulate`: particles with known ground truth from one or more models (engine/simulate.h).
#include <cstdio>
#include <sstream>

#include "cli/args.h"
#include "core/error.h"
#include "engine/simulate.h"
#include "io/model.h"

namespace cugmm::cli {

static int run_simulate(Args& args) {
  std::string models = args.required("models", "native model files, comma-separated; particle i shows model i mod count");
  std::string out = args.required("out", "output directory (particles.star + particles.mrcs)");
  SimulationOptions o;
  o.count = int(args.integer("count", 1000, "number of particles"));
  o.snr = args.num("snr", 0.1, "signal variance / noise variance over the box (0: no noise)");
  o.ctf = !args.flag("no-ctf", "do not apply a CTF");
  o.defocus_min = args.num("defocus-min", 8000, "Å");
  o.defocus_max = args.num("defocus-max", 25000, "Å");
  o.max_shift = args.num("max-shift", 2, "largest shift in pixels");
  o.seed = uint64_t(args.integer("seed", 1, "random seed"));
  std::string name = args.str("name", "particles", "file name stem");
  o.device = args.device();
  if (args.done("cugmm simulate --models A[,B...] --out DIR [--count N] [--snr S]", 0)) return 0;
  CUGMM_REQUIRE(o.count > 0, "--count must be positive");
  std::vector<io::GaussianModel> ms;
  std::stringstream ss(models);
  std::string item;
  while (std::getline(ss, item, ',')) if (!item.empty()) ms.push_back(io::read_model(item));
  SimulatedParticles sim = simulate_particles(ms, o, out, name);
  std::printf("wrote %s and %s: %d particles of %zu models (rlnClassNumber = the model shown)\n", sim.star.c_str(),
              sim.stack.c_str(), o.count, ms.size());
  return 0;
}

static RegisterCommand reg("simulate", "particles with known ground truth from models (views, CTF, noise)",
                           run_simulate);

}  // namespace cugmm::cli
