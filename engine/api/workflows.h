// The jobs behind both the library API (engine/api/engine.cpp) and the `cugmm` commands (cli/cmd_*.cpp):
// each command reads its options, checks its files and calls these; the API converts its settings and
// calls the same, so the two give identical results (tests/test_api.cpp checks it bit for bit).
#pragma once
#include <string>
#include <vector>

#include "core/comm.h"
#include "cugmm/engine.h"
#include "cugmm/settings.h"
#include "engine/data_parallel.h"
#include "engine/latent_analysis.h"
#include "engine/latent_posterior.h"
#include "engine/particle_cache.h"
#include "engine/pose_refine.h"
#include "engine/signal_subtraction.h"
#include "engine/symmetry.h"
#include "engine/trainer.h"
#include "io/model.h"
#include "io/particles.h"

namespace cugmm {

// ---- train ----
// The model must be made for the particles' grid (box and pixel size of the finest optics group): an
// InputError naming model_name otherwise.
void require_model_on_grid(const io::GaussianModel& m, const std::string& model_name, int box, double pixel,
                           const std::string& particles);

// Focused analysis (`--focus-mask`, README "Focused analysis"): only the Gaussians in the mask move, and with
// subtract "neutral" the neutral model's projection outside it is subtracted from the particles.
struct FocusRequest {
  std::string mask;                  // MRC on the model's grid; "" : not focused
  std::string subtract = "neutral";  // "neutral", "decoded" (each particle's model decoded by decoded_run) or "none"
  std::string decoded_run;           // with "decoded": the run directory
  bool recentre = false;             // with subtraction: the mask's centre moved to the box centre
  bool focused() const { return !mask.empty(); }
  bool subtracting() const { return focused() && subtract != "none"; }
};

// The subtracted particles' cache beside the original: P.cugmm-cache -> P.subtracted.cugmm-cache.
std::string subtracted_cache_path(const std::string& cache_path);

struct TrainRequest {
  CacheOptions cache;           // particles, root, box, normalise (maxres is the config's)
  std::string cache_path;       // "" : OUT/particles.cugmm-cache
  std::string model_source;     // what run.json names as the model ("" : OUT/neutral.txt)
  TrainConfig config;           // config.symmetry: the expansion (every particle once per operator)
  bool resume = false;
  std::string poses_from;       // the set's poses were replaced from this file (engine/particle_poses.h)
  FocusRequest focus;
  bool chose_gaussians = false; // the caller chose the movable Gaussians (--mask, --gaussians)
  LatentEstimate estimate;      // latent.txt: the encoder's points or the posterior means
  std::string fixed_latent;     // a latent.txt whose points the decoder is trained on (Trainer::set_fixed_latent)
  Comm* comm = nullptr;         // the job's ranks (the program under mpirun); null: one process
  data_parallel::ExchangeMode exchange = data_parallel::ExchangeMode::dense;  // how ranks add gradients
  // Set by prepare_training: the model as loaded, and the focus worked out on it.
  io::GaussianModel full_model;
  SubtractionSpec focus_spec;
};

// The option combinations training refuses (focus with a selection, --subtract's value and run, --recentre
// without subtraction), in the program's words.
void check_train_request(const TrainRequest& rq);
// --subtract decoded RUN: RUN checked against the particles and its decoder made the subtraction's models
// (engine/signal_subtraction.h use_decoded_models; cx must outlive the run). Nothing otherwise.
void prepare_decoded_subtraction(Context& cx, io::ParticleSet& set, TrainRequest& rq);
// Everything training checks and decides before any work or any file is written: CTF-premultiplied data,
// the model on the particles' grid, the focus (the model replaced by its region when subtracting, or only
// the region movable), with symmetry and no choice the first asymmetric unit movable, the split (a batch
// to train, 4 to validate, counting every symmetry copy). Returns the memory plan on the working grid.
MemoryPlan prepare_training(io::ParticleSet& set, io::GaussianModel& model, const std::string& model_name,
                            TrainRequest& rq);
// With symmetry: the Gaussians of the first asymmetric unit movable (engine/symmetry.h asymmetric_units).
void select_first_unit(TrainConfig& config, const io::GaussianModel& model);

struct TrainOutcome {
  bool finished = false;        // false: cancelled at a batch boundary, resumable checkpoint written
  bool writer = true;           // this rank wrote the outputs (rank 0 of several)
  std::vector<float> latent;    // (particle, symmetry copy) after another, in the particle file's order
  std::vector<EpochRecord> history;
};
// The run (after prepare_training): cache (subtracted, expanded), features, training, then latent.txt,
// particles.star, loss.txt/.png, neutral.txt and run.json in `out` (created by the caller), as README "Run
// directory" lists them; rank 0 of several writes them.
TrainOutcome run_training(Context& cx, const io::ParticleSet& set, const io::GaussianModel& model,
                          const TrainRequest& request, const std::string& out);

// ---- embed ----
// The particles must suit the run: not CTF-premultiplied, the same field of view as its working grid.
void check_embedding(const TrainedModel& m, io::ParticleSet& set, const std::string& particles);
// A focused run's subtraction (train --focus-mask --subtract neutral or decoded RUN): run.json's "focus" with
// "model" (the whole model it names) added; null for any other run (or a run directory without run.json).
nlohmann::json focused_run(const std::string& run_dir);

struct EmbedRequest {
  CacheOptions cache;           // particles, root, normalise (box and maxres are the run's)
  std::string checkpoint;       // the run's model.ckpt
  std::string cache_path;
  int batch = 64;
  nlohmann::json focus;         // focused_run(): the particles subtracted as the run's were
  LatentEstimate estimate;
  Comm* comm = nullptr;         // the job's ranks (the program under mpirun); null: one process
};
struct EmbedOutcome {
  std::vector<float> latent, score;  // (particle, symmetry copy) after another, in the particle file's order
  size_t rows = 0;              // particles x the run's symmetry copies
  bool writer = true;           // this rank wrote the outputs (rank 0 of several)
};
// Cache (subtracted and expanded as the run's), features and latent points of `set` through the run's encoder
// (the posterior means with estimate.use_posterior); latent.txt (+ latent_encoder.txt) and particles.star
// written into `out`.
EmbedOutcome run_embedding(const TrainedModel& m, Context& cx, const io::ParticleSet& set, const EmbedRequest& request,
                           const std::string& out);

// ---- refine poses ----
struct PoseRequest {
  CacheOptions cache;            // particles, root (a run's box)
  std::string cache_path;
  std::string features;          // the encoder's features (a run without latent points)
  PoseRefineOptions options;     // ctf and minres completed by check_pose_refinement
  bool minres_given = false;     // false: a run's own minres
  std::string bands_text, search_text;  // as given, for the log line ("": formatted from options)
  // The score: "snr" (options.weight_model set to the run's neutral model or the fixed one once the cache is
  // open), "frc" (the plain FRC) or "" (snr; with a run, snr when it trained SNR-weighted, else frc).
  std::string loss;
  // Each particle's model: a run's decoder at its latent point (`latent`, or its encoder's when empty), or
  // one fixed model (run null).
  const TrainedModel* run = nullptr;
  std::string run_dir, checkpoint;
  std::vector<float> latent;     // particle-file order
  std::string latent_name;       // where those points came from, for messages
  io::GaussianModel fixed;
  std::string model_name, ctf = "auto";  // with a fixed model: its file and the CTF choice
};
// Before any work: the particles' field of view against the run's (or the model on their grid), the CTF
// choice (a run's own), premultiplied data, the number of latent points. Completes options and cache.box.
void check_pose_refinement(io::ParticleSet& set, PoseRequest& request);
// Cache, models and refinement (engine/pose_refine.h); writes `out` (the input's table with the refined poses
// and rlnCugmmAngleChange / rlnCugmmShiftChange, RELION 3.1 STAR) and `png` (the changes). The result in
// particle-file order.
PoseRefineResult run_pose_refinement(Context& cx, const io::ParticleSet& set, const PoseRequest& request,
                                     const std::string& out, const std::string& png);
// OUT.star -> OUT.ext beside it (the picture, cache and features of a refinement).
std::string beside(const std::string& out, const std::string& ext);

// ---- decode ----
// Throws unless z holds at least one point of the run's dimension, all finite.
void check_latent_points(const TrainedModel& m, const std::vector<float>& z);
// Latent points (a multiple of the run's dimension, at least one point) to models on the neutral grid.
std::vector<io::GaussianModel> decode_models(const TrainedModel& m, Context& cx, const std::vector<float>& z);

// ---- analyze ----
// AnalysisSettings' ranges and combinations (a domain by mask or by indices, not both; a point with a radius
// or a count; LO < HI; the fold rule), in the program's words, before anything is read.
void check_analysis_settings(const AnalysisSettings& s);

// A run's analysis inputs, read and checked against the settings before any work or any file is written.
struct AnalysisInputs {
  std::string run_dir;
  std::string source;              // the particle file training read (run.json "particles")
  const TrainedModel* model = nullptr;
  std::vector<float> latent;       // latent.txt: rows x d
  Matrix z;                        // the same, in double
  io::ParticleSet table;           // the run's particles.star, image paths as written (the subsets keep them)
  io::ParticleSet images;          // the training input with its images, expanded as the run was (for the
                                   // clusters' reconstructions; empty without them)
  SymmetryGroup group;             // the run's; latent rows r*n .. r*n+n-1 are particle r's n copies
  FoldRule fold = FoldRule::largest_motion;
  std::vector<char> inside;        // the domain of the localised motions, a flag per Gaussian; empty: none
};
AnalysisInputs prepare_analysis(const std::string& run_dir, const TrainedModel& m, const std::vector<float>& latent,
                                const AnalysisSettings& s);
// PCA, clusters (decoded centres, reconstructions), trajectories, localised motions, subsets and the folding
// of symmetry copies on cx; with `out` (an existing directory; "" for none) also the files README "Analysing a
// trained run" lists.
Analysis run_analysis(Context& cx, const AnalysisInputs& in, const AnalysisSettings& s, const std::string& out);

}  // namespace cugmm
