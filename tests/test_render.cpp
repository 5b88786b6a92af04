// Rendering a Gaussian model to a map (engine/render.h): units (mass per voxel), centre and axis
// conventions against the exact 3-D Fourier transform, and independence from the thread count.
#include <doctest/doctest.h>
#include <omp.h>

#include <cmath>
#include <complex>
#include <random>
#include <vector>

#include "core/error.h"
#include "engine/fft.h"
#include "engine/render.h"
#include "io/mrc.h"
#include "kernels/geometry.h"
#include "support.h"

using namespace cugmm;

namespace {

io::GaussianModel random_model(int g, unsigned seed, double spread, double s_lo, double s_hi) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> pos(-spread, spread), amp(0.5, 2.0), wid(s_lo, s_hi);
  io::GaussianModel m;
  m.box_size = 48;
  m.pixel_size = 2.0;
  m.resize(size_t(g));
  for (int j = 0; j < g; ++j) {
    m.x[j] = float(pos(rng)); m.y[j] = float(pos(rng)); m.z[j] = float(pos(rng));
    m.amplitude[j] = float(amp(rng)); m.width[j] = float(wid(rng));
  }
  return m;
}

}  // namespace

TEST_CASE("render: a voxel holds the density times the voxel volume; the map sums to the total mass") {
  io::GaussianModel m;
  m.box_size = 32;
  m.pixel_size = 1.5;
  m.resize(1);
  m.x[0] = 3.0f; m.y[0] = -4.5f; m.z[0] = 1.5f;  // on voxel (18, 13, 17)
  m.amplitude[0] = 7.0f;
  m.width[0] = 3.0f;
  io::Image v = render_volume(m);
  REQUIRE(v.nx == 32);
  CHECK(v.pixel_size == doctest::Approx(1.5));
  const double s = 3.0, px = 1.5, peak = 7.0 * std::pow(2 * kPi * s * s, -1.5) * px * px * px;
  CHECK(v.at(18, 13, 17) == doctest::Approx(peak).epsilon(1e-5));
  // One voxel off along each axis: the centre convention (voxel N/2 = 0) and x-fastest order.
  CHECK(v.at(19, 13, 17) == doctest::Approx(peak * std::exp(-px * px / (2 * s * s))).epsilon(1e-5));
  CHECK(v.at(18, 15, 17) == doctest::Approx(peak * std::exp(-4 * px * px / (2 * s * s))).epsilon(1e-5));
  CHECK(v.at(18, 13, 14) == doctest::Approx(peak * std::exp(-9 * px * px / (2 * s * s))).epsilon(1e-5));
  double sum = 0;
  for (float x : v.data) sum += x;
  CHECK(sum == doctest::Approx(7.0).epsilon(5e-4));  // truncation at 4 s loses ~2e-4
}

TEST_CASE("render: the map's 3-D DFT equals the model's exact Fourier transform up to 0.8 Nyquist") {
  const int n = 48;
  const double px = 2.0;
  io::GaussianModel m = random_model(25, 7, 20.0, 1.5 * px, 3.0 * px);
  io::Image v = render_volume(m, n, px);
  std::vector<cfloat> f(size_t(n) * n * (n / 2 + 1));
  fft3_r2c(n, n, n, v.data.data(), f.data());
  double mass = 0;
  for (size_t j = 0; j < m.size(); ++j) mass += m.amplitude[j];
  const int w = n / 2 + 1;
  double worst = 0;
  int checked = 0;
  for (int kz = -19; kz <= 19; kz += 3)
    for (int ky = -19; ky <= 19; ky += 4)
      for (int kx = 0; kx <= 19; kx += 3) {
        if (kx * kx + ky * ky + kz * kz > 19 * 19) continue;  // 0.8 Nyquist
        // DFT about voxel N/2: undo (-1)^(kx+ky+kz); mass per voxel sums to the continuous transform.
        cfloat d = f[(size_t((kz + n) % n) * n + size_t((ky + n) % n)) * w + kx];
        std::complex<double> ours = std::complex<double>(d) * double(((kx + ky + kz) & 1) ? -1 : 1);
        std::complex<double> exact = 0;
        double fx = kx / (n * px), fy = ky / (n * px), fz = kz / (n * px);
        for (size_t j = 0; j < m.size(); ++j) {
          double s = m.width[j];
          double ph = -2 * kPi * (fx * m.x[j] + fy * m.y[j] + fz * m.z[j]);
          exact += m.amplitude[j] * std::exp(-2 * kPi * kPi * s * s * (fx * fx + fy * fy + fz * fz)) *
                   std::complex<double>(std::cos(ph), std::sin(ph));
        }
        worst = std::max(worst, std::abs(ours - exact) / mass);
        ++checked;
      }
  REQUIRE(checked > 100);
  MESSAGE("largest error / total mass: " << worst);
  CHECK(worst < 1e-3);
}

TEST_CASE("render: the same map whatever the thread count, and Gaussians leaving the box are clipped") {
  io::GaussianModel m = random_model(60, 11, 40.0, 2.0, 5.0);  // some centres near or past the edge
  omp_set_num_threads(1);
  io::Image a = render_volume(m);
  omp_set_num_threads(2);
  io::Image b = render_volume(m);
  REQUIRE(a.data.size() == b.data.size());
  CHECK(a.data == b.data);
  double sum = 0, mass = 0;
  for (float x : a.data) sum += x;
  for (size_t j = 0; j < m.size(); ++j) mass += m.amplitude[j];
  CHECK(sum < mass);   // some mass fell outside the 96 Å box
  CHECK(sum > 0.3 * mass);

  m.width[3] = 0;
  CHECK_THROWS_AS(render_volume(m), Error);
}

TEST_CASE("cugmm render writes a volume MRC with the model's grid") {
  io::GaussianModel m = random_model(10, 3, 15.0, 3.0, 4.0);
  std::string dir = test::scratch_dir("render_cli");
  io::write_model(dir + "/m.txt", m);
  auto r = test::run(test::cugmm_exe() + " render --model m.txt --out map.mrc", dir);
  REQUIRE_MESSAGE(r.status == 0, r.out);
  io::Image v = io::read_mrc(dir + "/map.mrc");
  CHECK(v.nx == 48);
  CHECK(v.nz == 48);
  CHECK(v.pixel_size == doctest::Approx(2.0));
  io::Image direct = render_volume(io::read_model(dir + "/m.txt"));
  double diff = 0;
  for (size_t i = 0; i < v.data.size(); ++i) diff = std::max(diff, double(std::fabs(v.data[i] - direct.data[i])));
  CHECK(diff < 1e-6);
  r = test::run(test::cugmm_exe() + " render --model m.txt --out map2.mrc --box 64 --angpix 1.5", dir);
  REQUIRE_MESSAGE(r.status == 0, r.out);
  io::MrcHeader h = io::read_mrc_header(dir + "/map2.mrc");
  CHECK(h.nx == 64);
  CHECK(h.pixel_size == doctest::Approx(1.5));
  CHECK(h.is_volume);
}
