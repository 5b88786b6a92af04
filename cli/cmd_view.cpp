// `cugmm view RUN -o viewer.html`: one self-contained HTML page to explore a trained run in any browser
// (engine/viewer_page.h): the particles in the latent space, the model decoded under the mouse.
#include <chrono>
#include <cstdio>
#include <filesystem>

#include "cli/command.h"
#include "cli/files.h"
#include "core/error.h"
#include "engine/viewer_data.h"
#include "engine/viewer_page.h"

namespace fs = std::filesystem;

namespace cugmm::cli {

static int run_view(Command& c) {
  std::string run, out, truth, weights = "auto";
  int clusters = 4;
  c.text("RUN", run, "a `cugmm train` run directory (model.ckpt, particles.star)")->required();
  c.text("-o,--out", out, "the page to write (.html)")->required();
  c.text("--truth", truth, "a truth table (CSV, one row per particle in STAR order, e.g. simulate's NAME_truth.csv): its columns colour the points");
  c.integer("--clusters", clusters, "components of the Gaussian mixture fitted to the latent to colour clusters (0: none)", 0, 10);
  c.text("--weights", weights, "decoder weights in the page: auto (fp16 up to 8 MiB, else int8), fp16, int8 (per row, with scales)");
  c.device_options();
  if (c.parse()) return 0;
  const WeightFormat format = parse_weight_format(weights);
  require_extension("--out", out, {".html", ".htm"});
  FileSpec files{{(fs::path(run) / "model.ckpt").string(), (fs::path(run) / "particles.star").string()}, {out}, {}};
  if (!truth.empty()) files.inputs.push_back(truth);
  check_files(files);
  const auto t0 = std::chrono::steady_clock::now();
  Context cx(c.device());
  const ViewerInput in = read_viewer_input(run, truth, clusters, cx);
  const ViewerPageInfo info = write_viewer_page(out, in, format, fs::path(run).filename().string());
  std::printf("wrote %s: %.1f MB (%zu particles, %d Gaussians, decoder weights %s %.1f MB, STAR rows %.1f MB gzip) in %.1f s\n",
              out.c_str(), info.bytes / 1e6, in.n, in.G, info.weights.c_str(), info.weight_bytes / 1e6, info.star_bytes / 1e6,
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  return 0;
}

static RegisterCommand reg("view", "a trained run as one interactive HTML page (latent space + decoded model)", run_view);

}  // namespace cugmm::cli
