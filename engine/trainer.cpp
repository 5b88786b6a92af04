#include "engine/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <sstream>

#include "core/error.h"
#include "core/log.h"
#include "core/memory.h"
#include "core/threads.h"
#include "engine/data_parallel.h"
#include "engine/model_params.h"
#include "engine/noise_features.h"
#include "engine/pose_refine.h"
#include "engine/ring_weights.h"
#include "engine/train_ops.h"
#include "engine/training_score.h"
#include "io/json_fields.h"
#include "kernels/gaussian_projection.h"
#include "kernels/philox.h"
#include "nn/checkpoint.h"
#include "nn/ops.h"

namespace fs = std::filesystem;

namespace cugmm {

// ---- configuration -------------------------------------------------------------------------------------

nlohmann::json TrainConfig::to_json() const {
  return {{"latent", latent}, {"hidden", hidden}, {"depth", depth}, {"leaky", leaky}, {"dropout", dropout},
          {"lr", lr}, {"lr_half_life", lr_half_life}, {"l2", l2}, {"l2_auto", l2_auto}, {"noise", noise}, {"reg_width", reg_width}, {"reg_mass", reg_mass},
          {"bf16_moments", bf16_moments}, {"epochs", epochs}, {"batch", batch}, {"minres", minres},
          {"maxres", maxres}, {"seed", seed}, {"val_fraction", val_fraction}, {"move_positions", move_positions},
          {"move_amplitudes", move_amplitudes}, {"move_widths", move_widths}, {"ctf", ctf_choice_name(ctf)},
          {"feature_precision", feature_precision_name(feature_precision)}, {"loss_every", loss_every},
          {"explode", explode}, {"latent_reg", latent_reg}, {"symmetry", symmetry},
          {"snr_weighted", snr_weighted}, {"pooled", pooled}, {"radial_gain", radial_gain}, {"align_shifts", align_shifts}, {"rigid_free", rigid_free}, {"coarse_epochs", coarse_epochs}, {"positions_first", positions_first}, {"position_unit", position_unit},
          {"coarse_res", coarse_res}, {"feature_pca", feature_pca}, {"feature_pca_whiten", feature_pca_whiten},
          {"feature_noise_whiten", feature_noise_whiten}, {"feature_noise_solver", feature_noise_solver},
          {"feature_view_nuisance", feature_view_nuisance},
          {"feature_row_rms", feature_row_rms},
          {"input_dropout", input_dropout}, {"feature_split", feature_split},
          {"encoder_reads_positions", encoder_reads_positions}, {"encoder_reads_amplitudes", encoder_reads_amplitudes},
          {"encoder_reads_widths", encoder_reads_widths}, {"warm_start", warm_start},
          {"frozen_gaussians", std::count(movable.begin(), movable.end(), 0)}};
}

TrainConfig TrainConfig::from_json(const nlohmann::json& j) {
  TrainConfig c;
  c.latent = j.at("latent"); c.hidden = j.at("hidden"); c.depth = j.at("depth"); c.leaky = j.at("leaky");
  c.dropout = j.at("dropout"); c.lr = j.at("lr"); c.l2 = j.at("l2"); c.noise = j.at("noise");
  c.reg_width = j.at("reg_width"); c.reg_mass = j.at("reg_mass"); c.bf16_moments = j.at("bf16_moments");
  c.epochs = j.at("epochs"); c.batch = j.at("batch"); c.minres = j.at("minres"); c.maxres = j.at("maxres");
  c.seed = j.at("seed"); c.val_fraction = j.at("val_fraction"); c.move_positions = j.at("move_positions");
  c.move_amplitudes = j.at("move_amplitudes"); c.move_widths = j.at("move_widths");
  c.ctf = parse_ctf_choice(j.at("ctf")); c.feature_precision = parse_feature_precision(j.at("feature_precision"));
  c.loss_every = j.at("loss_every"); c.explode = j.at("explode");
  c.latent_reg = j.value("latent_reg", 0.f);
  c.lr_half_life = j.value("lr_half_life", 0.f);  // runs before the decay: constant
  c.l2_auto = j.value("l2_auto", false);          // runs before it: l2 as given
  c.symmetry = j.value("symmetry", std::string("C1"));
  c.snr_weighted = j.value("snr_weighted", false);  // runs before issue 14: the plain FRC
  c.pooled = j.value("pooled", false);              // runs before the pooled score
  c.radial_gain = j.value("radial_gain", false);    // runs before the radial gain
  c.align_shifts = j.value("align_shifts", false);  // runs before the shift alignment
  c.coarse_epochs = j.value("coarse_epochs", 0);
  c.coarse_res = j.value("coarse_res", 12.0);
  c.positions_first = j.value("positions_first", 0);  // runs before it: every kind from the start
  c.position_unit = j.value("position_unit", 0.0);  // runs before it: pixels
  c.rigid_free = j.value("rigid_free", false);
  c.feature_pca = j.value("feature_pca", 0);  // runs before the encoder's input transform
  c.feature_pca_whiten = j.value("feature_pca_whiten", false);
  c.feature_noise_whiten = j.value("feature_noise_whiten", false);
  c.feature_noise_solver = j.value("feature_noise_solver", std::string("auto"));  // fitting only: resume reads the basis
  c.feature_view_nuisance = j.value("feature_view_nuisance", false);  // runs before round 9
  c.feature_row_rms = j.value("feature_row_rms", false);
  c.input_dropout = j.value("input_dropout", 0.f);
  c.feature_split = j.value("feature_split", false);  // runs before the split
  c.encoder_reads_positions = j.value("encoder_reads_positions", true);  // runs before --encoder-reads
  c.encoder_reads_amplitudes = j.value("encoder_reads_amplitudes", true);
  c.encoder_reads_widths = j.value("encoder_reads_widths", true);
  c.warm_start = j.value("warm_start", 0);  // runs before the warm start
  return c;
}

TrainConfig paper_recipe() {
  TrainConfig c;
  c.hidden = 512; c.depth = 3; c.leaky = false; c.dropout = 0.3f;
  c.lr = 1e-4f; c.lr_half_life = 0; c.l2 = 1e-3f; c.l2_auto = false; c.noise = 0.1f; c.latent_reg = 0; c.reg_width = 1; c.reg_mass = 1;
  c.snr_weighted = false; c.pooled = false; c.align_shifts = false; c.coarse_epochs = 0; c.rigid_free = false; c.positions_first = 0;
  c.position_unit = 0;
  c.move_positions = c.move_amplitudes = c.move_widths = true;
  c.feature_pca = 0; c.feature_noise_whiten = c.feature_view_nuisance = false;  // the 5G features themselves
  return c;
}

float scheduled_lr(const TrainConfig& c, double epochs_done) {
  if (c.lr_half_life <= 0) return c.lr;
  return float(double(c.lr) * std::exp2(-std::max(epochs_done, 0.0) / double(c.lr_half_life)));
}

std::array<bool, 3> parse_kind_list(const std::string& list, const std::string& option) {
  std::array<bool, 3> k = {false, false, false};
  std::stringstream ss(list);
  std::string item;
  bool any = false;
  while (std::getline(ss, item, ',')) {
    if (item == "positions") k[0] = true;
    else if (item == "amplitudes") k[1] = true;
    else if (item == "widths") k[2] = true;
    else throw Error(option + ": unknown item '" + quote_value(item) + "' (positions, amplitudes, widths)");
    any = true;
  }
  if (!any) throw Error(option + " names nothing (positions, amplitudes, widths)");
  return k;
}

void parse_move_list(const std::string& list, TrainConfig& c) {
  const std::array<bool, 3> k = parse_kind_list(list, "--move");
  c.move_positions = k[0];
  c.move_amplitudes = k[1];
  c.move_widths = k[2];
}

std::vector<char> parse_gaussian_list(const std::string& list, int G) {
  std::vector<char> m(size_t(G), 0);
  std::stringstream ss(list);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item.empty()) continue;
    long lo, hi;
    char* end;
    const size_t dash = item.find('-', 1);
    lo = std::strtol(item.c_str(), &end, 10);
    bool ok = end != item.c_str() && (dash == std::string::npos ? *end == 0 : end == item.c_str() + dash);
    hi = lo;
    if (ok && dash != std::string::npos) {
      const char* s = item.c_str() + dash + 1;
      hi = std::strtol(s, &end, 10);
      ok = end != s && *end == 0;
    }
    if (!ok || lo < 0 || hi < lo || hi >= G)
      throw Error("--gaussians: '" + quote_value(item) + "' is not an index or range within 0.." +
                  std::to_string(G - 1));
    for (long i = lo; i <= hi; ++i) m[size_t(i)] = 1;
  }
  if (std::count(m.begin(), m.end(), 1) == 0) throw Error("--gaussians selects no Gaussian");
  return m;
}

nn::Arch encoder_arch(const TrainConfig& c, int G) {
  nn::Arch a;
  a.in = c.feature_pca > 0 ? c.feature_pca : 5 * G;  // engine/feature_transform.h
  if (c.input_dropout > 0) a.layers.push_back(nn::dropout(c.input_dropout));
  for (int l = 0; l < c.depth; ++l) {
    a.layers.push_back(nn::dense(c.hidden, true, c.l2));
    a.layers.push_back(c.leaky ? nn::leaky_relu() : nn::relu());
    if (c.dropout > 0) a.layers.push_back(nn::dropout(c.dropout));
  }
  a.layers.push_back(nn::batchnorm());  // before the output layer (the paper's recipe)
  a.layers.push_back(nn::dense(c.latent, true, c.l2));
  return a;
}

nn::Arch decoder_arch(const TrainConfig& c, int G) {
  nn::Arch a;
  a.in = c.latent;
  a.residual = true;  // bias-free, Δ(0) = 0 exactly (nn/sequential.h)
  for (int l = 0; l < c.depth; ++l) {
    a.layers.push_back(nn::dense(c.hidden, false, c.l2));
    a.layers.push_back(c.leaky ? nn::leaky_relu() : nn::relu());
  }
  a.layers.push_back(nn::dense(5 * G, false, c.l2));
  return a;
}

