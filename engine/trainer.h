// The heterogeneity training (DESIGN §1 steps 2-5; issue 13): encoder (gradient features -> z) and
// residual decoder (z -> 5G parameters, exactly the neutral model at z = 0) trained end to end on the FRC
// of each particle's projection, on the run's Context (both backends run this code; on CUDA a step queues
// its work on the context's stream and the host reads the loss back only every `loss_every` batches).
//
// One step on a batch: encoder forward (train mode: dropout keyed by the step) -> z + Philox noise keyed
// by (seed, particle index, epoch) -> decoder forward -> parameters (neutral + scale x Δ, widths clamped:
// kernels/train_step.h) -> Projector::run (per-particle rows and gradients) -> loss = -score + mean-width
// and total-mass regularisers -> decoder backward (frozen columns and Gaussians get a zero cotangent, so
// their last-layer weights stay exactly 0 and their values exactly neutral) -> encoder backward -> Adam.
//
// Determinism: the batch order of an epoch is a Philox permutation keyed by (seed, epoch); the
// validation split is a fixed function of the particle index; the CPU backend is bit-reproducible, and a
// resumed run (checkpoint at an epoch end or at a batch boundary after Ctrl-C) continues bit-identically.
#pragma once
#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/comm.h"
#include "engine/data_parallel.h"
#include "core/context.h"
#include "engine/feature_transform.h"
#include "engine/features.h"
#include "engine/particle_batch.h"
#include "engine/projector.h"
#include "io/model.h"
#include "kernels/train_step.h"
#include "nn/adam.h"
#include "nn/sequential.h"

