// The oracle reference of a simulated data set (issue 12 item 4, DESIGN §7): how well a method could
// recover the truth from these images. For each particle, the posterior over a fine grid of true states
// from exact CTF'd projections (the simulator's own imaging of the grid states) under the Gaussian noise
// likelihood the set was made with (white, or the known coloured spectrum), (i) with the true poses and
// (ii) marginalised over the pose error around the STAR pose (what a method is given: `pose_samples` draws
// from the known error distribution). The posterior-mean state per particle (circular mean for a full
// rotation, posterior probability for presence) is then scored with the metrics of
// engine/latent_metrics.h, with bootstrap 95% intervals.
//
// Which metric: one motion: translate or partial rotation -> linear motion (|Spearman|); full rotation ->
// rotation (|Fisher-Lee| of atan2(PC2, PC1), the latent being (cos, sin) of the posterior mean); presence ->
// composition (2-component GMM accuracy). Several motions: the canonical correlations with all truths,
// plus composition accuracy (GMM on the whole latent) for each presence. Junk particles are left out.
//
// It is a reference, not a proof of optimality: the posterior mean minimises squared error, not rank
// correlation. The per-particle scale is given to it (as truth), the grid prior is the simulation's.
#pragma once
#include <string>
#include <vector>

#include "engine/latent_metrics.h"
#include "engine/simulate_system.h"

namespace cugmm {

struct OracleOptions {
  int max_particles = 1000;  // the first this many non-junk particles
  int grid = 0;              // states per continuous motion; 0: 41 (one motion), 17 (several); full rotations 72
  int pose_samples = 16;     // for the pose-marginalised reference
  int bootstrap = 200;
  uint64_t seed = 7;
};

struct OracleFigure {
  std::string metric;  // "linear_motion", "rotation", "composition", "canonical_correlation_1", ...
  std::string motion;  // the truth column(s) it is computed against
  Interval true_pose, marginal;
};

struct OracleResult {
  std::vector<OracleFigure> figures;
  std::vector<size_t> particles;      // indices (STAR order) of the particles used
  Matrix latent_true, latent_marginal;  // the oracle's "latent": posterior means, particles x dims
  Matrix truth;                          // particles x motions (radians for rotations)
  int grid_states = 0, pose_samples = 0;
  double seconds = 0;
};

// `images`: the set's images (count x box^2, STAR order), as simulate_system returns them.
OracleResult oracle_reference(const HeteroSystem& system, const TruthSimOptions& sim, const SimulatedTruth& set,
                              const std::vector<float>& images, const OracleOptions& opt = {});

// The metrics a latent (particles x d; truth: particles x motions, radians for rotations) earns on this
// system, scored the way the oracle's are (the train benchmark puts its figures beside the oracle's).
struct MetricFigure {
  std::string metric, motion;
  Interval value;
};
std::vector<MetricFigure> score_latent(const HeteroSystem& system, const Matrix& latent, const Matrix& truth,
                                       const BootstrapOptions& bootstrap);

// The simulator's truth table (NAME_truth.csv) for a system: the rows of the particles that are not junk
// (kept: their 0-based indices in STAR order) x one column per motion, rotations in radians. InputError
// naming the file and the line on a short row.
struct TruthTable {
  std::vector<size_t> kept;
  Matrix truth;
};
TruthTable read_truth_table(const HeteroSystem& system, const std::string& truth_csv);

// A trained run's latent.txt (rows in STAR order, d columns) scored with score_latent against the truth table
// the simulator wrote (NAME_truth.csv): junk particles left out, rotation states in radians, as the oracle
// reference's figures are. What the demo and bench_accuracy report beside the oracle reference.
std::vector<MetricFigure> score_latent_file(const HeteroSystem& system, const std::string& latent_txt, int d,
                                            const std::string& truth_csv, const BootstrapOptions& bootstrap);

// oracle.json: every figure (value, 95% interval) for both references, the grid, the particles used.
void write_oracle_json(const std::string& path, const OracleResult& r);

}  // namespace cugmm