// ---- memory plan ---------------------------------------------------------------------------------------

namespace {

struct NetSize {
  size_t params = 0, state = 0, act_floats_per_row = 0, widest = 0;
};
NetSize net_size(const nn::Arch& a) {
  NetSize s;
  int w = a.in;
  s.widest = size_t(w);
  for (const nn::LayerSpec& l : a.layers) {
    if (l.kind == nn::LayerKind::dense) {
      s.params += size_t(w) * l.out + (l.bias ? l.out : 0);
      w = l.out;
    } else if (l.kind == nn::LayerKind::batchnorm) {
      s.params += 2 * size_t(w);
      s.state += 2 * size_t(w);
    }
    s.act_floats_per_row += size_t(w);
    s.widest = std::max(s.widest, size_t(w));
  }
  return s;
}

}  // namespace

std::string MemoryPlan::text() const {
  std::ostringstream o;
  for (const Item& i : items) o << "  " << i.what << ": " << format_bytes(i.bytes) << "\n";
  o << "  total: " << format_bytes(total) << "\n";
  o << "  while a checkpoint is written or read (streamed), host memory: +" << format_bytes(checkpoint_host) << "\n";
  if (transform_host > 0)
    o << "  while the noise-whitened input is fitted (" << transform_solver << " solver), host memory: +"
      << format_bytes(transform_host) << "\n";
  o << "  feature file (on disk, memory-mapped, streamed): " << format_bytes(feature_file);
  return o.str();
}

MemoryPlan plan_memory(const TrainConfig& c, int G, int box, size_t band_size, size_t particles) {
  const NetSize e = net_size(encoder_arch(c, G)), d = net_size(decoder_arch(c, G));
  const size_t W = 5 * size_t(G), B = size_t(c.batch), f = sizeof(float);
  MemoryPlan p;
  p.items.push_back({"encoder weights + gradients", checked_mul(2 * e.params + e.state, f, "encoder")});
  p.items.push_back({"decoder weights + gradients", checked_mul(2 * d.params + W, f, "decoder")});
  p.items.push_back({std::string("Adam moments (") + (c.bf16_moments ? "bf16" : "fp32") + ")",
                     checked_mul(e.params + d.params, c.bf16_moments ? 4 : 8, "Adam")});
  p.items.push_back({"activations (both networks)",
                     B * f * (e.act_floats_per_row + d.act_floats_per_row + 2 * (e.widest + d.widest))});
  // the encoder's input (the features, or their components), decoder output as parameters, the score gradient,
  // the cotangent; the data and views
  const size_t in_width = c.feature_pca > 0 ? size_t(c.feature_pca) : W;
  p.items.push_back({"batch (encoder input, parameters, gradients, data)",
                     B * ((3 * W + in_width) * f + band_size * 8 + sizeof(ParticleView) + 64) + 2 * W * f});
  if (c.feature_pca > 0)  // encoder_input_table: host memory (counted here on CUDA too, a small overstatement)
    p.items.push_back({"input components, every particle (host)", particles * size_t(c.feature_pca) * f});
  // The splat + FFT projector: a half-plane and an image per particle of a chunk, plus per-Gaussian terms.
  p.items.push_back({"projector workspace", B * (size_t(box) * (box / 2 + 1) * 8 * 2 + W * f)});
  for (const auto& i : p.items) p.total += i.bytes;
  // Checkpoints stream (nn/checkpoint.h): the networks and moments are written from their own memory (CPU) or
  // through one staging chunk (CUDA), so only the copied small arrays (neutral, normalisation, mask) and at
  // most one chunk are extra, whatever G is.
  p.checkpoint_host = 4 * W * f + std::min(nn::Checkpoint::kChunkBytes, std::max(e.params, d.params) * f);
  if (c.feature_noise_whiten && c.feature_pca > 0) {
    const NoiseSolver s = choose_noise_solver(parse_noise_solver(c.feature_noise_solver), W);
    // The view-dependent rows (view_neighbour_means: they and a copy of their features while they are built)
    // enter the solver's low-rank part beside the noise rows.
    const size_t views = c.feature_view_nuisance ? view_row_count(W, particles) : 0;
    p.transform_host = noise_solver_bytes(s, W, noise_image_count(W) + views, c.feature_pca) + 2 * views * W * 4;
    p.transform_solver = noise_solver_name(s);
  }
  p.feature_file = particles * W * (c.feature_precision == FeaturePrecision::fp16 ? 2 : 4);
  return p;
}

void require_memory(const MemoryPlan& plan, Device d) {
  size_t avail = d == Device::cuda ? train_ops::device_free_bytes() : available_host_memory();
  // Keep a reserve for the libraries' own state (cuBLAS/cuFFT handles, FFTW plans, the page cache).
  const size_t reserve = size_t(256) << 20;
  const size_t host = std::max(plan.checkpoint_host, plan.transform_host);  // never at once
  const size_t need = plan.total + (d == Device::cpu ? host : 0);
  if (d == Device::cuda && plan.checkpoint_host + reserve > available_host_memory())
    throw Error("writing a checkpoint needs " + format_bytes(plan.checkpoint_host) + " of host memory, " +
                format_bytes(available_host_memory()) + " are available");
  if (d == Device::cuda && plan.transform_host + reserve > available_host_memory())
    throw Error("fitting the noise-whitened input (" + plan.transform_solver + " solver) needs " +
                format_bytes(plan.transform_host) + " of host memory, " + format_bytes(available_host_memory()) +
                " are available: use a smaller --feature-pca or fewer Gaussians");
  if (need + reserve <= avail) return;
  throw Error("training needs " + format_bytes(need) + " of " +
              (d == Device::cuda ? "GPU memory" : "memory") + ", " + format_bytes(avail) +
              " are available:\n" + plan.text() +
              "\nTry a smaller --batch, --bf16-moments (halves the Adam state), fewer Gaussians in the model, "
              "or a smaller --box.");
}

bool is_validation(size_t index, double fraction) {
  return fraction > 0 && philox_uniform(0x76616c6964ull, 0, index) < float(fraction);
}

StepConsts step_consts(const TrainConfig& c, const std::vector<float>& neutral, int box, double pixel) {
  StepConsts k;
  k.G = int(neutral.size() / 5);
  double wsum = 0, msum = 0;
  for (int j = 0; j < k.G; ++j) {
    msum += neutral[3 * size_t(k.G) + j];
    wsum += neutral[4 * size_t(k.G) + j];
  }
  k.w0 = float(wsum / k.G);
  k.m0 = float(msum);
  // Output units: a decoder output of 1 moves a centre by one pixel, an amplitude by the mean amplitude
  // (a Gaussian vanishes at -1), a width by a quarter of the mean width, so Adam's step sizes (which are
  // per weight, not per output unit) suit all three kinds.
  k.scale[0] = k.scale[1] = k.scale[2] = float(c.position_unit > 0 ? c.position_unit : pixel);
  k.scale[3] = float(msum / k.G);
  k.scale[4] = float(0.25 * k.w0);
  // Inside the projector's bounds (gaussian_in_bounds) with a small margin for rounding.
  k.width_lo = float(kMinWidthPx * pixel * 1.001);
  k.width_hi = float(kMaxWidthBoxFraction * box * pixel * 0.999);
  k.reg_width = c.reg_width;
  k.reg_mass = c.reg_mass;
  k.rigid_free = c.rigid_free && c.move_positions && c.movable.empty();
  if (k.rigid_free) {
    double cm[3] = {0, 0, 0}, in[9] = {0, 0, 0, 0, 0, 0, 0, 0, 0};
    for (int j = 0; j < k.G; ++j)
      for (int a = 0; a < 3; ++a) cm[a] += neutral[3 * size_t(k.G) + j] * neutral[size_t(a) * k.G + j] / msum;
    for (int j = 0; j < k.G; ++j) {
      const double m = neutral[3 * size_t(k.G) + j];
      double r[3];
      for (int a = 0; a < 3; ++a) r[a] = neutral[size_t(a) * k.G + j] - cm[a];
      const double rr = r[0] * r[0] + r[1] * r[1] + r[2] * r[2];
      for (int a = 0; a < 3; ++a)
        for (int b = 0; b < 3; ++b) in[3 * a + b] += m * ((a == b ? rr : 0.0) - r[a] * r[b]);
    }
    // The inverse by cofactors (symmetric, positive definite unless every Gaussian lies on one line).
    const double det = in[0] * (in[4] * in[8] - in[5] * in[7]) - in[1] * (in[3] * in[8] - in[5] * in[6]) +
                       in[2] * (in[3] * in[7] - in[4] * in[6]);
    if (!(std::abs(det) > 0)) throw Error("the neutral model's Gaussians lie on a line: its rigid rotations are undefined");
    const double co[9] = {in[4] * in[8] - in[5] * in[7], in[2] * in[7] - in[1] * in[8], in[1] * in[5] - in[2] * in[4],
                          in[5] * in[6] - in[3] * in[8], in[0] * in[8] - in[2] * in[6], in[2] * in[3] - in[0] * in[5],
                          in[3] * in[7] - in[4] * in[6], in[1] * in[6] - in[0] * in[7], in[0] * in[4] - in[1] * in[3]};
    for (int a = 0; a < 9; ++a) k.inertia_inv[a] = float(co[a] / det);
    for (int a = 0; a < 3; ++a) k.centre[a] = float(cm[a]);
    k.mass = float(msum);
  }
  return k;
}

std::vector<float> column_mask(const TrainConfig& c, int G) {
  std::vector<float> m(5 * size_t(G), 0.f);
  const bool kinds[5] = {c.move_positions, c.move_positions, c.move_positions, c.move_amplitudes, c.move_widths};
  for (int k = 0; k < 5; ++k)
    for (int j = 0; j < G; ++j)
      m[size_t(k) * G + j] = (kinds[k] && (c.movable.empty() || c.movable[size_t(j)])) ? 1.f : 0.f;
  return m;
}

