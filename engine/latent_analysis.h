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

// Rows (0-based, increasing) within `radius` of `point`, the `k` nearest to it (increasing distance), or
// with coordinate along a path in [lo, hi].
std::vector<size_t> rows_within(const Matrix& latent, const std::vector<double>& point, double radius);
std::vector<size_t> rows_nearest(const Matrix& latent, const std::vector<double>& point, size_t k);
std::vector<size_t> rows_in_range(const std::vector<double>& coordinate, double lo, double hi);

}  // namespace cugmm