namespace cugmm {

struct TrainConfig {
  // The defaults are the measured ones (docs/accuracy.md, bench_accuracy); paper_recipe() is the published
  // recipe (DESIGN §1), `--preset paper`.
  // Networks.
  int latent = 4, hidden = 512, depth = 3;
  bool leaky = true;  // later e2gmm versions' answer to dead ReLUs; measured no worse, often better
  float dropout = 0.3f;
  // Optimiser and loss. The paper's lr 1e-4 and noise 0.1 do not move in 20 epochs on sets of a few
  // thousand particles; lr 1e-3 with noise 1 and the latent penalty below do (issue 13's tests, the demo).
  // No total-mass regulariser by default: a compositional change changes the mass (issue 13's composition
  // test needed --reg-mass 0), and the mean-width one still holds the FRC's blind widths.
  float lr = 1e-3f, l2 = 1e-3f, noise = 1.0f, reg_width = 1, reg_mass = 0;
  // The weights' L2 coefficient (the dense layers' wd/2 |W|^2) from the set's size: with l2_auto (the default,
  // `--l2 auto`) the Trainer sets l2 = min(1e-3, 6 / training particles) (resolve_l2): the paper's 1e-3 up to
  // 6,000 particles, falling as 1/N above. The loss is a mean over the batch, so the data's pull on the weights
  // per epoch grows with the set while a fixed penalty's does not (a prior's weight against the data falls as
  // 1/N). Measured (docs/accuracy.md round 14): at 20,000 particles 1e-3 loses the lid on both seeds, 3e-4 keeps
  // it (1.1e-4 too, at a larger cost to the linear slide's first axis); at 800 and 2,000, 1e-3 is best (1e-4
  // and 3e-4 lose the presence at 800, and 2.8e-3 does worse there too).
  bool l2_auto = true;
  // The learning rate's decay: halved every lr_half_life epochs (scheduled_lr; 0 keeps it constant). Keyed to
  // the absolute epoch, not to the run's length, so a run extended with --resume steps as a longer run would.
  // Why 10 (docs/accuracy.md round 13): on the quick benchmark it finds the lid and the small moving part far
  // more often than a constant rate; 5 does better still there and keeps the lid at the size, but fails
  // a small set (800 particles, 30 epochs: the rate is spent before the clusters form).
  float lr_half_life = 10;
  // lambda of a penalty lambda |z|^2 (mean over the batch) on the encoder's output (0 in the paper's recipe):
  // it stops the encoder from inflating z until the latent noise no longer matters. Not in the reported loss.
  float latent_reg = 1e-4f;
  bool bf16_moments = false;
  int epochs = 20, batch = 64;
  double minres = kDefaultMinRes, maxres = 0;
  uint64_t seed = 1;
  double val_fraction = 0.1;
  // What may move: parameter kinds (positions, amplitudes, widths) and Gaussians (empty: all).
  bool move_positions = true, move_amplitudes = true, move_widths = true;
  std::vector<char> movable;
  // Symmetry expansion (engine/symmetry.h): the cache the trainer is given is expanded by this group; "C1"
  // none. Recorded so that embed expands any particle set the same way.
  std::string symmetry = "C1";
  CtfChoice ctf = CtfChoice::automatic;
  FeaturePrecision feature_precision = FeaturePrecision::fp16;
  int loss_every = 16;     // batches between loss read-backs (divergence checks, progress)
  float explode = 10;      // a batch loss above this (the score lies in [-1, 1]) is divergence
  // The score (the features are its gradient too): `pooled`, one correlation over the band with every
  // coefficient weighted by its ring's inverse noise variance measured on the data (kernels/frc.h
  // pooled_sums: the Gaussian likelihood's maximiser with the particle's scale fitted; `--loss white`);
  // else snr_weighted, the FRC's rings weighted by their measured signal (engine/ring_weights.h; `--loss
  // snr`); else the plain mean of the FRC over the rings (the paper's; `--loss frc`).
  bool pooled = true;
  // With pooled: score g_r M, the neutral model times its measured per-ring gain (RingWeights::model_gain;
  // `--loss gain`): stops the latent following the view at high SNR (docs/accuracy.md round 7b); not the
  // default, the posterior latent of test_train_linear lost to the encoder's points with it.
  bool radial_gain = false;
  bool snr_weighted = false;
  // A coarse band first: for the first coarse_epochs epochs the score keeps only rings at coarse_res Å or
  // coarser (0 epochs: none).
  int coarse_epochs = 0;
  double coarse_res = 12;
  // Positions first: for the first positions_first epochs only the positions move (amplitudes and widths
  // keep their neutral values), then every kind `--move` allows. A decoder free to change amplitudes from
  // the start shows a motion as density fading from one place into another, and the latent's main axis
  // then follows that blur, not the motion (docs/accuracy.md round 15); amplitudes freed later are left to
  // what positions cannot explain: the parts that come and go.
  int positions_first = 0;
  // What a decoder output of 1 moves a centre by, Å (`--position-unit`; 0: one pixel, the paper's). The
  // amplitude's unit is the whole mean amplitude (-1 removes a Gaussian), so the smaller the position's unit
  // the more a motion of many units costs in outputs and weights against fading the density across, which the
  // decoder then does instead (docs/accuracy.md round 15). In Å, so the same motion costs the same at any
  // sampling; 3 Å is the pixel of the size every default was first measured at (2,000 particles, 3 Å/px).
  double position_unit = 3;
  // Before the features: each particle's two shifts aligned to the neutral model (engine/pose_refine.h, the
  // angles kept; not when poses are given with use_poses). The gradient features then carry no first-order
  // shift term, which otherwise was the largest thing the latent learned: a consensus refinement's shift
  // error (0.5 px) explained 35-40% of the latent's variance (docs/accuracy.md, round 4).
  bool align_shifts = true;
  // The six rigid-body modes removed from the decoder's position output (kernels/train_step.h
  // rigid_project), so the latent cannot learn pose error. Applies when every Gaussian may move.
  bool rigid_free = false;
  // The encoder's input (engine/feature_transform.h): each particle's normalised feature row scaled to unit
  // RMS (feature_row_rms), then projected on the top feature_pca principal components of the training
  // particles' rows (0: the 5G features themselves), and input_dropout applied to what enters the encoder.
  // Fewer, denoised input directions leave the encoder less room to memorise each particle's noise.
  // The default (docs/accuracy.md round 9): 25 components ranked by signal-to-noise, the view-dependent mean
  // counted as noise.
  int feature_pca = 25;
  bool feature_pca_whiten = false;  // each component's scores scaled to unit variance
  // The components ranked by signal-to-noise instead of variance (engine/noise_features.h; round 7c).
  bool feature_noise_whiten = true;
  // Its solver (engine/noise_features.h NoiseSolver): auto, dense or streamed.
  std::string feature_noise_solver = "auto";
  // Not in to_json (a request, not a property of the run): the input was asked for (`--feature-pca` or
  // `--feature-whiten` given), so a model it does not fit is refused instead of falling back
  // (default_input_fallback).
  bool feature_input_asked = false;
  // With it, the view-dependent mean of the features counted as noise too (engine/noise_features.h
  // view_neighbour_means; round 9): `--feature-whiten noise+view`, the default.
  bool feature_view_nuisance = true;
  bool feature_row_rms = false;
  float input_dropout = 0;
  // Features and score from independent halves of each particle's coefficients (`--feature-split`;
  // docs/accuracy.md round 8): the features from the coefficients with kx + ky even, the training score
  // (and validation, embed's score, the posterior latent) from the odd ones. Then a particle's own noise in
  // its features is independent of the noise its score sees, so an encoder + decoder that follow a
  // particle's noise gradient gain nothing on average: the latent is spent on directions with signal.
  bool feature_split = false;
  // Which parameter kinds' feature columns the encoder reads (`--encoder-reads`, any non-empty subset of
  // positions, amplitudes, widths; docs/accuracy.md round 8): the others enter as zeros. Not with feature_pca.
  bool encoder_reads_positions = true, encoder_reads_amplitudes = true, encoder_reads_widths = true;

