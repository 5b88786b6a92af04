// The built-in example as atoms (no download): a helical protein of three chains, so the simulator's
// systems have a real-looking ground truth without a PDB file. Chain A is a rigid core (a bundle of seven
// helices), chain B an arm of three helices beside it that hinges about `hinge_point` / `hinge_axis` or
// slides along `slide_direction`, chain C a small lid on top that comes and goes. Backbone atoms N, CA, C, O
// and CB per residue on ideal alpha-helices (1.5 Å rise, 100 degrees per residue).
#pragma once
#include "io/atoms.h"
#include "kernels/geometry.h"

namespace cugmm {

struct ExampleAtoms {
  io::AtomicModel model;         // coordinates in Å about the molecule's centre
  Vec3<double> hinge_point;      // Å, the same frame: where the arm meets the core
  Vec3<double> hinge_axis;       // unit vector
  Vec3<double> slide_direction;  // unit vector, across the arm
};

// `scale` >= 1 lengthens the helices (about scale^1 x the mass) for larger boxes.
ExampleAtoms make_example_atoms(double scale = 1.0);

}  // namespace cugmm
