// Symmetry expansion (issue 18): the point groups against RELION's own relion_particle_symmetry_expand
// (the expanded rotation matrices of every particle equal RELION's as unordered sets), the groups' orders
// and closure, the asymmetric units, and the expanded STAR file.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "engine/symmetry.h"
#include "io/particles.h"
#include "io/star.h"
#include "kernels/geometry.h"
#include "support.h"

using namespace cugmm;

namespace {

const char* kGroups[] = {"C1", "C2", "C3", "C7", "D2", "D3", "D7", "T", "O", "I", "I1", "I2", "I3", "I4"};

double max_diff(const Mat3<double>& a, const Mat3<double>& b) {
  double d = 0;
  for (int i = 0; i < 9; ++i) d = std::max(d, std::fabs(a.m[i] - b.m[i]));
  return d;
}

// Every matrix of `a` has one in `b` within tol, and the other way round (unordered sets of equal size).
bool same_set(const std::vector<Mat3<double>>& a, const std::vector<Mat3<double>>& b, double tol) {
  if (a.size() != b.size()) return false;
  for (int pass = 0; pass < 2; ++pass) {
    const auto& x = pass ? b : a;
    const auto& y = pass ? a : b;
    for (const auto& m : x) {
      bool found = false;
      for (const auto& n : y) found = found || max_diff(m, n) < tol;
      if (!found) return false;
    }
  }
  return true;
}

std::string particles_star(int n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> ang(-180, 180), tilt(0, 180), sh(-5, 5);
  std::string s =
      "\n# version 30001\n\ndata_optics\n\nloop_\n_rlnOpticsGroup #1\n_rlnOpticsGroupName #2\n_rlnImagePixelSize #3\n"
      "_rlnImageSize #4\n_rlnVoltage #5\n_rlnSphericalAberration #6\n_rlnAmplitudeContrast #7\n"
      "_rlnImageDimensionality #8\n1 opticsGroup1 2.0 64 300 2.7 0.1 2\n\n\n# version 30001\n\ndata_particles\n\n"
      "loop_\n_rlnImageName #1\n_rlnAngleRot #2\n_rlnAngleTilt #3\n_rlnAnglePsi #4\n_rlnOriginXAngst #5\n"
      "_rlnOriginYAngst #6\n_rlnOpticsGroup #7\n";
  char buf[200];
  for (int i = 0; i < n; ++i) {
    std::snprintf(buf, sizeof buf, "%06d@stack.mrcs %.6f %.6f %.6f %.3f %.3f 1\n", i + 1, ang(rng), tilt(rng), ang(rng),
                  sh(rng), sh(rng));
    s += buf;
  }
  return s + "\n";
}

io::ParticleSet read_without_images(const std::string& path) {
  io::ParticleReadOptions o;
  o.check_images = false;
  return io::read_particles(path, o);
}

}  // namespace

TEST_CASE("point groups: RELION's orders, closed under products, identity first") {
  const std::map<std::string, size_t> order = {{"C1", 1}, {"C2", 2}, {"C3", 3}, {"C7", 7}, {"D2", 4}, {"D3", 6},
                                               {"D7", 14}, {"T", 12}, {"O", 24}, {"I", 60}, {"I1", 60}, {"I2", 60},
                                               {"I3", 60}, {"I4", 60}};
  for (const std::string name : kGroups) {
    CAPTURE(name);
    const SymmetryGroup g = make_symmetry_group(name);
    CHECK(g.order() == order.at(name));
    CHECK(max_diff(g.operators[0], {{1, 0, 0, 0, 1, 0, 0, 0, 1}}) < 1e-12);
    for (const auto& a : g.operators) {
      CHECK(std::fabs(a(0, 0) * (a(1, 1) * a(2, 2) - a(1, 2) * a(2, 1)) - a(0, 1) * (a(1, 0) * a(2, 2) - a(1, 2) * a(2, 0)) +
                      a(0, 2) * (a(1, 0) * a(2, 1) - a(1, 1) * a(2, 0)) - 1) < 1e-9);  // proper rotations
      for (const auto& b : g.operators) {
        const Mat3<double> p = mul(a, b);
        bool found = false;
        for (const auto& c : g.operators) found = found || max_diff(p, c) < 1e-6;
        CHECK(found);
      }
    }
  }
  CHECK(make_symmetry_group("c3").name == "C3");
  CHECK(make_symmetry_group("i").name == "I2");
  CHECK(make_symmetry_group("d7").order() == 14);
  for (const char* bad : {"", "C", "C0", "C03", "X2", "D-1", "I5", "Oh", "C1000", "c3 "}) {
    CAPTURE(bad);
    bool threw = false;
    try {
      make_symmetry_group(bad);
    } catch (const Error& e) {
      threw = true;
      CHECK(test::contains(e.what(), "--sym"));
      CHECK(test::contains(e.what(), "not a point group"));
    }
    CHECK(threw);
  }
}