// ---- the networks and the step, shared by training, embedding and decoding -------------------------------

namespace {

// Device buffers of one batch and the calls that fill them.
struct StepBuffers {
  Context& cx;
  int G;
  size_t W;
  StepConsts k;
  Buffer<float> base, mask, feat, z, params, grad, v, score, rowreg;
  Buffer<double> acc;
  Buffer<ParticleView> views;
  Buffer<cfloat> data;
  Buffer<int64_t> index;
  bool row_rms;          // the feature rows scaled to unit RMS as they are loaded (host side)
  bool reads[3];         // the kinds whose columns the encoder reads (the others zeroed as loaded, host side)
  bool all_kinds;
  // The encoder's input: with components (transform.k > 0), rows of this table (encoder_input_table: every
  // particle's scores, host memory, computed once per run); else the feature rows, W wide.
  const std::vector<float>* inputs;
  size_t in_width;

  StepBuffers(Context& c, const StepConsts& consts, const std::vector<float>& neutral, const std::vector<float>& m,
              const FeatureTransform& transform, const std::vector<float>& input_table)
      : cx(c), G(consts.G), W(5 * size_t(consts.G)), k(consts), base(c), mask(c), feat(c), z(c), params(c),
        grad(c), v(c), score(c), rowreg(c), acc(c, 4), views(c), data(c), index(c), row_rms(transform.row_rms),
        inputs(transform.k > 0 ? &input_table : nullptr), in_width(transform.k > 0 ? size_t(transform.k) : W) {
    CUGMM_REQUIRE(!inputs || !inputs->empty(), "training step: components without their input table");
    std::copy(transform.reads, transform.reads + 3, reads);
    all_kinds = reads[0] && reads[1] && reads[2];
    base.upload(neutral);
    mask.upload(m);
    acc.zero();
  }

  ~StepBuffers() {
    for (PinnedSlot& s : slots) {
      if (s.used) {
        try { train_ops::event_wait(s.event); } catch (...) {}
      }
      train_ops::pinned_free(s.host);
      train_ops::event_destroy(s.event);
    }
  }
  StepBuffers(const StepBuffers&) = delete;
  StepBuffers& operator=(const StepBuffers&) = delete;

  void load(const ParticleBatcher& batcher, const FeatureFile& features, const size_t* idx, int n) {
    const size_t nb = batcher.band().size();
    if (cx.cuda()) return load_pinned(batcher, features, idx, n);
    // CPU: the device buffers are host memory, gathered into directly.
    feat.resize(size_t(n) * in_width);
    views.resize(size_t(n));
    data.resize(size_t(n) * nb);
    index.resize(size_t(n));
    fill_inputs(features, idx, n, feat.data());
    batcher.gather(idx, n, views.data(), data.data());
    for (int i = 0; i < n; ++i) index.data()[i] = int64_t(idx[i]);
  }

  // The batch's encoder input rows (n x in_width, host memory).
  void fill_inputs(const FeatureFile& features, const size_t* idx, int n, float* out) const {
    if (inputs) {
      for (int i = 0; i < n; ++i) std::copy_n(inputs->data() + idx[i] * in_width, in_width, out + size_t(i) * in_width);
      return;
    }
    features.gather(idx, n, out);
    if (!all_kinds) zero_unread_kinds(out, size_t(n), W, reads);
    if (row_rms) scale_rows_to_unit_rms(out, size_t(n), W);
  }

  // CUDA: gathered into one of two pinned slots, copied asynchronously; the slot is reused two batches
  // later, once the event after its copies has passed (long before the device reaches the next step).
  void load_pinned(const ParticleBatcher& batcher, const FeatureFile& features, const size_t* idx, int n) {
    const size_t nb = batcher.band().size();
    auto up = [](size_t b) { return (b + 255) / 256 * 256; };
    const size_t fb = size_t(n) * in_width * sizeof(float), vb = size_t(n) * sizeof(ParticleView),
                 db = size_t(n) * nb * sizeof(cfloat), ib = size_t(n) * sizeof(int64_t);
    const size_t total = up(fb) + up(vb) + up(db) + ib;
    PinnedSlot& s = slots[next_slot];
    next_slot ^= 1;
    if (s.used) train_ops::event_wait(s.event);
    if (s.bytes < total) {
      train_ops::pinned_free(s.host);
      s.host = nullptr;
      s.host = train_ops::pinned_alloc(total);
      s.bytes = total;
    }
    if (!s.event) s.event = train_ops::event_create();
    char* h = static_cast<char*>(s.host);
    float* hf = reinterpret_cast<float*>(h);
    ParticleView* hv = reinterpret_cast<ParticleView*>(h + up(fb));
    cfloat* hd = reinterpret_cast<cfloat*>(h + up(fb) + up(vb));
    int64_t* hi = reinterpret_cast<int64_t*>(h + up(fb) + up(vb) + up(db));
    fill_inputs(features, idx, n, hf);
    batcher.gather(idx, n, hv, hd, true);
    for (int i = 0; i < n; ++i) hi[i] = int64_t(idx[i]);
    feat.resize(size_t(n) * in_width);
    views.resize(size_t(n));
    data.resize(size_t(n) * nb);
    index.resize(size_t(n));
    train_ops::copy_to_device_async(cx, feat.data(), hf, fb);
    train_ops::copy_to_device_async(cx, views.data(), hv, vb);
    train_ops::copy_to_device_async(cx, data.data(), hd, db);
    train_ops::copy_to_device_async(cx, index.data(), hi, ib);
    train_ops::event_record(cx, s.event);
    s.used = true;
  }

  struct PinnedSlot {
    void* host = nullptr;
    size_t bytes = 0;
    void* event = nullptr;
    bool used = false;
  };
  PinnedSlot slots[2];
  int next_slot = 0;

  // encoder -> z (+ noise) -> decoder -> parameters and regularisers, for n loaded rows.
  // fixed (n x d, on the device): the decoder's input in place of the encoder's output (auto-decoding).
  void forward(nn::Sequential& enc, nn::Sequential& dec, int n, nn::Mode mode, uint64_t step, float noise,
               uint64_t seed, uint64_t epoch, const float* fixed = nullptr) {
    const float* ze = enc.forward(feat.data(), n, mode, step);
    z_clean = ze;
    z.resize(size_t(n) * enc.out_features());
    train_ops::add_latent_noise(cx, fixed ? fixed : ze, z.data(), index.data(), n, enc.out_features(), noise, seed,
                                epoch);
    const float* raw = dec.forward(z.data(), n, mode, step);
    if (k.rigid_free) {
      rigid.resize(size_t(n) * W);
      train_ops::rigid_project(cx, k, base.data(), raw, rigid.data(), n, false);
      raw = rigid.data();
    }
    params.resize(size_t(n) * W);
    rowreg.resize(size_t(n) * 3);
    train_ops::decode_rows(cx, k, base.data(), raw, params.data(), rowreg.data(), n);
    last_raw = raw;
  }

  void project(Projector& pr, int n, bool with_grad) {
    score.resize(size_t(n));
    if (with_grad) grad.resize(size_t(n) * W);
    training_score(pr, params.data(), W, views.data(), data.data(), n, score.data(), with_grad ? grad.data() : nullptr);
  }

  const float* last_raw = nullptr;
  const float* z_clean = nullptr;  // the encoder's output (before the noise)
  Buffer<float> vz{cx}, rigid{cx}, v_rigid{cx};  // the latent penalty's and the rigid projection's buffers
  Buffer<float> zfix{cx};                        // set_fixed_latent: the batch's latent points

  // The batch's rows of the fixed latent points (n x d, cache order), onto the device.
  const float* load_fixed(const std::vector<float>& fixed, const size_t* idx, int n, int d) {
    if (fixed.empty()) return nullptr;
    std::vector<float> rows(size_t(n) * size_t(d));
    for (int i = 0; i < n; ++i) std::copy_n(fixed.data() + idx[i] * size_t(d), d, rows.data() + size_t(i) * d);
    zfix.upload(rows);
    return zfix.data();
  }
};

std::vector<uint64_t> epoch_order(const std::vector<size_t>& train, uint64_t seed, uint64_t epoch) {
  std::vector<uint64_t> o(train.begin(), train.end());
  for (size_t i = o.size(); i > 1; --i) {
    const uint64_t r = (uint64_t(philox_u32(seed ^ 0x6f72646572ull, epoch, 2 * i)) << 32) |
                       philox_u32(seed ^ 0x6f72646572ull, epoch, 2 * i + 1);
    std::swap(o[i - 1], o[r % i]);
  }
  return o;
}

// Every particle's latent point and score; under a comm each rank embeds its share and all get every row.
void embed_with(Context& cx, nn::Sequential& enc, nn::Sequential& dec, const StepConsts& k,
                const std::vector<float>& neutral, const std::vector<float>& mask, const FeatureTransform& transform,
                const ParticleBatcher& batcher, const FeatureFile& features, const std::vector<float>& ring_weights,
                bool pooled, std::vector<float>& latent, std::vector<float>& score, int batch, Comm* comm) {
  const size_t n = features.count();
  const int d = enc.out_features();
  auto projector = make_training_projector(cx, batcher.band(), ring_weights, k.G, pooled);
  const std::vector<float> inputs = encoder_input_table(features, transform);
  StepBuffers b(cx, k, neutral, mask, transform, inputs);
  latent.assign(n * size_t(d), 0.f);
  score.assign(n, 0.f);
  std::vector<size_t> idx(static_cast<size_t>(batch));
  const auto [from, to] = comm ? rank_share(n, comm->rank(), comm->size()) : std::make_pair(size_t(0), n);
  Progress progress("embed", to - from);
  for (size_t first = from; first < to; first += size_t(batch)) {
    const int m = int(std::min(size_t(batch), to - first));
    for (int i = 0; i < m; ++i) idx[i] = first + i;
    b.load(batcher, features, idx.data(), m);
    b.forward(enc, dec, m, nn::Mode::infer, 0, 0.f, 0, 0);
    b.project(*projector, m, false);
    b.z.download(latent.data() + first * d, size_t(m) * d);
    b.score.download(score.data() + first, size_t(m));
    progress.add(size_t(m));
  }
  cx.synchronize();
  progress.finish();
  if (comm) {
    data_parallel::gather_rows(*comm, latent);
    data_parallel::gather_rows(*comm, score);
  }
}

}  // namespace

