// Particle poses between STAR files and the engine: the poses of another particle file matched to a set by
// rlnImageName (`cugmm train --poses-from`), and the pose columns of a STAR row written from a pose
// (`cugmm refine-pose`, and the run's particles.star after --poses-from).
#pragma once
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/particle_batch.h"
#include "io/particles.h"

namespace cugmm {

// One pose per particle of `set` (its row order), taken from the particle file `path` (STAR or .cs) by
// rlnImageName. InputError naming the file and the image when a particle of `set` has no row there, when
// `path` holds an image `set` does not, or when an image appears twice in either.
std::vector<ParticlePose> poses_from_file(const io::ParticleSet& set, const std::string& path,
                                          const std::string& root);

// rlnImageName of every row of `set` (the name `path` is reported under), and its row by name in `row_of`.
// InputError naming `path` and the rows when a name appears twice (particles could not be matched by name).
std::vector<std::string> image_names(const io::ParticleSet& set, const std::string& path,
                                     std::unordered_map<std::string, size_t>& row_of);

// Sets rlnAngleRot/Tilt/Psi and rlnOriginXAngst/YAngst of `row` in a RELION 3.1 particle table (columns
// added where missing).
void set_pose_columns(io::StarBlock& table, size_t row, const ParticlePose& pose);

// The set with `poses` (one per particle, row order) in place of its own: its particles and its STAR
// document (made RELION 3.1), so that files written from it carry them.
void apply_poses(io::ParticleSet& set, const std::vector<ParticlePose>& poses);

// The set's particle table as a RELION 3.1 document (io::particle_subset_star of every row) and its table.
io::StarFile whole_set_star(const io::ParticleSet& set);
io::StarBlock& particle_table(io::StarFile& star);

}  // namespace cugmm
