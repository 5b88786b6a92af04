// `cugmm reconstruct` end to end against RELION: the same RELION-projected particles (relion_project of a
// map of Gaussian blobs, poses/origins/CTFs from a STAR written here) reconstructed by us and by
// relion_reconstruct agree (FSC >= 0.9 up to 2/3 Nyquist), with and without CTF; the outputs, the
// half-map split (rlnRandomSubset honoured) and the three ways of choosing a subset.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "engine/fsc.h"
#include "io/mrc.h"
#include "io/particles.h"
#include "kernels/geometry.h"
#include "support.h"

using namespace cugmm;
namespace fs = std::filesystem;

namespace {

constexpr int kBox = 40;
constexpr double kPix = 2.0;
constexpr int kCount = 900;

void write_blob_map(const std::string& path) {
  std::mt19937 rng(3);
  std::uniform_real_distribution<double> u(0, 1);
  struct B { double x, y, z, s; };
  std::vector<B> blobs;
  for (int i = 0; i < 12; ++i)
    blobs.push_back({(u(rng) - 0.5) * 24, (u(rng) - 0.5) * 24, (u(rng) - 0.5) * 24, 1.2 + 0.8 * u(rng)});  // px
  std::vector<float> v(size_t(kBox) * kBox * kBox);
  for (int z = 0; z < kBox; ++z)
    for (int y = 0; y < kBox; ++y)
      for (int x = 0; x < kBox; ++x) {
        double s = 0;
        for (const B& b : blobs) {
          double dx = x - kBox / 2 - b.x, dy = y - kBox / 2 - b.y, dz = z - kBox / 2 - b.z;
          s += std::exp(-(dx * dx + dy * dy + dz * dz) / (2 * b.s * b.s));
        }
        v[(size_t(z) * kBox + y) * kBox + x] = float(s);
      }
  io::write_mrc(path, v.data(), kBox, kBox, kBox, float(kPix), false);
}

// Poses uniform on the sphere, origins within +-6 Å, defoci 0.2-0.6 um (several CTF zeros before Nyquist,
// delocalisation well inside the 80 Å box: relion_project applies the CTF to the box circularly, which
// wraps delocalised signal around, while we pad images as if cut from a micrograph); rlnRandomSubset 1
// for every third particle, so an even/odd split would give different counts.
void write_angles(const std::string& path) {
  std::mt19937 rng(5);
  std::uniform_real_distribution<double> u(0, 1);
  std::ostringstream s;
  s << "\n# version 30001\n\ndata_optics\n\nloop_\n_rlnOpticsGroup #1\n_rlnOpticsGroupName #2\n_rlnVoltage #3\n"
       "_rlnSphericalAberration #4\n_rlnAmplitudeContrast #5\n_rlnImagePixelSize #6\n_rlnImageSize #7\n"
       "_rlnImageDimensionality #8\n1 optics1 300 2.7 0.1 " << kPix << " " << kBox << " 2\n\n\n"
       "# version 30001\n\ndata_particles\n\nloop_\n_rlnAngleRot #1\n_rlnAngleTilt #2\n_rlnAnglePsi #3\n"
       "_rlnOriginXAngst #4\n_rlnOriginYAngst #5\n_rlnDefocusU #6\n_rlnDefocusV #7\n_rlnDefocusAngle #8\n"
       "_rlnOpticsGroup #9\n_rlnImageName #10\n_rlnRandomSubset #11\n_rlnClassNumber #12\n";
  for (int i = 0; i < kCount; ++i) {
    double du = 2000 + 4000 * u(rng);
    char line[256];
    std::snprintf(line, sizeof line, "%.4f %.4f %.4f %.4f %.4f %.2f %.2f %.2f 1 %06d@none.mrcs %d %d\n", 360 * u(rng),
                  rad2deg(std::acos(2 * u(rng) - 1)), 360 * u(rng), 12 * u(rng) - 6, 12 * u(rng) - 6, du, du - 300,
                  180 * u(rng), i + 1, i % 3 == 0 ? 1 : 2, 1 + i % 4);
    s << line;
  }
  test::write_text(path, s.str());
}

std::vector<float> read_volume(const std::string& path) {
  io::Image im = io::read_mrc(path);
  REQUIRE(im.nx == kBox);
  REQUIRE(im.nz == kBox);
  CHECK(im.pixel_size == doctest::Approx(kPix));
  return im.data;
}

double min_fsc(const std::vector<float>& a, const std::vector<float>& b, int last) {
  FscCurve c = fsc(a.data(), b.data(), kBox, kPix);
  double m = 1;
  for (int s = 1; s <= last; ++s) m = std::min(m, c.value[s]);
  return m;
}

nlohmann::json read_json(const std::string& path) { return nlohmann::json::parse(test::read_text(path)); }

// Makes the data once per CTF setting and reconstructs it with both programs.
struct Case {
  std::string dir;
  explicit Case(bool ctf) {
    dir = test::scratch_dir(ctf ? "reconstruct_relion_ctf" : "reconstruct_relion");
    write_blob_map(dir + "/vol.mrc");
    write_angles(dir + "/ang.star");
    std::string c = ctf ? " --ctf" : "";
    auto r = test::run("relion_project --i vol.mrc --o proj --ang ang.star --angpix 2" + c, dir);
    REQUIRE_MESSAGE(r.status == 0, r.out);
    r = test::run("relion_reconstruct --i proj.star --o relion.mrc --angpix 2" + c, dir);
    REQUIRE_MESSAGE(r.status == 0, r.out);
    r = test::run(test::cugmm_exe() + " reconstruct --particles proj.star --out out --device cpu" +
                      (ctf ? "" : " --no-ctf"), dir);
    REQUIRE_MESSAGE(r.status == 0, r.out);
    std::printf("%s", r.out.c_str());
  }
};

}  // namespace

