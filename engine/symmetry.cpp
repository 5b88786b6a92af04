#include "engine/symmetry.h"

#include <cctype>
#include <cmath>
#include <cstdio>

#include "core/error.h"
#include "io/particles.h"
#include "io/star.h"

namespace cugmm {

namespace {

struct Generator {
  int n;
  double x, y, z;
};

// Rotation by 360/n degrees about (x, y, z) (normalised here).
Mat3<double> rotation_about(const Generator& g) {
  const double len = std::sqrt(g.x * g.x + g.y * g.y + g.z * g.z);
  const double a = 2 * kPi / g.n;
  return axis_angle_to_matrix(a * g.x / len, a * g.y / len, a * g.z / len);
}

bool same(const Mat3<double>& a, const Mat3<double>& b) {
  double d = 0;
  for (int i = 0; i < 9; ++i) d = std::max(d, std::fabs(a.m[i] - b.m[i]));
  // The generators' axes are given to ~1e-9 (RELION's digits): products of a few dozen stay far below this,
  // and distinct operators of these groups differ by at least sin(360/999 degrees) ~ 6e-3.
  return d < 1e-5;
}

// Every product of the generators, breadth first from the identity: the group they generate.
std::vector<Mat3<double>> closure(const std::vector<Generator>& gens, size_t limit) {
  std::vector<Mat3<double>> g = {{{1, 0, 0, 0, 1, 0, 0, 0, 1}}}, gm;
  for (const Generator& x : gens) gm.push_back(rotation_about(x));
  for (size_t i = 0; i < g.size(); ++i)
    for (const Mat3<double>& m : gm) {
      const Mat3<double> p = mul(g[i], m);
      bool found = false;
      for (const Mat3<double>& q : g) found = found || same(p, q);
      if (!found) g.push_back(p);
      CUGMM_REQUIRE(g.size() <= limit, "symmetry closure ran past the group's order");
    }
  return g;
}

}  // namespace

SymmetryGroup make_symmetry_group(const std::string& text) {
  std::string s;
  for (char ch : text) s += char(std::toupper(static_cast<unsigned char>(ch)));
  auto bad = [&] {
    return Error("--sym: '" + quote_value(text) + "' is not a point group (C1..C999, D1..D999, T, O, I, I1, I2, I3, I4)");
  };
  SymmetryGroup g;
  std::vector<Generator> gens;
  size_t order = 0;
  if (!s.empty() && (s[0] == 'C' || s[0] == 'D')) {
    if (s.size() < 2 || s.size() > 4) throw bad();
    for (size_t i = 1; i < s.size(); ++i)
      if (!std::isdigit(static_cast<unsigned char>(s[i]))) throw bad();
    const int n = std::atoi(s.c_str() + 1);
    if (n < 1 || s[1] == '0') throw bad();
    g.name = s[0] + std::to_string(n);
    if (n > 1) gens.push_back({n, 0, 0, 1});
    if (s[0] == 'D') gens.push_back({2, 1, 0, 0});
    order = size_t(n) * (s[0] == 'D' ? 2 : 1);
  } else if (s == "T") {
    g.name = s;
    gens = std::vector<Generator>{{3, 0, 0, 1}, {2, 0, 0.816496, 0.577350}};
    order = 12;
  } else if (s == "O") {
    g.name = s;
    gens = std::vector<Generator>{{3, 1, 1, 1}, {4, 0, 0, 1}};
    order = 24;
  } else if (s == "I" || s == "I2") {
    g.name = "I2";
    gens = std::vector<Generator>{{2, 0, 0, 1}, {5, 0.525731114, 0, 0.850650807}, {3, 0, 0.356822076, 0.934172364}};
    order = 60;
  } else if (s == "I1") {
    g.name = s;
    gens = std::vector<Generator>{{2, 1, 0, 0}, {5, 0.85065080702670, 0, -0.5257311142635}, {3, 0.9341723640, 0.3568220765, 0}};
    order = 60;
  } else if (s == "I3") {
    g.name = s;
    gens = std::vector<Generator>{{2, -0.5257311143, 0, 0.8506508070}, {5, 0, 0, 1},
            {3, -0.4911234778630044, 0.3568220764705179, 0.7946544753759428}};
    order = 60;
  } else if (s == "I4") {
    g.name = s;
    gens = std::vector<Generator>{{2, 0.5257311143, 0, 0.8506508070}, {5, 0.8944271932547096, 0, 0.4472135909903704},
            {3, 0.4911234778630044, 0.3568220764705179, 0.7946544753759428}};
    order = 60;
  } else {
    throw bad();
  }
  g.operators = closure(gens, order);
  CUGMM_REQUIRE(g.operators.size() == order, "symmetry " + g.name + ": the closure has " +
                                                 std::to_string(g.operators.size()) + " operators, not " +
                                                 std::to_string(order));
  return g;
}

std::vector<int> asymmetric_units(const SymmetryGroup& g, const std::vector<Vec3<double>>& points) {
  const double dl = std::sqrt(1 + 0.01);
  const Vec3<double> d = {1 / dl, 0, 0.1 / dl};
  // R_k^-1 c . d = c . (R_k d): compare c with each image of d (same angle test, one product per operator).
  std::vector<Vec3<double>> images;
  for (const Mat3<double>& r : g.operators) images.push_back(mul(r, d));
  std::vector<int> unit(points.size(), 0);
  for (size_t j = 0; j < points.size(); ++j) {
    const Vec3<double>& c = points[j];
    double best = -1e300;
    for (size_t k = 0; k < images.size(); ++k) {
      const double dot = c.x * images[k].x + c.y * images[k].y + c.z * images[k].z;
      if (dot > best + 1e-9) {  // ties (the centre, an axis) keep the lowest k
        best = dot;
        unit[j] = int(k);
      }
    }
  }
  return unit;
}

io::ParticleSet expand_particle_set(const io::ParticleSet& set, const SymmetryGroup& g) {
  const size_t n = g.order(), N = set.particles.size();
  std::vector<size_t> all(N);
  for (size_t i = 0; i < N; ++i) all[i] = i;
  io::ParticleSet out;
  out.source = set.source;
  out.optics = set.optics;
  out.has_ctf = set.has_ctf;
  out.star = io::particle_subset_star(set, all);  // RELION 3.1, one row per particle
  io::StarBlock* b = out.star.find("particles");
  CUGMM_REQUIRE(b && b->rows.size() == N, "particle table missing from the STAR document");
  const int rot = b->add_column("rlnAngleRot"), tilt = b->add_column("rlnAngleTilt"), psi = b->add_column("rlnAnglePsi");
  const int copy = b->add_column("rlnCugmmSymmetryCopy");
  std::vector<std::vector<std::string>> rows;
  rows.reserve(N * n);
  out.particles.reserve(N * n);
  char buf[32];
  for (size_t i = 0; i < N; ++i) {
    const io::Particle& p = set.particles[i];
    const Mat3<double> a = euler_to_matrix(p.rot, p.tilt, p.psi);
    for (size_t k = 0; k < n; ++k) {
      io::Particle q = p;
      if (k > 0) matrix_to_euler(mul(a, g.operators[k]), q.rot, q.tilt, q.psi);
      std::vector<std::string> row = b->rows[i];
      for (auto [col, v] : {std::pair<int, double>{rot, q.rot}, {tilt, q.tilt}, {psi, q.psi}}) {
        std::snprintf(buf, sizeof buf, "%.6f", v);
        row[size_t(col)] = buf;
      }
      row[size_t(copy)] = std::to_string(k + 1);
      rows.push_back(std::move(row));
      out.particles.push_back(q);
    }
  }
  b->rows = std::move(rows);
  return out;
}

}  // namespace cugmm
