// What `cugmm view` puts into its page, gathered from a training run directory (engine/train_outputs.h):
// the particles' latent points (rlnCugmmLatent1..d of particles.star, so rows and STAR rows cannot drift
// apart), their PCA and mixture clusters (engine/latent_metrics.h), per-particle colourings (the fit
// rlnCugmmFrc, ground-truth columns from a truth table), the STAR document split into a header and one line
// per particle (the page writes lasso subsets as header + chosen lines, every column kept), and the decoder
// exactly as decode_points() evaluates it (architecture, parameters, running statistics, StepConsts).
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "core/context.h"
#include "kernels/train_step.h"
#include "nn/layers.h"

namespace cugmm {

struct ViewerInput {
  int d = 0, G = 0;
  int box = 0;          // the neutral model's grid: "1e-3 of the box" is 1e-3 * box * pixel Å
  double pixel = 0;
  std::vector<float> neutral;  // 5G, [x(G) y(G) z(G) a(G) s(G)]
  StepConsts k;                // params = neutral + scale x raw, widths clamped (kernels/train_step.h)
  nn::Arch arch;               // the decoder, in inference mode
  std::vector<float> params, state;
  size_t n = 0;
  std::vector<float> latent;   // n x d
  std::vector<double> mean;    // d: the latent mean, the origin of the PCA plane
  std::vector<double> components, explained;  // d x d (row k = component k), d
  std::vector<int> clusters;   // n, mixture labels 0..K-1
  int cluster_count = 0;
  std::vector<std::pair<std::string, std::vector<float>>> colourings;  // name, n values
  std::string star_header;     // every block, the particle loop's labels, no rows
  std::vector<std::string> star_rows;  // n lines, without their newline
};

// Synthetic inputs (tests, benchmarks) build ViewerInput directly; this reads a run. truth_csv (optional):
// one row per particle in STAR order with a header line (simulate_system's NAME_truth.csv); every column
// but "index" becomes a colouring. clusters: components of the mixture fitted to the latent (0: none).
ViewerInput read_viewer_input(const std::string& run_dir, const std::string& truth_csv, int clusters, Context& cx);

// Fills mean, components, explained and (clusters > 0) the mixture labels from `latent`.
void analyse_latent(ViewerInput& in, int clusters);

}  // namespace cugmm