// ---- the trainer ---------------------------------------------------------------------------------------

struct Trainer::Impl {
  Context& cx;
  const ParticleCache& cache;
  io::GaussianModel neutral;
  TrainConfig c;
  std::string dir;
  int G;
  FourierBand band;
  std::vector<float> neutral_params, mask, ring_weights;
  std::vector<float> data_scale;  // the pooled score's per-ring data scale (RingWeights::data_scale; empty: none)
  nlohmann::json ring_record;  // what run.json says about the weights
  StepConsts k;
  std::unique_ptr<nn::Sequential> enc, dec;
  std::unique_ptr<nn::Adam> aenc, adec;
  uint64_t step = 0;
  SingleComm single;
  Comm* comm = &single;  // set_comm
  data_parallel::ExchangeMode exchange_mode = data_parallel::ExchangeMode::dense;
  std::unique_ptr<data_parallel::GradientExchange> xenc, xdec;  // with several ranks

  Impl(Context& x, const ParticleCache& ca, const io::GaussianModel& m, const TrainConfig& cfg, const std::string& d)
      : cx(x), cache(ca), neutral(m), c(cfg), dir(d), G(int(m.size())) {}
  std::string feature_fallback;  // dense_whitening_fallback's reason

  void make_networks() {
    enc = std::make_unique<nn::Sequential>(encoder_arch(c, G), cx, c.seed * 2 + 1);
    dec = std::make_unique<nn::Sequential>(decoder_arch(c, G), cx, c.seed * 2 + 2);
    dec->set_base(std::vector<float>(5 * size_t(G), 0.f));  // the neutral model is added in decode_rows
    enc->set_comm(comm);
    dec->set_comm(comm);
    nn::AdamConfig ac;
    ac.lr = c.lr;
    ac.grad_scale = 1.f / float(comm->size());  // the ranks' summed gradients, each 1 / B: the global mean
    ac.moments = c.bf16_moments ? nn::Moments::bf16 : nn::Moments::f32;
    ac.seed = c.seed * 2 + 1;
    ac.name = "encoder";
    aenc = std::make_unique<nn::Adam>(*enc, ac);
    ac.seed = c.seed * 2 + 2;
    ac.name = "decoder";
    adec = std::make_unique<nn::Adam>(*dec, ac);
    if (comm->size() > 1) {  // collective: every rank makes its networks at the same point
      xenc = std::make_unique<data_parallel::GradientExchange>(*comm, *enc, exchange_mode, c.batch);
      xdec = std::make_unique<data_parallel::GradientExchange>(*comm, *dec, exchange_mode, c.batch);
      enc->set_gradient_hook(xenc.get());
      dec->set_gradient_hook(xdec.get());
      if (comm->rank() == 0)
        log_info(std::string("gradient exchange (--exchange ") + data_parallel::exchange_mode_name(exchange_mode) +
                 "):\n  encoder " + xenc->describe() + "\n  decoder " + xdec->describe());
    }
  }
};

void resolve_l2(TrainConfig& c, size_t train_count) {
  if (c.l2_auto && train_count > 0) c.l2 = float(std::min(kL2Max, kL2Particles / double(train_count)));
}

std::string default_input_fallback(TrainConfig& c, int G, size_t train_count) {
  if (c.feature_pca == 0 || c.feature_input_asked) return "";
  const size_t width = 5 * size_t(G), k = size_t(c.feature_pca);
  std::string why;
  if (c.feature_split || !(c.encoder_reads_positions && c.encoder_reads_amplitudes && c.encoder_reads_widths))
    why = std::string(c.feature_split ? "--feature-split" : "--encoder-reads") +
          " works on the 5G feature columns themselves, not on the default noise-whitened components";
  else if (k >= width || k >= train_count)
    why = "the default encoder input's " + std::to_string(k) + " components need more features (5G = " +
          std::to_string(width) + ") and training particles (" + std::to_string(train_count) + ")";
  if (why.empty()) return "";
  c.feature_pca = 0;
  c.feature_noise_whiten = c.feature_view_nuisance = c.feature_pca_whiten = false;
  return why + ": the encoder reads the 5G features themselves (as --feature-pca 0)";
}

void check_warm_start(const TrainConfig& c, bool fixed_latent, const std::string& fallback) {
  if (c.warm_start <= 0) return;
  const std::string opt = "--warm-start " + std::to_string(c.warm_start);
  if (c.warm_start >= c.epochs)
    throw Error(opt + " must be below --epochs " + std::to_string(c.epochs) +
                " (the warm start's epochs come first, then at least one end to end)");
  if (fixed_latent) throw Error(opt + " with --fixed-latent: both fix the latent points; give one");
  if (c.feature_pca <= 0)
    throw Error(opt + " needs an encoder input of components (--feature-pca K, the default 25), not the 5G "
                "features" + (fallback.empty() ? std::string() : " (" + fallback + ")"));
  if (c.latent > c.feature_pca)
    throw Error(opt + " fixes the " + std::to_string(c.latent) + " latent dimensions to the top input components: "
                "--latent " + std::to_string(c.latent) + " must not exceed --feature-pca " +
                std::to_string(c.feature_pca));
}

std::vector<float> warm_start_points(const FeatureFile& features, const FeatureTransform& t,
                                     const std::vector<size_t>& train, int d) {
  const size_t n = features.count();
  std::vector<size_t> all(n);
  for (size_t i = 0; i < n; ++i) all[i] = i;
  std::vector<float> z = component_scores([&](const size_t* index, int m, float* out) { features.gather(index, m, out); },
                                          features.width(), all, t, d);
  for (int k = 0; k < d; ++k) {  // standardised over the training particles, whatever the validation ones hold
    double sum = 0, ss = 0;
    for (size_t i : train) sum += z[i * size_t(d) + size_t(k)];
    const double mean = sum / double(train.size());
    for (size_t i : train) ss += (z[i * size_t(d) + size_t(k)] - mean) * (z[i * size_t(d) + size_t(k)] - mean);
    const double sd = std::sqrt(ss / double(train.size()));
    if (!(sd > 0))
      throw Error("--warm-start: input component " + std::to_string(k + 1) +
                  " is constant over the training particles, so it cannot start a latent dimension");
    for (size_t i = 0; i < n; ++i)
      z[i * size_t(d) + size_t(k)] = float((z[i * size_t(d) + size_t(k)] - mean) * (kWarmStartSd / sd));
  }
  return z;
}

Trainer::Trainer(Context& cx, const ParticleCache& cache, const io::GaussianModel& neutral, const TrainConfig& config,
                 const std::string& run_dir)
    : p_(std::make_unique<Impl>(cx, cache, neutral, config, run_dir)) {
  const int G = int(neutral.size());
  const TrainConfig& c = p_->c;  // default_input_fallback may change it once the training particles are known
  if (G == 0) throw Error("the neutral model has no Gaussians");
  if (!c.movable.empty() && c.movable.size() != size_t(G)) throw Error("the Gaussian selection has the wrong size");
  p_->band = training_band(cache, c.minres, c.maxres);
  p_->neutral_params = params_from_model(neutral);
  p_->k = step_consts(c, p_->neutral_params, cache.box(), cache.pixel_size());
  p_->mask = column_mask(c, G);
  for (int j = 0; j < G; ++j) {
    const float s = p_->neutral_params[4 * size_t(G) + j];
    if (!(s >= p_->k.width_lo && s <= p_->k.width_hi))
      throw Error("Gaussian " + std::to_string(j) + " of the neutral model has width " + std::to_string(s) +
                  " Å, outside what the particles' grid allows (" + std::to_string(p_->k.width_lo) + " to " +
                  std::to_string(p_->k.width_hi) + " Å)");
  }
  // Keyed on the cached particle, so a symmetry expansion's copies of one particle share its split.
  for (size_t i = 0; i < cache.count(); ++i)
    (is_validation(cache.source_index(i), c.val_fraction) ? val_ : train_).push_back(i);
  if (train_.size() < size_t(std::max(c.batch, 2)))
    throw Error(std::to_string(train_.size()) + " training particles (of " + std::to_string(cache.count()) +
                ", --val-fraction " + std::to_string(c.val_fraction) + ") are fewer than one batch (--batch " +
                std::to_string(c.batch) + "): use more particles, a smaller --batch or --val-fraction");
  if (c.val_fraction > 0 && val_.size() < 4)
    throw Error("--val-fraction " + std::to_string(c.val_fraction) + " leaves " + std::to_string(val_.size()) +
                " validation particles of " + std::to_string(cache.count()) +
                " (at least 4 are needed): raise it, or give 0 for no validation");
  resolve_l2(p_->c, train_.size());
  p_->feature_fallback = default_input_fallback(p_->c, G, train_.size());
  if (!p_->feature_fallback.empty()) log_info("train: " + p_->feature_fallback);
  check_warm_start(c, false, p_->feature_fallback);
  if (c.feature_pca > 0 && (size_t(c.feature_pca) >= 5 * size_t(G) || size_t(c.feature_pca) >= train_.size()))
    throw Error("--feature-pca " + std::to_string(c.feature_pca) + " must be below the feature width (5 x " +
                std::to_string(G) + " Gaussians) and the training particles (" + std::to_string(train_.size()) + ")");
  if (c.feature_noise_whiten && parse_noise_solver(c.feature_noise_solver) == NoiseSolver::dense)
    require_dense_noise_width(5 * size_t(G));  // before any work, not after the features
  if (c.feature_pca > 0 && !(c.encoder_reads_positions && c.encoder_reads_amplitudes && c.encoder_reads_widths))
    throw Error("--encoder-reads with --feature-pca is not supported (the components are fitted on every column)");
  if (c.feature_split && c.feature_noise_whiten)
    throw Error("--feature-split with --feature-whiten noise is not supported (the noise features are measured "
                "on every coefficient)");
  plan_ = plan_memory(c, G, cache.box(), p_->band.size(), cache.count());
  batcher_ = std::make_unique<ParticleBatcher>(cache, p_->band, c.ctf);
}

