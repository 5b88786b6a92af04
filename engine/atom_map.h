// Atoms -> voxel map, the first step of the simulator's image path (independent of the Gaussian model the
// engine fits). Each atom is an isotropic 3-D Gaussian of weight `electrons` and variance
// B / (8 pi^2) + kAtomSpread^2 (thermal blur plus the extent of the atom's electron cloud), integrated over
// each voxel (a product of erf differences per axis), so the map holds mass per voxel and a projection
// sums it along lines. Atoms are far sharper than a pixel: the map is rendered `oversample` times finer and
// Fourier-cropped, so it is the band-limited density (a shift of the atoms is a phase of the map) rather
// than an aliased one.
#pragma once
#include <vector>

#include "io/atoms.h"
#include "io/mrc.h"
#include "kernels/geometry.h"

namespace cugmm {

constexpr double kAtomSpread = 0.5;  // Å: the standard deviation of an atom's density at B = 0

// Å to add to the file's coordinates so that the selected atoms' centre of mass sits at the box centre.
Vec3<double> centring_shift(const io::AtomicModel& m, int box, double pixel);

// The map (box^3, pixel Å) of the atoms where `select` is non-zero (all when null), each placed at its
// file coordinates + `shift` in the map frame (voxel i at i * pixel; the box centre is voxel box/2).
// Atoms whose density falls entirely outside the box are an error naming the first of them.
io::Image render_atom_map(const io::AtomicModel& m, const std::vector<char>* select, int box, double pixel,
                          const Vec3<double>& shift, int oversample = 2);

}  // namespace cugmm
