#include "engine/model_params.h"

#include "core/error.h"

namespace cugmm {

std::vector<float> params_from_model(const io::GaussianModel& m) {
  std::vector<float> row;
  row.reserve(5 * m.size());
  for (const auto* a : {&m.x, &m.y, &m.z, &m.amplitude, &m.width}) row.insert(row.end(), a->begin(), a->end());
  return row;
}

io::GaussianModel model_from_params(const std::vector<float>& params, const io::GaussianModel& like) {
  CUGMM_REQUIRE(params.size() % 5 == 0, "a parameter row must hold 5 numbers per Gaussian");
  const size_t g = params.size() / 5;
  io::GaussianModel m;
  m.box_size = like.box_size;
  m.pixel_size = like.pixel_size;
  m.resize(g);
  std::vector<float>* cols[5] = {&m.x, &m.y, &m.z, &m.amplitude, &m.width};
  for (size_t c = 0; c < 5; ++c) std::copy(params.begin() + c * g, params.begin() + (c + 1) * g, cols[c]->begin());
  return m;
}

io::GaussianModel model_subset(const io::GaussianModel& m, const std::vector<char>& keep) {
  CUGMM_REQUIRE(keep.size() == m.size(), "a Gaussian selection has one flag per Gaussian");
  io::GaussianModel s;
  s.box_size = m.box_size;
  s.pixel_size = m.pixel_size;
  for (size_t j = 0; j < m.size(); ++j)
    if (keep[j]) {
      s.x.push_back(m.x[j]); s.y.push_back(m.y[j]); s.z.push_back(m.z[j]);
      s.amplitude.push_back(m.amplitude[j]); s.width.push_back(m.width[j]);
    }
  return s;
}

}  // namespace cugmm
