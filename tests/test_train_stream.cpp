// Issue 13 §4 (scale): particle sets larger than the memory a run may own stream from the memory-mapped
// particle cache and feature file. `cugmm train` (one epoch, a tiny network, then the embedding pass) runs
// under an RLIMIT_DATA (`prlimit --data`) below the size of its cache + feature file, and must finish.
// The limit is 416 MiB, not smaller: OpenBLAS reserves a 256 MiB buffer per thread at start-up (and spins
// forever when it cannot), and the run's own memory is ~30-75 MiB beside it; so one thread, and a cache of
// 2,560 particles of 256 px (534 MB).
//
// Why RLIMIT_DATA and not `ulimit -v` (RLIMIT_AS): the address-space limit counts every mapping, so a
// whole-file read-only mapping of a cache larger than the limit fails at mmap() although not one byte of it
// need be resident; it cannot tell streaming from loading. RLIMIT_DATA (Linux >= 4.7) counts the memory a
// process owns (heap, anonymous and private writable mappings) and not shared file mappings, whose pages the
// kernel drops and re-reads as it needs: a run that copied the particles or features into its own memory
// (a vector of all rows, a read() of the file) fails under it. A control below shows the limit bites: a
// process under it cannot allocate the data's size. (A memory cgroup would cap the page cache too, but it
// is not available to an unprivileged test; the peak RSS is printed, and counts mapped file pages the
// kernel may reclaim, so it is reported, not asserted.)
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "engine/particle_cache.h"
#include "engine/simulate.h"
#include "io/model.h"
#include "kernels/philox.h"
#include "support.h"

using namespace cugmm;
namespace fs = std::filesystem;

namespace {

// Whether a process under RLIMIT_DATA = limit can allocate and touch `bytes` (in a forked child).
bool can_allocate_under(size_t limit, size_t bytes) {
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    struct rlimit r = {limit, limit};
    if (::setrlimit(RLIMIT_DATA, &r) != 0) ::_exit(2);
    char* p = static_cast<char*>(std::malloc(bytes));
    if (!p) ::_exit(1);
    std::memset(p, 1, bytes);
    ::_exit(0);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) != 2);
  return WEXITSTATUS(status) == 0;
}

}  // namespace

TEST_CASE("training streams a particle set larger than the memory the run may own (RLIMIT_DATA)") {
  if (!test::oracle("prlimit")) return;
  const std::string dir = test::scratch_dir("train_stream");
  // 256 px images: 206 KB of cached coefficients per particle (the full band), so a small count of cheap
  // particles (G = 300) makes a large cache.
  io::GaussianModel model;
  model.box_size = 256;
  model.pixel_size = 2.0;
  const int G = 300;
  model.resize(G);
  for (int j = 0; j < G; ++j) {
    model.x[j] = float(60 * (2 * philox_uniform(11, 0, 3 * j) - 1));
    model.y[j] = float(60 * (2 * philox_uniform(11, 0, 3 * j + 1) - 1));
    model.z[j] = float(60 * (2 * philox_uniform(11, 0, 3 * j + 2) - 1));
    model.amplitude[j] = 1.f;
    model.width[j] = 3.f;
  }
  io::write_model(dir + "/neutral.txt", model);
  SimulationOptions so;
  so.count = 2560;
  const SimulatedParticles sim = simulate_particles({model}, so, dir);
  CacheOptions co;
  co.particles = sim.star;
  const std::string cache_path = dir + "/particles.cugmm-cache";
  { ParticleCache cache = open_particle_cache(co, cache_path, true); }

  // The 5G features as the encoder's input (--feature-pca 0): the default input's fit holds a fixed amount
  // whatever the particle count (the memory plan's "while the noise-whitened input is fitted" line: 314 MiB here,
  // mostly the streamed solver's capacitance matrix over 3,000 noise and 2,560 view rows), which this limit,
  // chosen below what streams, does not leave room for; what is tested is that the cache and the feature file
  // stream, which they do the same way under either input.
  const size_t limit = size_t(416) << 20;
  const std::string out = dir + "/run";
  const std::string cmd = "prlimit --data=" + std::to_string(limit) + " " + test::cugmm_exe() +
                          " train --particles " + sim.star + " --model " + dir + "/neutral.txt --cache " + cache_path +
                          " --out " + out +
                          " --epochs 1 --batch 64 --hidden 16 --depth 1 --latent 2 --val-fraction 0 --device cpu"
                          " --threads 1 --feature-pca 0";
  struct rusage before;
  ::getrusage(RUSAGE_CHILDREN, &before);
  const test::RunResult r = test::run(cmd);
  REQUIRE_MESSAGE(r.status == 0, r.out);
  struct rusage after;
  ::getrusage(RUSAGE_CHILDREN, &after);
  const size_t data = size_t(fs::file_size(cache_path)) + size_t(fs::file_size(out + "/features.cugmm-features"));
  MESSAGE("cache + features " << (data >> 20) << " MiB streamed under RLIMIT_DATA " << (limit >> 20)
                              << " MiB; the run's peak RSS (file pages included) " << (after.ru_maxrss >> 10) << " MiB");
  CHECK(data > limit + limit / 5);
  CHECK(fs::exists(out + "/latent.txt"));
  // The control: under the same limit the data cannot be held in the process's own memory.
  CHECK_FALSE(can_allocate_under(limit, data));
  CHECK(can_allocate_under(limit, limit / 4));
}
