// A Gaussian model as the projector's parameter row: five contiguous arrays [x(G) y(G) z(G) a(G) s(G)]
// (engine/projector.h), and back.
#pragma once
#include <vector>

#include "io/model.h"

namespace cugmm {

std::vector<float> params_from_model(const io::GaussianModel& m);
// `like` gives the box and pixel size; params has 5G entries.
io::GaussianModel model_from_params(const std::vector<float>& params, const io::GaussianModel& like);
// The Gaussians j with keep[j] set (keep has G entries), in order.
io::GaussianModel model_subset(const io::GaussianModel& m, const std::vector<char>& keep);

}  // namespace cugmm
