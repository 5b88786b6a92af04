// The noise-whitened input transform's cost (issue 14, docs/accuracy.md round 7d): `train --feature-pca K
// --feature-whiten noise` fitted through the real trainer (cache -> features -> noise images' features ->
// solver) on particles simulated from bench_train's random model, once per solver asked for, each timed
// (wall seconds of the noise images and of the whole fit) with the process's peak RSS during the fit
// (VmHWM reset before it through /proc/self/clear_refs; the feature file is written before, by a plain
// trainer) above the resident memory before it (the particle cache's and feature file's mapped pages that
// the fit touches count), beside the memory plan's figure. When both solvers run, their agreement: each leading component's eigenvalue and the largest
// basis difference over the components above the Marchenko-Pastur edge. No training.
//
//   bench_noise_whitened [--G 3200] [--box 128] [--particles 2000] [--k 25] [--solver dense,streamed]
//                        [--out bench_noise_whitened.json]
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "bench/common.h"
#include "core/context.h"
#include "core/error.h"
#include "core/log.h"
#include "core/memory.h"
#include "engine/noise_features.h"
#include "engine/particle_cache.h"
#include "engine/trainer.h"

using namespace cugmm;
namespace fs = std::filesystem;

namespace {

size_t status_bytes(const char* key) {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind(key, 0) == 0) return std::stoull(line.substr(std::string(key).size())) * 1024;
  return 0;
}

// The peak RSS from now on (Linux >= 4.0: "5" resets VmHWM to the current RSS).
bool reset_peak_rss() {
  std::ofstream f("/proc/self/clear_refs");
  f << "5";
  return bool(f);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    int G = 3200, box = 128, particles = 2000, k = 25;
    std::string solvers = "dense,streamed", out = "bench_noise_whitened.json";
    for (int i = 1; i < argc; ++i) {
      std::string a = argv[i];
      auto next = [&] { return std::string(i + 1 < argc ? argv[++i] : ""); };
      if (a == "--G") G = std::stoi(next());
      else if (a == "--box") box = std::stoi(next());
      else if (a == "--particles") particles = std::stoi(next());
      else if (a == "--k") k = std::stoi(next());
      else if (a == "--solver") solvers = next();
      else if (a == "--out") out = next();
      else {
        std::fprintf(stderr, "usage: bench_noise_whitened [--G N] [--box N] [--particles N] [--k K] "
                             "[--solver dense,streamed] [--out FILE]\n");
        return 2;
      }
    }
    const std::string dir = (fs::temp_directory_path() / ("bench_noise_whitened_" + std::to_string(::getpid()))).string();
    fs::create_directories(dir);
    bench::RandomSet set = bench::random_set(G, box, particles, dir);
    const io::GaussianModel& model = set.model;
    const ParticleCache& cache = set.cache;
    const double t_data = set.seconds;

    TrainConfig c;
    c.batch = 64;
    c.epochs = 1;
    c.val_fraction = 0;
    c.align_shifts = false;  // not what is measured
    c.feature_pca = k;
    c.feature_noise_whiten = true;
    Context cx(Device::cpu);
    nlohmann::json j;
    j["machine"] = bench::machine();
    j["job"] = {{"G", G}, {"width", 5 * G}, {"box", box}, {"particles", particles}, {"k", k},
                {"noise_images", noise_image_count(5 * size_t(G))}};
    j["data_seconds"] = t_data;
    {  // The feature file first (the fits below reuse it: the same key), so that their peak RSS is the fit's.
      TrainConfig plain = c;
      plain.feature_pca = 0;
      plain.feature_noise_whiten = false;
      Trainer trainer(cx, cache, model, plain, dir);
      trainer.prepare_features(false);
      j["features_s"] = trainer.seconds_features;
    }
    std::vector<FeatureTransform> fits;
    std::stringstream list(solvers);
    std::string name;
    while (std::getline(list, name, ',')) {
      c.feature_noise_solver = name;
      const NoiseSolver s = choose_noise_solver(parse_noise_solver(name), 5 * size_t(G));
      Trainer trainer(cx, cache, model, c, dir);
      const size_t rss_before = status_bytes("VmRSS:");
      const bool reset = reset_peak_rss();
      trainer.prepare_features(false);
      const size_t peak = status_bytes("VmHWM:");
      const FeatureTransform& f = trainer.feature_transform();
      const double edge = std::pow(1 + std::sqrt(double(5 * G) / double(trainer.train_count())), 2);
      int above = 0;
      while (above < f.k && f.variance[size_t(above)] > edge) ++above;
      std::printf("%-8s 5G = %d, %d particles, %zu noise images: fit %.1f s (noise images %.1f s), peak RSS during "
                  "the fit %s above the %s before (plan %s), top lambda %.2f, %d of %d above the edge %.2f\n",
                  noise_solver_name(s), 5 * G, particles, noise_image_count(5 * size_t(G)), trainer.seconds_transform,
                  trainer.seconds_noise_images, format_bytes(peak - std::min(peak, rss_before)).c_str(),
                  format_bytes(rss_before).c_str(), format_bytes(trainer.memory_plan().transform_host).c_str(),
                  f.variance[0], above, k, edge);
      j["fits"].push_back({{"solver", noise_solver_name(s)}, {"fit_s", trainer.seconds_transform},
                           {"noise_images_s", trainer.seconds_noise_images},
                           {"ring_weights_s", trainer.seconds_features - trainer.seconds_transform},
                           {"peak_rss_during_fit_bytes", reset ? nlohmann::json(peak) : nlohmann::json()},
                           {"rss_before_fit_bytes", rss_before},
                           {"plan_transform_host_bytes", trainer.memory_plan().transform_host},
                           {"variance", f.variance}, {"mp_edge", edge}, {"above_edge", above}});
      fits.push_back(f);
    }
    if (fits.size() == 2) {  // the two solvers' agreement over the components above the edge
      const FeatureTransform &a = fits[0], &b = fits[1];
      const int above = j["fits"][0]["above_edge"];
      double diff = 0, big = 0, lambda = 0;
      for (size_t r = 0; r < 5 * size_t(G); ++r)
        for (int col = 0; col < above; ++col) {
          const size_t i = r * size_t(k) + size_t(col);
          diff = std::max(diff, double(std::abs(a.basis[i] - b.basis[i])));
          big = std::max(big, double(std::abs(a.basis[i])));
        }
      for (int col = 0; col < k; ++col)
        lambda = std::max(lambda, std::abs(b.variance[size_t(col)] / a.variance[size_t(col)] - 1));
      const double rel = big > 0 ? diff / big : 0;  // none above the edge: nothing to compare
      std::printf("agreement: largest basis difference over the %d components above the edge %.2e (of the largest "
                  "entry); largest relative eigenvalue difference over all %d %.2e\n", above, rel, k, lambda);
      j["agreement"] = {{"components_above_edge", above}, {"basis_max_rel_difference", rel},
                        {"eigenvalue_max_rel_difference", lambda}};
    }
    j["peak_rss_bytes"] = bench::peak_rss_bytes();
    bench::write_json(out, j);
    fs::remove_all(dir);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_noise_whitened: %s\n", e.what());
    return 1;
  }
}
