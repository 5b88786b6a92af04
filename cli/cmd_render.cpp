// `cugmm render`: a Gaussian model as a 3-D map (engine/render.h: each voxel holds its mass).
#include <cstdio>

#include "cli/args.h"
#include "engine/render.h"
#include "io/model.h"
#include "io/mrc.h"

namespace cugmm::cli {

static int run_render(Args& args) {
  std::string model = args.required("model", "native model file, or PDB/mmCIF pseudo-atoms");
  std::string out = args.required("out", "output map (.mrc)");
  int box = int(args.integer("box", 0, "box in pixels (0: the model's)"));
  double angpix = args.num("angpix", 0, "pixel size in Å (0: the model's)");
  // CPU work only (FFTW / OpenMP), so --threads but no --device.
  args.threads();
  if (args.done("cugmm render --model MODEL --out MAP.mrc [--box N] [--angpix A]", 0)) return 0;
  io::GaussianModel m = io::load_any_model(model, box, angpix);
  io::Image vol = render_volume(m, box, angpix);
  io::write_mrc(out, vol, false);
  std::printf("%s: %d^3 voxels at %.4f Å, %zu Gaussians\n", out.c_str(), vol.nx, vol.pixel_size, m.size());
  return 0;
}

static RegisterCommand reg("render", "draw a Gaussian model as a density map", run_render);

}  // namespace cugmm::cli
