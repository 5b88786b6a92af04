// The encoder's input (DESIGN §1 step 3): per particle, d score / d (5G parameters) of the FRC score
// (plain, SNR-weighted with `ring_weights`: engine/ring_weights.h, or the pooled score with them as `pooled`) at the neutral model (engine/projector.h, one shared parameter row, per-particle gradients), normalised per
// column over the data set ((g - mean) / sd, mean and sd from the training set), computed once and stored
// in a memory-mapped file in the run directory, so sets larger than RAM stream from disk.
//
// File layout (native byte order):
//   [0, 64)     preamble: magic "CUGMMFT\0", version, precision (0 fp32, 1 fp16), count, width (5G), JSON
//               length, data offset
//   [64, ...)   JSON: the key (what the features were computed from: cache path/size/mtime, neutral model
//               checksum, band, CTF choice) and the normalisation's provenance
//   ...         mean (width f32), sd (width f32)
//   data_offset count x width values (fp32 or IEEE fp16), 4096-byte aligned
//   last 8      FNV-1a 64 of everything before it
// Written under a temporary name and renamed. Opening checks sizes and the checksum (a full read of the
// file) and refuses a file whose key differs from the run's (stale: the particles, model or band changed).
//
// Precision: fp16 halves the file (10G bytes per particle) and the per-batch read; normalised features are
// O(1), well inside fp16's range, with a 2^-11 relative rounding, far below the features' own noise.
#pragma once
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/comm.h"
#include "core/context.h"
#include "engine/particle_batch.h"

namespace cugmm {

enum class FeaturePrecision { fp32 = 0, fp16 = 1 };
FeaturePrecision parse_feature_precision(const std::string& s);
const char* feature_precision_name(FeaturePrecision p);

struct FeatureNorm {
  std::vector<float> mean, sd;  // width each; sd 0: a constant column, whose features are 0
};

// Computes the features of every particle of `batcher`'s cache against `neutral` (5G floats) on cx's
// device and writes them to `path`. With `norm` empty the normalisation is measured over the rows with
// use_for_norm[i] set (all when empty) and returned in it; otherwise the given one is applied (embedding a
// new set with a trained run's normalisation). Progress shown.
// With a comm of several ranks (data-parallel training, embed under mpirun) each rank computes its share
// of the particles (rank_share) into a scratch part beside `path`, the normalisation sums are added over
// the ranks, and rank 0 writes the file from the parts in order: `path` must be on a file system every
// rank sees (a rank 0 that cannot read another's part says so). Collective; every rank returns once the
// file is there.
void build_feature_file(const std::string& path, Context& cx, const ParticleBatcher& batcher,
                        const std::vector<float>& neutral, const nlohmann::json& key, FeaturePrecision precision,
                        FeatureNorm& norm, const std::vector<char>& use_for_norm = {}, int batch = 64,
                        const std::vector<float>& ring_weights = {}, Comm* comm = nullptr, bool pooled = false);

class FeatureFile {
 public:
  // Throws cugmm::InputError naming the file when it is damaged, not a feature file, or its key differs
  // from `key` (saying which entry).
  FeatureFile(const std::string& path, const nlohmann::json& key);
  ~FeatureFile();
  FeatureFile(const FeatureFile&) = delete;
  FeatureFile& operator=(const FeatureFile&) = delete;

  size_t count() const { return count_; }
  size_t width() const { return width_; }
  FeaturePrecision precision() const { return precision_; }
  const FeatureNorm& norm() const { return norm_; }
  // Rows index[0..n) as fp32, n x width, host memory.
  void gather(const size_t* index, int n, float* out) const;

 private:
  std::string path_;
  size_t count_ = 0, width_ = 0;
  FeaturePrecision precision_ = FeaturePrecision::fp32;
  FeatureNorm norm_;
  const unsigned char* map_ = nullptr;
  size_t map_size_ = 0;
  const unsigned char* data_ = nullptr;
};

// A feature file at `path` that answers `key`, or why not ("" when it does).
std::string feature_file_stale_reason(const std::string& path, const nlohmann::json& key);

uint16_t float_to_half(float f);  // round to nearest even; overflow to inf
float half_to_float(uint16_t h);

}  // namespace cugmm