Trainer::~Trainer() = default;

void Trainer::set_comm(Comm& comm, data_parallel::ExchangeMode exchange) {
  p_->comm = &comm;
  p_->exchange_mode = exchange;
  const size_t global = size_t(p_->c.batch) * size_t(comm.size());
  if (train_.size() < global)
    throw Error(std::to_string(train_.size()) + " training particles are fewer than one global batch (" +
                std::to_string(comm.size()) + " ranks x --batch " + std::to_string(p_->c.batch) + ")");
}

std::string Trainer::checkpoint_path() const { return (fs::path(p_->dir) / "model.ckpt").string(); }
std::string Trainer::features_path() const { return (fs::path(p_->dir) / "features.cugmm-features").string(); }

namespace {

// FNV-1a over the bytes of an array of plain values.
template <class T>
uint64_t fnv1a(const std::vector<T>& v) {
  uint64_t h = 1469598103934665603ull;
  const unsigned char* b = reinterpret_cast<const unsigned char*>(v.data());
  for (size_t i = 0; i < v.size() * sizeof(T); ++i) h = (h ^ b[i]) * 1099511628211ull;
  return h;
}

}  // namespace

void Trainer::use_poses(std::vector<ParticlePose> poses) {
  CUGMM_REQUIRE(!features_, "Trainer::use_poses after prepare_features");
  poses_key_ = std::to_string(fnv1a(poses));
  batcher_->set_poses(std::move(poses));
}

void Trainer::set_fixed_latent(std::vector<float> z) {
  const size_t want = p_->cache.count() * size_t(p_->c.latent);
  if (z.size() != want)
    throw Error("the fixed latent points hold " + std::to_string(z.size()) + " values, the run needs " +
                std::to_string(p_->cache.count()) + " particles x " + std::to_string(p_->c.latent) + " dimensions");
  for (float v : z)
    if (!std::isfinite(v)) throw Error("the fixed latent points hold a value that is not finite");
  check_warm_start(p_->c, true);
  fixed_ = std::move(z);
}

nlohmann::json Trainer::feature_key() const {
  const ParticleCache& ca = p_->cache;
  std::error_code ec;
  const uint64_t h = fnv1a(p_->neutral_params);
  nlohmann::json key = {{"count", ca.count()}, {"symmetry", ca.symmetry()}, {"cache", fs::absolute(ca.path()).string()},
          {"cache_bytes", uint64_t(fs::file_size(ca.path(), ec))},
          {"cache_header", std::to_string(std::hash<std::string>{}(ca.header_json()))},
          {"model_fnv", std::to_string(h)}, {"ring_min", p_->band.ring_min}, {"ring_max", p_->band.ring_max},
          {"ctf", ctf_choice_name(p_->c.ctf)}, {"val_fraction", p_->c.val_fraction},
          {"precision", feature_precision_name(p_->c.feature_precision)}, {"ring_weights", p_->ring_weights}, {"data_scale", p_->data_scale},
          {"pooled", p_->c.pooled}};
  if (!poses_key_.empty()) key["poses_fnv"] = poses_key_;
  if (p_->c.feature_split) key["feature_half"] = ParticleBatcher::kHalfEven;
  return key;
}

const std::vector<float>& Trainer::ring_weights() const { return p_->ring_weights; }
const nlohmann::json& Trainer::ring_record() const { return p_->ring_record; }
const TrainConfig& Trainer::config() const { return p_->c; }
const std::string& Trainer::feature_fallback() const { return p_->feature_fallback; }

nlohmann::json Trainer::exchange_record() const {
  if (!p_->xenc) return nullptr;
  auto net = [](const data_parallel::GradientExchange& x) {
    nlohmann::json layers = nlohmann::json::array();
    for (const auto& c : x.choices())
      layers.push_back({{"layer", c.layer}, {"in", c.in}, {"out", c.out}, {"low_rank", c.low_rank},
                        {"dense_bytes", c.dense_bytes}, {"low_rank_bytes", c.low_rank_bytes},
                        {"break_even_batch", c.break_even_batch}, {"dense_s_model", c.dense_seconds},
                        {"low_rank_s_model", c.low_rank_seconds}});
    return layers;
  };
  return {{"mode", data_parallel::exchange_mode_name(p_->exchange_mode)},
          {"link_bytes_per_s", p_->xenc->link_bytes_per_second()}, {"gemm_flops", p_->xenc->gemm_flops()},
          {"encoder", net(*p_->xenc)}, {"decoder", net(*p_->xdec)}};
}

namespace {

// The poses' origins as floats, 2 per particle (how the checkpoint stores the aligned ones).
std::vector<float> origins_f32(const std::vector<ParticlePose>& poses) {
  std::vector<float> o;
  for (const ParticlePose& p : poses) {
    o.push_back(float(p.origin_x));
    o.push_back(float(p.origin_y));
  }
  return o;
}

// The cache's angles with these origins (2 per particle, cache order).
std::vector<ParticlePose> with_origins(const ParticleCache& cache, const std::vector<float>& o) {
  std::vector<ParticlePose> poses(cache.count());
  for (size_t i = 0; i < poses.size(); ++i) {
    const CachedParticle& c = cache.particle(i);
    poses[i] = {c.rot, c.tilt, c.psi, o[2 * i], o[2 * i + 1]};
  }
  return poses;
}

// Every particle's shifts aligned to the neutral model (TrainConfig::align_shifts), cache order.
std::vector<ParticlePose> align_shifts(Context& cx, const ParticleCache& cache, const std::vector<float>& neutral,
                                       CtfChoice ctf) {
  PoseRefineOptions o;
  o.rotations = false;
  o.ctf = ctf;
  // The refinement's coarse-to-fine bands, as far as the cache's resolution goes.
  o.bands.clear();
  for (double res : {20.0, 12.0, 8.0})
    if (make_fourier_band(cache.box(), cache.pixel_size(), o.minres, res).ring_max <= cache.band().ring_max)
      o.bands.push_back(res);
  if (o.bands.empty()) o.bands.push_back(cache.band().ring_resolution(cache.band().ring_max));
  const size_t W = neutral.size();
  PoseRefineResult r = refine_poses(cx, cache, int(W / 5), [&](const size_t*, int n, float* rows) {
    for (int i = 0; i < n; ++i) std::copy(neutral.begin(), neutral.end(), rows + size_t(i) * W);
  }, o);
  double ss = 0;
  for (double c : r.shift_change_a) ss += c * c;
  log_info("shifts aligned to the neutral model: RMS change " + std::to_string(std::sqrt(ss / double(r.after.size()))) +
           " Å (angles kept)");
  // The origins are stored as floats in the checkpoint: rounded here, and the angles are the cache's own (the
  // refinement's round trip through a matrix could change their last bits), so a resumed run uses the very
  // poses it started with (with_origins).
  return with_origins(cache, origins_f32(r.after));
}

// The kinds the encoder reads, from the config.
void set_reads(FeatureTransform& t, const TrainConfig& c) {
  t.reads[0] = c.encoder_reads_positions;
  t.reads[1] = c.encoder_reads_amplitudes;
  t.reads[2] = c.encoder_reads_widths;
}

// The encoder's input transform as a checkpoint stores it (the row scaling is the config's alone).
FeatureTransform stored_transform(const nn::Checkpoint& ck, const TrainConfig& c, size_t width) {
  FeatureTransform t;
  t.row_rms = c.feature_row_rms;
  set_reads(t, c);
  if (c.feature_pca <= 0) return t;
  t.k = c.feature_pca;
  t.basis = ck.get_f32("feature_pca", width * size_t(t.k));
  t.variance = ck.meta.at("feature_pca_variance").get<std::vector<double>>();
  t.total_variance = ck.meta.at("feature_total_variance");
  return t;
}

}  // namespace

