// What the model writers share (internal to io/): the map frame and the checks a model must pass before
// it is written.
#pragma once
#include <string>

#include "io/model.h"

namespace cugmm::io {

// Model coordinates are Å from the box centre, voxel N/2 (integer division, as RELION); viewers place a
// map's voxel 0 at 0 Å, so the map frame is the model frame shifted by N/2 voxels.
inline double map_frame_offset(const GaussianModel& m) { return double(m.box_size / 2) * m.pixel_size; }

// Error (naming `path`) when the arrays differ in length, a value is not finite or a width is not
// positive, and, when `need_frame`, when box size or pixel size is not set.
void check_model(const GaussianModel& m, const std::string& path, bool need_frame);

}  // namespace cugmm::io
