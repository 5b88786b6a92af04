#include "engine/example_model.h"

#include <cmath>
#include <random>

#include "kernels/geometry.h"

namespace cugmm {

ExampleMolecule make_example_molecule(int box, double pixel_size, double hinge_degrees) {
  ExampleMolecule m;
  m.hinge_degrees = hinge_degrees;
  std::mt19937 rng(20211025);  // fixed: the example is the same everywhere
  std::normal_distribution<double> jitter(0.0, 1.0);
  const double extent = box * pixel_size;  // Å across the box
  const double s = 1.5 * pixel_size;
  std::vector<Vec3<double>> c;
  std::vector<double> amp;
  // Domain 1: a coiled rod along x (a helix bundle seen from afar), left of centre.
  for (int i = 0; i < 160; ++i) {
    double t = i / 160.0;
    double ang = t * 6 * kPi;
    c.push_back({-0.28 * extent + 0.30 * extent * t, 0.06 * extent * std::cos(ang), 0.06 * extent * std::sin(ang)});
    amp.push_back(1.0);
    m.domain.push_back(1);
  }
  // Domain 2: a compact lobe right of the hinge, dense at its core.
  for (int i = 0; i < 160; ++i) {
    Vec3<double> p{0.12 * extent + 0.05 * extent * jitter(rng), 0.05 * extent * jitter(rng),
                   0.08 * extent + 0.04 * extent * jitter(rng)};
    c.push_back(p);
    amp.push_back(0.8);
    m.domain.push_back(2);
  }
  // Conformation B: domain 2 swings about the y axis through the hinge point.
  const Vec3<double> hinge{0.04 * extent, 0, 0};
  Mat3<double> r = axis_angle_to_matrix(0.0, deg2rad(hinge_degrees), 0.0);
  for (io::GaussianModel* g : {&m.open, &m.closed}) {
    g->box_size = box;
    g->pixel_size = pixel_size;
    g->resize(c.size());
  }
  for (size_t j = 0; j < c.size(); ++j) {
    Vec3<double> q = c[j];
    if (m.domain[j] == 2) {
      Vec3<double> d = mul(r, Vec3<double>{c[j].x - hinge.x, c[j].y - hinge.y, c[j].z - hinge.z});
      q = {d.x + hinge.x, d.y + hinge.y, d.z + hinge.z};
    }
    m.open.x[j] = float(c[j].x); m.open.y[j] = float(c[j].y); m.open.z[j] = float(c[j].z);
    m.closed.x[j] = float(q.x); m.closed.y[j] = float(q.y); m.closed.z[j] = float(q.z);
    for (io::GaussianModel* g : {&m.open, &m.closed}) {
      g->amplitude[j] = float(amp[j]);
      g->width[j] = float(s);
    }
  }
  return m;
}

}  // namespace cugmm
