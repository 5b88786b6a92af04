#include "engine/hetero_system.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>
#include <map>

#include "core/error.h"
#include "engine/example_atoms.h"

namespace cugmm {

namespace {

Vec3<double> unit(Vec3<double> a, const std::string& file, const std::string& what) {
  const double n = std::sqrt(a.x * a.x + a.y * a.y + a.z * a.z);
  if (!(n > 0) || !std::isfinite(n)) throw InputError(file, what, "must be a non-zero, finite vector");
  return {a.x / n, a.y / n, a.z / n};
}

Vec3<double> centroid(const io::AtomicModel& m, const std::vector<char>& sel) {
  double w = 0, x = 0, y = 0, z = 0;
  for (size_t i = 0; i < m.atoms.size(); ++i)
    if (sel[i]) {
      const io::Atom& a = m.atoms[i];
      w += a.electrons; x += a.electrons * a.x; y += a.electrons * a.y; z += a.electrons * a.z;
    }
  return {x / w, y / w, z / w};
}

Motion rotate(const io::AtomicModel& m, const std::string& sel, Vec3<double> axis, Vec3<double> point, double lo,
              double hi, const std::string& name) {
  Motion mo;
  mo.kind = Motion::Kind::rotate;
  mo.atoms = io::select_atoms(m, sel);
  mo.axis = unit(axis, m.source, "axis");
  mo.point = point;
  mo.lo = lo; mo.hi = hi; mo.name = name;
  return mo;
}

Motion translate(const io::AtomicModel& m, const std::string& sel, Vec3<double> dir, double lo, double hi,
                 const std::string& name) {
  Motion mo;
  mo.kind = Motion::Kind::translate;
  mo.atoms = io::select_atoms(m, sel);
  mo.axis = unit(dir, m.source, "direction");
  mo.lo = lo; mo.hi = hi; mo.name = name;
  return mo;
}

Motion present(const io::AtomicModel& m, const std::string& sel, double fraction, const std::string& name) {
  Motion mo;
  mo.kind = Motion::Kind::present;
  mo.atoms = io::select_atoms(m, sel);
  mo.fraction = fraction; mo.lo = 0; mo.hi = 1; mo.name = name;
  return mo;
}

}  // namespace

const std::vector<std::string>& builtin_system_names() {
  static const std::vector<std::string> names = {"linear",      "rotation",  "composition",
                                                 "two-motions", "small-part", "c3-trimer"};
  return names;
}

// Three copies of the example's arm (chain B) about the z axis (C3, RELION's operators: copy k is the first
// rotated by 120 k degrees), as chains A, B, C: chain A centred at (18, 0, 0) Å.
io::AtomicModel trimer_atoms(const ExampleAtoms& ex) {
  const std::vector<char> arm = io::select_atoms(ex.model, "B");
  const Vec3<double> c = centroid(ex.model, arm);
  io::AtomicModel m;
  m.source = "built-in C3 trimer";
  for (int k = 0; k < 3; ++k) {
    const Mat3<double> r = axis_angle_to_matrix(0.0, 0.0, deg2rad(120.0 * k));
    for (size_t i = 0; i < ex.model.atoms.size(); ++i) {
      if (!arm[i]) continue;
      io::Atom a = ex.model.atoms[i];
      const Vec3<double> p = mul(r, Vec3<double>{a.x - c.x + 18, a.y - c.y, a.z - c.z});
      a.x = float(p.x); a.y = float(p.y); a.z = float(p.z);
      a.chain = std::string(1, char('A' + k));
      m.atoms.push_back(a);
    }
  }
  return m;
}

HeteroSystem builtin_system(const std::string& name) {
  ExampleAtoms ex = make_example_atoms();
  HeteroSystem s;
  s.name = name;
  if (name == "c3-trimer") {  // chain B (at 120 degrees) slides along its own tangent, the others stay
    s.atoms = trimer_atoms(ex);
    s.motions.push_back(translate(s.atoms, "B", {-std::sqrt(3.0) / 2, -0.5, 0}, -10, 10, "displacement_A"));
    return s;
  }
  s.atoms = ex.model;
  const auto& a = s.atoms;
  if (name == "linear" || name == "composition") {
    s.motions.push_back(translate(a, "B", ex.slide_direction, -12, 12, "displacement_A"));
    if (name == "composition") s.motions.push_back(present(a, "C", 0.5, "present"));
  } else if (name == "rotation") {
    s.motions.push_back(rotate(a, "C", {0, 0, 1}, centroid(a, io::select_atoms(a, "C")), -180, 180, "angle_deg"));
  } else if (name == "two-motions") {
    s.motions.push_back(rotate(a, "B", ex.hinge_axis, ex.hinge_point, -30, 30, "angle_deg"));
    s.motions.push_back(translate(a, "C", {1, 0, 0}, -8, 8, "displacement_A"));
  } else if (name == "small-part") {
    // The lid's upper helix (C:15-28, 14 of 386 residues: 3.6% of the mass) rests across the lower one, their
    // axes (0, 10, 8) Å apart; it slides over it, across its own axis and perpendicular to that offset, by up
    // to 5 Å either way (about a helix's width in all): issue 14's "small moving part on a small protein",
    // touching the rest all the way (closest backbone atoms 6.2-7.3 Å; 6.5 at rest) rather than leaving it.
    s.motions.push_back(translate(a, "C:15-28", {0, 8, -10}, -5, 5, "displacement_A"));
  } else {
    std::string list;
    for (auto& n : builtin_system_names()) list += (list.empty() ? "" : ", ") + n;
    throw Error("no built-in system '" + name + "' (there are: " + list + ")");
  }
  return s;
}

HeteroSystem rigid_particle(const io::AtomicModel& atoms) {
  HeteroSystem s;
  s.name = "rigid";
  s.atoms = atoms;
  Motion still;
  still.kind = Motion::Kind::translate;
  still.name = "none";
  still.atoms.assign(atoms.atoms.size(), 1);
  still.axis = {1, 0, 0};
  s.motions.push_back(still);
  return s;
}

HeteroSystem system_from_json(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw InputError(path, "", "cannot be read");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(f);
  } catch (const nlohmann::json::exception&) {
    throw InputError(path, "", "is not valid JSON");
  }
  auto need = [&](const nlohmann::json& o, const char* key, const std::string& where) -> const nlohmann::json& {
    if (!o.is_object() || !o.contains(key)) throw InputError(path, where, std::string("needs \"") + key + "\"");
    return o.at(key);
  };
  auto vec = [&](const nlohmann::json& v, const std::string& where) {
    if (!v.is_array() || v.size() != 3 || !v[0].is_number() || !v[1].is_number() || !v[2].is_number())
      throw InputError(path, where, "must be three numbers");
    return Vec3<double>{v[0].get<double>(), v[1].get<double>(), v[2].get<double>()};
  };
  auto range = [&](const nlohmann::json& v, const std::string& where, double& lo, double& hi) {
    if (!v.is_array() || v.size() != 2 || !v[0].is_number() || !v[1].is_number())
      throw InputError(path, where, "must be [low, high]");
    lo = v[0].get<double>(); hi = v[1].get<double>();
    if (!std::isfinite(lo) || !std::isfinite(hi) || !(hi > lo)) throw InputError(path, where, "needs low < high, finite");
  };
  const nlohmann::json& atoms = need(j, "atoms", "top level");
  if (!atoms.is_string()) throw InputError(path, "\"atoms\"", "must be a file name");
  std::string atoms_path = atoms.get<std::string>();
  if (!atoms_path.empty() && atoms_path[0] != '/') {
    const auto slash = path.find_last_of('/');
    if (slash != std::string::npos) atoms_path = path.substr(0, slash + 1) + atoms_path;
  }
  HeteroSystem s;
  s.name = path;
  s.atoms = io::read_atoms(atoms_path);
  const nlohmann::json& motions = need(j, "motions", "top level");
  if (!motions.is_array() || motions.empty()) throw InputError(path, "\"motions\"", "must be a non-empty list");
  std::map<std::string, int> used;
  for (size_t i = 0; i < motions.size(); ++i) {
    const nlohmann::json& mj = motions[i];
    const std::string where = "motion " + std::to_string(i + 1);
    const nlohmann::json& type = need(mj, "type", where);
    const nlohmann::json& sel = need(mj, "select", where);
    if (!type.is_string() || !sel.is_string()) throw InputError(path, where, "\"type\" and \"select\" must be strings");
    const std::string t = type.get<std::string>();
    std::string name = mj.contains("name") && mj["name"].is_string() ? mj["name"].get<std::string>() : "";
    double lo = 0, hi = 0;
    if (t == "rotate") {
      range(need(mj, "range", where), where + " range", lo, hi);
      if (hi - lo > 360) throw InputError(path, where + " range", "spans more than 360 degrees");
      s.motions.push_back(rotate(s.atoms, sel.get<std::string>(), vec(need(mj, "axis", where), where + " axis"),
                                 vec(need(mj, "point", where), where + " point"), lo, hi,
                                 name.empty() ? "angle_deg" : name));
    } else if (t == "translate") {
      range(need(mj, "range", where), where + " range", lo, hi);
      s.motions.push_back(translate(s.atoms, sel.get<std::string>(),
                                    vec(need(mj, "direction", where), where + " direction"), lo, hi,
                                    name.empty() ? "displacement_A" : name));
    } else if (t == "present") {
      const nlohmann::json& fr = need(mj, "fraction", where);
      if (!fr.is_number() || !(fr.get<double>() > 0 && fr.get<double>() < 1))
        throw InputError(path, where + " fraction", "must be a number between 0 and 1 (exclusive)");
      s.motions.push_back(present(s.atoms, sel.get<std::string>(), fr.get<double>(), name.empty() ? "present" : name));
    } else {
      throw InputError(path, where, "type must be rotate, translate or present, not '" + t + "'");
    }
    // Truth columns must be distinct: number repeated names.
    Motion& m = s.motions.back();
    if (int n = ++used[m.name]; n > 1) m.name += "_" + std::to_string(n);
  }
  return s;
}

