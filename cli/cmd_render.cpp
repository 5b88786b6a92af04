// `cugmm render`: a Gaussian model as a 3-D map (engine/render.h: each voxel holds its mass).
#include <cstdio>

#include "cli/command.h"
#include "cli/files.h"
#include "cli/limits.h"
#include "core/memory.h"
#include "engine/render.h"
#include "io/model.h"
#include "io/mrc.h"

namespace cugmm::cli {

static int run_render(Command& c) {
  std::string model, out;
  int box = 0;
  double angpix = 0;
  c.text("--model", model, "native model file, or PDB/mmCIF pseudo-atoms")->required();
  c.text("--out", out, "output map (.mrc or .map)")->required();
  c.integer("--box", box, "box in pixels (0: the model's)", 0, kMaxBox);
  c.number("--angpix", angpix, "pixel size in Å (0: the model's)", 0, 1e4);
  c.thread_options();  // CPU work only (FFTW / OpenMP), so --threads but no --device
  if (c.parse()) return 0;
  require_extension("--out", out, {".mrc", ".map"});
  check_files({{model}, {out}, {}});
  io::GaussianModel m = io::load_any_model(model, box, angpix);
  const size_t n = size_t(box > 0 ? box : m.box_size);
  require_host_memory(checked_mul(checked_mul(n * n, n, "the map"), 3 * sizeof(float), "the map"),
                      "a " + std::to_string(n) + "^3 map");
  io::Image vol = render_volume(m, box, angpix);
  io::write_mrc(out, vol, false);
  std::printf("%s: %d^3 voxels at %.4f Å, %zu Gaussians\n", out.c_str(), vol.nx, vol.pixel_size, m.size());
  return 0;
}

static RegisterCommand reg("render", "draw a Gaussian model as a density map", run_render);

}  // namespace cugmm::cli
