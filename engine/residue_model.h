// A neutral model made from a simulated system's atoms without fitting: one Gaussian per residue of the
// neutral structure (every motion at its state 0, every atom present), mass = its electrons, centre = its
// mass-weighted centroid in Å from the box centre (the frame the simulator images the atoms in), width 2.5 Å.
// The training tests and bench_refine_pose use it as the model of a simulated particle.
#pragma once
#include <string>
#include <vector>

#include "engine/hetero_system.h"
#include "io/model.h"

namespace cugmm {

// chains (when given): each Gaussian's chain, so a caller can name a domain.
io::GaussianModel residue_model(const HeteroSystem& sys, int box, double pixel,
                                std::vector<std::string>* chains = nullptr);

}  // namespace cugmm
