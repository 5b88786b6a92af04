// The built-in example (no download): a two-domain molecule of Gaussians and a second conformation in
// which one domain swings about a hinge. `cugmm demo` simulates particles from it; tests use it as a
// ground truth.
#pragma once
#include <vector>

#include "io/model.h"

namespace cugmm {

struct ExampleMolecule {
  io::GaussianModel open;         // conformation A
  io::GaussianModel closed;       // conformation B: domain 2 rotated by `hinge_degrees`
  std::vector<int> domain;        // 1 or 2 per Gaussian
  double hinge_degrees = 0;
};

// Box and pixel size of the frame the model is made for; Gaussians have width ~1.5 px.
ExampleMolecule make_example_molecule(int box = 64, double pixel_size = 3.0, double hinge_degrees = 25.0);

}  // namespace cugmm
