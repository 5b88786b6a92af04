// A Gaussian model drawn as a 3-D density map (kernels/render.h for the maths and the units: each voxel
// holds the mass in it, so relion_project of the map equals `cugmm project` of the model, mass per pixel).
// Gaussians are not wrapped around the box: mass that falls outside is lost.
#pragma once
#include "io/model.h"
#include "io/mrc.h"

namespace cugmm {

// Renders on the CPU (OpenMP over z-slices: each thread owns its slices, so the result does not depend on
// the thread count). box <= 0 / pixel <= 0 take the model's own box and pixel size.
io::Image render_volume(const io::GaussianModel& model, int box = 0, double pixel_size = 0);

}  // namespace cugmm
