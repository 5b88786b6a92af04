// The engine as a library: load particles, fit a neutral model, train, embed, decode, refine poses and
// analyse from another program, with the results `cugmm` gives for the same inputs (the program's commands
// are thin wrappers over the same code). API.md has the overview; the rest of cugmm's headers are internal.
//
// Ownership: an Engine owns its device context (a CUDA stream of its own, or the caller's). Particles and
// Run are handles (cheap to copy, shared); a Run keeps its Engine's context alive and computes on it.
// Threads: one Engine serves one call at a time (calls from several threads are serialised); cancel() may
// be called from any thread (or a signal handler). Separate Engines are independent: two on two threads
// run at once, each with its own device, stream, callbacks and cancel flag, and give the results each
// gives alone. OpenMP's thread count is set per calling thread (EngineOptions::threads); OpenBLAS has one
// count per process, which the library leaves as it finds it.
#pragma once
#include <cstddef>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "cugmm/data.h"
#include "cugmm/error.h"
#include "cugmm/settings.h"

namespace cugmm {

// A cudaStream_t, passed as a pointer so these headers need no CUDA headers.
using CudaStream = void*;

// Progress of one stage ("preprocessing", "features", "train", "embed", "fit-map", ...): `done` of `total`
// units, and a detail such as "epoch 3/20 loss -0.4123". Return false to cancel (as Engine::cancel).
struct ProgressInfo {
  std::string stage;
  size_t done = 0, total = 0;
  std::string detail;
};
using ProgressFn = std::function<bool(const ProgressInfo&)>;
// Messages the program prints as "cugmm: ..." (warning: the "warning:" ones).
using LogFn = std::function<void(bool warning, const std::string& message)>;

struct EngineOptions {
  // "cpu", "cuda" (GPU 0), "cuda:N", or "auto" (a GPU when there is one). Each call makes the engine's GPU
  // current on the calling thread (cudaSetDevice) and leaves it so.
  std::string device = "auto";
  CudaStream stream = nullptr;      // with a GPU: queue work on this stream (the caller's; it must outlive
                                    // the Engine). Null: the Engine makes its own.
  int threads = 0;                  // OpenMP threads of the CPU work (0: leave the calling thread's setting)
  // Called from the thread doing the work (worker threads included, one call at a time per stage).
  // Null: progress and messages go to stderr, as the program's do.
  ProgressFn progress;
  LogFn log;
};

class Engine;

// Particles as training and embedding read them: a particle file (RELION STAR or cryoSPARC .cs, with the
// images it names) or arrays imported into a directory (an MRC stack and a RELION 3.1 STAR file).
class Particles {
 public:
  size_t count() const;
  int box() const;                  // of the finest optics group
  double pixel_size() const;
  const std::string& star() const;  // the particle file
  struct Impl;
  std::shared_ptr<const Impl> impl;
};

struct EpochStats {
  int epoch = 0;
  double train_loss = 0, val_loss = 0;  // val_loss is NaN without validation particles
  double seconds = 0;
};

// A trained run: its directory (model.ckpt, latent.txt, particles.star, run.json: what `cugmm train`
// writes, usable by every command), latent points and networks, on the context of the Engine that made
// or opened it.
class Run {
 public:
  const std::string& directory() const;
  int latent_dim() const;
  const Gaussians& neutral() const;
  // From the run's latent.txt: particle after particle, latent_dim() values each, in particle-file order
  // (a run with symmetry expansion: a row per particle and copy, copies of a particle together).
  const std::vector<float>& latent() const;
  const std::vector<EpochStats>& history() const;  // empty for a run opened from an older run.json
  struct Impl;
  std::shared_ptr<Impl> impl;
};

struct Embedding {
  std::vector<float> latent;        // count x latent_dim
  std::vector<float> score;         // FRC score of each particle at its decoded model
};

struct FitResult {
  Gaussians model;
  double res_fsc05 = 0, res_fsc0143 = 0;  // Å: model vs map FSC crossings
  bool reached = false;             // the stop rule held
  std::string verdict;
  std::vector<std::string> warnings;
};

// A straight path through the latent mean, from the 5th to the 95th percentile of the particles along it.
struct Trajectory {
  std::string name;                 // "pc1", "pc2", ...; with a domain "local1", ..., "local_sum", "local_diff"
  std::vector<double> direction;    // unit latent direction
  std::vector<double> t;            // frames: coordinates along the direction
  std::vector<float> points;        // frames x latent_dim
  std::vector<Gaussians> frames;    // decoded
  std::vector<double> coordinate;   // per latent row: its coordinate along the direction
  // With a domain: mean displacement (Å) of its Gaussians and of the rest from the first frame to the last
  // (NaN without a domain).
  double displacement_inside = std::numeric_limits<double>::quiet_NaN();
  double displacement_outside = std::numeric_limits<double>::quiet_NaN();
};
// A cluster's particles reconstructed from their images (half-maps, their FSC): images 0 when not
// reconstructed (AnalysisSettings::reconstruct false, or fewer than 4 images).
struct ClusterMap {
  size_t images = 0;                // a --sym run: each particle once (its first copy in the cluster)
  Volume full;                      // both halves (half1.mrc, half2.mrc in the output directory)
  std::vector<double> fsc;          // half 1 against half 2, per shell 0..box/2
  double resolution = 0;            // Å where the FSC first falls below 0.143 (Nyquist when it never does)
  bool crosses = false;             // whether it falls below 0.143
};
// Localised motions: the latent directions that move the domain most relative to the rest (README
// "Analysing a trained run").
struct DomainMotions {
  std::vector<int> gaussians;       // the domain (0-based); empty without one
  std::vector<double> eigenvalues;  // latent_dim, decreasing: the domain's motion over the rest's per direction
  std::vector<double> directions;   // latent_dim x latent_dim, one unit direction per row
  double eps = 0;                   // the regularisation added to the rest's motion
  size_t points = 0;                // latent points the decoder's Jacobian was averaged over
};
// A run with symmetry expansion (a latent row per particle and copy) folded back per particle.
struct SymmetryFold {
  std::string group;                // "C3", ...; empty for a run without expansion
  size_t copies = 1;
  std::string rule;                 // "copy-with-largest-motion" or "mean"
  std::vector<int> chosen;          // per particle: the 0-based copy whose decoded model moves most
  std::vector<double> motion;       // per latent row: RMS displacement (Å) of its decoded model from the neutral
  std::vector<float> latent;        // particles x latent_dim: the chosen copy's point or the copies' mean
};
// Everything `cugmm analyze` computes (its files hold the same numbers).
struct Analysis {
  std::vector<double> explained;    // PCA: fraction of the variance per component
  std::vector<double> components;   // latent_dim x latent_dim, one component per row
  std::vector<int> labels;          // per latent row, 0-based cluster (empty without clusters)
  std::vector<size_t> centres;      // per cluster, the member particle nearest its mean
  std::vector<Gaussians> centre_models;  // decoded at those particles
  std::vector<ClusterMap> cluster_maps;  // per cluster
  std::vector<Trajectory> trajectories;  // the PCs, then (with a domain) the localised directions
  DomainMotions local;
  std::vector<size_t> point_subset, range_subset;  // latent rows near AnalysisSettings::point, in the range
  SymmetryFold fold;
};

struct PoseRefinement {
  Particles particles;              // the refined particle file (out_star), loaded
  std::vector<ParticlePose> before, after;  // per particle, particle-file order
  std::vector<double> angle_change, shift_change;  // degrees, Å
  std::vector<float> score_before, score_after;    // the training score at the finest band
};

class Engine {
 public:
  explicit Engine(const EngineOptions& options = {});
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  std::string device() const;       // "cpu", "cuda:0", ...
  // Asks the running call to stop (it throws cugmm::Cancelled); the flag is cleared when the next call
  // starts. Any thread, or a signal handler.
  void cancel();

