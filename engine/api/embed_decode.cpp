// `cugmm embed` / Engine::embed and `cugmm decode` / Engine::decode.
#include <cmath>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "core/log.h"
#include "engine/api/ranks.h"
#include "engine/api/workflows.h"
#include "engine/gaussian_mask.h"
#include "engine/symmetry.h"
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

nlohmann::json focused_run(const std::string& run_dir) {
  std::ifstream rj(fs::path(run_dir) / "run.json");
  const nlohmann::json runinfo = rj ? nlohmann::json::parse(rj, nullptr, false) : nlohmann::json();
  if (!runinfo.is_object() || !runinfo.contains("focus") || runinfo["focus"].value("subtract", "none") == "none")
    return nullptr;
  nlohmann::json focus = runinfo["focus"];
  focus["model"] = runinfo.value("model", "");
  return focus;
}

EmbedOutcome run_embedding(const TrainedModel& m, Context& cx, const io::ParticleSet& set, const EmbedRequest& rq,
                           const std::string& out) {
  SingleComm single;
  Comm& comm = rq.comm ? *rq.comm : single;
  CacheOptions co = rq.cache;
  co.box = m.cache_box;
  co.maxres = m.config.maxres;
  // A run trained with --sym sees every particle once per operator: so does its embedding (each copy
  // subtracted in its own frame when the run is focused).
  const SymmetryGroup group = make_symmetry_group(m.config.symmetry);
  SubtractionSpec spec;
  io::GaussianModel full;
  if (!rq.focus.is_null()) {
    full = io::load_any_model(rq.focus["model"].get<std::string>(), m.neutral.box_size, m.neutral.pixel_size);
    // A run focused with --subtract decoded SOURCE: SOURCE's latent points must include these particles.
    if (rq.focus.contains("decoded_run"))
      use_decoded_models(spec, cx, rq.focus["decoded_run"].get<std::string>(), set, group.name, group.order(),
                         {m.cache_box, m.cache_pixel}, full);
  }
  ParticleCache cache = open_cache_on_ranks(comm, co, rq.cache_path);
  if (group.order() > 1) cache.expand(group.name, group.operators);
  if (!rq.focus.is_null()) {
    // Every rank would write the subtracted cache under one name: focused runs are single-process for now.
    if (comm.size() > 1) throw Error("a focused run (--focus-mask) is embedded in one process, not under mpirun");
    const std::string mask = rq.focus["mask"].get<std::string>();
    spec.inside = gaussians_in_mask(mask, full);
    spec.ctf = m.config.ctf;
    spec.recentre = rq.focus.value("recentre", false);
    spec.centre = mask_centre(mask, full);
    nlohmann::json report;
    cache = subtracted_cache(cx, cache, full, spec, subtracted_cache_path(rq.cache_path), report);
  }
  EmbedOutcome r;
  r.rows = cache.count();
  embed_cache(m, cx, cache, rq.checkpoint, (fs::path(out) / "features.cugmm-features").string(), r.latent, r.score,
              rq.batch, &comm);
  r.writer = comm.rank() == 0;
  if (!r.writer) return r;  // every rank holds every row; one writes them
  const std::vector<int64_t> rows = output_rows(cache);
  if (rq.estimate.use_posterior) {  // both files only once the posterior has succeeded
    const std::vector<float> encoder_points = r.latent;
    const ParticleBatcher batcher = model_batcher(m, cache);
    apply_latent_estimate(rq.estimate, m, cx, batcher, r.latent);
    write_latent_txt((fs::path(out) / "latent_encoder.txt").string(), encoder_points, m.config.latent, rows,
                     cache.copies());
  }
  write_latent_txt((fs::path(out) / "latent.txt").string(), r.latent, m.config.latent, rows, cache.copies());
  write_latent_star((fs::path(out) / "particles.star").string(),
                    group.order() > 1 ? expand_particle_set(set, group) : set, r.latent, r.score, m.config.latent, rows);
  log_info(latent_diagnostic_line(latent_diagnostic(r.latent, m.config.latent)));
  return r;
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
