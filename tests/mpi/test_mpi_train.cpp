// Data-parallel training under mpirun with CPU ranks on one machine (issue 19 §5): R ranks x batch B train
// what one process trains with batch R x B (to float tolerance: only the order of the sums differs), a
// run resumes with another rank count, and a failing or killed rank ends the whole job with a message
// instead of leaving the others waiting. Registered only where MPI was found (tests/CMakeLists.txt).
#include <chrono>

#include "../train_data.h"
#include "core/context.h"
#include "engine/trainer.h"

using namespace cugmm;
using namespace cugmm::train_test;

namespace {

// Every test command runs under `timeout` (exit 124 when it fires): a hang fails the test, not the CI job.
std::string mpirun(int ranks) {
  return "timeout -k 10 150 " CUGMM_MPIEXEC " --oversubscribe --allow-run-as-root --bind-to none -np " +
         std::to_string(ranks) + " ";
}

std::string train_ranks(const DataSet& d, const std::string& out, int ranks, const std::string& extra) {
  return mpirun(ranks) + test::cugmm_exe() + " train --particles " + d.star + " --model " + d.model + " --out " + out +
         " --device cpu --threads 1 " + extra;
}

// Both networks' weights of a run, one array.
std::vector<float> weights(const std::string& run) {
  TrainedModel m = load_trained(run + "/model.ckpt", cpu_context());
  std::vector<float> w = m.encoder->params_to_host(), dec = m.decoder->params_to_host();
  w.insert(w.end(), dec.begin(), dec.end());
  return w;
}

// The fraction of weights that differ by more than 1e-4 (a tenth of the learning rate). Adam divides each
// gradient by its own running size, so a weight whose gradient is near 0 moves by +-lr whatever the rounding
// of its sum: a few such weights differ between reduction orders, a different step moves almost all.
double fraction_apart(const std::vector<float>& a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  size_t n = 0;
  for (size_t i = 0; i < a.size(); ++i) n += std::abs(double(a[i]) - double(b[i])) > 1e-4;
  return double(n) / double(a.size());
}

double max_diff(const Matrix& a, const Matrix& b) {
  REQUIRE(a.rows == b.rows);
  REQUIRE(a.cols == b.cols);
  double m = 0;
  for (size_t i = 0; i < a.values.size(); ++i) m = std::max(m, std::abs(a.values[i] - b.values[i]));
  return m;
}

// 147 training particles: 2 steps of 64 per epoch.
const std::string kOpts = "--lr 1e-3 --latent 2 --hidden 64 --val-fraction 0.1";

// One process with one thread like each rank (OpenBLAS splits its sums by thread count).
std::string train_one(const DataSet& d, const std::string& out, const std::string& extra) {
  return test::cugmm_exe() + " train --particles " + d.star + " --model " + d.model + " --out " + out +
         " --device cpu --threads 1 " + extra;
}

}  // namespace

