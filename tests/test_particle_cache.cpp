// The particle cache (engine/particle_cache.h, engine/preprocess.h): RELION's normalisation against
// relion_preprocess, cached values against a direct DFT in the fourier_band.h convention, optics groups of
// different pixel and box sizes on one grid, stale / corrupt caches refused, non-finite pixels named.
#include <doctest/doctest.h>

#include <cmath>
#include <complex>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>
#include <sys/wait.h>
#include <unistd.h>
#include <string>
#include <vector>

#include "core/error.h"
#include "engine/particle_cache.h"
#include "engine/particle_cache_hash.h"
#include "engine/preprocess.h"
#include "io/mrc.h"
#include "kernels/geometry.h"
#include "support.h"

using namespace cugmm;
namespace fs = std::filesystem;

namespace {

struct Blob { double x, y, a, s; };

// The exact projection of 2-D Gaussians sampled at pixel centres (density per Å^2), plus optional noise.
std::vector<float> blob_image(const std::vector<Blob>& blobs, int n, double px, double noise = 0, unsigned seed = 0) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> g(0, noise > 0 ? noise : 1);
  std::vector<float> im(size_t(n) * n);
  for (int y = 0; y < n; ++y)
    for (int x = 0; x < n; ++x) {
      double v = 0, tx = (x - n / 2) * px, ty = (y - n / 2) * px;
      for (const Blob& b : blobs)
        v += b.a / (2 * kPi * b.s * b.s) * std::exp(-((tx - b.x) * (tx - b.x) + (ty - b.y) * (ty - b.y)) / (2 * b.s * b.s));
      im[size_t(y) * n + x] = float(v + (noise > 0 ? noise * g(rng) : 0));
    }
  return im;
}

const std::vector<Blob> kBlobs = {{8, -5, 3, 4}, {-12, 10, 2, 5}, {0, 14, 1.5, 3.5}, {-6, -16, 2.5, 4.5}};
// Sharper: at 5 Å (0.8 Nyquist of 2 Å/px) their spectrum is still ~1% of F(0), while aliasing at 2 Å/px
// stays ~1e-5, so a wrong frequency mapping shows.
const std::vector<Blob> kSharpBlobs = {{8, -5, 3, 2.5}, {-12, 10, 2, 2.5}, {0, 14, 1.5, 2.6}, {-6, -16, 2.5, 2.8}};

// A RELION 3.1 STAR: one optics group per (pixel, box, stack) entry, `per_group` particles each.
struct Group { double pixel; int box; std::string stack; };
std::string write_star(const std::string& path, const std::vector<Group>& groups, int per_group, double defocus = 15000) {
  std::string s = "\n# version 30001\n\ndata_optics\n\nloop_\n_rlnOpticsGroup #1\n_rlnOpticsGroupName #2\n"
                  "_rlnImagePixelSize #3\n_rlnImageSize #4\n_rlnImageDimensionality #5\n_rlnVoltage #6\n"
                  "_rlnSphericalAberration #7\n_rlnAmplitudeContrast #8\n";
  for (size_t g = 0; g < groups.size(); ++g)
    s += std::to_string(g + 1) + " g" + std::to_string(g + 1) + " " + std::to_string(groups[g].pixel) + " " +
         std::to_string(groups[g].box) + " 2 300 2.7 0.1\n";
  s += "\n\n# version 30001\n\ndata_particles\n\nloop_\n_rlnImageName #1\n_rlnAngleRot #2\n_rlnAngleTilt #3\n"
       "_rlnAnglePsi #4\n_rlnOriginXAngst #5\n_rlnOriginYAngst #6\n_rlnDefocusU #7\n_rlnDefocusV #8\n"
       "_rlnDefocusAngle #9\n_rlnOpticsGroup #10\n_rlnRandomSubset #11\n";
  for (size_t g = 0; g < groups.size(); ++g)
    for (int i = 0; i < per_group; ++i)
      s += std::to_string(i + 1) + "@" + groups[g].stack + " " + std::to_string(10 * i) + " 45 " +
           std::to_string(-20 + 5 * i) + " 1.5 -2.25 " + std::to_string(defocus) + " " + std::to_string(defocus - 300) +
           " 30 " + std::to_string(g + 1) + " " + std::to_string(i % 2 + 1) + "\n";
  test::write_text(path, s);
  return path;
}

