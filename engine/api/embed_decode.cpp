// `cugmm embed` / Engine::embed and `cugmm decode` / Engine::decode.
#include <cmath>
#include <filesystem>

#include "core/error.h"
#include "core/log.h"
#include "engine/api/workflows.h"
#include "engine/model_params.h"
#include "engine/particle_batch.h"
#include "engine/train_outputs.h"

namespace fs = std::filesystem;

namespace cugmm {

void check_embedding(const TrainedModel& m, io::ParticleSet& set, const std::string& particles) {
  refuse_premultiplied(set, m.config.ctf);
  // The run's working grid: the particles must reach the same box and pixel size.
  const WorkingGrid native = choose_working_grid(set, 0);
  if (std::abs(native.box * native.pixel - m.cache_box * m.cache_pixel) > 1e-3 * m.cache_box * m.cache_pixel)
    throw InputError(particles, "", "the particles' field of view (" + std::to_string(native.box) + " x " +
                                        std::to_string(native.pixel) + " Å) differs from the run's (" +
                                        std::to_string(m.cache_box) + " x " + std::to_string(m.cache_pixel) + " Å)");
}

void run_embedding(const TrainedModel& m, Context& cx, const io::ParticleSet& set, CacheOptions co,
                   const std::string& checkpoint, const std::string& cache_path, const std::string& out, int batch,
                   std::vector<float>& latent, std::vector<float>& score) {
  co.box = m.cache_box;
  co.maxres = m.config.maxres;
  ParticleCache cache = open_particle_cache(co, cache_path, true);
  embed_cache(m, cx, cache, checkpoint, (fs::path(out) / "features.cugmm-features").string(), latent, score, batch);
  std::vector<int64_t> rows(cache.count());
  for (size_t i = 0; i < cache.count(); ++i) rows[i] = cache.particle(i).source_row;
  write_latent_txt((fs::path(out) / "latent.txt").string(), latent, m.config.latent, rows);
  write_latent_star((fs::path(out) / "particles.star").string(), set, latent, score, m.config.latent, rows);
  log_info(latent_diagnostic_line(latent_diagnostic(latent, m.config.latent)));
}

void check_latent_points(const TrainedModel& m, const std::vector<float>& z) {
  const int d = m.config.latent;
  if (z.empty() || z.size() % size_t(d) != 0)
    throw Error("the latent has " + std::to_string(d) + " dimensions: give a multiple of " + std::to_string(d) +
                " numbers (got " + std::to_string(z.size()) + ")");
  for (float v : z)
    if (!std::isfinite(v)) throw Error("a latent coordinate is not a finite number");
}

std::vector<io::GaussianModel> decode_models(const TrainedModel& m, Context& cx, const std::vector<float>& z) {
  check_latent_points(m, z);
  const int d = m.config.latent;
  const int n = int(z.size() / size_t(d));
  const std::vector<float> params = decode_points(m, cx, z, n);
  const size_t W = m.neutral_params.size();
  std::vector<io::GaussianModel> models;
  for (int k = 0; k < n; ++k)
    models.push_back(model_from_params(std::vector<float>(params.begin() + long(k * W), params.begin() + long((k + 1) * W)),
                                       m.neutral));
  return models;
}

}  // namespace cugmm
