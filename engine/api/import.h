// Particles from the caller's arrays, and the built-in example in memory (engine/api/import.cpp). Internal.
#pragma once
#include <string>

#include "cugmm/data.h"
#include "engine/api/convert.h"

namespace cugmm {

struct ImportedFiles {
  std::string star, stack;
  bool normalise = true;  // images are normalised as `cugmm preprocess` does; Fourier input is used as given
};
// Checks the arrays (sizes, finite values, half-sets), then writes DIR/particles.mrcs and DIR/particles.star.
ImportedFiles import_particle_arrays(const ParticleArrays& arrays, const std::string& dir);

ExampleData make_example_data(const ExampleSettings& settings);

}  // namespace cugmm