void write_stack(const std::string& path, const std::vector<std::vector<float>>& images, int n, double px) {
  std::vector<float> all;
  for (auto& im : images) all.insert(all.end(), im.begin(), im.end());
  io::write_mrc(path, all.data(), n, n, int(images.size()), float(px), true);
}

// The coefficient at (kx, ky) of a band, or null.
const cfloat* coefficient(const ParticleCache& c, size_t particle, int kx, int ky) {
  const FourierBand& b = c.band();
  for (size_t i = 0; i < b.size(); ++i)
    if (b.kx[i] == kx && b.ky[i] == ky) return c.coefficients(particle) + i;
  return nullptr;
}

}  // namespace

TEST_CASE("normalise_background equals relion_preprocess --norm, with and without the ramp") {
  if (!test::oracle("relion_preprocess")) return;
  const int n = 40;
  std::string dir = test::scratch_dir("cache_norm");
  std::vector<std::vector<float>> ims;
  for (int k = 0; k < 3; ++k) {
    std::vector<float> im = blob_image(kBlobs, n, 1.5, 0.01, unsigned(k + 1));
    for (int y = 0; y < n; ++y)
      for (int x = 0; x < n; ++x) im[size_t(y) * n + x] = im[size_t(y) * n + x] * 40 + 3.0f + 0.05f * x - 0.03f * k * y;
    ims.push_back(im);
  }
  write_stack(dir + "/raw.mrcs", ims, n, 1.5);
  for (bool ramp : {true, false}) {
    auto r = test::run(std::string("relion_preprocess --operate_on raw.mrcs --norm --bg_radius 15 ") +
                           (ramp ? "" : "--no_ramp ") + "--operate_out norm.mrcs", dir);
    REQUIRE_MESSAGE(r.status == 0, r.out);
    io::Image rel = io::read_mrc(dir + "/norm.mrcs");
    REQUIRE(rel.nz == 3);
    for (int k = 0; k < 3; ++k) {
      std::vector<float> ours = ims[k];
      normalise_background(ours.data(), n, n, 15, ramp);
      double worst = 0;
      for (size_t i = 0; i < ours.size(); ++i) worst = std::max(worst, double(std::fabs(ours[i] - rel.data[k * n * n + i])));
      INFO("ramp " << ramp << " image " << k);
      CHECK(worst < 1e-4);
    }
  }
  CHECK(default_bg_radius(128) == 48);
  std::vector<float> flat(size_t(n) * n, 2.f);
  CHECK_THROWS_AS(normalise_background(flat.data(), n, n, 15, false), Error);
}

