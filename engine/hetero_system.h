// The heterogeneity a simulated data set shows (issue 12 item 2): an atomic model, and motions of chosen
// atoms, each with a continuous (or two-valued) state per particle. Atoms moved by the same motions form one
// rigid body, so a particle's image is a sum of rigidly moved bodies (engine/slice_projector.h).
//
// Built-in systems on the built-in example (engine/example_atoms.h):
//   linear       (a) the arm (chain B) slides along y over 24 Å, twice its own width along y;
//                    truth: displacement_A
//   rotation     (b) the lid (chain C) turns a full cycle about the core's long axis (z) through its own
//                    centre; truth: angle_deg in [-180, 180)
//   composition  (c) (a) plus the lid present in half of the particles; truths: displacement_A, present
//   two-motions  (d) the arm swings about its hinge over 60 degrees while the lid slides 16 Å along x,
//                    independently; truths: angle_deg, displacement_A
//   small-part   issue 14's small moving part: the lid's upper helix (C:15-28, 3.6% of the mass) slides 10 Å
//                    over the helix below it (along (0, 8, -10)); truth: displacement_A
//   c3-trimer    (e) three copies of the arm about z (C3; chains A, B, C at 0, 120, 240 degrees); chain B
//                    slides 20 Å along its tangent (-sin 120, cos 120, 0), the others are rigid: the symmetry
//                    expansion benchmark's set; truth: displacement_A
// Any atomic model: a JSON description (system_from_json), e.g.
//   {"atoms": "model.cif",
//    "motions": [{"type": "rotate", "select": "B:120-180", "axis": [0, 0, 1], "point": [10, 0, 5],
//                 "range": [-30, 30], "name": "hinge_deg"},
//                {"type": "translate", "select": "C", "direction": [1, 0, 0], "range": [-8, 8]},
//                {"type": "present", "select": "D", "fraction": 0.5}]}
// Points and axes are in the atom file's frame (Å); selections as io::select_atoms ("CHAIN[:FIRST-LAST]").
// Motions apply in the order listed; an atom may be in several (it moves by their composition).
#pragma once
#include <string>
#include <vector>

#include "io/atoms.h"
#include "kernels/geometry.h"

namespace cugmm {

struct Motion {
  enum class Kind { rotate, translate, present };
  Kind kind = Kind::rotate;
  std::string name;            // the truth column
  std::vector<char> atoms;     // which atoms it moves (one flag per atom)
  Vec3<double> axis{0, 0, 1};  // rotate: the axis (unit); translate: the direction (unit)
  Vec3<double> point{0, 0, 0}; // rotate: a point on the axis (Å, the atoms' frame)
  double lo = 0, hi = 0;       // the state's range: degrees (rotate) or Å (translate), drawn uniformly
  double fraction = 0.5;       // present: the probability that the atoms are there
  bool circular() const { return kind == Kind::rotate && hi - lo >= 360 - 1e-9; }
};

struct HeteroSystem {
  std::string name;
  io::AtomicModel atoms;
  std::vector<Motion> motions;
};

// A rigid map x -> M x + v (Å, the atoms' frame).
struct Rigid {
  Mat3<double> m{{1, 0, 0, 0, 1, 0, 0, 0, 1}};
  Vec3<double> v{0, 0, 0};
  bool present = true;
};

const std::vector<std::string>& builtin_system_names();
HeteroSystem builtin_system(const std::string& name);  // throws listing the names
HeteroSystem system_from_json(const std::string& path);  // InputError naming the file and the field
// A rigid particle of these atoms, named "rigid": one motion (the simulator images a system's motions) that
// holds every atom still.
HeteroSystem rigid_particle(const io::AtomicModel& atoms);

// Atoms moved by the same set of motions, as index lists: bodies[b] and the motions that move it.
struct Bodies {
  std::vector<std::vector<size_t>> atoms;
  std::vector<std::vector<int>> motions;
};
Bodies split_bodies(const HeteroSystem& s);

// The state of one motion -> its rigid map; and the composition for a body (motions in order).
Rigid motion_map(const Motion& m, double state);
Rigid body_map(const HeteroSystem& s, const std::vector<int>& motions, const std::vector<double>& state);
Vec3<double> apply(const Rigid& r, const Vec3<double>& x);

// The atoms of a state, moved (absent ones removed), in the file's order: the true structure of a particle.
io::AtomicModel atoms_at_state(const HeteroSystem& s, const std::vector<double>& state);

}  // namespace cugmm
