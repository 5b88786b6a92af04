// Simulated particles with known ground truth: views drawn uniformly over rotations, RELION CTFs, shifts
// and Gaussian noise, written as an MRC stack and a RELION 3.1 STAR file. The demo and the accuracy
// measurements use it; the projection is the projector's own (engine/projector.h).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/device.h"
#include "io/model.h"
#include "kernels/ctf.h"

namespace cugmm {

struct SimulationOptions {
  int count = 1000;
  double snr = 0.1;              // signal variance / noise variance over the whole box; <= 0: no noise
  bool ctf = true;
  double defocus_min = 8000, defocus_max = 25000;  // Å, uniform
  double astigmatism = 400;      // Å, |dU - dV|
  double max_shift = 2;          // pixels, uniform in each axis
  uint64_t seed = 1;
  Device device = Device::cpu;   // where the projections are computed
};

struct SimulatedParticles {
  std::string star, stack;       // paths written
  std::vector<int> truth;        // index of the model each particle shows
};

// Throws cugmm::Error naming the option when `opt` cannot make sense for models of `box` pixels: counts
// <= 0, non-finite or negative SNR, defocus or shift, an inverted defocus range, shifts beyond half the
// box, a name that is not a plain file name (it would escape the output directory), or images that do
// not fit in memory (all are held until written).
void check_simulation_options(const SimulationOptions& opt, int box, const std::string& name);

// The particles in memory: pose (RELION degrees, origin in Å), CTF and image (box x box, mass per pixel) of
// each, and which model it shows. Used by simulate_particles and by the library's built-in example.
struct SimulatedPose {
  double rot = 0, tilt = 0, psi = 0, origin_x = 0, origin_y = 0;
  CtfParams ctf;  // CtfParams' voltage, Cs and amplitude contrast (one optics group)
};
struct SimulatedSet {
  std::vector<float> images;
  std::vector<SimulatedPose> poses;
  std::vector<int> truth;
};
SimulatedSet simulate_in_memory(const std::vector<io::GaussianModel>& models, const SimulationOptions& opt);

// Particle i shows models[truth[i]], with truth cycling through the models (0, 1, 2, 0, 1, ...), so every
// model has count / models.size() particles. The STAR file records the truth as rlnClassNumber (1-based).
// All models must share one box and pixel size. Files are written atomically.
SimulatedParticles simulate_particles(const std::vector<io::GaussianModel>& models, const SimulationOptions& opt,
                                      const std::string& out_dir, const std::string& name = "particles");

}  // namespace cugmm