TEST_CASE("fourier_resize: padding keeps the image's samples, cropping undoes padding exactly") {
  const int n = 32, m = 64;
  const double px = 2.0;
  std::mt19937 rng(5);
  std::normal_distribution<float> g;
  std::vector<float> im(size_t(n) * n), big(size_t(m) * m), back(size_t(n) * n);
  for (float& v : im) v = g(rng);  // white noise: the Nyquist terms matter
  std::vector<cfloat> f(size_t(n) * (n / 2 + 1)), fp(size_t(m) * (m / 2 + 1)), fc(f.size()), check(fp.size());
  image_to_fourier(im.data(), n, px, f.data());
  fourier_resize(f.data(), n, fp.data(), m);
  fourier_to_image(fp.data(), m, px * n / m, big.data());
  double worst = 0;
  for (int y = 0; y < n; ++y)
    for (int x = 0; x < n; ++x)  // pixel n/2 of the small grid is pixel m/2 of the large one
      worst = std::max(worst, double(std::fabs(big[size_t(2 * y) * m + 2 * x] - im[size_t(y) * n + x])));
  CHECK(worst < 1e-4);
  // The padded half-plane is a consistent (Hermitian) transform of a real image: r2c gives it back.
  image_to_fourier(big.data(), m, px * n / m, check.data());
  double dev = 0;
  for (size_t i = 0; i < fp.size(); ++i) dev = std::max(dev, double(std::abs(check[i] - fp[i])));
  CHECK(dev < 1e-3);
  fourier_resize(fp.data(), m, fc.data(), n);
  double round_trip = 0;
  for (size_t i = 0; i < f.size(); ++i) round_trip = std::max(round_trip, double(std::abs(fc[i] - f[i])));
  CHECK(round_trip < 1e-4);
  fourier_to_image(fc.data(), n, px, back.data());
  double img_trip = 0;
  for (size_t i = 0; i < im.size(); ++i) img_trip = std::max(img_trip, double(std::fabs(back[i] - im[i])));
  MESSAGE("samples " << worst << ", hermitian " << dev << ", crop(pad) " << round_trip << ", image " << img_trip);
  CHECK(img_trip < 1e-4);
}

TEST_CASE("a cached particle is the direct DFT of its normalised image in the fourier_band convention") {
  const int n = 48;
  const double px = 1.7;
  std::string dir = test::scratch_dir("cache_values");
  std::vector<std::vector<float>> ims;
  for (int k = 0; k < 4; ++k) ims.push_back(blob_image(kBlobs, n, px, 0.02, unsigned(10 + k)));
  write_stack(dir + "/p.mrcs", ims, n, px);
  CacheOptions o;
  o.particles = write_star(dir + "/p.star", {{px, n, "p.mrcs"}}, 4);
  o.maxres = 4.0;
  build_particle_cache(o, dir + "/p.cugmm-cache");
  ParticleCache c(dir + "/p.cugmm-cache");
  REQUIRE(c.count() == 4);
  CHECK(c.box() == n);
  CHECK(c.pixel_size() == doctest::Approx(px));
  CHECK(c.band().ring_max == int(n * px / 4.0));
  CHECK(c.verify_data());
  FourierBand loss = c.loss_band(40.0);
  CHECK(loss.size() == c.band().size());
  CHECK(loss.ring_min == 3);
  CHECK(loss.ring_max == c.band().ring_max);

  // Metadata as the STAR says.
  const CachedParticle& m = c.particle(2);
  CHECK(m.rot == doctest::Approx(20));
  CHECK(m.psi == doctest::Approx(-10));
  CHECK(m.origin_y == doctest::Approx(-2.25));
  CHECK(m.defocus_v == doctest::Approx(14700));
  CHECK(m.random_subset == 1);
  CHECK(m.mode() == CtfMode::full);
  CHECK(m.source_row == 2);

  for (int k : {0, 3}) {
    std::vector<float> im = ims[k];
    normalise_background(im.data(), n, n, default_bg_radius(n), true);
    double worst = 0, peak = 0;
    for (int ky : {0, 1, -1, 5, -9, 17})
      for (int kx : {0, 1, 4, 11, 16}) {
        const cfloat* got = coefficient(c, size_t(k), kx, ky);
        if (!got) continue;  // outside the band
        // F(k) = pixel^2 sum_x image(x) exp(-2 pi i k.(x - N/2) / N)
        std::complex<double> f = 0;
        for (int y = 0; y < n; ++y)
          for (int x = 0; x < n; ++x) {
            double ph = -2 * kPi * (kx * (x - n / 2) + ky * (y - n / 2)) / n;
            f += double(im[size_t(y) * n + x]) * std::complex<double>(std::cos(ph), std::sin(ph));
          }
        f *= px * px;
        peak = std::max(peak, std::abs(f));
        worst = std::max(worst, std::abs(std::complex<double>(*got) - f));
      }
    CHECK(peak > 0);
    CHECK(worst / peak < 1e-4);
  }
}

