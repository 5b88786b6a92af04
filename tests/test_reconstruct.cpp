// Direct Fourier inversion on the CPU: the shared per-coefficient maths, reconstruction of a noise-free
// simulated set against its source map (analytic projections of Gaussian blobs), CTF correction,
// determinism across thread counts and the half-map split. The RELION comparison is in
// test_reconstruct_relion.cpp.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>

#include "core/error.h"
#include "engine/example_model.h"
#include "engine/simulate.h"
#include "io/particles.h"
#include "support.h"
#include "engine/fft.h"
#include "engine/fsc.h"
#include "engine/reconstruct.h"
#include "core/threads.h"
#include "kernels/backproject.h"

using namespace cugmm;

namespace {

struct Blob {
  double x, y, z, a, s;  // Å from the box centre, mass, width (Å)
};

std::vector<Blob> test_blobs() {
  // Widths of 1.2-2 pixels at 2 Å/px: signal up to Nyquist, little aliasing from sampling.
  return {{0, 0, 0, 3, 3.5},     {14, -6, 3, 2, 2.6},   {-10, 12, -8, 2.5, 4},  {5, 9, 16, 1.5, 2.4},
          {-12, -12, 10, 2, 3},  {8, -14, -10, 1, 2.4}, {-4, 4, -16, 1.5, 2.8}, {18, 8, -4, 1, 2.5},
          {-16, 2, 4, 1.2, 2.4}, {2, 16, 2, 1.8, 3.2}};
}

// The source map sampled at voxel centres (density, mass per Å^3).
std::vector<float> blob_volume(const std::vector<Blob>& blobs, int n, double pix) {
  std::vector<float> v(size_t(n) * n * n);
  for (int z = 0; z < n; ++z)
    for (int y = 0; y < n; ++y)
      for (int x = 0; x < n; ++x) {
        double s = 0;
        for (const Blob& b : blobs) {
          double dx = (x - n / 2) * pix - b.x, dy = (y - n / 2) * pix - b.y, dz = (z - n / 2) * pix - b.z;
          s += b.a * std::pow(2 * kPi * b.s * b.s, -1.5) * std::exp(-(dx * dx + dy * dy + dz * dz) / (2 * b.s * b.s));
        }
        v[(size_t(z) * n + y) * n + x] = float(s);
      }
  return v;
}

// Its exact projection (sum over z voxels = line integral / pixel), translated by -origin.
void blob_projection(const std::vector<Blob>& blobs, int n, double pix, const ImagePose& p, float* out) {
  Mat3<double> a = euler_to_matrix(p.rot, p.tilt, p.psi);
  for (int y = 0; y < n; ++y)
    for (int x = 0; x < n; ++x) {
      double s = 0;
      for (const Blob& b : blobs) {
        Vec3<double> c = mul(a, Vec3<double>{b.x, b.y, b.z});
        double dx = (x - n / 2) * pix - (c.x - p.origin_x), dy = (y - n / 2) * pix - (c.y - p.origin_y);
        s += b.a / (2 * kPi * b.s * b.s) * std::exp(-(dx * dx + dy * dy) / (2 * b.s * b.s));
      }
      out[size_t(y) * n + x] = float(s / pix);
    }
}

// Multiplies an image by the CTF in Fourier space (box-sized transform).
void apply_ctf(float* im, int n, double pix, const CtfParams& ctf, bool flipped) {
  std::vector<cfloat> f(size_t(n) * (n / 2 + 1));
  fft2_r2c(n, n, im, f.data());
  CtfConsts<double> c = make_ctf_consts<double>(ctf);
  for (int row = 0; row < n; ++row)
    for (int kx = 0; kx <= n / 2; ++kx) {
      int ky = signed_freq(row, n);
      double v = ctf_value(c, kx / (n * pix), ky / (n * pix));
      f[size_t(row) * (n / 2 + 1) + kx] *= float((flipped ? std::fabs(v) : v) / (double(n) * n));
    }
  fft2_c2r(n, n, f.data(), im);
}

std::vector<ImagePose> random_poses(size_t count, unsigned seed, double max_shift, bool ctf) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<ImagePose> p(count);
  for (auto& q : p) {
    q.rot = 360 * u(rng);
    q.tilt = rad2deg(std::acos(2 * u(rng) - 1));  // uniform on the sphere
    q.psi = 360 * u(rng);
    q.origin_x = max_shift * (2 * u(rng) - 1);
    q.origin_y = max_shift * (2 * u(rng) - 1);
    if (ctf) {
      q.ctf.defocus_u = 5000 + 10000 * u(rng);
      q.ctf.defocus_v = q.ctf.defocus_u - 300;
      q.ctf.defocus_angle = 180 * u(rng);
    }
  }
  return p;
}

