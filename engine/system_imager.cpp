#include "engine/system_imager.h"

#include "core/error.h"
#include "engine/atom_map.h"

namespace cugmm {

SystemImager::SystemImager(const HeteroSystem& system, int box, double pixel, int oversample)
    : system_(system), bodies_(split_bodies(system)) {
  const io::AtomicModel& atoms = system.atoms;
  shift_ = centring_shift(atoms, box, pixel);
  const double c = box / 2 * pixel;
  to_box_ = {shift_.x - c, shift_.y - c, shift_.z - c};
  std::vector<io::Image> maps;
  for (const std::vector<size_t>& idx : bodies_.atoms) {
    std::vector<char> sel(atoms.atoms.size(), 0);
    double w = 0, x = 0, y = 0, z = 0;
    for (size_t i : idx) {
      sel[i] = 1;
      const io::Atom& a = atoms.atoms[i];
      w += a.electrons; x += a.electrons * a.x; y += a.electrons * a.y; z += a.electrons * a.z;
    }
    pivots_.push_back({x / w + to_box_.x, y / w + to_box_.y, z / w + to_box_.z});
    maps.push_back(render_atom_map(atoms, &sel, box, pixel, shift_, oversample));
  }
  projector_ = std::make_unique<SliceProjector>(maps, pivots_);
}

// The body's rigid map in the atoms' frame, x -> M x + v, is x_b -> M (x_b - d) + v + d in Å from the box
// centre (d = to_box_), i.e. a rotation M about the pivot c followed by t = M (c - d) - (c - d) + v.
BodyMotion SystemImager::body_motion(size_t body, const std::vector<double>& state) const {
  const Rigid r = body_map(system_, bodies_.motions[body], state);
  BodyMotion m;
  m.weight = r.present ? 1 : 0;
  m.rotation = r.m;
  const Vec3<double>& c = pivots_[body];
  const Vec3<double> cd{c.x - to_box_.x, c.y - to_box_.y, c.z - to_box_.z};
  const Vec3<double> mcd = mul(r.m, cd);
  m.translation = {mcd.x - cd.x + r.v.x, mcd.y - cd.y + r.v.y, mcd.z - cd.z + r.v.z};
  return m;
}

std::vector<BodyMotion> SystemImager::motions(const std::vector<double>& state) const {
  CUGMM_REQUIRE(state.size() == system_.motions.size(), "SystemImager: one state value per motion");
  std::vector<BodyMotion> out;
  for (size_t b = 0; b < bodies_.atoms.size(); ++b) out.push_back(body_motion(b, state));
  return out;
}

}  // namespace cugmm
