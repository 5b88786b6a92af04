// The CUDA fit-map loss and gradient against the CPU loops (the oracle): same band, target and model give
// the same loss and gradients to float rounding (different summation orders and per-coefficient exp/sincos
// instead of tables), and a short fit on the GPU reaches the same FSC as on the CPU.
#include <doctest/doctest.h>

#include <cmath>
#include <random>

#include "core/context.h"
#include "engine/atom_map.h"
#include "engine/example_atoms.h"
#include "engine/fft.h"
#include "engine/fit_map.h"
#include "engine/gaussian_fourier3d.h"
#include "engine/render.h"

using namespace cugmm;

TEST_CASE("fit-map CUDA loss and gradient match the CPU") {
  const int n = 64;
  const double pixel = 2.0;
  ExampleAtoms ex = make_example_atoms();
  io::Image map = render_atom_map(ex.model, nullptr, n, pixel, centring_shift(ex.model, n, pixel));
  std::vector<cfloat> half(size_t(n) * n * (n / 2 + 1));
  fft3_r2c(n, n, n, map.data.data(), half.data());
  Band3d b = make_band3d(n, pixel, 3 * pixel);
  std::vector<float> tr, ti;
  band3d_gather(b, half.data(), tr, ti);
  std::mt19937 rng(2);
  std::uniform_real_distribution<float> u(-1, 1);
  const size_t g = 700;
  std::vector<float> x(g), y(g), z(g), a(g), s(g);
  for (size_t j = 0; j < g; ++j) {
    x[j] = 20 * u(rng); y[j] = 20 * u(rng); z[j] = 30 * u(rng);
    a[j] = 50 + 20 * u(rng); s[j] = 2.5f + u(rng);
  }
  GaussSoA<float> p{x.data(), y.data(), z.data(), a.data(), s.data(), g};
  std::vector<float> gc(5 * g), gg(5 * g);
  auto grads = [&](std::vector<float>& v) {
    return GaussGrad<float>{v.data(), v.data() + g, v.data() + 2 * g, v.data() + 3 * g, v.data() + 4 * g};
  };
  Context cpu(Device::cpu), gpu(Device::cuda);
  auto lc = Fourier3dLoss::create(cpu, b, tr, ti);
  auto lg = Fourier3dLoss::create(gpu, b, tr, ti);
  const double loss_c = lc->loss_grad(p, grads(gc));
  const double loss_g = lg->loss_grad(p, grads(gg));
  CHECK(loss_g == doctest::Approx(loss_c).epsilon(1e-4));
  for (int c = 0; c < 5; ++c) {
    double m = 0, d = 0;
    for (size_t j = 0; j < g; ++j) {
      m = std::max(m, double(std::fabs(gc[c * g + j])));
      d = std::max(d, double(std::fabs(gc[c * g + j] - gg[c * g + j])));
    }
    CAPTURE(c);
    CHECK(d <= 1e-3 * m);
  }
}

TEST_CASE("fit-map on CUDA reaches the stop rule like the CPU") {
  const int n = 48;
  const double pixel = 2.5;
  ExampleAtoms ex = make_example_atoms();
  FitMapInputs in;
  in.map = render_atom_map(ex.model, nullptr, n, pixel, centring_shift(ex.model, n, pixel));
  FitMapOptions opt;
  opt.seed = 3;
  Context gpu(Device::cuda);
  FitMapResult r = fit_map(in, opt, gpu);
  MESSAGE(r.verdict);
  CHECK(r.device == "cuda");
  CHECK(r.reached);
}
