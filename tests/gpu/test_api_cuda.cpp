// The library API on a GPU (issue 20): "cuda:N" picks a GPU and refuses one that is not there; training on
// the engine's own stream and on a stream the caller owns agrees with the CPU (the GPU's float-atomic
// splat is not bit-reproducible, so the losses are compared with a tolerance); z = 0 decodes to the
// neutral model exactly on the GPU too.
#include <cuda_runtime.h>
#include <doctest/doctest.h>

#include <cmath>

#include "cugmm/cugmm.h"
#include "../support.h"

using namespace cugmm;

namespace {

EngineOptions quiet(const std::string& device, CudaStream stream = nullptr) {
  EngineOptions o;
  o.device = device;
  o.stream = stream;
  o.threads = 2;
  o.log = [](bool, const std::string&) {};
  return o;
}

}  // namespace

TEST_CASE("cuda:N picks a GPU; a number beyond the machine's is refused") {
  int n = 0;
  REQUIRE(cudaGetDeviceCount(&n) == cudaSuccess);
  Engine e(quiet("cuda:0"));
  CHECK(e.device() == "cuda:0");
  CHECK_THROWS_WITH_AS(Engine(quiet("cuda:" + std::to_string(n))), doctest::Contains("there is no such GPU"), Error);
}

TEST_CASE("training on the engine's stream and on the caller's agrees with the CPU") {
  const std::string dir = test::scratch_dir("api_cuda");
  ExampleSettings es;
  es.count = 120;
  es.box = 32;
  es.pixel_size = 6.0;
  Engine cpu(quiet("cpu"));
  const ExampleData ex = cpu.make_example(es);
  TrainSettings s;
  s.latent = 2;
  s.hidden = 32;
  s.depth = 2;
  s.epochs = 2;
  s.batch = 16;
  s.lr = 1e-3f;
  const Particles p = cpu.import_particles(ex.arrays(), dir + "/imported");
  const Run rc = cpu.train(p, ex.neutral, s, dir + "/cpu");

  cudaStream_t mine = nullptr;
  REQUIRE(cudaStreamCreateWithFlags(&mine, cudaStreamNonBlocking) == cudaSuccess);
  {
    Engine own(quiet("cuda:0")), caller(quiet("cuda:0", mine));
    const Run ro = own.train(own.load_particles(p.star()), ex.neutral, s, dir + "/gpu_own");
    const Run rs = caller.train(caller.load_particles(p.star()), ex.neutral, s, dir + "/gpu_stream");
    for (const Run* r : {&ro, &rs}) {
      REQUIRE(r->history().size() == rc.history().size());
      for (size_t k = 0; k < rc.history().size(); ++k)
        CHECK(std::abs(r->history()[k].train_loss - rc.history()[k].train_loss) < 2e-2);
    }
    const Gaussians g = caller.decode(rs, {0.f, 0.f}).at(0);
    CHECK(g.x == ex.neutral.x);
    CHECK(g.amplitude == ex.neutral.amplitude);
    const Embedding em = caller.embed(rs, caller.load_particles(p.star()), dir + "/gpu_embed");
    CHECK(em.latent.size() == rs.latent().size());
  }
  cudaStreamDestroy(mine);
}