  // A warm start (`--warm-start EPOCHS`; docs/accuracy.md round 10b): for the first warm_start epochs the latent
  // is fixed to each particle's scores on the encoder's top `latent` input components (warm_start_points), the
  // decoder trained on them with the usual latent noise and the encoder fitted to predict them (the
  // --fixed-latent steps), then end to end as usual; so the decoder starts from points that hold the input's
  // strongest signal directions at once instead of from a random encoder's. Needs components (feature_pca >=
  // latent). 0: none.
  int warm_start = 0;

  nlohmann::json to_json() const;  // everything but `movable` (stored as an array in the checkpoint)
  static TrainConfig from_json(const nlohmann::json& j);
};

// The warm start's points per dimension: standardised, then scaled to this SD, the scale of the default's trained
// latent (per-dimension SD 0.6-3.3, RMS 2.01 over the 15 quick-benchmark runs of docs/accuracy.md round 9), so
// the latent noise (SD 1) blurs them as it blurs the encoder's points.
constexpr float kWarmStartSd = 2.f;

// TrainConfig::warm_start against the run (c as it runs, after default_input_fallback, whose reason is
// `fallback`; fixed_latent: --fixed-latent given): throws naming the option when it cannot run.
void check_warm_start(const TrainConfig& c, bool fixed_latent, const std::string& fallback = "");

// The warm start's latent points (TrainConfig::warm_start): every row of `features` (cache order) scored on the
// transform's first d components (component_scores), each dimension centred and scaled to SD kWarmStartSd over
// the training particles `train`: features.count() x d.
std::vector<float> warm_start_points(const FeatureFile& features, const FeatureTransform& t,
                                     const std::vector<size_t>& train, int d);

// The published e2gmm recipe (DESIGN §1; `--preset paper`): the baseline the defaults are measured against.
TrainConfig paper_recipe();

// The learning rate after `epochs_done` epochs (fractional: the step's place in the run):
// c.lr x 2^(-epochs_done / c.lr_half_life), or c.lr when the half-life is 0. A function of the step's place
// alone, so a resumed run and every rank of a data-parallel one step with the same rates.
float scheduled_lr(const TrainConfig& c, double epochs_done);

// When the default encoder input (feature_pca components, noise-whitened; not asked for) does not fit the run,
// it falls back to the 5G features themselves (feature_pca 0): `c` changed and the reason returned (the
// Trainer logs it, run.json records it as feature_fallback); "" when nothing changed. Two cases: (a) an option
// defined on the 5G feature columns themselves was given (--feature-split, --encoder-reads); (b) the components
// need more features and training particles than there are (a toy model or set).
std::string default_input_fallback(TrainConfig& c, int G, size_t train_count);
// With c.l2_auto: c.l2 = min(kL2Max, kL2Particles / train_count) (TrainConfig::l2_auto); else c unchanged.
constexpr double kL2Max = 1e-3, kL2Particles = 6.0;
void resolve_l2(TrainConfig& c, size_t train_count);

// "positions,amplitudes,widths" (any non-empty subset) -> which of the three kinds it names; throws naming the
// option and an unknown item, or an empty list.
std::array<bool, 3> parse_kind_list(const std::string& list, const std::string& option);
// --move's list into c.move_positions, move_amplitudes, move_widths.
void parse_move_list(const std::string& list, TrainConfig& c);
// "0-99,150" (0-based Gaussian indices, ranges inclusive) -> G flags; throws naming a bad item.
std::vector<char> parse_gaussian_list(const std::string& list, int G);

nn::Arch encoder_arch(const TrainConfig& c, int G);
nn::Arch decoder_arch(const TrainConfig& c, int G);

// What a run will allocate, before it does: on the device (CUDA) or in host memory (CPU).
struct MemoryPlan {
  struct Item {
    std::string what;
    size_t bytes;
  };
  std::vector<Item> items;
  size_t total = 0;
  size_t feature_file = 0;  // on disk, memory-mapped (streamed, not resident)
  // Host memory a checkpoint takes while it is written or read: the arrays stream (nn/checkpoint.h), so only
  // the small copied arrays and one staging chunk. On the CPU it adds to `total`'s peak; on CUDA it is host
  // memory.
  size_t checkpoint_host = 0;
  // --feature-whiten noise: host memory while the input transform is fitted (before the epochs; the noise
  // rows and the solver's buffers, engine/noise_features.h noise_solver_bytes), and which solver.
  size_t transform_host = 0;
  std::string transform_solver;
  std::string text() const;
};
MemoryPlan plan_memory(const TrainConfig& c, int G, int box, size_t band_size, size_t particles);
// Throws with suggestions (smaller batch, bf16 moments, fewer Gaussians, smaller box) when the plan does
// not fit in what the device has free (CUDA) or the host has available (CPU).
void require_memory(const MemoryPlan& plan, Device d);

// Which particles validate: a fixed function of the index (not of the seed), so runs compare.
bool is_validation(size_t index, double fraction);

// Decoder constants of a model on a projection grid (scales, width bounds, neutral sums).
StepConsts step_consts(const TrainConfig& c, const std::vector<float>& neutral, int box, double pixel);
// 5G flags -> the mask of decoder output columns that may move.
std::vector<float> column_mask(const TrainConfig& c, int G);

struct EpochRecord {
  int epoch = 0;
  double train_loss = 0, train_score = 0, val_loss = 0, val_score = 0;
  double seconds = 0;       // the whole epoch: steps, validation, checkpoint
  double step_seconds = 0;  // the training steps alone (what particle-steps/s counts)
  bool has_val = false;
};

// A trained run as embed and decode need it: from model.ckpt.
struct TrainedModel {
  TrainConfig config;
  std::vector<float> ring_weights;    // the score's (empty: the plain mean; config.pooled: inverse noise)
  std::vector<float> data_scale;      // config.pooled: the particles' per-ring scale (RingWeights::data_scale)
  io::GaussianModel neutral;         // the model the decoder starts from (its box and pixel)
  std::vector<float> neutral_params;  // 5G
  FeatureNorm norm;
  FeatureTransform transform;        // the encoder's input from the feature rows (engine/feature_transform.h)
  int cache_box = 0;                 // the working grid training used
  double cache_pixel = 0;
  nlohmann::json meta;               // the checkpoint's meta
  std::unique_ptr<nn::Sequential> encoder, decoder;
};
TrainedModel load_trained(const std::string& checkpoint, Context& cx);
// The particles of `cache` as the run scores them: its loss band, CTF choice and data scale.
ParticleBatcher model_batcher(const TrainedModel& m, const ParticleCache& cache);

// Latent points of particles through a trained encoder (inference mode) and their FRC score at the decoded
// model: rows in cache order.
void embed_particles(const TrainedModel& m, Context& cx, const ParticleBatcher& batcher, const FeatureFile& features,
                     std::vector<float>& latent, std::vector<float>& score, int batch = 64, Comm* comm = nullptr);
// Every particle of `cache` through a trained run's encoder with the run's feature normalisation (what
// `cugmm embed` does): the features are built at features_path, keyed to the cache and the checkpoint.
// Under a comm of several ranks each embeds its rank_share of the particles and every rank returns all rows.
void embed_cache(const TrainedModel& m, Context& cx, const ParticleCache& cache, const std::string& checkpoint,
                 const std::string& features_path, std::vector<float>& latent, std::vector<float>& score,
                 int batch = 64, Comm* comm = nullptr);
// Gaussian parameters (5G) of latent points (n x d) through the decoder (inference mode).
std::vector<float> decode_points(const TrainedModel& m, Context& cx, const std::vector<float>& z, int n);
// The same for n latent rows already on the context's device, into the caller's device memory (params n x 5G,
// rowreg n x 3; base = the neutral parameters, k = step_consts of the grid the parameters are for).
void decode_on_device(const TrainedModel& m, Context& cx, const StepConsts& k, const float* base, const float* z,
                      int n, float* params, float* rowreg);

class Trainer {
 public:
  // The cache, model and config are checked here (bad inputs refused before any work).
  Trainer(Context& cx, const ParticleCache& cache, const io::GaussianModel& neutral, const TrainConfig& config,
          const std::string& run_dir);
  ~Trainer();
  // Data-parallel training over comm's ranks (engine/data_parallel.h), set before prepare_features: each
  // rank runs config.batch particles of every global batch of size() x batch; features, validation and
  // embed are shared out; only rank 0 writes the checkpoint. The comm outlives the trainer. `exchange`: how
  // each layer's gradients are added over the ranks (engine/data_parallel.h; the plan is in
  // exchange_record() once training has started).
  void set_comm(Comm& comm, data_parallel::ExchangeMode exchange = data_parallel::ExchangeMode::dense);
  const MemoryPlan& memory_plan() const { return plan_; }
  size_t train_count() const { return train_.size(); }
  size_t val_count() const { return val_.size(); }

