#include "engine/example_atoms.h"

#include <cmath>

namespace cugmm {

namespace {

// One ideal alpha-helix along `axis` (unit) from `start`, `residues` long; atoms appended to `m`.
void add_helix(io::AtomicModel& m, const std::string& chain, int& resnum, Vec3<double> start, Vec3<double> axis,
               int residues, double phase) {
  // Two unit vectors perpendicular to the axis.
  Vec3<double> u = std::abs(axis.x) < 0.9 ? Vec3<double>{1, 0, 0} : Vec3<double>{0, 1, 0};
  const double d = u.x * axis.x + u.y * axis.y + u.z * axis.z;
  u = {u.x - d * axis.x, u.y - d * axis.y, u.z - d * axis.z};
  const double nu = std::sqrt(u.x * u.x + u.y * u.y + u.z * u.z);
  u = {u.x / nu, u.y / nu, u.z / nu};
  const Vec3<double> v{axis.y * u.z - axis.z * u.y, axis.z * u.x - axis.x * u.z, axis.x * u.y - axis.y * u.x};
  // Per residue: radius (Å), angle offset (degrees), rise offset (Å), electrons; N, CA, C, O, CB.
  const double atoms[5][4] = {{1.55, -28, -0.75, 7}, {2.3, 0, 0, 6}, {1.65, 28, 0.75, 6}, {2.0, 40, 1.9, 8},
                              {3.3, -10, -0.6, 6}};
  for (int r = 0; r < residues; ++r, ++resnum) {
    const double base = phase + deg2rad(100.0 * r), rise = 1.5 * r;
    for (const auto& a : atoms) {
      const double ang = base + deg2rad(a[1]), h = rise + a[2];
      const double cx = a[0] * std::cos(ang), cy = a[0] * std::sin(ang);
      m.atoms.push_back({float(start.x + h * axis.x + cx * u.x + cy * v.x),
                         float(start.y + h * axis.y + cx * u.y + cy * v.y),
                         float(start.z + h * axis.z + cx * u.z + cy * v.z), float(a[3]), 30.f, chain, resnum});
    }
  }
}

}  // namespace

ExampleAtoms make_example_atoms(double scale) {
  ExampleAtoms ex;
  ex.model.source = "built-in example";
  const int core_len = int(std::lround(40 * scale)), arm_len = int(std::lround(26 * scale)),
            lid_len = int(std::lround(14 * scale));
  const double core_h = 1.5 * core_len;
  // Core: a central helix and six around it at 10 Å, antiparallel neighbours.
  int res = 1;
  add_helix(ex.model, "A", res, {0, 0, -core_h / 2}, {0, 0, 1}, core_len, 0);
  for (int i = 0; i < 6; ++i) {
    const double a = deg2rad(60.0 * i);
    const bool up = i % 2 == 0;
    add_helix(ex.model, "A", res, {10 * std::cos(a), 10 * std::sin(a), up ? -core_h / 2 : core_h / 2},
              {0, 0, up ? 1.0 : -1.0}, core_len, a);
  }
  // Arm: three helices side by side along x, beside the core at +x, tilted 30 degrees from z.
  res = 1;
  const double tilt = deg2rad(30.0), arm_h = 1.5 * arm_len;
  const Vec3<double> arm_axis{std::sin(tilt), 0, std::cos(tilt)};
  for (int i = 0; i < 3; ++i)
    add_helix(ex.model, "B", res, {22.0 + 9.5 * i, 4.0 * (i - 1), -arm_h / 2 - 4}, arm_axis, arm_len, 0.7 * i);
  // Lid: two short helices across the top of the core.
  res = 1;
  add_helix(ex.model, "C", res, {-9, -6, core_h / 2 + 6}, {1, 0, 0}, lid_len, 0);
  add_helix(ex.model, "C", res, {9, 4, core_h / 2 + 14}, {-1, 0, 0}, lid_len, 1.0);
  // The molecule's centre of mass at the origin.
  double w = 0, cx = 0, cy = 0, cz = 0;
  for (const io::Atom& a : ex.model.atoms) { w += a.electrons; cx += a.electrons * a.x; cy += a.electrons * a.y; cz += a.electrons * a.z; }
  cx /= w; cy /= w; cz /= w;
  for (io::Atom& a : ex.model.atoms) { a.x -= float(cx); a.y -= float(cy); a.z -= float(cz); }
  // The arm hinges where it meets the core (its low end, at the core's edge), about the y axis, so a
  // rotation swings it towards and away from the core; it slides along y (across its own helices).
  ex.hinge_point = {16 - cx, -cy, -arm_h / 2 - 4 - cz};
  ex.hinge_axis = {0, 1, 0};
  ex.slide_direction = {0, 1, 0};
  return ex;
}

}  // namespace cugmm
