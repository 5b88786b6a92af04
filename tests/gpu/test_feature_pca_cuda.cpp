// The encoder's input transform on CUDA (engine/feature_transform.h; the component scores are computed once
// per run on the host, encoder_input_table, from the features the GPU computed): a run trained on the CPU
// with --feature-pca --feature-pca-whiten --feature-row-rms, embedded on the GPU, gives the CPU run's latent
// within what the GPU's float atomics in the features allow. Exits 77 (skipped) without a GPU.
#include <doctest/doctest.h>

#include "../train_data.h"

using namespace cugmm;
using namespace cugmm::train_test;

TEST_CASE("a --feature-pca run embedded on CUDA gives the CPU run's latent") {
  DataSet d = make_data("feature_pca_cuda", "linear", 160, 2.0);
  const std::string run = d.dir + "/run";
  // Shifts kept as given: the alignment is an ascent whose kept steps could differ between the backends.
  test::RunResult r = test::run(train_cmd(d, run, "--batch 16 --epochs 2 --latent 2 --hidden 64 --no-align-shifts "
                                                  "--feature-pca 12 --feature-pca-whiten --feature-row-rms"));
  REQUIRE_MESSAGE(r.status == 0, r.out);
  r = test::run(test::cugmm_exe() + " embed " + run + " --particles " + d.star + " --out " + d.dir +
                "/embedded --device cuda");
  REQUIRE_MESSAGE(r.status == 0, r.out);
  const Matrix x = read_latent(run + "/latent.txt"), y = read_latent(d.dir + "/embedded/latent.txt");
  REQUIRE(x.values.size() == y.values.size());
  REQUIRE(x.cols == 2);
  for (size_t c = 0; c < 2; ++c) {
    double mean = 0, var = 0, diff = 0;
    for (size_t i = 0; i < x.rows; ++i) mean += x.values[i * 2 + c] / double(x.rows);
    for (size_t i = 0; i < x.rows; ++i) {
      var += (x.values[i * 2 + c] - mean) * (x.values[i * 2 + c] - mean) / double(x.rows);
      diff = std::max(diff, std::abs(x.values[i * 2 + c] - y.values[i * 2 + c]));
    }
    // A wrong or missing projection moves every point by about the latent's own spread.
    CHECK(diff < 0.02 * std::sqrt(var));
  }
}