TEST_CASE("optics groups with different pixel and box sizes land on one working grid") {
  // The same object imaged at 1 Å/px (128 px), 2 Å/px (64 px) and 1 Å/px in a 96 px box (a smaller field
  // of view): the Fourier pad, Fourier crop and real-space crop/pad paths. Without normalisation the
  // coefficients must agree wherever both grids have them.
  std::string dir = test::scratch_dir("cache_grid");
  write_stack(dir + "/fine.mrcs", {blob_image(kSharpBlobs, 128, 1.0)}, 128, 1.0);
  write_stack(dir + "/coarse.mrcs", {blob_image(kSharpBlobs, 64, 2.0)}, 64, 2.0);
  write_stack(dir + "/small.mrcs", {blob_image(kSharpBlobs, 96, 1.0)}, 96, 1.0);
  const std::string star =
      write_star(dir + "/g.star", {{1.0, 128, "fine.mrcs"}, {2.0, 64, "coarse.mrcs"}, {1.0, 96, "small.mrcs"}}, 1);
  for (int box : {0, 64}) {
    CacheOptions o;
    o.particles = star;
    o.normalise = false;
    o.box = box;
    o.maxres = 2 * 2.0 / 0.8;  // 0.8 Nyquist of the coarse group
    std::string path = dir + "/g" + std::to_string(box) + ".cache";
    build_particle_cache(o, path);
    ParticleCache c(path);
    REQUIRE(c.count() == 3);
    CHECK(c.box() == (box ? 64 : 128));
    CHECK(c.pixel_size() == doctest::Approx(box ? 2.0 : 1.0));
    CHECK(c.particle(1).optics == 1);
    double peak = 0, worst_coarse = 0, worst_small = 0, edge = 0;
    for (size_t i = 0; i < c.band().size(); ++i) {
      std::complex<double> f0(c.coefficients(0)[i]), f1(c.coefficients(1)[i]), f2(c.coefficients(2)[i]);
      peak = std::max(peak, std::abs(f0));
      if (c.band().ring[i] == c.band().ring_max) edge = std::max(edge, std::abs(f0));
      worst_coarse = std::max(worst_coarse, std::abs(f1 - f0));
      worst_small = std::max(worst_small, std::abs(f2 - f0));
    }
    MESSAGE("working box " << c.box() << ": coarse group off by " << worst_coarse / peak << ", small-box group by "
                           << worst_small / peak << " of F(0); outer ring holds " << edge / peak);
    INFO("working box " << c.box());
    CHECK(peak == doctest::Approx(9.0).epsilon(0.01));  // F(0) = total mass
    CHECK(edge > 3e-3 * peak);  // the outer rings carry signal to compare
    CHECK(worst_coarse / peak < 5e-5);
    CHECK(worst_small / peak < 5e-5);
  }
}