TEST_CASE("2 ranks x batch 32 train what 1 process trains with batch 64; resume with another rank count") {
  DataSet d = make_data("mpi_train", "linear", 160, 2.0);
  const std::string one = d.dir + "/one_b64", two = d.dir + "/two_b32", half = d.dir + "/one_b32";
  test::RunResult r = test::run(train_one(d, one, kOpts + " --epochs 2 --batch 64"));
  REQUIRE_MESSAGE(r.status == 0, r.out);
  r = test::run(train_ranks(d, two, 2, kOpts + " --epochs 2 --batch 32"));
  REQUIRE_MESSAGE(r.status == 0, r.out);
  CHECK(test::contains(test::read_text(two + "/run.json"), "\"global_batch\": 64"));
  // What a rank would train without the exchange: its own batch of 32.
  r = test::run(train_one(d, half, kOpts + " --epochs 2 --batch 32"));
  REQUIRE_MESSAGE(r.status == 0, r.out);

  const std::vector<float> w1 = weights(one), w2 = weights(two), wh = weights(half);
  const double same = fraction_apart(w1, w2), other = fraction_apart(w1, wh);
  const Matrix z1 = read_latent(one + "/latent.txt"), z2 = read_latent(two + "/latent.txt"),
               zh = read_latent(half + "/latent.txt");
  const double zsame = max_diff(z1, z2), zother = max_diff(z1, zh);
  MESSAGE("weights apart by > 1e-4 after 4 steps: 2 ranks x 32 vs 1 process x 64 " << same
          << ", 1 process x 32 vs x 64 " << other << "; latent max difference " << zsame << " vs " << zother);
  // Measured 0.0104 with the issue-14 defaults (SNR-weighted FRC, leaky ReLU), 0.0016 with the earlier ones;
  // a different step moves ~97% (other). 3% keeps a factor of 30 from that.
  CHECK(same < 0.03);
  CHECK(other > 0.5);
  CHECK(zsame < 0.05);
  CHECK(zother > 10 * zsame);

  // embed on 2 ranks (each its half of the particles, features included) == on one process.
  const std::string embed = test::cugmm_exe() + " embed " + one + " --particles " + d.star +
                            " --device cpu --threads 1 --out ";
  r = test::run(embed + d.dir + "/embed1");
  REQUIRE_MESSAGE(r.status == 0, r.out);
  r = test::run(mpirun(2) + embed + d.dir + "/embed2");
  REQUIRE_MESSAGE(r.status == 0, r.out);
  CHECK(max_diff(read_latent(d.dir + "/embed1/latent.txt"), read_latent(d.dir + "/embed2/latent.txt")) < 1e-5);
  CHECK(max_diff(read_latent(d.dir + "/embed1/latent.txt"), z1) < 1e-5);  // train's own embedding

  // Resume: 1 epoch on 2 ranks x 32, then 1 process x 64 (the same global batch) ~ 2 epochs straight.
  const std::string res = d.dir + "/resumed";
  r = test::run(train_ranks(d, res, 2, kOpts + " --epochs 1 --batch 32"));
  REQUIRE_MESSAGE(r.status == 0, r.out);
  r = test::run(train_one(d, res, kOpts + " --epochs 2 --batch 64 --resume"));
  REQUIRE_MESSAGE(r.status == 0, r.out);
  CHECK_MESSAGE(test::contains(r.out, "written by 2 rank(s)"), r.out);
  CHECK(fraction_apart(w1, weights(res)) < 0.03);
  // Another global batch is refused, saying which --batch would do.
  r = test::run(train_ranks(d, res, 2, kOpts + " --epochs 3 --batch 64 --resume"));
  CHECK(r.status != 0);
  CHECK_MESSAGE(test::contains(r.out, "give --batch 64 / ranks"), r.out);
}

TEST_CASE("a failing or killed rank ends the job with a message, without hanging") {
  DataSet d = make_data("mpi_faults", "linear", 160, 2.0);
  const std::string base = test::cugmm_exe() + " train --particles " + d.star + " --device cpu --threads 1 " +
                           "--latent 2 --hidden 64 --val-fraction 0.1 --batch 8 --epochs 2";
  // MPMD: rank 1 gets a model file that does not exist; rank 0 is already waiting for it at the cache.
  const std::string bad = d.dir + "/bad_input";
  auto t0 = std::chrono::steady_clock::now();
  test::RunResult r = test::run(mpirun(1) + base + " --lr 1e-3 --out " + bad + " --model " + d.model + " : -np 1 " +
                                base + " --lr 1e-3 --out " + bad + " --model " + d.dir + "/missing.txt");
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  CHECK_MESSAGE(r.status != 0, r.out);
  CHECK_MESSAGE(r.status != 124, "stopped by the test's timeout: the job hung");
  CHECK_MESSAGE(test::contains(r.out, "cugmm train (rank 1 of 2): error:"), r.out);
  CHECK_MESSAGE(test::contains(r.out, "missing.txt"), r.out);
  MESSAGE("failing input on rank 1: the job ended after " << s << " s");

  // Rank 1 trains with another learning rate: its weights drift from rank 0's, which the end of epoch 1
  // finds, and the job stops naming it.
  const std::string drift = " --model " + d.model + " --out " + d.dir + "/drift";
  r = test::run(mpirun(1) + base + drift + " --lr 1e-3 : -np 1 " + base + drift + " --lr 2e-3");
  CHECK_MESSAGE(r.status != 0, r.out);
  CHECK_MESSAGE(r.status != 124, "stopped by the test's timeout: the job hung");
  CHECK_MESSAGE(test::contains(r.out, "rank 1's encoder weights differ from rank 0's"), r.out);

  // A rank killed mid-training (SIGKILL, no chance to say anything): Open MPI ends the job.
  const std::string out = d.dir + "/killed";
  t0 = std::chrono::steady_clock::now();
  r = test::run(train_ranks(d, out, 2, kOpts + " --batch 8 --epochs 100000") + " > " + d.dir + "/killed.log 2>&1 & " +
                "M=$!; for i in $(seq 600); do [ -f " + out + "/model.ckpt ] && break; sleep 0.2; done; " +
                "P=$(pgrep -P $(pgrep -P $M) cugmm | tail -n 1); echo killing $P; kill -9 $P; wait $M; echo rc=$?; cat " +
                d.dir + "/killed.log");
  s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  CHECK_MESSAGE(test::contains(r.out, "killing "), r.out);
  CHECK_MESSAGE(!test::contains(r.out, "rc=0"), r.out);
  CHECK_MESSAGE(!test::contains(r.out, "rc=124"), r.out);  // the test's timeout: the job hung
  CHECK(s < 140);
  CHECK_MESSAGE(test::contains(r.out, "signal 9"), r.out);
  MESSAGE("killed rank: the job ended after " << s << " s (including the first epoch)");

  // SIGUSR1 to mpirun (the child of `timeout`; forwarded to every rank, where Ctrl-C would end the job) stops every rank at the
  // same batch with a resumable checkpoint; one process resumes it with the same global batch.
  const std::string stop = d.dir + "/stopped";
  r = test::run(train_ranks(d, stop, 2, kOpts + " --batch 8 --epochs 100000") + " > " + d.dir + "/stop.log 2>&1 & " +
                "M=$!; for i in $(seq 600); do [ -f " + stop + "/model.ckpt ] && break; sleep 0.2; done; " +
                "kill -USR1 $(pgrep -P $M); wait $M; echo rc=$?; cat " + d.dir + "/stop.log");
  CHECK_MESSAGE(test::contains(r.out, "rc=130"), r.out);
  CHECK_MESSAGE(test::contains(r.out, "resumable checkpoint"), r.out);
  r = test::run(train_one(d, stop, kOpts + " --batch 16 --epochs 3 --resume"));
  CHECK_MESSAGE(r.status == 0, r.out);
  CHECK_MESSAGE(test::contains(r.out, "written by 2 rank(s)"), r.out);
}