  // ---- particles and models ----
  Particles load_particles(const std::string& path, const std::string& root = "");
  // Writes the arrays into `directory` (particles.mrcs + particles.star, created) and loads them from there.
  Particles import_particles(const ParticleArrays& arrays, const std::string& directory);
  Gaussians load_model(const std::string& path, int box = 0, double pixel_size = 0);  // native, PDB, mmCIF
  void save_model(const std::string& path, const Gaussians& model);  // by extension: .txt, .pdb, .cif, .cmm
  ExampleData make_example(const ExampleSettings& settings = {});  // simulated on the CPU

  // ---- the neutral model of a consensus map (`cugmm fit-map`); out_dir: also its files ("": none) ----
  FitResult fit_map(const FitSettings& settings, const std::string& out_dir = "");

  // ---- training (`cugmm train`): writes run_dir as the program does ----
  Run train(const Particles& particles, const Gaussians& neutral, const TrainSettings& settings,
            const std::string& run_dir);
  Run open_run(const std::string& run_dir);

  // ---- a trained run ----
  // Any particles through the run's encoder (`cugmm embed`); work files (cache, features) and latent.txt,
  // particles.star go into out_dir.
  Embedding embed(const Run& run, const Particles& particles, const std::string& out_dir);
  // Latent points (n x latent_dim, n >= 1) to Gaussians, and one point to a density map on the neutral
  // model's grid (`cugmm decode`).
  std::vector<Gaussians> decode(const Run& run, const std::vector<float>& points);
  Volume decode_map(const Run& run, const std::vector<float>& point);
  // `cugmm analyze`: PCA, clusters (decoded centres, reconstructions from their particles' images), trajectories,
  // localised motions, subsets and the folding of symmetry copies of the run's latent points, in memory and,
  // with out_dir, written there as the program writes them (report.md, analyze.cxc, analyze.json, pictures,
  // maps, models, subsets as STAR files; created).
  Analysis analyze(const Run& run, const AnalysisSettings& settings = {}, const std::string& out_dir = "");

  // ---- pose refinement (`cugmm refine-pose`) ----
  // Every particle's angles and shifts refined against its own decoded model (the run's decoder at its
  // latent point) or against one model for all (a rigid particle). Writes out_star (the particle file's
  // table with the refined poses and the changes, RELION 3.1 STAR) and beside it OUT.png and the cache.
  PoseRefinement refine_poses(const Run& run, const Particles& particles, const PoseSettings& settings,
                              const std::string& out_star);
  PoseRefinement refine_poses(const Gaussians& model, const Particles& particles, const PoseSettings& settings,
                              const std::string& out_star);

  struct Impl;

 private:
  std::shared_ptr<Impl> p_;
};

}  // namespace cugmm