void Trainer::prepare_features(bool resume) {
  const auto t0 = std::chrono::steady_clock::now();
  const std::string path = features_path();
  if (p_->c.align_shifts && poses_key_.empty()) {
    if (resume) {
      nn::Checkpoint ck = nn::Checkpoint::load(checkpoint_path());
      aligned_ = with_origins(p_->cache, ck.get_f32("aligned_origins", 2 * p_->cache.count()));
    } else {
      aligned_ = align_shifts(p_->cx, p_->cache, p_->neutral_params, p_->c.ctf);
    }
    poses_key_ = "aligned " + std::to_string(fnv1a(aligned_));
    batcher_->set_poses(aligned_);
  }
  if (p_->c.snr_weighted || p_->c.pooled) {
    if (resume) {  // the run's own weights (the data have not changed: the feature key checks it)
      nn::Checkpoint ck = nn::Checkpoint::load(checkpoint_path());
      p_->ring_weights = ck.get_f32("ring_weights", io::json_count(ck.meta, "ring_count", 1u << 20, ck.source, "ring_count"));
      if (ck.has("data_scale")) p_->data_scale = ck.get_f32("data_scale", p_->ring_weights.size());
    } else {
      const RingWeights w = estimate_ring_weights(p_->cx, *batcher_, p_->neutral_params, train_);
      const bool gain = p_->c.pooled && p_->c.radial_gain;
      p_->ring_weights = gain ? w.pooled_weights : p_->c.pooled ? w.inverse_noise : w.weight;
      if (gain) p_->data_scale = w.data_scale;
      p_->ring_record = {{"particles", w.particles}, {"mean_frc", w.mean_frc}, {"weights", w.weight},
                         {"inverse_noise", w.inverse_noise}, {"model_gain", w.model_gain},
                         {"pooled_weights", w.pooled_weights}, {"score", p_->c.pooled ? "pooled" : "snr_weighted"}};
      std::string used;
      for (int r = p_->band.ring_min; r <= p_->band.ring_max; ++r)
        if (w.weight[size_t(r)] > 0) used = std::to_string(p_->band.ring_min) + ".." + std::to_string(r);
      log_info("SNR-weighted score: rings " + used + " carry signal (" + std::to_string(w.particles) +
               " particles at the neutral model)");
    }
    batcher_->set_data_scale(p_->data_scale);
  }
  const nlohmann::json key = feature_key();
  if (p_->c.feature_split) batcher_->set_coefficient_half(ParticleBatcher::kHalfEven);
  std::string why = fs::exists(path) ? feature_file_stale_reason(path, key) : "missing";
  if (!why.empty()) {
    if (resume) throw Error("cannot resume: the feature file " + path + " is not this run's: " + why);
    if (why != "missing") log_info("recomputing the features: " + why);
    std::vector<char> use(p_->cache.count(), 0);
    for (size_t i : train_) use[i] = 1;
    FeatureNorm norm;
    build_feature_file(path, p_->cx, *batcher_, p_->neutral_params, key, p_->c.feature_precision, norm, use,
                       std::max(1, std::min(p_->c.batch, 256)), p_->ring_weights, p_->comm, p_->c.pooled);
  }
  // The score from here on sees the other half (TrainConfig::feature_split).
  if (p_->c.feature_split) batcher_->set_coefficient_half(ParticleBatcher::kHalfOdd);
  features_ = std::make_unique<FeatureFile>(path, key);
  norm_ = features_->norm();
  transform_ = FeatureTransform{};
  transform_.row_rms = p_->c.feature_row_rms;
  const auto t1 = std::chrono::steady_clock::now();
  set_reads(transform_, p_->c);
  if (p_->c.feature_pca > 0)  // a resumed run's own components; else fitted (every rank the same, deterministic)
    transform_ = resume ? stored_transform(nn::Checkpoint::load(checkpoint_path()), p_->c, features_->width())
                        : p_->c.feature_noise_whiten ? fit_noise_whitened_transform()
                        : fit_feature_pca(*features_, train_, p_->c.feature_pca, p_->c.feature_row_rms, p_->c.seed,
                                          p_->c.feature_pca_whiten);
  seconds_transform = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
  inputs_ = encoder_input_table(*features_, transform_);
  // A function of the features and the components alone, so a resumed run recomputes the very same points.
  if (p_->c.warm_start > 0) warm_ = warm_start_points(*features_, transform_, train_, p_->c.latent);
  seconds_features = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

FeatureTransform Trainer::fit_noise_whitened_transform() {
  // Twice the width in noise images, 3,000 to 6,000 (noise_image_count). On the CPU whatever the run's device,
  // so every backend and rank measures the very same N (a second or two at G = 400).
  const size_t width = features_->width(), count = noise_image_count(width);
  Context cpu(Device::cpu);
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<float> noise = noise_features(cpu, *batcher_, p_->neutral_params, p_->ring_weights, p_->c.pooled, norm_,
                                            train_, count, p_->c.seed ^ 0x6e6f697365ull);
  seconds_noise_images = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const bool rms = p_->c.feature_row_rms;
  if (rms) scale_rows_to_unit_rms(noise.data(), count, width);
  const RowSource rows = [&](const size_t* index, int n, float* out) {
    features_->gather(index, n, out);
    if (rms) scale_rows_to_unit_rms(out, size_t(n), width);
  };
  std::vector<float> view_means;
  if (p_->c.feature_view_nuisance) {  // each training particle's beam direction (its pose as the batcher gives it)
    std::vector<double> views(3 * train_.size());
    std::vector<ParticleView> v(64);
    std::vector<cfloat> data(64 * batcher_->band().size());
    for (size_t first = 0; first < train_.size(); first += 64) {
      const int b = int(std::min<size_t>(64, train_.size() - first));
      batcher_->gather(train_.data() + first, b, v.data(), data.data());
      for (int i = 0; i < b; ++i)
        for (int a = 0; a < 3; ++a) views[3 * (first + size_t(i)) + size_t(a)] = v[size_t(i)].rotation(2, a);
    }
    view_means = view_neighbour_means(rows, width, train_, views, 20, view_row_count(width, train_.size()));
  }
  FeatureTransform t = fit_noise_whitened_pca(rows, width, train_, std::move(noise), p_->c.feature_pca, p_->c.feature_pca_whiten,
                                              -1, parse_noise_solver(p_->c.feature_noise_solver), view_means);
  t.row_rms = rms;
  return t;
}

namespace {

nlohmann::json history_json(const std::vector<EpochRecord>& h) {
  nlohmann::json a = nlohmann::json::array();
  for (const EpochRecord& r : h)
    a.push_back({{"epoch", r.epoch}, {"train_loss", r.train_loss}, {"train_score", r.train_score},
                 {"val_loss", r.has_val ? nlohmann::json(r.val_loss) : nlohmann::json()},
                 {"val_score", r.has_val ? nlohmann::json(r.val_score) : nlohmann::json()},
                 {"seconds", r.seconds}, {"step_seconds", r.step_seconds}});
  return a;
}

std::vector<EpochRecord> history_from_json(const nlohmann::json& a) {
  std::vector<EpochRecord> h;
  for (const auto& j : a) {
    EpochRecord r;
    r.epoch = j.at("epoch");
    r.train_loss = j.at("train_loss");
    r.train_score = j.at("train_score");
    r.has_val = !j.at("val_loss").is_null();
    if (r.has_val) {
      r.val_loss = j.at("val_loss");
      r.val_score = j.at("val_score");
    }
    r.seconds = j.at("seconds");
    r.step_seconds = j.value("step_seconds", 0.0);
    h.push_back(r);
  }
  return h;
}

}  // namespace

bool Trainer::train(bool resume) {
  Impl& p = *p_;
  const TrainConfig& c = p.c;
  Context& cx = p.cx;
  p.make_networks();
  auto full_projector = make_training_projector(cx, p.band, p.ring_weights, p.G, c.pooled);
  std::unique_ptr<Projector> coarse_projector;
  if (c.coarse_epochs > 0)
    coarse_projector = make_training_projector(
        cx, p.band, coarse_ring_weights(p.band, score_ring_weights(p.band, p.ring_weights), c.coarse_res), p.G,
        c.pooled);
  StepBuffers b(cx, p.k, p.neutral_params, p.mask, transform_, inputs_);
  std::vector<float> positions_mask;  // --positions-first's: the mask with amplitudes and widths held
  if (c.positions_first > 0) {
    TrainConfig only = c;
    only.move_amplitudes = only.move_widths = false;
    positions_mask = column_mask(only, p.G);
  }
  int start_epoch = 0;
  size_t start_batch = 0;
  std::vector<double> acc_host(4, 0.0);
  // Data-parallel (engine/data_parallel.h): this rank's slice of each global batch of GB particles.
  Comm& comm = *p.comm;
  const int rank = comm.rank(), ranks = comm.size();
  const size_t GB = size_t(c.batch) * size_t(ranks);
  size_t start_rows = 0;  // particles of the start epoch already trained (any rank count wrote them)

  if (resume) {
    nn::Checkpoint ck = nn::Checkpoint::load(checkpoint_path());
    TrainConfig old = TrainConfig::from_json(ck.meta.at("config"));
    old.epochs = c.epochs;  // a resumed run may go further, and watch it differently
    old.explode = c.explode;
    old.loss_every = c.loss_every;
    old.feature_noise_solver = c.feature_noise_solver;  // fitting only: a resumed run reads its stored basis
    // Any rank count may resume, with the same global batch (R x --batch): the same steps follow.
    const int saved_ranks = ck.meta.value("ranks", 1);
    const size_t saved_global = size_t(old.batch) * size_t(saved_ranks);
    old.batch = c.batch;  // compared as the global batch
    if (old.to_json() != c.to_json() || saved_global != GB)
      throw Error("cannot resume " + checkpoint_path() + ": its settings differ from this command's (" +
                  old.to_json().dump() + " vs " + c.to_json().dump() + ")" +
                  (saved_global != GB ? "; the global batch (ranks x --batch) was " + std::to_string(saved_global) +
                                            ", this command's is " + std::to_string(GB) + ": give --batch " +
                                            std::to_string(saved_global) + " / ranks"
                                      : std::string()));
    const std::string warm_key = warm_.empty() ? "" : std::to_string(fnv1a(warm_));
    if (ck.meta.value("warm_start_fnv", std::string()) != warm_key)
      throw Error("cannot resume " + checkpoint_path() + ": the warm start's points (the top input components) "
                  "differ from the ones it was trained on");
    const std::string fixed_key = fixed_.empty() ? "" : std::to_string(fnv1a(fixed_));
    const std::string saved_key = ck.meta.value("fixed_latent_fnv", std::string());
    if (saved_key != fixed_key)
      throw Error("cannot resume " + checkpoint_path() + ": " +
                  (saved_key.empty()   ? "it was trained on the encoder's points, not on --fixed-latent ones"
                   : fixed_key.empty() ? "it was trained on fixed latent points: give the same --fixed-latent file"
                                       : "its --fixed-latent points differ from this command's"));
    p.enc->load(ck, "encoder.");
    p.dec->load(ck, "decoder.");
    p.aenc->load(ck, "adam_encoder.");
    p.adec->load(ck, "adam_decoder.");
    start_epoch = ck.meta.at("epoch");
    start_batch = ck.meta.at("batch");
    start_rows = ck.meta.value("rows", start_batch * GB);  // the global batch is the saved one (checked above)
    if (saved_ranks != ranks)
      log_info("the checkpoint was written by " + std::to_string(saved_ranks) + " rank(s), this run has " +
               std::to_string(ranks) + " (global batch " + std::to_string(GB) + ")");
    p.step = ck.meta.at("step");
    history_ = history_from_json(ck.meta.at("history"));
    acc_host = ck.meta.at("acc").get<std::vector<double>>();  // the whole run's sums: rank 0 carries them
    b.acc.upload(rank == 0 ? acc_host : std::vector<double>(4, 0.0));
    log_info("resuming at epoch " + std::to_string(start_epoch + 1) +
             (start_batch ? ", batch " + std::to_string(start_batch + 1) : ""));
  }

  // Every rank calls it (the loss sums are added over the ranks); rank 0 alone writes.
  auto save = [&](int epoch, size_t rows) {
    std::vector<double> acc = b.acc.to_host();
    comm.allreduce_sum(acc.data(), acc.size());
    if (rank != 0) return;
    nn::Checkpoint ck;
    ck.meta["config"] = c.to_json();
    ck.meta["epoch"] = epoch;
    ck.meta["batch"] = rows / GB;
    ck.meta["rows"] = rows;
    ck.meta["ranks"] = ranks;
    ck.meta["step"] = p.step;
    ck.meta["history"] = history_json(history_);
    ck.meta["acc"] = acc;
    ck.meta["gaussians"] = p.G;
    ck.meta["model_box"] = p.neutral.box_size;
    ck.meta["model_pixel"] = p.neutral.pixel_size;
    ck.meta["cache_box"] = p.cache.box();
    ck.meta["cache_pixel"] = p.cache.pixel_size();
    ck.meta["cache_header"] = nlohmann::json::parse(p.cache.header_json(), nullptr, false);
    ck.put_f32("neutral", p.neutral_params);
    ck.put_f32("norm.mean", norm_.mean);
    ck.put_f32("norm.sd", norm_.sd);
    ck.put_f32("mask", p.mask);
    if (transform_.k > 0) {
      ck.put_f32("feature_pca", transform_.basis);
      ck.meta["feature_pca_variance"] = transform_.variance;
      ck.meta["feature_total_variance"] = transform_.total_variance;
    }
    if (!aligned_.empty()) ck.put_f32("aligned_origins", origins_f32(aligned_));
    if (!fixed_.empty()) ck.meta["fixed_latent_fnv"] = std::to_string(fnv1a(fixed_));
    if (!warm_.empty()) ck.meta["warm_start_fnv"] = std::to_string(fnv1a(warm_));
    if (!p.ring_weights.empty()) {
      ck.put_f32("ring_weights", p.ring_weights);
      ck.meta["ring_count"] = p.ring_weights.size();
    }
    if (!p.data_scale.empty()) ck.put_f32("data_scale", p.data_scale);
    p.enc->save(ck, "encoder.");
    p.dec->save(ck, "decoder.");
    p.aenc->save(ck, "adam_encoder.");
    p.adec->save(ck, "adam_decoder.");
    ck.save(checkpoint_path());
  };

  const size_t B = size_t(c.batch);
  if (start_epoch < c.warm_start)
    log_info("warm start: epochs " + std::to_string(start_epoch + 1) + "-" + std::to_string(c.warm_start) +
             " train the decoder on each particle's top " + std::to_string(c.latent) +
             " input components (each standardised to SD " + std::to_string(int(kWarmStartSd)) +
             ") and fit the encoder to them; end to end from epoch " + std::to_string(c.warm_start + 1));
  // The remainder (< one global batch) waits for the next epoch's order.
  size_t total = size_t(std::max(0, c.epochs - start_epoch)) * (train_.size() / GB);
  total -= std::min(start_rows / GB, total);
  Progress progress("train", total, false);  // stops at the batch boundary below, after a checkpoint
  const auto t_train = std::chrono::steady_clock::now();
  std::string last_extra;
  for (int e = start_epoch; e < c.epochs; ++e) {
    const auto t_epoch = std::chrono::steady_clock::now();
    const bool prof = profile && (profile_epoch == 0 || e + 1 == profile_epoch);
    Projector* projector = e < c.coarse_epochs ? coarse_projector.get() : full_projector.get();
    if (c.positions_first > 0) b.mask.upload(e < c.positions_first ? positions_mask : p.mask);
    // The decoder's given latent points this epoch (empty: the encoder's): --fixed-latent's, or the warm start's.
    const std::vector<float>& given = e < c.warm_start ? warm_ : fixed_;
    const std::vector<uint64_t> order = epoch_order(train_, c.seed, uint64_t(e));
    std::vector<size_t> idx(B);
    // A run resumed with another rank count may restart mid-batch: its epoch's batches start `shift` later.
    const size_t shift = e == start_epoch ? start_rows % GB : 0;
    const size_t b0 = e == start_epoch ? start_rows / GB : 0;
    const size_t batches = (train_.size() - shift) / GB;
    if (e != start_epoch || start_rows == 0) {
      b.acc.zero();
      acc_host.assign(4, 0.0);
    }
    double checked_loss = acc_host[0];
    size_t checked_rows = shift + b0 * GB;
    for (size_t bi = b0; bi < batches; ++bi) {
      if (data_parallel::any(comm, cancel_requested())) {  // every rank stops at the same batch
        cx.synchronize();
        save(e, shift + bi * GB);
        progress.finish();
        if (rank == 0)  // once for the job
          log_warn("stopped at epoch " + std::to_string(e + 1) + ", batch " + std::to_string(bi + 1) +
                   ": resumable checkpoint " + checkpoint_path() + " (rerun with --resume)");
        return false;
      }
      for (size_t i = 0; i < B; ++i) idx[i] = order[shift + bi * GB + size_t(rank) * B + i];
      try {
        auto tick = std::chrono::steady_clock::now();
        double cpu_tick = prof ? process_cpu_seconds() : 0.0;
        double main_tick = prof ? thread_cpu_seconds() : 0.0;
        size_t phase = 0;
        auto mark = [&](const char* name) {
          if (!prof) return;
          cx.synchronize();
          const auto now = std::chrono::steady_clock::now();
          const double cpu_now = process_cpu_seconds(), main_now = thread_cpu_seconds();
          if (phase_seconds.size() <= phase) {
            phase_seconds.push_back({name, 0.0});
            phase_cpu_seconds.push_back(0.0);
            phase_main_cpu_seconds.push_back(0.0);
          }
          phase_cpu_seconds[phase] += cpu_now - cpu_tick;
          phase_main_cpu_seconds[phase] += main_now - main_tick;
          main_tick = main_now;
          phase_seconds[phase++].second += std::chrono::duration<double>(now - tick).count();
          tick = now;
          cpu_tick = cpu_now;
        };
        b.load(*batcher_, *features_, idx.data(), int(B));
        const float* fixed = b.load_fixed(given, idx.data(), int(B), c.latent);
        mark("load batch (features, particles, upload)");
        b.forward(*p.enc, *p.dec, int(B), nn::Mode::train, p.step, c.noise, c.seed, uint64_t(e), fixed);
        mark("encoder + decoder forward, parameters");
        b.project(*projector, int(B), true);
        mark("projection + FRC forward and backward");
        b.v.resize(B * b.W);
        train_ops::cotangent(cx, p.k, b.base.data(), b.last_raw, b.mask.data(), b.grad.data(), b.rowreg.data(),
                             b.v.data(), int(B));
        train_ops::accumulate_loss(cx, b.score.data(), b.rowreg.data(), int(B), b.acc.data());
        mark("cotangent, loss");
        const float* v_raw = b.v.data();
        if (p.k.rigid_free) {  // the projection's backward: its adjoint
          b.v_rigid.resize(B * b.W);
          train_ops::rigid_project(cx, p.k, b.base.data(), v_raw, b.v_rigid.data(), int(B), true);
          v_raw = b.v_rigid.data();
        }
        const float* vz = p.dec->backward(v_raw, true);
        if (fixed) {  // the encoder fitted to the fixed points: d/dz of |z - z_fixed|^2 / B = 2 (z - z_fixed) / B
          const size_t nz = B * size_t(c.latent);
          b.vz.resize(nz);
          train_ops::add_scaled(cx, b.z_clean, fixed, -1.f, b.vz.data(), nz);
          train_ops::add_scaled(cx, b.vz.data(), b.vz.data(), 2.f / float(B) - 1.f, b.vz.data(), nz);
          vz = b.vz.data();
        } else if (c.latent_reg > 0) {
          b.vz.resize(B * size_t(c.latent));
          train_ops::add_scaled(cx, vz, b.z_clean, 2.f * c.latent_reg / float(B), b.vz.data(), B * size_t(c.latent));
          vz = b.vz.data();
        }
        p.enc->backward(vz, false);
        mark("decoder + encoder backward");
        if (ranks > 1) {  // started layer by layer during the backward passes: what is left of it
          p.xdec->finish();
          p.xenc->finish();
          mark("gradient exchange");
        }
        if (c.lr_half_life > 0) {  // the decay: from the step's place in the run, so resume agrees
          const float lr = scheduled_lr(c, double(e) + double(shift + bi * GB) / double(train_.size()));
          p.aenc->set_lr(lr);
          p.adec->set_lr(lr);
        }
        p.aenc->step();
        p.adec->step();
        mark("Adam");
        if (prof) ++profiled_steps;
        ++p.step;
        if ((bi + 1) % size_t(std::max(1, c.loss_every)) == 0 || bi + 1 == batches) {
          acc_host = b.acc.to_host();  // waits for the stream: the only read-back
          cx.synchronize();
          comm.allreduce_sum(acc_host.data(), acc_host.size());  // every rank judges the same loss
          const double chunk = (acc_host[0] - checked_loss) / double(shift + (bi + 1) * GB - checked_rows);
          if (!std::isfinite(chunk) || chunk > c.explode)
            throw Error("the loss is " + std::to_string(chunk) + (std::isfinite(chunk) ? " (above --explode)" : ""));
          checked_loss = acc_host[0];
          checked_rows = shift + (bi + 1) * GB;
          char buf[96];
          std::snprintf(buf, sizeof buf, "epoch %d/%d loss %.4f", e + 1, c.epochs, acc_host[0] / double(checked_rows));
          last_extra = buf;
        }
      } catch (const InputError&) {
        throw;  // a bad input (a NaN feature) names itself; the run did not diverge
      } catch (const Error& err) {
        throw Error(std::string("training diverged at epoch ") + std::to_string(e + 1) + ", batch " +
                    std::to_string(bi + 1) + ": " + err.what() +
                    ". The last good checkpoint is kept in " + checkpoint_path() +
                    (history_.empty() ? " (none yet)" : " (epoch " + std::to_string(history_.back().epoch) + ")") +
                    "; try a lower --lr, stronger regularisers, or check the inputs");
      }
      progress.add(1, last_extra);
    }
    const double t_steps = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_epoch).count();
    // Validation: inference mode, no noise, score only.
    EpochRecord r;
    r.step_seconds = t_steps;
    r.epoch = e + 1;
    r.train_loss = acc_host[0] / double(shift + batches * GB);
    r.train_score = acc_host[1] / double(shift + batches * GB);
    if (!val_.empty()) {
      const auto [v0, v1] = rank_share(val_.size(), rank, ranks);
      for (size_t first = v0; first < v1; first += B) {
        const int m = int(std::min(B, v1 - first));
        b.load(*batcher_, *features_, val_.data() + first, m);
        const float* fixed = b.load_fixed(given, val_.data() + first, m, c.latent);
        b.forward(*p.enc, *p.dec, m, nn::Mode::infer, p.step, 0.f, c.seed, uint64_t(e), fixed);
        b.project(*projector, m, false);
        train_ops::accumulate_loss(cx, b.score.data(), b.rowreg.data(), m, b.acc.data() + 2);
      }
      acc_host = b.acc.to_host();
      cx.synchronize();
      comm.allreduce_sum(acc_host.data(), acc_host.size());
      r.has_val = true;
      r.val_loss = acc_host[2] / double(val_.size());
      r.val_score = acc_host[3] / double(val_.size());
    }
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_epoch).count();
    particle_steps_per_s = double((batches - b0) * GB) / t_steps;
    b.acc.zero();
    r.seconds = dt;
    history_.push_back(r);
    save(e + 1, 0);
    if (ranks > 1) {  // one model on every rank, or the job stops saying so
      data_parallel::same_everywhere(comm, p.enc->params_to_host(), "encoder weights");
      data_parallel::same_everywhere(comm, p.dec->params_to_host(), "decoder weights");
    }
    history_.back().seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_epoch).count();
    char line[200];
    std::snprintf(line, sizeof line, "epoch %d/%d%s: loss %.5f (score %.4f)%s, %.0f particles/s", e + 1, c.epochs,
                  e < c.warm_start ? " (warm start)" : "", r.train_loss, r.train_score,
                  r.has_val ? (", validation loss " + std::to_string(r.val_loss)).c_str() : "",
                  particle_steps_per_s);
    last_extra = line;
    log_info(line);
  }
  progress.finish();
  seconds_training = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_train).count();
  return true;
}

