// `cugmm fit-map MAP --out DIR`: the neutral Gaussian model of a consensus map (engine/fit_map.h).
// Outputs in DIR: model.txt, model.cif (+ model.pdb within PDB's limits), model.cmm, model.mrc (on the
// map's grid), fsc.txt, fsc.png and, last, fit.json (every option, each round, the verdict). While it runs,
// DIR/fit-map.ckpt holds the fit's state (after each round and every 100 steps): a run killed and started
// again with the same inputs and options continues from it; it is removed once the outputs are written.
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "cli/command.h"
#include "cli/files.h"
#include "core/context.h"
#include "core/error.h"
#include "core/log.h"
#include "engine/fit_map.h"

namespace fs = std::filesystem;

namespace cugmm::cli {

static int run_fit_map(Command& c) {
  FitMapOptions o;
  std::string out, postprocess;
  std::vector<std::string> halves;
  long long seed = 1, ngauss = 0;
  double threshold = -1;
  c.text("map", o.map_path, "the consensus map (MRC)")->required();
  c.text("--out", out, "output directory")->required();
  c.app.add_option("--half-maps", halves, "the two unfiltered half-maps (MRC): where the map has signal, the "
                                          "default --res and the stop rule's C_ref")
      ->expected(2);
  c.text("--postprocess", postprocess, "instead of --half-maps: a RELION postprocess STAR naming them");
  c.number("--res", o.res, "target resolution in Å (0: the half-maps' FSC 0.143, else 3 pixels)", 0, 1e4);
  c.text("--mask", o.mask_path, "soft mask (MRC, same grid): fit and evaluate inside; Gaussians outside are dropped");
  c.number("--threshold", threshold, "density threshold for seeding and the default G (-1: automatic, "
                                     "min(mean + 1.5 sd, 0.25 max) inside the mask)", -1e30, 1e30);
  c.integer("--ngauss", ngauss, "final Gaussian count (0: one per (res/2)^3 of the volume above threshold)", 0,
            200'000'000);
  c.text("--init", o.init_path, "start from a native model or PDB/mmCIF atoms (one Gaussian per residue)");
  c.integer("--seed", seed, "random seed", 0, INT64_MAX);
  c.device_options();
  if (c.parse()) return 0;
  if (!halves.empty() && !postprocess.empty()) throw Error("give --half-maps or --postprocess, not both");
  if (!halves.empty()) { o.half1_path = halves[0]; o.half2_path = halves[1]; }
  if (!postprocess.empty()) o.half1_path = postprocess;
  if (threshold != -1) o.threshold = threshold;
  o.ngauss = long(ngauss);
  o.seed = uint64_t(seed);
  require_directory_name("--out", out);
  std::vector<std::string> inputs = {o.map_path};
  for (const std::string* p : {&o.half1_path, &o.half2_path, &o.mask_path, &o.init_path})
    if (!p->empty()) inputs.push_back(*p);
  const std::vector<std::string> files = {"model.txt", "model.cif", "model.pdb", "model.cmm", "model.mrc",
                                          "fsc.txt", "fsc.png", "fit.json"};
  std::vector<std::string> outputs;
  for (const std::string& f : files) outputs.push_back((fs::path(out) / f).string());
  o.checkpoint = (fs::path(out) / "fit-map.ckpt").string();
  outputs.push_back(o.checkpoint);
  // Every file and every input's content before the output directory is made.
  check_files({inputs, outputs, {out}}, false);
  FitMapInputs in = load_fit_map_inputs(o);
  check_files({inputs, outputs, {out}});
  fs::remove(fs::path(out) / "fit.json");  // until it is rewritten, the directory is an unfinished run
  Context cx(c.device());
  FitMapResult r = fit_map(in, o, cx);
  write_fit_map_outputs(out, in, r);
  for (const std::string& w : r.warnings) log_warn(w);
  std::printf("%s: %zu Gaussians; model vs map FSC 0.5 at %.2f Å, 0.143 at %.2f Å; %s\n", out.c_str(),
              r.model.size(), r.res_fsc05, r.res_fsc0143, r.verdict.c_str());
  if (!r.reached) log_warn("the stop rule was not reached: " + r.verdict + " (fit.json has every shell)");
  return 0;
}

static RegisterCommand reg("fit-map", "the neutral Gaussian model of a consensus map (progressive fit)",
                           run_fit_map);

}  // namespace cugmm::cli
