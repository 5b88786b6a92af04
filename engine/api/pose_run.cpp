// `cugmm refine-pose` and Engine::refine_poses: the checks before any work, then the refinement and its files.
#include <algorithm>
#include <cmath>
#include <filesystem>

#include "core/error.h"
#include "core/log.h"
#include "engine/api/workflows.h"
#include "engine/model_params.h"
#include "engine/particle_batch.h"
#include "engine/particle_poses.h"
#include "engine/train_outputs.h"
#include "io/plot.h"
#include "io/text.h"

namespace fs = std::filesystem;

namespace cugmm {

std::string beside(const std::string& out, const std::string& ext) {
  return (fs::path(out).parent_path() / fs::path(out).stem()).string() + ext;
}

void check_pose_refinement(io::ParticleSet& set, PoseRequest& rq) {
  PoseRefineOptions& po = rq.options;
  const std::string& particles = rq.cache.particles;
  const WorkingGrid native = choose_working_grid(set, 0);
  int G = 0;
  if (rq.run) {
    const TrainedModel& m = *rq.run;
    if (std::abs(native.box * native.pixel - m.cache_box * m.cache_pixel) > 1e-3 * m.cache_box * m.cache_pixel)
      throw InputError(particles, "", "the particles' field of view (" + std::to_string(native.box) + " x " +
                                          io::format_number("%g", native.pixel) + " Å) differs from the run " +
                                          rq.run_dir + "'s (" + std::to_string(m.cache_box) + " x " +
                                          io::format_number("%g", m.cache_pixel) + " Å): not its particles");
    po.ctf = m.config.ctf;
    if (!rq.minres_given) po.minres = m.config.minres;
    rq.cache.box = m.cache_box;
    G = int(m.neutral_params.size() / 5);
  } else {
    require_model_on_grid(rq.fixed, rq.model_name, native.box, native.pixel, particles);
    po.ctf = parse_ctf_choice(rq.ctf);
    G = int(rq.fixed.size());
    if (G == 0) throw InputError(rq.model_name, "", "the model has no Gaussians");
  }
  refuse_premultiplied(set, po.ctf);
  if (!rq.latent.empty()) {
    const size_t d = size_t(rq.run->config.latent);
    if (rq.latent.size() != set.particles.size() * d)
      throw InputError(rq.latent_name, "", "holds " + std::to_string(rq.latent.size() / d) + " latent points; " +
                                               particles + " has " + std::to_string(set.particles.size()) +
                                               " particles");
  }
}

namespace {

std::string joined(const std::vector<double>& v) {
  std::string s;
  for (double x : v) s += (s.empty() ? "" : ",") + io::format_number("%g", x);
  return s;
}

// `r` (cache order) in particle-file order.
PoseRefineResult in_file_order(const PoseRefineResult& r, const ParticleCache& cache) {
  PoseRefineResult f = r;
  for (size_t i = 0; i < cache.count(); ++i) {
    const size_t row = size_t(cache.particle(i).source_row);
    f.before[row] = r.before[i];
    f.after[row] = r.after[i];
    f.score_before[row] = r.score_before[i];
    f.score_after[row] = r.score_after[i];
    f.angle_change_deg[row] = r.angle_change_deg[i];
    f.shift_change_a[row] = r.shift_change_a[i];
  }
  return f;
}

}  // namespace

PoseRefineResult run_pose_refinement(Context& cx, const io::ParticleSet& set, const PoseRequest& rq,
                                     const std::string& out, const std::string& png) {
  PoseRefineOptions po = rq.options;
  CacheOptions co = rq.cache;
  co.maxres = po.bands.back();
  // The run's encoder reads features over the band it was trained on (its ring weights count those rings):
  // the cache holds that band too when it is finer than the last stage's.
  if (rq.run && rq.latent.empty())
    co.maxres = rq.run->config.maxres > 0 ? std::min(co.maxres, rq.run->config.maxres) : 0;
  ParticleCache cache = open_particle_cache(co, rq.cache_path, true);
  if (cache.count() != set.particles.size()) throw Error("the particle cache does not hold every particle");

  // The rings weighted against the run's neutral model or the given model (engine/pose_refine.h).
  const std::vector<float> fixed_row = rq.run ? std::vector<float>{} : params_from_model(rq.fixed);
  // With a run, its own kind of score: plain FRC only for a run trained with it; a run of the pooled score
  // (rings weighted by their measured noise) gets the SNR weighting, refine-pose's ring-weighted score.
  const bool snr = rq.loss.empty() ? (!rq.run || rq.run->config.snr_weighted || rq.run->config.pooled)
                                   : rq.loss == "snr";
  if (snr) po.weight_model = rq.run ? rq.run->neutral_params : fixed_row;
  ParticleParams params;
  std::vector<float> by_cache;  // latent points in cache order
  int G = int(rq.fixed.size());
  if (rq.run) {
    const TrainedModel& m = *rq.run;
    const int d = m.config.latent;
    G = int(m.neutral_params.size() / 5);
    if (rq.latent.empty()) {
      std::vector<float> score;
      embed_cache(m, cx, cache, rq.checkpoint, rq.features, by_cache, score, po.batch);
    } else {
      by_cache.resize(cache.count() * size_t(d));
      for (size_t i = 0; i < cache.count(); ++i)
        std::copy_n(rq.latent.begin() + cache.particle(i).source_row * d, d, by_cache.begin() + i * d);
    }
    params = [&m, &cx, &by_cache, d](const size_t* index, int n, float* rows) {
      std::vector<float> z(size_t(n) * d);
      for (int i = 0; i < n; ++i) std::copy_n(by_cache.begin() + index[i] * d, d, z.begin() + size_t(i) * d);
      const std::vector<float> p = decode_points(m, cx, z, n);
      std::copy(p.begin(), p.end(), rows);
    };
  } else {
    params = [&fixed_row](const size_t*, int n, float* rows) {
      for (int i = 0; i < n; ++i) std::copy(fixed_row.begin(), fixed_row.end(), rows + size_t(i) * fixed_row.size());
    };
  }
  const std::string search = rq.search_text.empty() && po.search_deg + po.search_px > 0
                                 ? io::format_number("%g", po.search_deg) + "," + io::format_number("%g", po.search_px)
                                 : rq.search_text;
  log_info("refine-pose: " + std::to_string(cache.count()) + " particles, " + std::to_string(G) + " Gaussians, bands " +
           (rq.bands_text.empty() ? joined(po.bands) : rq.bands_text) + " Å (minres " +
           io::format_number("%g", po.minres) + " Å), " + (snr ? "SNR-weighted" : "plain FRC") + " score" +
           (search.empty() ? "" : ", local search " + search) + ", on " +
           device_name(cx.device()));
  const PoseRefineResult r = refine_poses(cx, cache, G, params, po);

  io::StarFile star = whole_set_star(set);
  io::StarBlock& t = particle_table(star);
  const int col_angle = t.add_column("rlnCugmmAngleChange"), col_shift = t.add_column("rlnCugmmShiftChange");
  for (size_t i = 0; i < cache.count(); ++i) {
    const size_t row = size_t(cache.particle(i).source_row);
    set_pose_columns(t, row, r.after[i]);
    t.rows[row][size_t(col_angle)] = io::format_number("%.4f", r.angle_change_deg[i]);
    t.rows[row][size_t(col_shift)] = io::format_number("%.4f", r.shift_change_a[i]);
  }
  io::write_star(out, star);
  io::Plot plot;
  std::vector<double> gain(cache.count());
  for (size_t i = 0; i < gain.size(); ++i) gain[i] = double(r.score_after[i]) - r.score_before[i];
  plot.title("refine-pose: change per particle").xlabel("angular change (degrees)").ylabel("shift change (Å)");
  plot.colorbar_label("score gain (finest band)");
  plot.add_colored_scatter("", r.angle_change_deg, r.shift_change_a, gain);
  plot.write(png);
  return in_file_order(r, cache);
}

}  // namespace cugmm