  // Poses used in place of the cache's, one per cache particle (`train --poses-from`); before
  // prepare_features (the features depend on the poses, and their file's key records them).
  void use_poses(std::vector<ParticlePose> poses);
  // Auto-decoding (`train --fixed-latent`; docs/accuracy.md round 8): the decoder is trained on these latent
  // points (n x latent, cache order) in place of the encoder's, with the latent noise added as usual, and the
  // encoder is fitted to predict them (mean squared error) in the same steps, so that embed gives them back.
  // Before train(); a resumed run must be given the same points (their FNV-1a is in the checkpoint).
  void set_fixed_latent(std::vector<float> z);
  // Builds the feature file (or reuses a current one; with resume a stale one is refused).
  void prepare_features(bool resume);
  // Runs epochs up to config.epochs from scratch or from the checkpoint. Returns false when the calling
  // thread's job is cancelled (core/log.h: Ctrl-C in the program, Engine::cancel in the library), at the
  // next batch boundary, after writing a resumable checkpoint. Throws on divergence (the last good checkpoint
  // is kept) naming the epoch, batch and what went wrong.
  bool train(bool resume);
  // Every particle's latent point (inference mode, cache order) and FRC score at its decoded model, with the
  // networks as trained (call after train()).
  void embed(std::vector<float>& latent, std::vector<float>& score);
  const std::vector<EpochRecord>& history() const { return history_; }
  const FeatureFile& features() const { return *features_; }
  const ParticleBatcher& batcher() const { return *batcher_; }
  const FeatureNorm& norm() const { return norm_; }
  // The configuration the run uses (the one given, after default_input_fallback) and that fallback's reason
  // ("" when none).
  const TrainConfig& config() const;
  const std::string& feature_fallback() const;
  // The encoder's input transform (row scaling, PCA), after prepare_features.
  const FeatureTransform& feature_transform() const { return transform_; }
  // The score's ring weights (after prepare_features; empty: the plain mean over rings).
  const std::vector<float>& ring_weights() const;
  // How they were estimated (particles, the neutral model's mean FRC per ring, the weights); null on resume.
  const nlohmann::json& ring_record() const;
  // The gradient exchange's plan per network and layer (null with one rank).
  nlohmann::json exchange_record() const;
  std::string checkpoint_path() const;
  std::string features_path() const;
  nlohmann::json feature_key() const;
  double seconds_features = 0, seconds_training = 0;
  double seconds_transform = 0;  // of seconds_features: fitting the input transform (noise images included)
  double seconds_noise_images = 0;  // of seconds_transform: the noise-only images' features (--feature-whiten noise)
  double particle_steps_per_s = 0;  // of the last epoch
  // With profile set, every phase of a step is timed (the context is synchronised after each, so the total
  // slows a little on CUDA): seconds per phase summed over the run's steps, and the process's CPU seconds
  // (all threads) per phase, in the same order, over profiled_steps steps, and the main thread's own CPU
  // seconds per phase (what the other threads did not share: with OMP_WAIT_POLICY=passive, so that idle
  // threads sleep rather than spin, the rest of the phase's CPU is the other threads' work).
  bool profile = false;
  // With profile set, the one epoch (1-based) whose steps are profiled; 0: every epoch. The others run without
  // the synchronisations, so their throughput is the pipeline's own (on a GPU the host gathers the next batch
  // while the device works on this one). The first epoch carries one-off costs (on a GPU: cuBLAS and cuFFT
  // set-up, the memory pool's growth), so a benchmark profiles a later one.
  int profile_epoch = 0;
  std::vector<std::pair<std::string, double>> phase_seconds;
  std::vector<double> phase_cpu_seconds, phase_main_cpu_seconds;
  size_t profiled_steps = 0;

 private:
  struct Impl;
  std::unique_ptr<Impl> p_;
  MemoryPlan plan_;
  std::vector<size_t> train_, val_;
  std::vector<EpochRecord> history_;
  FeatureNorm norm_;
  FeatureTransform transform_;
  // --feature-whiten noise: the features of noise-only images measured, then the transform fitted with them.
  FeatureTransform fit_noise_whitened_transform();
  std::unique_ptr<FeatureFile> features_;
  std::unique_ptr<ParticleBatcher> batcher_;
  std::string poses_key_;  // FNV-1a of the poses given to use_poses (or of the aligned ones), "" for the cache's
  std::vector<ParticlePose> aligned_;  // config.align_shifts: the poses with their shifts aligned, cache order
  std::vector<float> fixed_;           // set_fixed_latent: n x latent, cache order (empty: the encoder's points)
  std::vector<float> warm_;            // config.warm_start: the warm start's points, n x latent, cache order
  std::vector<float> inputs_;          // encoder_input_table: with components, every particle's, cache order
};

}  // namespace cugmm
