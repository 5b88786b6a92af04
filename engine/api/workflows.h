// The jobs behind both the library API (engine/api/engine.cpp) and the `cugmm` commands (cli/cmd_*.cpp):
// each command reads its options, checks its files and calls these; the API converts its settings and
// calls the same, so the two give identical results (tests/test_api.cpp checks it bit for bit).
#pragma once
#include <string>
#include <vector>

#include "engine/particle_cache.h"
#include "engine/trainer.h"
#include "io/model.h"
#include "io/particles.h"

namespace cugmm {

// ---- train ----
// The model must be made for the particles' grid (box and pixel size of the finest optics group): an
// InputError naming model_name otherwise.
void require_model_on_grid(const io::GaussianModel& m, const std::string& model_name, int box, double pixel,
                           const std::string& particles);
// Everything training checks before any work or any file is written: CTF-premultiplied data, the model on
// the particles' grid, the split (a batch to train, 4 to validate). Returns the memory plan on the working
// grid of `box` (0: the particles' own).
MemoryPlan check_training(io::ParticleSet& set, const io::GaussianModel& model, const std::string& model_name,
                          const TrainConfig& config, int box);

struct TrainRequest {
  CacheOptions cache;           // particles, root, box, normalise (maxres is the config's)
  std::string cache_path;       // "" : OUT/particles.cugmm-cache
  std::string model_source;     // what run.json names as the model ("" : OUT/neutral.txt)
  TrainConfig config;
  bool resume = false;
};
struct TrainOutcome {
  bool finished = false;        // false: cancelled at a batch boundary, resumable checkpoint written
  std::vector<float> latent;    // particle after particle, in the particle file's order (the cache's)
  std::vector<EpochRecord> history;
};
// The run: cache, features, training, then latent.txt, particles.star, loss.txt/.png, neutral.txt and
// run.json in `out` (created by the caller), as README "Run directory" lists them.
TrainOutcome run_training(Context& cx, const io::ParticleSet& set, const io::GaussianModel& model,
                          const TrainRequest& request, const std::string& out);

// ---- embed ----
// The particles must suit the run: not CTF-premultiplied, the same field of view as its working grid.
void check_embedding(const TrainedModel& m, io::ParticleSet& set, const std::string& particles);
// Cache (at cache_path), features and latent points of `set` through the run's encoder; latent.txt and
// particles.star written into `out`. latent and score in the particle file's order (the cache's).
void run_embedding(const TrainedModel& m, Context& cx, const io::ParticleSet& set, CacheOptions co,
                   const std::string& checkpoint, const std::string& cache_path, const std::string& out, int batch,
                   std::vector<float>& latent, std::vector<float>& score);

// ---- decode ----
// Throws unless z holds at least one point of the run's dimension, all finite.
void check_latent_points(const TrainedModel& m, const std::vector<float>& z);
// Latent points (a multiple of the run's dimension, at least one point) to models on the neutral grid.
std::vector<io::GaussianModel> decode_models(const TrainedModel& m, Context& cx, const std::vector<float>& z);

}  // namespace cugmm