TEST_CASE("--exchange low-rank, dense and auto train what one process trains with the doubled batch") {
  DataSet d = make_data("mpi_low_rank", "linear", 160, 2.0);
  const std::string one = d.dir + "/one_b64", low = d.dir + "/low_rank", dense = d.dir + "/dense",
                    automatic = d.dir + "/auto";
  test::RunResult r = test::run(train_one(d, one, kOpts + " --epochs 2 --batch 64"));
  REQUIRE_MESSAGE(r.status == 0, r.out);
  r = test::run(train_ranks(d, low, 2, kOpts + " --epochs 2 --batch 32 --exchange low-rank"));
  REQUIRE_MESSAGE(r.status == 0, r.out);
  CHECK_MESSAGE(test::contains(r.out, "(--exchange low-rank)"), r.out);
  r = test::run(train_ranks(d, dense, 2, kOpts + " --epochs 2 --batch 32"));  // dense: the default
  REQUIRE_MESSAGE(r.status == 0, r.out);
  r = test::run(train_ranks(d, automatic, 2, kOpts + " --epochs 2 --batch 32 --exchange auto"));
  REQUIRE_MESSAGE(r.status == 0, r.out);
  const std::vector<float> w1 = weights(one);
  const double low_apart = fraction_apart(w1, weights(low)), dense_apart = fraction_apart(w1, weights(dense)),
               auto_apart = fraction_apart(w1, weights(automatic));
  MESSAGE("weights apart by > 1e-4 from 1 process x 64: low-rank " << low_apart << ", dense " << dense_apart
          << ", auto " << auto_apart);
  // Measured 0.036, 0.010, 0.010 (most of it in the encoder's first layer, whose 1,930 inputs have many
  // near-zero gradients that Adam moves by +-lr whichever way rounding tips them); a different step moves
  // ~97% (the first test). tests/test_gradient_exchange.cpp checks each mode's sums to 1e-6.
  CHECK(low_apart < 0.1);
  CHECK(dense_apart < 0.1);
  CHECK(auto_apart < 0.1);
  // The plan is in run.json, one entry per dense layer of each network.
  const std::string run = test::read_text(automatic + "/run.json");
  CHECK(test::contains(run, "\"break_even_batch\""));
  CHECK(test::contains(run, "\"link_bytes_per_s\""));
  CHECK(test::contains(test::read_text(low + "/run.json"), "\"mode\": \"low-rank\""));
  // A bad value is refused before any work.
  r = test::run(train_ranks(d, d.dir + "/bad", 2, kOpts + " --epochs 1 --batch 32 --exchange sparse"));
  CHECK(r.status != 0);
  CHECK_MESSAGE(test::contains(r.out, "--exchange must be dense, low-rank or auto, not 'sparse'"), r.out);
}
