// What `cugmm analyze` computes on a latent space (issue 15): clusters with centres snapped to real
// particles, straight paths through the latent space (a PC or a localised direction, from the 5th to the
// 95th percentile of the particles along it), and particle selections (a ball, the K nearest, a range along
// a direction). PCA and the mixture come from engine/latent_metrics.h; nothing here is written to disk.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/latent_metrics.h"

namespace cugmm {

struct LatentClusters {
  std::vector<int> labels;            // N, 0..k-1, numbered by decreasing size
  Matrix means;                       // k x d, the mixture's means
  std::vector<size_t> centre;         // k: the member particle nearest its cluster's mean (a real particle)
  std::vector<size_t> size;           // k
};
// A k-component full-covariance Gaussian mixture (fit_gmm) of the latent points.
LatentClusters cluster_latent(const Matrix& latent, int k, uint64_t seed = 1);

// A straight path origin + t * direction (direction unit length), t over `frames` evenly spaced values from
// the `lo`-th to the `hi`-th percentile of the particles' coordinates (latent - origin) . direction.
struct LatentPath {
  std::string name;                   // "pc1", "local1", ...: the file names
  std::vector<double> origin, direction;
  std::vector<double> t;              // frames
  Matrix points;                      // frames x d
  std::vector<double> coordinate;     // N: every particle's t
};
LatentPath latent_path(const std::string& name, const Matrix& latent, const std::vector<double>& origin,
                       const std::vector<double>& direction, int frames, double lo = 5, double hi = 95);

std::vector<double> latent_mean(const Matrix& latent);

// The core of an analysis, shared by `cugmm analyze` and the library's Engine::analyze: the PCA of the points,
// k clusters (0: none; seed: the mixture's) and the paths along the first min(pcs, d) principal components.
struct LatentSummary {
  Pca pca;
  std::vector<double> mean;
  LatentClusters clusters;            // empty when k = 0
  std::vector<LatentPath> paths;      // pc1, pc2, ...
};
LatentSummary summarise_latent(const Matrix& latent, int k, int pcs, int frames, uint64_t seed);

// Rows (0-based, increasing) within `radius` of `point`, the `k` nearest to it (increasing distance), or
// with coordinate along a path in [lo, hi].
std::vector<size_t> rows_within(const Matrix& latent, const std::vector<double>& point, double radius);
std::vector<size_t> rows_nearest(const Matrix& latent, const std::vector<double>& point, size_t k);
std::vector<size_t> rows_in_range(const std::vector<double>& coordinate, double lo, double hi);

// A symmetry-expanded latent folded back per particle (issue 18): rows r*n .. r*n+n-1 are the n copies of
// particle r (engine/train_outputs.h). `motion` (one per row) says how far each copy's decoded model moves
// from the neutral one (rms_displacement); the chosen copy of a particle is the one that moves most (the copy
// whose movable asymmetric unit shows the particle's own change), the folded latent is that copy's
// (copy-with-largest-motion) or the mean of the copies' (mean).
enum class FoldRule { largest_motion, mean };
FoldRule parse_fold_rule(const std::string& s);  // "copy-with-largest-motion" | "mean"; throws naming --fold
const char* fold_rule_name(FoldRule r);
struct FoldedCopies {
  std::vector<int> chosen;  // per particle: 0-based copy with the largest motion
  Matrix latent;            // particles x d
};
FoldedCopies fold_copies(const Matrix& latent, size_t copies, const std::vector<double>& motion, FoldRule rule);
// RMS distance (Å) of the Gaussian centres of n decoded parameter rows (n x 5G) from the neutral row's.
std::vector<double> rms_displacement(const std::vector<float>& params, const std::vector<float>& neutral, size_t n);

}  // namespace cugmm
