#include "engine/signal_subtraction.h"

#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <unordered_map>
#include <string_view>

#include "core/error.h"
#include "core/log.h"
#include "engine/model_params.h"
#include "engine/particle_poses.h"
#include "engine/preprocess.h"
#include "engine/projector.h"
#include "engine/train_outputs.h"
#include "engine/trainer.h"
#include "io/star.h"

namespace fs = std::filesystem;

namespace cugmm {

namespace {

// A key of some bytes (std::hash: the same within one build, which is all a cache key needs).
std::string key_of(const void* p, size_t n) {
  return std::to_string(std::hash<std::string_view>{}(std::string_view(static_cast<const char*>(p), n)));
}

// Band coefficients of `model` projected with the views of particles first..first+n-1 (times their CTF).
class BandRenderer {
 public:
  BandRenderer(Context& cx, const FourierBand& band, const io::GaussianModel& model)
      : band_(band), params_(params_from_model(model)),
        projector_(make_projector(cx, band, int(model.size()))) {}
  // rows: n x 5G parameters, one model per particle; null: the renderer's own model for every particle.
  void render(const ParticleView* views, size_t n, cfloat* out, const float* rows = nullptr) {
    const size_t half = size_t(band_.box) * (band_.box / 2 + 1);
    planes_.resize(n * half);
    ProjectionBatch in;
    in.count = int(n);
    in.params = rows ? rows : params_.data();
    in.params_stride = rows ? params_.size() : 0;
    in.views = views;
    projector_->render_host(in, planes_.data());
    for (size_t i = 0; i < n; ++i) band_gather(band_, planes_.data() + i * half, out + i * band_.size());
  }