Bodies split_bodies(const HeteroSystem& s) {
  Bodies b;
  std::map<std::vector<int>, size_t> index;
  for (size_t i = 0; i < s.atoms.atoms.size(); ++i) {
    std::vector<int> sig;
    for (size_t k = 0; k < s.motions.size(); ++k)
      if (s.motions[k].atoms[i]) sig.push_back(int(k));
    auto [it, fresh] = index.emplace(sig, b.atoms.size());
    if (fresh) { b.atoms.emplace_back(); b.motions.push_back(sig); }
    b.atoms[it->second].push_back(i);
  }
  return b;
}

Rigid motion_map(const Motion& m, double state) {
  Rigid r;
  switch (m.kind) {
    case Motion::Kind::rotate: {
      const double a = deg2rad(state);
      r.m = axis_angle_to_matrix(m.axis.x * a, m.axis.y * a, m.axis.z * a);
      const Vec3<double> rp = mul(r.m, m.point);  // x -> R (x - p) + p
      r.v = {m.point.x - rp.x, m.point.y - rp.y, m.point.z - rp.z};
      break;
    }
    case Motion::Kind::translate:
      r.v = {m.axis.x * state, m.axis.y * state, m.axis.z * state};
      break;
    case Motion::Kind::present:
      r.present = state >= 0.5;
      break;
  }
  return r;
}