void Trainer::embed(std::vector<float>& latent, std::vector<float>& score) {
  Impl& p = *p_;
  CUGMM_REQUIRE(p.enc && p.dec, "Trainer::embed before train");
  embed_with(p.cx, *p.enc, *p.dec, p.k, p.neutral_params, p.mask, transform_, *batcher_, *features_, p.ring_weights, p.c.pooled,
             latent, score,
             std::max(1, std::min(p.c.batch, 256)), p.comm);
}

// ---- a trained run -------------------------------------------------------------------------------------

TrainedModel load_trained(const std::string& checkpoint, Context& cx) {
  nn::Checkpoint ck = nn::Checkpoint::load(checkpoint);
  TrainedModel m;
  m.meta = ck.meta;
  try {
    m.config = TrainConfig::from_json(ck.meta.at("config"));
    const int G = ck.meta.at("gaussians");
    m.neutral_params = ck.get_f32("neutral", 5 * size_t(G));
    io::GaussianModel like;
    like.box_size = ck.meta.at("model_box");
    like.pixel_size = ck.meta.at("model_pixel");
    m.neutral = model_from_params(m.neutral_params, like);
    m.norm.mean = ck.get_f32("norm.mean", 5 * size_t(G));
    m.norm.sd = ck.get_f32("norm.sd", 5 * size_t(G));
    m.transform = stored_transform(ck, m.config, 5 * size_t(G));
    m.cache_box = ck.meta.at("cache_box");
    m.cache_pixel = ck.meta.at("cache_pixel");
    if (m.config.rigid_free) {  // as trained: only when every Gaussian's position could move
      const std::vector<float> mask = ck.get_f32("mask", 5 * size_t(G));
      m.config.rigid_free = std::all_of(mask.begin(), mask.begin() + 3 * G, [](float v) { return v != 0.f; });
    }
    if (m.config.snr_weighted || m.config.pooled)
      m.ring_weights = ck.get_f32("ring_weights", io::json_count(ck.meta, "ring_count", 1u << 20, ck.source, "ring_count"));
    if (ck.has("data_scale")) m.data_scale = ck.get_f32("data_scale", m.ring_weights.size());
    m.encoder = std::make_unique<nn::Sequential>(encoder_arch(m.config, G), cx, 0);
    m.decoder = std::make_unique<nn::Sequential>(decoder_arch(m.config, G), cx, 0);
    m.decoder->set_base(std::vector<float>(5 * size_t(G), 0.f));
    m.encoder->load(ck, "encoder.");
    m.decoder->load(ck, "decoder.");
  } catch (const nlohmann::json::exception& e) {
    throw InputError(checkpoint, "", std::string("not a cugmm training checkpoint: ") + e.what());
  }
  return m;
}