 private:
  const FourierBand& band_;
  std::vector<float> params_;
  std::unique_ptr<Projector> projector_;
  std::vector<cfloat> planes_;
};

constexpr size_t kChunk = 256;

// The Gaussians j with keep[j] of n parameter rows (5 arrays of G each) as rows of 5 G' (model_subset's order).
void subset_rows(const float* rows, size_t n, const std::vector<char>& keep, float* out) {
  const size_t G = keep.size();
  size_t kept = 0;
  for (char c : keep) kept += size_t(c != 0);
  for (size_t i = 0; i < n; ++i)
    for (size_t f = 0; f < 5; ++f) {
      const float* src = rows + i * 5 * G + f * G;
      float* dst = out + i * 5 * kept + f * kept;
      for (size_t j = 0; j < G; ++j)
        if (keep[j]) *dst++ = src[j];
    }
}

std::string stamp_of(const std::string& path) {
  std::error_code ec;
  const auto t = fs::last_write_time(path, ec).time_since_epoch().count();
  return std::to_string(fs::file_size(path, ec)) + ":" + std::to_string(t);
}

}  // namespace

void use_decoded_models(SubtractionSpec& spec, Context& cx, const std::string& run, const io::ParticleSet& set,
                        const std::string& group, size_t copies, const WorkingGrid& grid,
                        const io::GaussianModel& full) {
  const std::string ckpt = (fs::path(run) / "model.ckpt").string(), latent_path = (fs::path(run) / "latent.txt").string(),
                    star_path = (fs::path(run) / "particles.star").string(), json_path = (fs::path(run) / "run.json").string();
  for (const std::string& f : {ckpt, latent_path, star_path, json_path})
    if (!fs::is_regular_file(f))
      throw InputError(f, "", "--subtract decoded: not there (RUN must be a finished `cugmm train` run directory)");
  {
    std::ifstream in(json_path);
    const nlohmann::json rj = nlohmann::json::parse(in, nullptr, false);
    if (rj.is_object() && rj.contains("focus") && rj["focus"].value("subtract", "none") != "none")
      throw InputError(json_path, "", "--subtract decoded: a focused run (--focus-mask with subtraction): its decoder "
                                      "describes only its region, not the whole model");
  }
  auto tm = std::make_shared<TrainedModel>(load_trained(ckpt, cx));
  const io::GaussianModel& nm = tm->neutral;
  if (nm.size() != full.size())
    throw InputError(ckpt, "", "--subtract decoded: its decoder makes " + std::to_string(nm.size()) +
                                   " Gaussians; the model has " + std::to_string(full.size()));
  if (nm.box_size != full.box_size || std::abs(nm.pixel_size - full.pixel_size) > 1e-3 * full.pixel_size)
    throw InputError(ckpt, "", "--subtract decoded: its model is for a box of " + std::to_string(nm.box_size) + " x " +
                                   std::to_string(nm.pixel_size) + " Å; the model's is " + std::to_string(full.box_size) +
                                   " x " + std::to_string(full.pixel_size) + " Å");
  for (size_t j = 0; j < full.size(); ++j) {
    const double d = std::hypot(nm.x[j] - full.x[j], nm.y[j] - full.y[j], nm.z[j] - full.z[j]);
    if (d > 1e-3 * full.pixel_size)
      throw InputError(ckpt, "", "--subtract decoded: its neutral model is not the model given (Gaussian " +
                                     std::to_string(j) + " is " + std::to_string(d) + " Å away)");
  }
  if (tm->cache_box != grid.box || std::abs(tm->cache_pixel - grid.pixel) > 1e-3 * grid.pixel)
    throw InputError(ckpt, "", "--subtract decoded: trained on a grid of " + std::to_string(tm->cache_box) + " x " +
                                   std::to_string(tm->cache_pixel) + " Å; these particles are on " +
                                   std::to_string(grid.box) + " x " + std::to_string(grid.pixel) + " Å");
  if (tm->config.symmetry != group)
    throw InputError(ckpt, "", "--subtract decoded: trained with --sym " + tm->config.symmetry + "; this run uses --sym " +
                                   group + " (each copy needs its own latent point: train RUN the same way)");
  // RUN's latent points by (image, copy), through its particles.star (same rows as latent.txt).
  const int d = tm->config.latent;
  const std::vector<float> points = read_latent_txt(latent_path, d);
  const io::StarFile star = io::read_star(star_path);
  const io::StarBlock* table = star.find("particles");
  if (!table) throw InputError(star_path, "", "--subtract decoded: no data_particles table");
  if (table->rows.size() * size_t(d) != points.size())
    throw InputError(latent_path, "", "--subtract decoded: holds " + std::to_string(points.size() / size_t(d)) +
                                          " latent points; " + star_path + " has " + std::to_string(table->rows.size()) +
                                          " rows");
  const int name_col = table->require_column("rlnImageName", star_path);
  const int copy_col = copies > 1 ? table->require_column("rlnCugmmSymmetryCopy", star_path) : -1;
  std::unordered_map<std::string, size_t> row_of;
  for (size_t r = 0; r < table->rows.size(); ++r) {
    const std::string key = table->rows[r][size_t(name_col)] + (copy_col >= 0 ? "#" + table->rows[r][size_t(copy_col)] : "");
    if (!row_of.emplace(key, r).second)
      throw InputError(star_path, "row " + std::to_string(r + 1), "--subtract decoded: image " + key + " appears twice");
  }
  std::unordered_map<std::string, size_t> mine;
  const std::vector<std::string> names = image_names(set, set.source, mine);
  // z by output row: particle row x copies + copy.
  const size_t rows = names.size() * copies;
  auto z = std::make_shared<std::vector<float>>(rows * size_t(d));
  for (size_t r = 0; r < rows; ++r) {
    const size_t src = r / copies;
    const std::string key = names[src] + (copy_col >= 0 ? "#" + std::to_string(r % copies + 1) : "");
    auto it = row_of.find(key);
    if (it == row_of.end())
      throw InputError(set.source, "row " + std::to_string(src + 1),
                       "--subtract decoded: image " + key + " has no latent point in " + star_path + " (" +
                           std::to_string(table->rows.size()) + " rows there, " + std::to_string(rows) +
                           " here): RUN was trained on other particles");
    std::copy_n(points.begin() + std::ptrdiff_t(it->second * size_t(d)), d, z->begin() + std::ptrdiff_t(r * size_t(d)));
  }
  spec.decoded = [tm, z, d, &cx](const int64_t* idx, size_t n, float* out) {
    std::vector<float> zi(n * size_t(d));
    for (size_t i = 0; i < n; ++i) std::copy_n(z->begin() + std::ptrdiff_t(size_t(idx[i]) * size_t(d)), d, zi.begin() + std::ptrdiff_t(i * size_t(d)));
    const std::vector<float> params = decode_points(*tm, cx, zi, int(n));
    std::copy(params.begin(), params.end(), out);
  };
  spec.decoded_from = {{"run", fs::absolute(run).string()}, {"checkpoint", stamp_of(ckpt)},
                       {"latent", key_of(z->data(), z->size() * sizeof(float))}};
}

io::GaussianModel focused_model(const io::GaussianModel& full, const SubtractionSpec& spec) {
  io::GaussianModel m = model_subset(full, spec.inside);
  if (spec.recentre)
    for (size_t j = 0; j < m.size(); ++j) {
      m.x[j] -= float(spec.centre.x);
      m.y[j] -= float(spec.centre.y);
      m.z[j] -= float(spec.centre.z);
    }
  return m;
}

ParticleCache subtracted_cache(Context& cx, const ParticleCache& source, const io::GaussianModel& full,
                               const SubtractionSpec& spec, const std::string& out, nlohmann::json& report) {
  CUGMM_REQUIRE(!source.per_copy(), "signal subtraction works on a cache of the particle file");
  CUGMM_REQUIRE(spec.inside.size() == full.size(), "the region has one flag per Gaussian");
  std::vector<char> outside(full.size());
  for (size_t j = 0; j < full.size(); ++j) outside[j] = !spec.inside[j];
  size_t n_out = 0;
  for (char c : outside) n_out += size_t(c);
  if (n_out == 0) throw Error("--focus-mask holds every Gaussian of the model: there is nothing to subtract");
  if (n_out == full.size()) throw Error("--focus-mask holds no Gaussian of the model");
  const std::vector<float> row = params_from_model(full);
  std::error_code ec;
  const nlohmann::json derivation = {
      {"kind", "signal subtraction"},
      {"source", fs::absolute(source.path()).string()},
      {"source_bytes", uint64_t(fs::file_size(source.path(), ec))},
      {"source_header", key_of(source.header_json().data(), source.header_json().size())},
      {"model", key_of(row.data(), row.size() * sizeof(float))},
      {"inside", key_of(spec.inside.data(), spec.inside.size())},
      {"ctf", ctf_choice_name(spec.ctf)},
      {"recentre", spec.recentre},
      {"centre", {spec.centre.x, spec.centre.y, spec.centre.z}},
      {"symmetry", source.symmetry()},
      {"models", spec.decoded ? spec.decoded_from : nlohmann::json("neutral")},
      {"scale_particles", kScaleParticles}};
  report = {{"cache", out}, {"subtracted_gaussians", n_out}, {"kept_gaussians", full.size() - n_out},
            {"recentre", spec.recentre}, {"centre_A", {spec.centre.x, spec.centre.y, spec.centre.z}}};
  if (fs::exists(out)) {
    try {
      ParticleCache c(out);
      if (c.derivation() == derivation && c.first_damaged_block() < 0 && c.count() == source.count()) {
        log_info("signal subtraction: reusing " + out);
        report["reused"] = true;
        return c;
      }
    } catch (const std::exception& e) {
      log_info("signal subtraction: remaking " + out + " (" + e.what() + ")");
    }
  }
  const auto t0 = std::chrono::steady_clock::now();
  const FourierBand& band = source.band();
  const size_t n = source.count(), nb = band.size();
  // What the file will take: with --sym one image per copy (the copies cannot share one once subtracted).
  const double bytes = double(n) * (double(nb) * sizeof(cfloat) + sizeof(CachedParticle));
  report["bytes"] = bytes;
  log_info("signal subtraction: " + std::to_string(n) + " images" +
           (source.copies() > 1 ? " (" + std::to_string(source.count() / source.copies()) + " particles x " +
                                      std::to_string(source.copies()) + " " + source.symmetry() + " copies, each subtracted in its own frame)"
                                : std::string()) +
           ", about " + std::to_string(int(std::ceil(bytes / (1 << 20)))) + " MiB at " + out);
  {  // refused before any rendering when it cannot fit (the file is written whole or not at all)
    std::error_code sec;
    const fs::space_info room = fs::space(fs::absolute(out).parent_path(), sec);
    if (!sec && double(room.available) < bytes)
      throw Error("signal subtraction: " + out + " needs about " + std::to_string(int(std::ceil(bytes / (1 << 20)))) +
                  " MiB and its file system has " + std::to_string(room.available >> 20) + " MiB free" +
                  (source.copies() > 1 ? " (one image per symmetry copy)" : ""));
  }
  const ParticleBatcher views_of(source, band, spec.ctf);
  const io::GaussianModel rest_model = model_subset(full, outside);
  BandRenderer whole(cx, band, full), rest(cx, band, rest_model);
  std::vector<ParticleView> views(kChunk);
  std::vector<cfloat> model(kChunk * nb);
  // --subtract decoded: each particle's whole model and its outside, kChunk rows at a time.
  std::vector<float> whole_rows(spec.decoded ? kChunk * row.size() : 0), rest_rows(spec.decoded ? kChunk * 5 * rest_model.size() : 0);
  const std::vector<int64_t> out_rows = output_rows(source);
  std::vector<int64_t> chunk_rows(kChunk);
  auto decode = [&](const size_t* idx, size_t m, bool outside_only) -> const float* {
    if (!spec.decoded) return nullptr;
    for (size_t i = 0; i < m; ++i) chunk_rows[i] = out_rows[idx[i]];
    spec.decoded(chunk_rows.data(), m, whole_rows.data());
    if (!outside_only) return whole_rows.data();
    subset_rows(whole_rows.data(), m, outside, rest_rows.data());
    return rest_rows.data();
  };

  // Per-ring scale of the whole model's projection to the data (least squares over sampled particles).
  const size_t ns = std::min(n, kScaleParticles);
  std::vector<double> num(size_t(band.num_rings()), 0.0), den(size_t(band.num_rings()), 0.0);
  Progress progress("signal subtraction", ns + n);
  for (size_t first = 0; first < ns; first += kChunk) {
    const size_t m = std::min(kChunk, ns - first);
    std::vector<size_t> idx(m);
    for (size_t i = 0; i < m; ++i) idx[i] = (first + i) * n / ns;  // spread over the whole set
    for (size_t i = 0; i < m; ++i) views[i] = views_of.view(idx[i]);
    whole.render(views.data(), m, model.data(), decode(idx.data(), m, false));
    for (size_t i = 0; i < m; ++i)
      accumulate_ring_fit(band, model.data() + i * nb, source.coefficients(idx[i]), num.data(), den.data());
    progress.add(m);
  }
  std::vector<double> scale(num.size(), 0.0);
  for (size_t r = 0; r < scale.size(); ++r) scale[r] = den[r] > 0 ? num[r] / den[r] : 0.0;

  std::vector<CachedParticle> table(n);
  for (size_t i = 0; i < n; ++i) {
    table[i] = source.particle(i);
    if (spec.recentre) {
      table[i].origin_x = 0;
      table[i].origin_y = 0;
    }
  }
  const double to_inv_A = 1.0 / (band.box * band.pixel_size);
  write_derived_cache(
      source, table, derivation,
      [&](size_t first, size_t m, cfloat* dst) {
        for (size_t c0 = 0; c0 < m; c0 += kChunk) {
          const size_t mc = std::min(kChunk, m - c0);
          std::vector<size_t> idx(mc);
          for (size_t i = 0; i < mc; ++i) idx[i] = first + c0 + i;
          for (size_t i = 0; i < mc; ++i) views[i] = views_of.view(idx[i]);
          rest.render(views.data(), mc, model.data(), decode(idx.data(), mc, true));
          for (size_t i = 0; i < mc; ++i) {
            const size_t p = first + c0 + i;
            const cfloat* d = source.coefficients(p);
            const cfloat* mo = model.data() + i * nb;
            cfloat* o = dst + (c0 + i) * nb;
            double tx = 0, ty = 0;
            if (spec.recentre) {  // t = o - (A m)_xy: the region's centre moves to the box centre
              const CachedParticle& rec = source.particle(p);
              const Vec3<double> am = mul(rec.rotation(), spec.centre);
              tx = rec.origin_x - am.x;
              ty = rec.origin_y - am.y;
            }
            for (size_t k = 0; k < nb; ++k) {
              cfloat v = d[k] - float(scale[band.ring[k]]) * mo[k];
              if (spec.recentre) {
                const double ph = -2 * kPi * (band.kx[k] * tx + band.ky[k] * ty) * to_inv_A;
                v *= cfloat(float(std::cos(ph)), float(std::sin(ph)));
              }
              o[k] = v;
            }
          }
          progress.add(mc);
        }
      },
      out);
  progress.finish();
  report["ring_scale"] = scale;
  report["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  report["reused"] = false;
  log_info("signal subtraction: " + std::to_string(n_out) + " Gaussians outside the mask (" +
           (spec.decoded ? "each particle's decoded model" : "the neutral model") + ") subtracted from " +
           std::to_string(n) + " images into " + out);
  return ParticleCache(out);
}

}  // namespace cugmm
