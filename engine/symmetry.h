// Point-group symmetry for symmetry expansion (issue 18), in RELION's conventions (src/symmetries.cpp):
// each group is the closure of RELION's generators, "rotation by 360/n about an axis":
//   Cn  n-fold about z                       Dn  Cn + 2-fold about x
//   T   3-fold about z + 2-fold about (0, 0.816496, 0.577350)
//   O   3-fold about (1,1,1)/sqrt 3 + 4-fold about z
//   I = I2, I1, I3, I4: the icosahedral settings RELION names (axes in symmetry.cpp)
// A group is closed under inverses, so its SET of matrices does not depend on the sign convention of a
// rotation; tests/test_symmetry.cpp checks the sets against relion_particle_symmetry_expand's.
//
// Expansion (relion_particle_symmetry_expand): copy k of a particle with RELION matrix A has the pose
// A R_k, so A' r = A (R_k r): copy k sees the model rotated by R_k, i.e. what lies at R_k u in the
// particle's own frame appears at u in the copy's. Copy 0 is the particle itself (R_0 = identity).
#pragma once
#include <string>
#include <vector>

#include "kernels/geometry.h"

namespace cugmm {

namespace io { struct ParticleSet; }

struct SymmetryGroup {
  std::string name;                        // canonical: "C1", "C3", "D7", "T", "O", "I1".."I4" ("I" is I2)
  std::vector<Mat3<double>> operators;     // identity first, then in the order the closure finds them
  size_t order() const { return operators.size(); }
};

// "c3", "D7", "t", "O", "I", "I1".."I4" (case-insensitive; n of Cn and Dn from 1 to 999). Throws naming
// the value when it is not one of these.
SymmetryGroup make_symmetry_group(const std::string& name);

// Which asymmetric unit each of G points (Å from the box centre) belongs to: the k whose R_k^-1 c is
// closest in angle to the group's reference direction d (the nearest-operator rule), so unit 0 holds the
// points nearest d. d is (1, 0, 0.1) normalised: for Cn the units are the azimuthal wedges of 360/n degrees
// centred on +x (+x, then the closure's order), for Dn those wedges split by the plane z = 0 (z > 0 in unit
// 0); for T, O and I the Voronoi cells of d's orbit on the sphere, all congruent since d is on no axis.
// A point at the centre (or on an axis) goes to the lowest such k.
std::vector<int> asymmetric_units(const SymmetryGroup& g, const std::vector<Vec3<double>>& points);

// The particle set seen once per operator: particle i becomes rows i*n .. i*n+n-1 with pose A R_k (RELION
// angles of that matrix), its STAR row repeated with those angles and rlnCugmmSymmetryCopy k+1 (1..n), as
// relion_particle_symmetry_expand writes them (a RELION 3.1 document). The identity group returns a copy.
io::ParticleSet expand_particle_set(const io::ParticleSet& set, const SymmetryGroup& g);

}  // namespace cugmm
