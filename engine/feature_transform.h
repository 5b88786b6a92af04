// What the encoder reads of a particle's gradient features (TrainConfig feature_row_rms, feature_pca; issue 14,
// docs/accuracy.md round 7): the feature file's row (normalised per column over the data set, engine/features.h),
// optionally scaled to unit RMS (the particle's own overall gradient scale, which depends on its view, CTF and
// noise, divided out), then optionally projected on the top k principal components of the training particles'
// rows. The components are estimated once per run by a randomized subspace iteration (Halko, Martinsson and
// Tropp 2011) that streams the memory-mapped feature file in chunks, so it works when the features do not fit
// in memory; the run stores them (model.ckpt) and embed applies the very same projection.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "engine/features.h"

namespace cugmm {

struct FeatureTransform {
  // Which parameter kinds' columns the encoder reads (positions x, y, z; amplitudes; widths): the others are
  // zeroed as rows are loaded (TrainConfig::encoder_reads; docs/accuracy.md round 8).
  bool reads[3] = {true, true, true};
  bool row_rms = false;
  int k = 0;                       // principal components (0: the rows themselves)
  std::vector<float> basis;        // width x k, row-major: column j is component j (unit length, or
                                   // 1 / sqrt(variance) when whitened)
  std::vector<double> variance;    // k: each component's variance over the rows it was fitted on
  double total_variance = 0;       // the rows' total variance (the sum over every direction)
};

// In each of n rows of width = 5G values, the columns of the kinds not read (reads: positions, amplitudes,
// widths) set to zero.
void zero_unread_kinds(float* rows, size_t n, size_t width, const bool reads[3]);
// Each of n rows of `width` values scaled to unit RMS in place (a zero row stays zero).
void scale_rows_to_unit_rms(float* rows, size_t n, size_t width);

// Rows of `width` values by index: n indices -> n x width floats (FeatureFile::gather, or a test's rows).
using RowSource = std::function<void(const size_t* index, int n, float* out)>;

// The randomized subspace iteration's steps, shared by fit_feature_pca and the streamed noise-whitened solver
// (engine/noise_features.h): y (width x L, row-major) = the second moment of the rows `rows` (each scaled to
// unit RMS first when row_rms) times q (width x L), one pass in chunks; returns the rows' mean squared norm.
double second_moment_times(const RowSource& source, size_t width, const std::vector<size_t>& rows, bool row_rms,
                           const float* q, int L, float* y);
// The L columns of y (width x L, row-major) replaced in place by an orthonormal basis of their span.
void orthonormalize(float* y, size_t width, int L);
// Column j of f.basis (f.k columns, already sized) from v (width values): its sign fixed (the largest entry
// positive, whatever the solver chose), divided by sqrt(variance) when whiten.
void set_component(FeatureTransform& f, size_t width, int j, const double* v, double variance, bool whiten);

// The scores of `rows` (by index, in that order) on the first k components of t (t.k > 0, k <= t.k), as the
// encoder's input holds them (each row scaled to unit RMS first when t.row_rms): rows.size() x k, row-major,
// the rows read in chunks. TrainConfig::warm_start starts the latent from them.
std::vector<float> component_scores(const RowSource& source, size_t width, const std::vector<size_t>& rows,
                                    const FeatureTransform& t, int k);
// The encoder's input for every particle of a feature file when t.k > 0: its t.k component scores
// (component_scores over rows 0..count-1; count x t.k, row-major, particle order). Training and embedding
// read their batches from this table, computed once per run, instead of streaming 5G features per batch and
// projecting them at every step: the components are fixed for the run, so the scores are too. Empty when
// t.k == 0 (the encoder reads the feature rows themselves). Progress shown.
std::vector<float> encoder_input_table(const FeatureFile& features, const FeatureTransform& t);

// The top k principal components of the rows `rows` (at most max_rows of them, evenly spaced), each row first
// scaled to unit RMS when row_rms. The rows are taken as column-centred (the feature file's normalisation
// centres them), so the components are those of their second moment. Deterministic for a seed; the rows are
// read in chunks, 5 passes. Throws when k is not below both the width and the rows used. Progress shown.
// With whiten each basis column is divided by the square root of its variance, so every component's scores
// have unit variance (a component without variance keeps its unit column).
FeatureTransform fit_feature_pca(const RowSource& source, size_t width, const std::vector<size_t>& rows, int k,
                                 bool row_rms, uint64_t seed, bool whiten = false, size_t max_rows = 20000);
// The same on a feature file's rows.
FeatureTransform fit_feature_pca(const FeatureFile& features, const std::vector<size_t>& rows, int k, bool row_rms,
                                 uint64_t seed, bool whiten = false, size_t max_rows = 20000);

}  // namespace cugmm