TEST_CASE("without CTF: our map and relion_reconstruct's agree, FSC >= 0.9 up to 2/3 Nyquist") {
  if (!test::oracle("relion_project")) return;
  Case k(false);
  std::vector<float> ours = read_volume(k.dir + "/out/full.mrc"), relion = read_volume(k.dir + "/relion.mrc");
  std::vector<float> src = read_volume(k.dir + "/vol.mrc");
  int last = 2 * (kBox / 2) / 3;
  double m = min_fsc(ours, relion, last);
  std::printf("no CTF: min FSC(ours, relion) to 2/3 Nyquist %.4f, (ours, source) %.4f\n", m, min_fsc(ours, src, last));
  CHECK(m >= 0.9);
  CHECK(min_fsc(ours, src, last) >= 0.9);
  nlohmann::json j = read_json(k.dir + "/out/fsc.json");
  CHECK(j["ctf"] == "none");
  // Noise-free halves agree nearly to Nyquist.
  CHECK(double(j["resolution_0143"]) < 2.5 * kPix);
}

TEST_CASE("with CTF: our map and relion_reconstruct's agree, FSC >= 0.9 up to 2/3 Nyquist; outputs complete") {
  if (!test::oracle("relion_project")) return;
  Case k(true);
  std::vector<float> ours = read_volume(k.dir + "/out/full.mrc"), relion = read_volume(k.dir + "/relion.mrc");
  int last = 2 * (kBox / 2) / 3;
  double m = min_fsc(ours, relion, last);
  std::printf("CTF: min FSC(ours, relion) to 2/3 Nyquist %.4f\n", m);
  CHECK(m >= 0.9);
  // Without CTF correction the same data give a visibly worse map: the check above can fail.
  auto r = test::run(test::cugmm_exe() + " reconstruct --particles proj.star --out raw --device cpu --no-ctf", k.dir);
  REQUIRE_MESSAGE(r.status == 0, r.out);
  CHECK(min_fsc(read_volume(k.dir + "/raw/full.mrc"), relion, last) < 0.8);

  nlohmann::json j = read_json(k.dir + "/out/fsc.json");
  CHECK(j["ctf"] == "full");
  CHECK(j["particles"] == kCount);
  CHECK(j["split"] == "rlnRandomSubset");
  CHECK(j["half1"] == kCount / 3);  // every third particle has rlnRandomSubset 1
  CHECK(j["half2"] == kCount - kCount / 3);
  CHECK(j["fsc"].size() == size_t(kBox / 2));
  for (const char* f : {"half1.mrc", "half2.mrc", "full.mrc", "fsc.txt", "fsc.png", "fsc.json"})
    CHECK_MESSAGE(fs::exists(k.dir + "/out/" + f), f);
  for (const auto& e : fs::directory_iterator(k.dir + "/out"))  // no temporaries left behind
    CHECK_MESSAGE(e.path().filename().string().find(".mrc.") == std::string::npos, e.path().string());
  CHECK(test::run(std::string(test::kPython) + " -c \"import mrcfile; assert mrcfile.validate('out/full.mrc')\"",
                  k.dir).status == 0);
  // The halves are the two halves: their sum of sums matches the full map's scale.
  std::vector<float> h1 = read_volume(k.dir + "/out/half1.mrc"), h2 = read_volume(k.dir + "/out/half2.mrc");
  double s1 = 0, s2 = 0, sf = 0;
  for (size_t i = 0; i < h1.size(); ++i) { s1 += h1[i]; s2 += h2[i]; sf += ours[i]; }
  CHECK(s1 == doctest::Approx(sf).epsilon(0.05));
  CHECK(s2 == doctest::Approx(sf).epsilon(0.05));

  SUBCASE("subsets: a column's values, a row list, another STAR's images; even/odd without rlnRandomSubset") {
    r = test::run(test::cugmm_exe() + " reconstruct --particles proj.star --out cls --device cpu "
                  "--subset-column rlnClassNumber --subset-values 1,3 --mask-radius 30", k.dir);
    REQUIRE_MESSAGE(r.status == 0, r.out);
    nlohmann::json c = read_json(k.dir + "/cls/fsc.json");
    CHECK(c["particles"] == kCount / 2);  // classes 1..4 in turn
    CHECK(c["mask"] == "sphere");
    CHECK(c["fsc"][0].contains("fsc_masked"));

    std::string rows;
    for (int i = 10; i < 310; ++i) rows += std::to_string(i) + "\n";
    test::write_text(k.dir + "/rows.txt", "# rows\n" + rows);
    r = test::run(test::cugmm_exe() + " reconstruct --particles proj.star --out idx --device cpu --subset-indices rows.txt",
                  k.dir);
    REQUIRE_MESSAGE(r.status == 0, r.out);
    CHECK(read_json(k.dir + "/idx/fsc.json")["particles"] == 300);

    // A STAR listing 200 of the images, without rlnRandomSubset: halves split even/odd, 100 + 100.
    io::ParticleSet set = io::read_particles(k.dir + "/proj.star");
    std::vector<size_t> keep;
    for (size_t i = 0; i < 200; ++i) keep.push_back(i * 4 + 1);
    io::write_particle_subset(k.dir + "/sub.star", set, keep);
    std::string plain = test::read_text(k.dir + "/sub.star");
    r = test::run(test::cugmm_exe() + " reconstruct --particles proj.star --out sub --device cpu --subset-star sub.star",
                  k.dir);
    REQUIRE_MESSAGE(r.status == 0, r.out);
    CHECK(read_json(k.dir + "/sub/fsc.json")["particles"] == 200);

    test::write_text(k.dir + "/bad_rows.txt", "3\n9999\n");
    r = test::run(test::cugmm_exe() + " reconstruct --particles proj.star --out bad --subset-indices bad_rows.txt", k.dir);
    CHECK(r.status != 0);
    CHECK(r.out.find("bad_rows.txt") != std::string::npos);
    CHECK(!fs::exists(k.dir + "/bad/fsc.json"));
  }
}