// With a CTF the projection is made in a box twice as large, modulated, and the centre cut out, as a
// particle is cut from a micrograph (the box-sized circular transform would wrap delocalised signal).
std::vector<float> simulate(const std::vector<ImagePose>& poses, int n, double pix, bool ctf, bool flipped = false) {
  std::vector<float> ims(poses.size() * n * n);
#pragma omp parallel for
  for (long i = 0; i < long(poses.size()); ++i) {
    float* out = ims.data() + size_t(i) * n * n;
    if (!ctf) {
      blob_projection(test_blobs(), n, pix, poses[i], out);
      continue;
    }
    const int m = 2 * n;
    std::vector<float> big(size_t(m) * m);
    blob_projection(test_blobs(), m, pix, poses[i], big.data());
    apply_ctf(big.data(), m, pix, poses[i].ctf, flipped);
    for (int y = 0; y < n; ++y)
      for (int x = 0; x < n; ++x) out[size_t(y) * n + x] = big[size_t(y + m / 2 - n / 2) * m + x + m / 2 - n / 2];
  }
  return ims;
}

// Lowest FSC over shells 1..last.
double min_fsc(const FscCurve& c, int last) {
  double m = 1;
  for (int s = 1; s <= last; ++s) m = std::min(m, c.value[s]);
  return m;
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

TEST_CASE("grid_spot: trilinear weights sum to 1 and a mirrored sample is conjugated") {
  Mat3<double> a = euler_to_matrix(37.0, 61.0, -112.0);
  for (int kx = 0; kx <= 5; ++kx)
    for (int ky = -5; ky <= 5; ++ky) {
      GridSpot<double> s = grid_spot(a, double(kx), double(ky));
      double sum = 0;
      for (int d = 0; d < 8; ++d) sum += corner_weight(s, d & 1, (d >> 1) & 1, d >> 2);
      CHECK(sum == doctest::Approx(1).epsilon(1e-12));
      // The landing point is A^T (kx, ky, 0), mirrored to x >= 0.
      Vec3<double> p = mul(transpose(a), Vec3<double>{double(kx), double(ky), 0});
      double sign = s.conj ? -1 : 1;
      CHECK(s.x0 + s.fx == doctest::Approx(sign * p.x));
      CHECK(s.y0 + s.fy == doctest::Approx(sign * p.y));
      CHECK(s.z0 + s.fz == doctest::Approx(sign * p.z));
      CHECK(s.x0 + s.fx >= 0);
      CHECK(s.conj == (p.x < 0));
    }
}

TEST_CASE("backproject_term: the origin phase undoes a translation, CTF weights CTF and CTF^2") {
  // A delta at offset (3, -2) px from the centre of a 16 px image, seen with origin (-3, 2) px, is the
  // projection of a delta at the centre: every corrected coefficient must be real and equal.
  const int n = 16;
  const double pix = 1.5;
  std::vector<float> im(n * n, 0.f);
  im[(n / 2 - 2) * n + n / 2 + 3] = 1.f;
  std::vector<float> pad(n * n, 0.f);
  for (int y = 0; y < n; ++y)
    for (int x = 0; x < n; ++x) pad[pad_index(y, n, n) * n + pad_index(x, n, n)] = im[y * n + x];
  std::vector<cfloat> f(n * (n / 2 + 1));
  fft2_r2c(n, n, pad.data(), f.data());
  CtfConsts<double> none{};
  for (int row = 0; row < n; ++row)
    for (int kx = 0; kx <= n / 2; ++kx) {
      int ky = signed_freq(row, n);
      cfloat v = f[row * (n / 2 + 1) + kx];
      BackprojectTerm<double> t = backproject_term<double>(v.real(), v.imag(), kx / (n * pix), ky / (n * pix),
                                                           -3 * pix, 2 * pix, none, CtfMode::none);
      CHECK(t.re == doctest::Approx(1).epsilon(1e-5));
      CHECK(t.im == doctest::Approx(0).epsilon(1e-5));
      CHECK(t.w == 1);
    }
  CtfParams p;
  p.defocus_u = p.defocus_v = 15000;
  CtfConsts<double> c = make_ctf_consts<double>(p);
  double ctf = ctf_value(c, 0.05, 0.02);
  BackprojectTerm<double> t = backproject_term<double>(2.0, -1.0, 0.05, 0.02, 0, 0, c, CtfMode::full);
  CHECK(t.re == doctest::Approx(2 * ctf));
  CHECK(t.im == doctest::Approx(-ctf));
  CHECK(t.w == doctest::Approx(ctf * ctf));
  t = backproject_term<double>(2.0, -1.0, 0.05, 0.02, 0, 0, c, CtfMode::phase_flipped);
  CHECK(t.re == doctest::Approx(2 * std::fabs(ctf)));
  CHECK(t.w == doctest::Approx(ctf * ctf));
}

TEST_CASE("gridding factor: 1 at the centre, sinc^2 per axis") {
  CHECK(gridding_factor<double>(0, 0, 0, 64) == 1);
  double s = std::sin(kPi * 16 / 64) / (kPi * 16 / 64);
  CHECK(gridding_factor<double>(16, 0, 0, 64) == doctest::Approx(s * s));
  CHECK(gridding_factor<double>(16, -16, 16, 64) == doctest::Approx(std::pow(s, 6)));
}

TEST_CASE("a noise-free simulated set reconstructs its source map: FSC >= 0.99 up to 0.8 Nyquist") {
  const int n = 32;
  const double pix = 2.0;
  auto t0 = std::chrono::steady_clock::now();
  std::vector<ImagePose> poses = random_poses(2000, 7, 6.0, false);
  std::vector<float> ims = simulate(poses, n, pix, false);
  double t_sim = seconds_since(t0);
  t0 = std::chrono::steady_clock::now();
  ReconstructOptions opt;
  opt.ctf = CtfMode::none;
  auto bp = Backprojector::create(cpu_context(), n, pix, opt);
  bp->insert(ims.data(), poses.data(), poses.size());
  CHECK(bp->inserted() == poses.size());
  std::vector<float> vol = solve(bp->grid(), opt.wiener_tau);
  double t_rec = seconds_since(t0);
  std::vector<float> ref = blob_volume(test_blobs(), n, pix);
  FscCurve c = fsc(vol.data(), ref.data(), n, pix);
  int last = int(std::floor(0.8 * n / 2));
  std::printf("noise-free: simulate %.2f s, reconstruct %.2f s; FSC at shells 1..16:", t_sim, t_rec);
  for (int s = 1; s <= n / 2; ++s) std::printf(" %.4f", c.value[s]);
  std::printf("\n");
  CHECK(min_fsc(c, last) >= 0.99);
  // The scale is right too (the FSC is blind to it): same mass, voxels agree where the map is strong.
  double sv = 0, sr = 0, num = 0, den = 0;
  for (size_t i = 0; i < vol.size(); ++i) {
    sv += vol[i]; sr += ref[i];
    num += double(vol[i]) * ref[i]; den += double(ref[i]) * ref[i];
  }
  // Without the |k| density compensation the lowest shells came out ~3.5% too strong.
  CHECK(sv == doctest::Approx(sr).epsilon(0.015));
  CHECK(num / den == doctest::Approx(1).epsilon(0.01));
}

TEST_CASE("CTF-corrupted images are corrected: FSC >= 0.95 up to 2/3 Nyquist, and flipped data too") {
  const int n = 32;
  const double pix = 2.0;
  std::vector<ImagePose> poses = random_poses(1500, 11, 4.0, true);
  std::vector<float> ims = simulate(poses, n, pix, true);
  ReconstructOptions opt;
  opt.ctf = CtfMode::full;
  auto bp = Backprojector::create(cpu_context(), n, pix, opt);
  bp->insert(ims.data(), poses.data(), poses.size());
  std::vector<float> vol = solve(bp->grid(), opt.wiener_tau);
  std::vector<float> ref = blob_volume(test_blobs(), n, pix);
  int last = int(std::floor(2.0 / 3 * n / 2));
  FscCurve c = fsc(vol.data(), ref.data(), n, pix);
  std::printf("ctf: min FSC to 2/3 Nyquist %.4f\n", min_fsc(c, last));
  CHECK(min_fsc(c, last) >= 0.95);

  // Ignoring the CTF must do visibly worse: the test can fail.
  ReconstructOptions raw = opt;
  raw.ctf = CtfMode::none;
  auto bq = Backprojector::create(cpu_context(), n, pix, raw);
  bq->insert(ims.data(), poses.data(), poses.size());
  std::vector<float> bad = solve(bq->grid(), raw.wiener_tau);
  CHECK(min_fsc(fsc(bad.data(), ref.data(), n, pix), last) < 0.8);

  // Phase-flipped images (|CTF| applied) with the phase-flipped mode.
  std::vector<float> flipped = simulate(poses, n, pix, true, true);
  ReconstructOptions fo = opt;
  fo.ctf = CtfMode::phase_flipped;
  auto bf = Backprojector::create(cpu_context(), n, pix, fo);
  bf->insert(flipped.data(), poses.data(), poses.size());
  std::vector<float> fv = solve(bf->grid(), fo.wiener_tau);
  double mf = min_fsc(fsc(fv.data(), ref.data(), n, pix), last);
  std::printf("phase-flipped: min FSC to 2/3 Nyquist %.4f\n", mf);
  CHECK(mf >= 0.95);
}

TEST_CASE("CPU back-projection is deterministic across thread counts") {
  const int n = 24;
  const double pix = 2.5;
  std::vector<ImagePose> poses = random_poses(100, 3, 3.0, true);
  std::vector<float> ims = simulate(poses, n, pix, true);
  ReconstructOptions opt;
  int saved = num_threads();
  std::vector<FourierGrid> grids;
  for (int t : {1, 2, 3}) {
    set_threads(t);
    auto bp = Backprojector::create(cpu_context(), n, pix, opt);
    bp->insert(ims.data(), poses.data(), 60);
    bp->insert(ims.data() + 60 * n * n, poses.data() + 60, 40);  // in two calls: same sums
    grids.push_back(bp->grid());
  }
  set_threads(saved);
  for (size_t g = 1; g < grids.size(); ++g) {
    CHECK(grids[g].data == grids[0].data);
    CHECK(grids[g].weight == grids[0].weight);
  }
}

TEST_CASE("a non-finite pixel is an error naming the image") {
  const int n = 16;
  std::vector<float> ims(3 * n * n, 0.f);
  ims[2 * n * n + 5] = std::nanf("");
  std::vector<ImagePose> poses(3);
  auto bp = Backprojector::create(cpu_context(), n, 1.0, ReconstructOptions{});
  CHECK_THROWS_WITH_AS(bp->insert(ims.data(), poses.data(), 3), doctest::Contains("image 2"), Error);
}

TEST_CASE("half-map split: rlnRandomSubset honoured, else even/odd; each particle in exactly one half") {
  std::vector<int> given = {2, 1, 1, 2, 2, 1};
  CHECK(split_halves(given) == given);
  std::vector<int> none(7, 0);
  std::vector<int> h = split_halves(none);
  CHECK(h == std::vector<int>{1, 2, 1, 2, 1, 2, 1});
  // A partial or invalid column is not trusted: fall back to even/odd, balanced within one.
  std::vector<int> partial = {1, 2, 0, 1, 3};
  h = split_halves(partial);
  long n1 = std::count(h.begin(), h.end(), 1), n2 = std::count(h.begin(), h.end(), 2);
  CHECK(n1 + n2 == long(partial.size()));
  CHECK(std::abs(n1 - n2) <= 1);
  CHECK(split_halves({}).empty());
}

TEST_CASE("reconstruct_halves: a subset whose rlnRandomSubset leaves one half empty is an error") {
  SimulationOptions o;
  o.count = 4;
  o.snr = 0;
  o.ctf = false;
  SimulatedParticles sim =
      simulate_particles({make_example_molecule(16, 6.0).open}, o, test::scratch_dir("reconstruct_empty_half"));
  io::ParticleSet set = io::read_particles(sim.star, "");
  for (auto& p : set.particles) p.random_subset = 1;
  ReconstructOptions opt;
  opt.ctf = CtfMode::none;
  CHECK_THROWS_WITH_AS(reconstruct_halves(set, {0, 1, 2, 3}, Device::cpu, opt), doctest::Contains("half 2"),
                       InputError);
  CHECK_THROWS_WITH_AS(reconstruct_halves(set, {2}, Device::cpu, opt), doctest::Contains("empty"), InputError);
  set.particles[1].random_subset = 2;
  HalfMaps m = reconstruct_halves(set, {0, 1, 2, 3}, Device::cpu, opt);
  CHECK(m.count[0] == 3);
  CHECK(m.count[1] == 1);
}

TEST_CASE("the CUDA backend is an error in a build or on a machine without it") {
  if (cuda_available()) return;
  CHECK_THROWS_AS(Context{Device::cuda}, Error);  // no CUDA context, so no CUDA back-projector
}

TEST_CASE("--maxres: nothing beyond it is inserted or kept; padding 1 works too") {
  const int n = 32;
  const double pix = 2.0;
  std::vector<ImagePose> poses = random_poses(400, 21, 2.0, false);
  std::vector<float> ims = simulate(poses, n, pix, false);
  std::vector<float> ref = blob_volume(test_blobs(), n, pix);
  ReconstructOptions opt;
  opt.ctf = CtfMode::none;
  opt.maxres = 8.0;  // shell 32 * 2 / 8 = 8
  CHECK(insertion_radius(n, pix, opt) == doctest::Approx(2 * 8.0));
  auto bp = Backprojector::create(cpu_context(), n, pix, opt);
  bp->insert(ims.data(), poses.data(), poses.size());
  std::vector<float> vol = solve(bp->grid(), opt.wiener_tau);
  // Power beyond shell 10 relative to that within shell 6, with and without the cut-off.
  auto outside_ratio = [&](const std::vector<float>& v) {
    std::vector<cfloat> f(size_t(n) * n * (n / 2 + 1));
    fft3_r2c(n, n, n, v.data(), f.data());
    double inside = 0, outside = 0;
    for (int zi = 0; zi < n; ++zi)
      for (int yi = 0; yi < n; ++yi)
        for (int x = 0; x <= n / 2; ++x) {
          int y = signed_freq(yi, n), z = signed_freq(zi, n);
          double r = std::sqrt(double(x * x + y * y + z * z));
          double p = std::norm(f[(size_t(zi) * n + yi) * (n / 2 + 1) + x]);
          if (r <= 6) inside += p;
          else if (r >= 10) outside += p;  // beyond the cut-off plus the kernel's reach
        }
    return outside / inside;
  };
  ReconstructOptions all = opt;
  all.maxres = 0;
  auto ba = Backprojector::create(cpu_context(), n, pix, all);
  ba->insert(ims.data(), poses.data(), poses.size());
  double cut = outside_ratio(vol), full = outside_ratio(solve(ba->grid(), all.wiener_tau));
  std::printf("maxres: power beyond shell 10 / within 6: %.3g with the cut-off, %.3g without\n", cut, full);
  // What remains comes from cropping the padded volume and the gridding correction, not from data.
  CHECK(cut < 0.1 * full);
  FscCurve c = fsc(vol.data(), ref.data(), n, pix);
  CHECK(min_fsc(c, 6) > 0.99);

  ReconstructOptions p1;
  p1.ctf = CtfMode::none;
  p1.padding = 1;
  auto b1 = Backprojector::create(cpu_context(), n, pix, p1);
  b1->insert(ims.data(), poses.data(), poses.size());
  std::vector<float> v1 = solve(b1->grid(), p1.wiener_tau);
  // Coarser grid, larger interpolation error: RELION's default is 2 for that reason.
  CHECK(min_fsc(fsc(v1.data(), ref.data(), n, pix), n / 4) > 0.95);
}

TEST_CASE("reconstruct_halves: no particle in both halves (duplicate rows, or two rows naming one image)") {
  SimulationOptions o;
  o.count = 6;
  o.snr = 0;
  o.ctf = false;
  SimulatedParticles sim =
      simulate_particles({make_example_molecule(16, 6.0).open}, o, test::scratch_dir("reconstruct_shared"));
  io::ParticleSet set = io::read_particles(sim.star, "");
  ReconstructOptions opt;
  opt.ctf = CtfMode::none;
  // The same rows twice alternate into both halves: the FSC was 1.000 in every shell.
  CHECK_THROWS_WITH_AS(reconstruct_halves(set, {0, 1, 2, 0, 1, 2}, Device::cpu, opt),
                       doctest::Contains("selected twice"), InputError);
  set.particles[3].index = set.particles[0].index;  // another row, the same image
  CHECK_THROWS_WITH_AS(reconstruct_halves(set, {0, 1, 2, 3}, Device::cpu, opt),
                       doctest::Contains("name the same image"), InputError);
  CHECK_NOTHROW(reconstruct_halves(set, {0, 1, 2, 4}, Device::cpu, opt));
}

TEST_CASE("degenerate reconstruction options are errors before any work") {
  ReconstructOptions ok;
  CHECK_NOTHROW(check_reconstruct_options(ok, 64, 2.0));
  for (double tau : {0.0, -1.0, std::nan(""), double(INFINITY)}) {
    ReconstructOptions o;
    o.wiener_tau = tau;
    CHECK_THROWS_WITH_AS(check_reconstruct_options(o, 64, 2.0), doctest::Contains("--wiener-tau"), Error);
  }
  for (double maxres : {-5.0, std::nan(""), double(INFINITY), 1e9}) {
    ReconstructOptions o;
    o.maxres = maxres;
    CHECK_THROWS_WITH_AS(check_reconstruct_options(o, 64, 2.0), doctest::Contains("--maxres"), Error);
  }
  ReconstructOptions o;
  o.maxres = 32;  // 64 * 2 / 32 = 4 shells: the least allowed
  CHECK_NOTHROW(check_reconstruct_options(o, 64, 2.0));
  o.maxres = 33;
  CHECK_THROWS_WITH_AS(check_reconstruct_options(o, 64, 2.0), doctest::Contains("fewer than 4"), Error);
  o = ReconstructOptions{};
  o.padding = 5;
  CHECK_THROWS_AS(check_reconstruct_options(o, 64, 2.0), Error);

  CHECK_THROWS_WITH_AS(check_sphere_mask(1e-9, 0, 64, 2.0), doctest::Contains("under 2 pixels"), Error);
  CHECK_THROWS_AS(check_sphere_mask(20, std::nan(""), 64, 2.0), Error);
  CHECK_THROWS_AS(check_sphere_mask(200, 6, 64, 2.0), Error);
  CHECK_NOTHROW(check_sphere_mask(20, 6, 64, 2.0));
  CHECK_THROWS_WITH_AS(check_mask(std::vector<float>(8, 0.f), "m.mrc"), doctest::Contains("zero everywhere"), Error);
  CHECK_THROWS_AS(check_mask({0.5f, std::nanf("")}, "m.mrc"), Error);
  CHECK_NOTHROW(check_mask({0.f, 0.5f, 1.f}, "m.mrc"));
}
