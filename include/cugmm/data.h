// The data the library API exchanges with its caller, as plain values (no internal types): Gaussian
// models, density maps, and particles held in the caller's arrays.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace cugmm {

// G isotropic Gaussians on a grid of `box` pixels of `pixel_size` Å: centres in Å from the box centre
// (voxel box/2), amplitude = integrated mass, width = real-space standard deviation in Å.
struct Gaussians {
  int box = 0;
  double pixel_size = 0;
  std::vector<float> x, y, z, amplitude, width;
  size_t size() const { return x.size(); }
};

// A density map: box^3 values, x fastest (MRC order), each voxel the mass in it (as `cugmm render`).
struct Volume {
  int box = 0;
  double pixel_size = 0;
  std::vector<float> data;
};

// A particle's pose in RELION's convention: Euler angles in degrees (rlnAngleRot/Tilt/Psi) and the origin
// in Å (rlnOriginXAngst/YAngst: the image is the projection translated by -origin).
struct ParticlePose {
  double rot = 0, tilt = 0, psi = 0;
  double origin_x = 0, origin_y = 0;
};

// A particle's CTF (RELION): defocus U/V in Å, astigmatism angle and phase shift in degrees, B-factor in
// Å^2, scale. Voltage, Cs and amplitude contrast are the optics group's (ParticleArrays).
struct ParticleCtf {
  double defocus_u = 0, defocus_v = 0, defocus_angle = 0;
  double phase_shift = 0, bfactor = 0, scale = 1;
};

// Particles in arrays the caller owns (read during Engine::import_particles only; not kept). One optics
// group. Give `images` or `fourier`:
//   images   count x box x box floats, row after row (y then x, as in an MRC stack), RELION's orientation;
//            normalised on import as `cugmm preprocess` does (background mean and sd, fitted ramp)
//   fourier  count x box x (box/2 + 1) complex values as (re, im) float pairs: the half-plane of each image's
//            transform in cugmm's convention (F = pixel^2 (-1)^(kx+ky) DFT, centre at pixel box/2; API.md);
//            used as given, without normalisation
struct ParticleArrays {
  ParticleArrays();  // optics values: RELION's defaults, as the particle readers take them
  size_t count = 0;
  int box = 0;
  double pixel_size = 0;                // Å
  const float* images = nullptr;
  const float* fourier = nullptr;
  const ParticlePose* poses = nullptr;  // count; required
  const ParticleCtf* ctf = nullptr;     // count; null: the images carry no CTF
  double voltage, cs, amp_contrast;     // kV, mm, fraction
  bool phase_flipped = false;           // the images were phase-flipped
  const int* random_subset = nullptr;   // count values 1 or 2 (half-sets), or null
};

// The built-in example made in memory (`cugmm demo`'s two-domain molecule): particles of two
// conformations, their poses and CTFs, the neutral model, and which conformation each particle shows.
struct ExampleSettings {
  int count = 400;
  int box = 64;
  double pixel_size = 3.0;
  double hinge_degrees = 25;  // how far domain 2 swings between the two conformations
  double snr = 0.1;           // signal variance / noise variance; 0: no noise
  bool ctf = true;
  uint64_t seed = 1;
};
struct ExampleData {
  Gaussians neutral;                 // conformation A: the model training starts from
  std::vector<float> images;         // count x box x box
  std::vector<ParticlePose> poses;
  std::vector<ParticleCtf> ctf;      // empty without a CTF
  std::vector<int> truth;            // 0 or 1 per particle
  int box = 0;
  double pixel_size = 0;
  ParticleArrays arrays() const;     // views of the above, for Engine::import_particles
};

}  // namespace cugmm