TEST_CASE("expanded poses equal relion_particle_symmetry_expand's for every group (matrices, unordered per particle)") {
  if (!test::oracle("relion_particle_symmetry_expand")) return;
  const std::string dir = test::scratch_dir("symmetry_relion");
  test::write_text(dir + "/in.star", particles_star(6, 18));
  const io::ParticleSet in = read_without_images(dir + "/in.star");
  REQUIRE(in.particles.size() == 6);
  for (const std::string name : kGroups) {
    CAPTURE(name);
    if (name == "C1") continue;  // RELION: "Nothing to do. Provide a point group with symmetry!"
    const std::string out = "out_" + name + ".star";
    auto r = test::run("relion_particle_symmetry_expand --i in.star --o " + out + " --sym " + name, dir);
    REQUIRE_MESSAGE(r.status == 0, r.out);
    const io::ParticleSet relion = read_without_images(dir + "/" + out);
    const SymmetryGroup g = make_symmetry_group(name);
    REQUIRE(relion.particles.size() == in.particles.size() * g.order());
    const io::ParticleSet ours = expand_particle_set(in, g);
    REQUIRE(ours.particles.size() == relion.particles.size());
    // RELION's rows of a particle: those with its image name (their order is RELION's business).
    for (size_t i = 0; i < in.particles.size(); ++i) {
      std::vector<Mat3<double>> theirs, mine;
      for (const io::Particle& p : relion.particles)
        if (p.index == in.particles[i].index) theirs.push_back(euler_to_matrix(p.rot, p.tilt, p.psi));
      for (size_t k = 0; k < g.order(); ++k) {
        const io::Particle& p = ours.particles[i * g.order() + k];
        CHECK(p.index == in.particles[i].index);
        CHECK(p.origin_x == in.particles[i].origin_x);
        mine.push_back(euler_to_matrix(p.rot, p.tilt, p.psi));
      }
      CHECK(same_set(mine, theirs, 1e-4));  // RELION writes angles to 1e-6 degrees
    }
  }
}

TEST_CASE("asymmetric units: each operator's image of a point falls in its own unit; Cn wedges centred on +x") {
  std::mt19937_64 rng(5);
  std::normal_distribution<double> nd;
  for (const std::string name : kGroups) {
    CAPTURE(name);
    const SymmetryGroup g = make_symmetry_group(name);
    for (int trial = 0; trial < 20; ++trial) {
      const Vec3<double> p = {10 * nd(rng), 10 * nd(rng), 10 * nd(rng)};
      std::vector<Vec3<double>> orbit;
      for (const auto& r : g.operators) orbit.push_back(mul(r, p));
      const std::vector<int> unit = asymmetric_units(g, orbit);
      // The orbit of a generic point has one point in each unit: R_k p lies in unit k (R_k^-1 R_k p = p).
      const int u0 = unit[0];
      std::set<int> seen(unit.begin(), unit.end());
      CHECK(seen.size() == g.order());
      // ... and the unit of R_k p is the unit of p moved by R_k: R_k maps unit 0's points into unit k.
      if (u0 == 0)
        for (size_t k = 0; k < g.order(); ++k) CHECK(unit[k] == int(k));
    }
  }
  const SymmetryGroup c3 = make_symmetry_group("C3");
  const std::vector<int> u = asymmetric_units(c3, {{10, 1, 5}, {10, -1, -5}, {-5, 8.6, 0}, {-5, -8.6, 3}, {0, 0, 0}});
  CHECK(u[0] == 0);
  CHECK(u[1] == 0);
  CHECK(u[2] != 0);
  CHECK(u[3] != 0);
  CHECK(u[2] != u[3]);
  CHECK(u[4] == 0);  // the centre: the lowest unit
}

TEST_CASE("the expanded STAR: one row per copy with rlnCugmmSymmetryCopy, readable by RELION") {
  const std::string dir = test::scratch_dir("symmetry_star");
  test::write_text(dir + "/in.star", particles_star(4, 3));
  const io::ParticleSet in = read_without_images(dir + "/in.star");
  const SymmetryGroup g = make_symmetry_group("D3");
  const io::ParticleSet ex = expand_particle_set(in, g);
  std::vector<size_t> all(ex.particles.size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = i;
  io::write_particle_subset(dir + "/ex.star", ex, all);
  const io::ParticleSet back = read_without_images(dir + "/ex.star");
  REQUIRE(back.particles.size() == 24);
  io::StarFile star = io::read_star(dir + "/ex.star");
  const io::StarBlock* b = star.find("particles");
  REQUIRE(b);
  const int col = b->column("rlnCugmmSymmetryCopy");
  REQUIRE(col >= 0);
  for (size_t r = 0; r < b->rows.size(); ++r) {
    CHECK(b->rows[r][size_t(col)] == std::to_string(r % 6 + 1));
    const Mat3<double> a = euler_to_matrix(back.particles[r].rot, back.particles[r].tilt, back.particles[r].psi);
    const io::Particle& p = in.particles[r / 6];
    CHECK(max_diff(a, mul(euler_to_matrix(p.rot, p.tilt, p.psi), g.operators[r % 6])) < 1e-5);
  }
  if (!test::oracle("relion_star_handler")) return;
  auto r = test::run("relion_star_handler --i ex.star --o copy.star --select rlnAngleTilt --minval -1 --maxval 181", dir);
  REQUIRE_MESSAGE(r.status == 0, r.out);
  CHECK(read_without_images(dir + "/copy.star").particles.size() == 24);
}
