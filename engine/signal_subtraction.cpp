#include "engine/signal_subtraction.h"

#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <string_view>

#include "core/error.h"
#include "core/log.h"
#include "engine/model_params.h"
#include "engine/preprocess.h"
#include "engine/projector.h"

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
  void render(const ParticleView* views, size_t n, cfloat* out) {
    const size_t half = size_t(band_.box) * (band_.box / 2 + 1);
    planes_.resize(n * half);
    ProjectionBatch in;
    in.count = int(n);
    in.params = params_.data();
    in.params_stride = 0;
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

}  // namespace

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
  CUGMM_REQUIRE(source.copies() == 1, "signal subtraction works on the cached particles, before any expansion");
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
  const ParticleBatcher views_of(source, band, spec.ctf);
  BandRenderer whole(cx, band, full), rest(cx, band, model_subset(full, outside));
  std::vector<ParticleView> views(kChunk);
  std::vector<cfloat> model(kChunk * nb);

  // Per-ring scale of the whole model's projection to the data (least squares over sampled particles).
  const size_t ns = std::min(n, kScaleParticles);
  std::vector<double> num(size_t(band.num_rings()), 0.0), den(size_t(band.num_rings()), 0.0);
  Progress progress("signal subtraction", ns + n);
  for (size_t first = 0; first < ns; first += kChunk) {
    const size_t m = std::min(kChunk, ns - first);
    std::vector<size_t> idx(m);
    for (size_t i = 0; i < m; ++i) idx[i] = (first + i) * n / ns;  // spread over the whole set
    for (size_t i = 0; i < m; ++i) views[i] = views_of.view(idx[i]);
    whole.render(views.data(), m, model.data());
    for (size_t i = 0; i < m; ++i) {
      const cfloat* d = source.coefficients(idx[i]);
      const cfloat* mm = model.data() + i * nb;
      for (size_t k = 0; k < nb; ++k) {
        num[band.ring[k]] += band.weight[k] * (double(mm[k].real()) * d[k].real() + double(mm[k].imag()) * d[k].imag());
        den[band.ring[k]] += band.weight[k] * std::norm(std::complex<double>(mm[k]));
      }
    }
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
          for (size_t i = 0; i < mc; ++i) views[i] = views_of.view(first + c0 + i);
          rest.render(views.data(), mc, model.data());
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
  log_info("signal subtraction: " + std::to_string(n_out) + " Gaussians outside the mask subtracted from " +
           std::to_string(n) + " particles into " + out);
  return ParticleCache(out);
}

}  // namespace cugmm