Vec3<double> apply(const Rigid& r, const Vec3<double>& x) {
  const Vec3<double> y = mul(r.m, x);
  return {y.x + r.v.x, y.y + r.v.y, y.z + r.v.z};
}

Rigid body_map(const HeteroSystem& s, const std::vector<int>& motions, const std::vector<double>& state) {
  Rigid total;
  for (int k : motions) {
    const Rigid r = motion_map(s.motions[size_t(k)], state[size_t(k)]);
    // r after total: x -> r.m (total.m x + total.v) + r.v
    total.m = mul(r.m, total.m);
    total.v = apply(r, total.v);
    total.present = total.present && r.present;
  }
  return total;
}

io::AtomicModel atoms_at_state(const HeteroSystem& s, const std::vector<double>& state) {
  CUGMM_REQUIRE(state.size() == s.motions.size(), "atoms_at_state: one value per motion");
  const Bodies b = split_bodies(s);
  std::vector<Rigid> maps;
  std::vector<size_t> body_of(s.atoms.atoms.size());
  for (size_t k = 0; k < b.atoms.size(); ++k) {
    maps.push_back(body_map(s, b.motions[k], state));
    for (size_t i : b.atoms[k]) body_of[i] = k;
  }
  io::AtomicModel out;
  out.source = s.atoms.source;
  for (size_t i = 0; i < s.atoms.atoms.size(); ++i) {  // in the file's order
    const Rigid& r = maps[body_of[i]];
    if (!r.present) continue;
    io::Atom a = s.atoms.atoms[i];
    const Vec3<double> p = apply(r, {a.x, a.y, a.z});
    a.x = float(p.x); a.y = float(p.y); a.z = float(p.z);
    out.atoms.push_back(a);
  }
  return out;
}

}  // namespace cugmm
