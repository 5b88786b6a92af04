#include "engine/residue_model.h"

#include <array>
#include <map>

#include "engine/system_imager.h"

namespace cugmm {

io::GaussianModel residue_model(const HeteroSystem& sys, int box, double pixel, std::vector<std::string>* chains) {
  SystemImager imager(sys, box, pixel, 1);
  const Vec3<double> shift = imager.atom_shift();
  std::map<std::pair<std::string, int>, std::array<double, 4>> res;
  std::vector<std::pair<std::string, int>> order;
  for (const io::Atom& a : sys.atoms.atoms) {
    auto key = std::make_pair(a.chain, a.residue);
    auto it = res.find(key);
    if (it == res.end()) {
      order.push_back(key);
      it = res.emplace(key, std::array<double, 4>{0, 0, 0, 0}).first;
    }
    it->second[0] += a.electrons * a.x;
    it->second[1] += a.electrons * a.y;
    it->second[2] += a.electrons * a.z;
    it->second[3] += a.electrons;
  }
  io::GaussianModel m;
  m.box_size = box;
  m.pixel_size = pixel;
  const double c = (box / 2) * pixel;
  for (const auto& k : order) {
    const auto& r = res[k];
    if (chains) chains->push_back(k.first);
    m.x.push_back(float(r[0] / r[3] + shift.x - c));
    m.y.push_back(float(r[1] / r[3] + shift.y - c));
    m.z.push_back(float(r[2] / r[3] + shift.z - c));
    m.amplitude.push_back(float(r[3]));
    m.width.push_back(2.5f);
  }
  return m;
}

}  // namespace cugmm
