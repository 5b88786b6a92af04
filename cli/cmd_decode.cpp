// `cugmm decode RUN --z "z1 z2 ..." | --z-file F --out DIR`: latent points -> Gaussians (native, mmCIF,
// ChimeraX .cmm) and density maps (MRC on the neutral model's grid), one set of files per point. Decoding
// is the library API's (engine/api/workflows.h decode_models), as Engine::decode.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "cli/command.h"
#include "cli/files.h"
#include "core/error.h"
#include "core/log.h"
#include "engine/analysis_files.h"
#include "engine/api/session.h"
#include "engine/api/workflows.h"
#include "engine/trainer.h"
#include "io/model.h"

namespace fs = std::filesystem;

namespace cugmm::cli {

static int run_decode(Command& c) {
  std::string run, out, zs, zfile;
  c.text("RUN", run, "a `cugmm train` run directory (its model.ckpt)")->required();
  c.text("--z", zs, "latent point(s): d numbers per point, separated by spaces");
  c.text("--z-file", zfile, "latent points, one per line (d numbers; '#' starts a comment)");
  c.text("--out", out, "output directory: point_NNN.txt/.cif/.cmm/.mrc")->required();
  c.device_options();
  if (c.parse()) return 0;
  if (zs.empty() == zfile.empty()) throw Error("give --z or --z-file (one of them)");
  require_directory_name("--out", out);
  const std::string ckpt = (fs::path(run) / "model.ckpt").string();
  FileSpec files{{ckpt}, {}, {out}};
  if (!zfile.empty()) files.inputs.push_back(zfile);
  check_files(files, false);
  EngineOptions eo;
  eo.device = device_name(c.device());
  Engine::Impl engine(eo);
  EngineCall call(engine);
  TrainedModel m = load_trained(ckpt, call.cx());
  const int d = m.config.latent;
  std::vector<float> z;
  if (!zs.empty()) {
    z = parse_numbers(zs, "--z");
  } else {
    std::ifstream in(zfile);
    if (!in) throw InputError(zfile, "", "cannot read");
    std::string line;
    int ln = 0;
    while (std::getline(in, line)) {
      ++ln;
      std::vector<float> row = parse_numbers(line, zfile + " line " + std::to_string(ln));
      if (row.empty()) continue;
      if (int(row.size()) != d)
        throw InputError(zfile, "line " + std::to_string(ln), "has " + std::to_string(row.size()) + " numbers, the latent has " +
                                                                   std::to_string(d) + " dimensions");
      z.insert(z.end(), row.begin(), row.end());
    }
  }
  check_latent_points(m, z);
  const int n = int(z.size() / size_t(d));
  for (int k = 0; k < n; ++k) {
    char name[32];
    std::snprintf(name, sizeof name, "point_%03d", k + 1);
    for (const char* ext : {".txt", ".cif", ".cmm", ".mrc"}) files.outputs.push_back((fs::path(out) / (std::string(name) + ext)).string());
  }
  check_files(files);
  const auto t0 = std::chrono::steady_clock::now();
  const std::vector<io::GaussianModel> models = decode_models(m, call.cx(), z);
  double t_decode = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (int k = 0; k < n; ++k)
    write_point_files(fs::path(files.outputs[size_t(4 * k)]).replace_extension().string(), models[size_t(k)]);
  const double t_all = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  // The map's own time is bench_train's (decode per point).
  std::printf("decoded %d point(s) in %s: decoder %.2f ms per point, %.2f with the map and files\n", n, out.c_str(),
              1e3 * t_decode / n, 1e3 * t_all / n);
  return 0;
}

static RegisterCommand reg("decode", "latent points to Gaussians (native, mmCIF, .cmm) and maps", run_decode);

}  // namespace cugmm::cli