TEST_CASE("a stale or damaged cache is refused, and rebuilt on request") {
  const int n = 32;
  std::string dir = test::scratch_dir("cache_stale");
  write_stack(dir + "/p.mrcs", {blob_image(kBlobs, n, 2.0, 0.05, 1), blob_image(kBlobs, n, 2.0, 0.05, 2)}, n, 2.0);
  CacheOptions o;
  o.particles = write_star(dir + "/p.star", {{2.0, n, "p.mrcs"}}, 2);
  const std::string path = dir + "/p.cugmm-cache";
  CHECK(default_cache_path(o.particles) == path);
  {
    ParticleCache c = open_particle_cache(o);  // builds it
    CHECK(c.stale_reason(o).empty());
    CHECK(c.particle(0).defocus_u == doctest::Approx(15000));
  }
  CHECK_NOTHROW(open_particle_cache(o, path, false));

  CacheOptions other = o;
  other.maxres = 10;
  CHECK_THROWS_AS(open_particle_cache(other, path, false), Error);
  // A consumer (score, ...) takes the cache as it was built, whatever its preprocessing options.
  other.accept_any_options = true;
  other.normalise = false;
  CHECK_NOTHROW(open_particle_cache(other, path, false));

  // The particle file changes: refused without rebuild, rebuilt with it (and the new value is there).
  write_star(o.particles, {{2.0, n, "p.mrcs"}}, 2, 21000);
  CHECK_THROWS_AS(open_particle_cache(o, path, false), Error);
  {
    ParticleCache c = open_particle_cache(o, path, true);
    CHECK(c.particle(1).defocus_u == doctest::Approx(21000));
  }
  // A stack changes.
  write_stack(dir + "/p.mrcs", {blob_image(kBlobs, n, 2.0, 0.05, 3), blob_image(kBlobs, n, 2.0, 0.05, 4)}, n, 2.0);
  CHECK_THROWS_AS(open_particle_cache(o, path, false), Error);
  open_particle_cache(o, path, true);

  auto damage = [&](const std::string& name, auto&& fn) {
    std::string p = dir + "/" + name;
    fs::copy_file(path, p, fs::copy_options::overwrite_existing);
    fn(p);
    return p;
  };
  auto flip_byte = [](const std::string& p, size_t at) {
    std::fstream f(p, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(std::streamoff(at));
    char ch;
    f.read(&ch, 1);
    ch ^= 0x5a;
    f.seekp(std::streamoff(at));
    f.write(&ch, 1);
  };
  const size_t size = fs::file_size(path);
  std::string truncated = damage("truncated", [&](const std::string& p) { fs::resize_file(p, size - 100); });
  CHECK_THROWS_AS(ParticleCache{truncated}, InputError);
  std::string bad_magic = damage("magic", [&](const std::string& p) { flip_byte(p, 2); });
  CHECK_THROWS_AS(ParticleCache{bad_magic}, InputError);
  std::string bad_header = damage("header", [&](const std::string& p) { flip_byte(p, 150); });
  CHECK_THROWS_AS(ParticleCache{bad_header}, InputError);
  std::string bad_data = damage("data", [&](const std::string& p) { flip_byte(p, size - 10); });
  ParticleCache opened(bad_data);  // the preamble and header are intact...
  CHECK_FALSE(opened.verify_data());  // ...but the coefficients no longer match their checksum
  test::write_text(dir + "/foreign", "not a cache at all, but long enough to have a preamble ............"
                                     "............................................................");
  CHECK_THROWS_AS(ParticleCache{dir + "/foreign"}, InputError);
  // A damaged file under the cache's name is rebuilt when allowed.
  fs::copy_file(truncated, path, fs::copy_options::overwrite_existing);
  CHECK_THROWS_AS(open_particle_cache(o, path, false), Error);
  CHECK(open_particle_cache(o, path, true).verify_data());
}

TEST_CASE("a NaN pixel is refused, naming the particle") {
  const int n = 32;
  std::string dir = test::scratch_dir("cache_nan");
  write_stack(dir + "/p.mrcs", {blob_image(kBlobs, n, 2.0, 0.05, 1), blob_image(kBlobs, n, 2.0, 0.05, 2),
                                 blob_image(kBlobs, n, 2.0, 0.05, 3)}, n, 2.0);
  {  // write_mrc refuses NaN, so plant one in the file: pixel 100 of image 2 (float32 after 1024 bytes)
    std::fstream f(dir + "/p.mrcs", std::ios::in | std::ios::out | std::ios::binary);
    const float nan = std::numeric_limits<float>::quiet_NaN();
    f.seekp(std::streamoff(1024 + (n * n + 100) * sizeof(float)));
    f.write(reinterpret_cast<const char*>(&nan), sizeof nan);
  }
  CacheOptions o;
  o.particles = write_star(dir + "/p.star", {{2.0, n, "p.mrcs"}}, 3);
  std::string msg;
  try {
    build_particle_cache(o, dir + "/p.cugmm-cache");
  } catch (const InputError& e) {
    msg = e.what();
  }
  INFO(msg);
  CHECK(msg.find("particle 2") != std::string::npos);
  CHECK(msg.find("2@") != std::string::npos);
  CHECK(msg.find("NaN") != std::string::npos);
  CHECK_FALSE(fs::exists(dir + "/p.cugmm-cache"));  // nothing half-written under the final name
  for (auto& e : fs::directory_iterator(dir)) CHECK(e.path().string().find(".cugmm-tmp-") == std::string::npos);
}

TEST_CASE("cugmm preprocess builds, reuses and verifies a cache") {
  const int n = 64;
  std::string dir = test::scratch_dir("cache_cli");
  write_stack(dir + "/p.mrcs", {blob_image(kBlobs, n, 1.5, 0.05, 1), blob_image(kBlobs, n, 1.5, 0.05, 2)}, n, 1.5);
  write_star(dir + "/p.star", {{1.5, n, "p.mrcs"}}, 2);
  auto r = test::run(test::cugmm_exe() + " preprocess --particles p.star --out p.cugmm-cache --box 32 --maxres 8 --threads 2", dir);
  REQUIRE_MESSAGE(r.status == 0, r.out);
  ParticleCache c(dir + "/p.cugmm-cache");
  CHECK(c.box() == 32);
  CHECK(c.pixel_size() == doctest::Approx(3.0));
  CHECK(c.band().ring_max == 12);
  auto before = fs::last_write_time(dir + "/p.cugmm-cache");
  r = test::run(test::cugmm_exe() + " preprocess --particles p.star --out p.cugmm-cache --box 32 --maxres 8 --verify", dir);
  REQUIRE_MESSAGE(r.status == 0, r.out);
  CHECK(r.out.find("verified") != std::string::npos);
  CHECK(fs::last_write_time(dir + "/p.cugmm-cache") == before);  // reused, not rebuilt
  r = test::run(test::cugmm_exe() + " preprocess --particles p.star --out x.cache --bogus 1", dir);
  CHECK(r.status != 0);
}

namespace {

// A cache of `count` particles of two blob images in `dir` (p.star, p.mrcs, p.cugmm-cache).
CacheOptions small_cache(const std::string& dir, int count, int n = 32) {
  std::vector<std::vector<float>> ims;
  for (int i = 0; i < count; ++i) ims.push_back(blob_image(kBlobs, n, 2.0, 0.05, unsigned(i + 1)));
  write_stack(dir + "/p.mrcs", ims, n, 2.0);
  CacheOptions o;
  o.particles = write_star(dir + "/p.star", {{2.0, n, "p.mrcs"}}, count);
  build_particle_cache(o, dir + "/p.cugmm-cache");
  return o;
}

void overwrite(const std::string& p, size_t at, const void* data, size_t n) {
  std::fstream f(p, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(std::streamoff(at));
  f.write(static_cast<const char*>(data), std::streamsize(n));
}

// The pid of a process that has exited (and been reaped): no process has it, until the kernel reuses it.
long dead_pid() {
  pid_t p = fork();
  if (p == 0) _exit(0);
  waitpid(p, nullptr, 0);
  return long(p);
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("a damaged block (bit flip, zeroed region) is named with its particles, then rebuilt or refused") {
  std::string dir = test::scratch_dir("cache_blocks");
  // 300 particles: two blocks of 256 and 44, so the damage is placed in the second.
  CacheOptions o = small_cache(dir, 300);
  const std::string path = dir + "/p.cugmm-cache";
  size_t particle_bytes;
  {
    ParticleCache good(path);
    REQUIRE(good.block_count() == 2);
    REQUIRE(good.verify_data());
    particle_bytes = good.band().size() * sizeof(cfloat);
  }
  // The coefficients are the file's tail, particle after particle.
  const size_t size = fs::file_size(path);
  const size_t p270 = size - (300 - 269) * particle_bytes;  // particle 270 (1-based), in block 2
  {  // one bit of one coefficient
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(std::streamoff(p270 + 13));
    char c;
    f.read(&c, 1);
    c ^= 0x01;
    f.seekp(std::streamoff(p270 + 13));
    f.write(&c, 1);
  }
  std::string msg = error_of([&] { open_particle_cache(o, path, false); });
  INFO(msg);
  CHECK(test::contains(msg, path));
  CHECK(test::contains(msg, "block 2 of 2"));
  CHECK(test::contains(msg, "particles 257-300"));
  CHECK(test::contains(msg, "damaged"));
  // With its sources there it is rebuilt, and the rebuilt one verifies.
  CHECK(open_particle_cache(o, path, true).verify_data());

  // A zeroed region across particles 10-20 (block 1); the particle file gone: refused, naming the block.
  const std::vector<char> zeros(11 * particle_bytes, 0);
  overwrite(path, size - 300 * particle_bytes + 9 * particle_bytes, zeros.data(), zeros.size());
  fs::rename(o.particles, dir + "/moved.star");
  msg = error_of([&] { open_particle_cache(o, path, true); });
  INFO(msg);
  CHECK(test::contains(msg, "block 1 of 2"));
  CHECK(test::contains(msg, "particles 1-256"));
  CHECK(test::contains(msg, "cannot be rebuilt"));
}

TEST_CASE("a cache whose particle count wraps count x record size is refused before any read (defect 4)") {
  std::string dir = test::scratch_dir("cache_wrap");
  small_cache(dir, 2);
  const std::string path = dir + "/p.cugmm-cache";
  // count = 2^61: count x 136 and count x coefficients x 8 are both 0 modulo 2^64, so a check done in
  // wrapping arithmetic sees a cache of no particles and then reads 2^61 table entries.
  const uint64_t count = uint64_t(1) << 61;
  overwrite(path, 40, &count, sizeof count);  // Preamble::count (after magic, version, endian, json, 2 offsets)
  std::string msg = error_of([&] { ParticleCache c(path); });
  INFO(msg);
  CHECK(test::contains(msg, path));
  CHECK(test::contains(msg, "not a usable particle cache"));
}

TEST_CASE("a cache build removes the temporaries of builds killed earlier, not those of live ones (defect 8)") {
  std::string dir = test::scratch_dir("cache_temps");
  const std::string dead = dir + "/.p.cugmm-cache.cugmm-tmp-" + std::to_string(dead_pid()) + "-0";
  const std::string live = dir + "/.p.cugmm-cache.cugmm-tmp-" + std::to_string(long(getppid())) + "-0";
  const std::string other = dir + "/.q.cugmm-cache.cugmm-tmp-" + std::to_string(dead_pid()) + "-0";  // another file's
  for (const auto& p : {dead, live, other}) test::write_text(p, "half a cache");
  small_cache(dir, 2);
  CHECK_FALSE(fs::exists(dead));
  CHECK(fs::exists(live));
  CHECK(fs::exists(other));
  CHECK(ParticleCache(dir + "/p.cugmm-cache").verify_data());
}

TEST_CASE("cugmm preprocess finds a damaged block of an existing cache and rebuilds it, saying so (defect 14)") {
  std::string dir = test::scratch_dir("cache_cli_damaged");
  small_cache(dir, 3);
  auto r = test::run(test::cugmm_exe() + " preprocess --particles p.star --out p.cugmm-cache", dir);
  REQUIRE_MESSAGE(r.status == 0, r.out);
  CHECK_FALSE(test::contains(r.out, "building"));  // the cache built above is current
  const size_t size = fs::file_size(dir + "/p.cugmm-cache");
  const float zero[4] = {0, 0, 0, 0};
  overwrite(dir + "/p.cugmm-cache", size - 64, zero, sizeof zero);  // the last particle's coefficients
  r = test::run(test::cugmm_exe() + " preprocess --particles p.star --out p.cugmm-cache", dir);
  REQUIRE_MESSAGE(r.status == 0, r.out);
  CHECK(test::contains(r.out, "block 1 of 1 (particles 1-3) is damaged"));
  CHECK(test::contains(r.out, "rebuilding"));
  CHECK(ParticleCache(dir + "/p.cugmm-cache").verify_data());
}

TEST_CASE("integers of the cache's JSON header beyond their type are refused, not converted (fuzzing)") {
  std::string dir = test::scratch_dir("cache_json_ints");
  small_cache(dir, 2);
  const std::string good = dir + "/p.cugmm-cache";
  uint64_t json_bytes, table_offset, count;
  {
    std::ifstream f(good, std::ios::binary);
    uint64_t pre[16];
    f.read(reinterpret_cast<char*>(pre), sizeof pre);
    json_bytes = pre[2], table_offset = pre[3], count = pre[5];  // Preamble: 8 magic, 8 version+endian, ...
  }
  // The header edited as a crafted file would be: the same length (the path of the particle file absorbs the
  // difference), its checksum made right again, so only the edited value can be refused.
  auto edited = [&](const std::string& name, const std::function<void(nlohmann::json&)>& edit) {
    const std::string p = dir + "/" + name;
    fs::copy_file(good, p, fs::copy_options::overwrite_existing);
    std::ifstream f(p, std::ios::binary);
    std::vector<char> b((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    nlohmann::json j = nlohmann::json::parse(std::string(b.data() + 128, json_bytes));
    edit(j);
    std::string& source = j["inputs"]["particles"]["path"].get_ref<std::string&>();
    const size_t longer = j.dump().size() - json_bytes;
    REQUIRE(longer <= source.size());
    source.resize(source.size() - longer);
    const std::string text = j.dump();
    REQUIRE(text.size() == json_bytes);
    const uint64_t h = particle_cache_hash(b.data() + table_offset, count * sizeof(CachedParticle),
                                           particle_cache_hash(text.data(), text.size()));
    overwrite(p, 128, text.data(), text.size());
    overwrite(p, 56, &h, sizeof h);  // Preamble::header_checksum
    return p;
  };
  // nlohmann's get<int>() / get<size_t>() of these is a float-to-integer conversion out of range: undefined
  // behaviour, which the fuzz target's UBSan reported, and in a plain build a value anything may follow from.
  const std::string box = edited("box", [](nlohmann::json& j) { j["grid"]["box"] = 1e99; });
  std::string msg = error_of([&] { ParticleCache c(box); });
  INFO(msg);
  CHECK(test::contains(msg, box));
  CHECK(test::contains(msg, "header, grid, 'box'"));
  CHECK(test::contains(msg, "1e+99 is not an integer in [0, 32768]"));
  const std::string copies = edited("copies", [](nlohmann::json& j) {
    j["per_copy"] = {{"copies", -1.5}, {"symmetry", "C2"}};
  });
  msg = error_of([&] { ParticleCache c(copies); });
  INFO(msg);
  CHECK(test::contains(msg, "header, per_copy, 'copies'"));
  CHECK(test::contains(msg, "-1.5 is not an integer in [0, 2]"));
  // The unedited header still opens (the edit, not the rewriting, is what is refused).
  CHECK_NOTHROW(ParticleCache(edited("same", [](nlohmann::json&) {})));
  // Values in range that the band cannot follow: a box of 32768 is refused once its band outgrows the one
  // the file holds (it was built whole first: 2 GB and a billion steps), and 32 x 6e99 / 1 rings is Nyquist
  // (its int() was undefined); both found by fuzzing.
  const std::string big_box = edited("big_box", [](nlohmann::json& j) { j["grid"]["box"] = 32768; });
  msg = error_of([&] { ParticleCache c(big_box); });
  INFO(msg);
  CHECK(test::contains(msg, "not a usable particle cache: the Fourier band of box 32768 to ring 16384 holds more than"));
  const std::string huge_pixel = edited("huge_pixel", [](nlohmann::json& j) {
    j["grid"]["pixel_size"] = 6e99;
    j["band"]["maxres"] = 1.0;
  });
  CHECK(ParticleCache(huge_pixel).band().ring_max == 16);
}
