// Which Gaussians of a model a mask holds: those whose centre falls in a voxel above 0.5. Used by
// `cugmm train --mask` (what may move) and `cugmm analyze --mask` (the domain of a localised motion).
#pragma once
#include <string>
#include <vector>

#include "io/model.h"
#include "kernels/geometry.h"

namespace cugmm {

// Reads the MRC at `path`; InputError naming it when it is not on the model's grid (box and pixel size) or
// holds no Gaussian.
std::vector<char> gaussians_in_mask(const std::string& path, const io::GaussianModel& m);

// The centre (Å from the box centre, voxel N/2) of the mask's voxels above 0.5: where `train --recentre`
// puts the box centre. Same checks as above.
Vec3<double> mask_centre(const std::string& path, const io::GaussianModel& m);

}  // namespace cugmm