ParticleBatcher model_batcher(const TrainedModel& m, const ParticleCache& cache) {
  ParticleBatcher b(cache, training_band(cache, m.config.minres, m.config.maxres), m.config.ctf);
  b.set_data_scale(m.data_scale);
  if (m.config.feature_split) b.set_coefficient_half(ParticleBatcher::kHalfOdd);
  return b;
}

void embed_particles(const TrainedModel& m, Context& cx, const ParticleBatcher& batcher, const FeatureFile& features,
                     std::vector<float>& latent, std::vector<float>& score, int batch, Comm* comm) {
  const StepConsts k = step_consts(m.config, m.neutral_params, batcher.band().box, batcher.band().pixel_size);
  embed_with(cx, *m.encoder, *m.decoder, k, m.neutral_params, column_mask(m.config, k.G), m.transform, batcher, features,
             m.ring_weights, m.config.pooled, latent, score, batch, comm);
}

void embed_cache(const TrainedModel& m, Context& cx, const ParticleCache& cache, const std::string& checkpoint,
                 const std::string& features_path, std::vector<float>& latent, std::vector<float>& score, int batch,
                 Comm* comm) {
  ParticleBatcher batcher = model_batcher(m, cache);
  // The shifts aligned to the neutral model as training aligned its own (the features must mean the same).
  if (m.config.align_shifts) batcher.set_poses(align_shifts(cx, cache, m.neutral_params, m.config.ctf));
  const nlohmann::json key = {{"count", cache.count()}, {"symmetry", cache.symmetry()},
                              {"cache", fs::absolute(cache.path()).string()},
                              {"embed_of", fs::absolute(checkpoint).string()}};
  FeatureNorm norm = m.norm;
  if (m.config.feature_split) batcher.set_coefficient_half(ParticleBatcher::kHalfEven);  // as training's features
  build_feature_file(features_path, cx, batcher, m.neutral_params, key, m.config.feature_precision, norm, {}, batch,
                     m.ring_weights, comm, m.config.pooled);
  if (m.config.feature_split) batcher.set_coefficient_half(ParticleBatcher::kHalfOdd);
  FeatureFile features(features_path, key);
  embed_particles(m, cx, batcher, features, latent, score, batch, comm);
}

void decode_on_device(const TrainedModel& m, Context& cx, const StepConsts& k, const float* base, const float* z,
                      int n, float* params, float* rowreg) {
  const float* raw = m.decoder->forward(z, n, nn::Mode::infer, 0);
  Buffer<float> rigid(cx);
  if (k.rigid_free) {  // the decoder's positions without their rigid-body part (kernels/train_step.h)
    rigid.resize(size_t(n) * size_t(5 * k.G));
    train_ops::rigid_project(cx, k, base, raw, rigid.data(), n, false);
    raw = rigid.data();
  }
  train_ops::decode_rows(cx, k, base, raw, params, rowreg, n);
}

std::vector<float> decode_points(const TrainedModel& m, Context& cx, const std::vector<float>& z, int n) {
  const int d = m.config.latent;
  CUGMM_REQUIRE(z.size() == size_t(n) * d, "decode_points: n x latent values");
  const StepConsts k = step_consts(m.config, m.neutral_params, m.cache_box, m.cache_pixel);
  const size_t W = 5 * size_t(k.G);
  std::vector<float> out(size_t(n) * W);
  Buffer<float> base(cx), dz(cx), params(cx, size_t(n) * W), rowreg(cx, size_t(n) * 3);
  base.upload(m.neutral_params);
  dz.upload(z);
  decode_on_device(m, cx, k, base.data(), dz.data(), n, params.data(), rowreg.data());
  params.download(out.data(), out.size());
  cx.synchronize();
  return out;
}

}  // namespace cugmm
