// CUDA back-projection against the CPU backend (the oracle): the same images, poses and CTFs give the same
// accumulated grids to float rounding (the CUDA sums use atomics, so their order differs), and the same
// reconstructions.
#include <doctest/doctest.h>

#include <cmath>
#include <random>

#include "core/error.h"
#include "engine/fsc.h"
#include "engine/reconstruct.h"

using namespace cugmm;

namespace {

void make_batch(size_t count, int n, std::vector<float>& ims, std::vector<ImagePose>& poses) {
  std::mt19937 rng(17);
  std::uniform_real_distribution<double> u(0, 1);
  std::normal_distribution<float> g(0, 1);
  ims.resize(count * n * n);
  for (float& v : ims) v = g(rng);
  poses.resize(count);
  for (auto& p : poses) {
    p.rot = 360 * u(rng);
    p.tilt = std::acos(2 * u(rng) - 1) * 180 / 3.141592653589793;
    p.psi = 360 * u(rng);
    p.origin_x = 8 * u(rng) - 4;
    p.origin_y = 8 * u(rng) - 4;
    p.ctf.defocus_u = 6000 + 10000 * u(rng);
    p.ctf.defocus_v = p.ctf.defocus_u - 500;
    p.ctf.defocus_angle = 180 * u(rng);
    p.ctf.bfactor = 20;
  }
}

// max |a - b| over max |a|.
double rel_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double m = 0, d = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    m = std::max(m, double(std::fabs(a[i])));
    d = std::max(d, double(std::fabs(a[i] - b[i])));
  }
  return d / m;
}

}  // namespace

TEST_CASE("CUDA and CPU back-projection accumulate the same grids") {
  for (CtfMode mode : {CtfMode::full, CtfMode::phase_flipped, CtfMode::none})
    for (int padding : {1, 2}) {
      const int n = 36;
      std::vector<float> ims;
      std::vector<ImagePose> poses;
      make_batch(150, n, ims, poses);  // not a multiple of the CUDA chunk: a short last chunk
      ReconstructOptions opt;
      opt.ctf = mode;
      opt.padding = padding;
      Context cx(Device::cuda);
      auto cpu = Backprojector::create(cpu_context(), n, 1.7, opt);
      auto gpu = Backprojector::create(cx, n, 1.7, opt);
      cpu->insert(ims.data(), poses.data(), poses.size());
      gpu->insert(ims.data(), poses.data(), 100);
      gpu->insert(ims.data() + 100 * n * n, poses.data() + 100, 50);
      CHECK(gpu->inserted() == 150);
      FourierGrid a = cpu->grid(), b = gpu->grid();
      REQUIRE(a.data.size() == b.data.size());
      std::vector<float> ar(2 * a.data.size()), br(2 * b.data.size());
      for (size_t i = 0; i < a.data.size(); ++i) {
        ar[2 * i] = a.data[i].real(); ar[2 * i + 1] = a.data[i].imag();
        br[2 * i] = b.data[i].real(); br[2 * i + 1] = b.data[i].imag();
      }
      CAPTURE(int(mode));
      CAPTURE(padding);
      CHECK(rel_diff(ar, br) < 1e-4);
      CHECK(rel_diff(a.weight, b.weight) < 1e-4);
      std::vector<float> va = solve(a, opt.wiener_tau), vb = solve(b, opt.wiener_tau);
      FscCurve c = fsc(va.data(), vb.data(), n, 1.7);
      for (int s = 1; s <= n / 2; ++s) CHECK(c.value[s] > 0.9999);
    }
}

TEST_CASE("CUDA back-projection rejects a non-finite pixel, naming the image") {
  const int n = 16;
  std::vector<float> ims(70 * n * n, 0.f);
  ims[size_t(67) * n * n + 3] = INFINITY;
  std::vector<ImagePose> poses(70);
  Context cx(Device::cuda);
  auto gpu = Backprojector::create(cx, n, 1.0, ReconstructOptions{});
  CHECK_THROWS_WITH_AS(gpu->insert(ims.data(), poses.data(), 70), doctest::Contains("image 67"), Error);
}
