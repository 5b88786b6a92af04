// Particles as the engine sees them, from RELION STAR (3.0 / 3.1+) or cryoSPARC .cs (DESIGN §3).
// CONTRACT: other layers code against this header.
#pragma once
#include <string>
#include <vector>

#include "io/star.h"
#include "kernels/ctf.h"

namespace cugmm::io {

struct OpticsGroup {
  int number = 1;              // rlnOpticsGroup (1-based), 1 for STAR 3.0 / .cs
  std::string name;
  double pixel_size = 0;       // Å per pixel of the particle images
  int box_size = 0;            // pixels; 0 until known (from the STAR or the first image read)
  double voltage = 300, cs = 2.7, amp_contrast = 0.1;
  bool phase_flipped = false;  // rlnCtfDataArePhaseFlipped
};

struct Particle {
  std::string image_file;      // resolved path of the stack that holds it
  long index = 0;              // 0-based section in that stack (rlnImageName's number minus 1)
  double rot = 0, tilt = 0, psi = 0;       // degrees, RELION convention
  double origin_x = 0, origin_y = 0;       // Å; the image is the projection translated by -origin
  CtfParams ctf;               // complete per particle (optics values copied in)
  int optics = 0;              // index into ParticleSet::optics
  int random_subset = 0;       // rlnRandomSubset (1 or 2), 0 when absent
};

struct ParticleSet {
  std::string source;          // the file it came from
  std::vector<OpticsGroup> optics;
  std::vector<Particle> particles;
  // The STAR document as read (for .cs: as converted), row i of the particle table is particles[i]:
  // subsets are written by selecting rows, so unknown columns survive.
  StarFile star;
  bool has_ctf = false;        // the file gives defocus values (otherwise CtfParams keep their defaults)
};

// Reads a .star or .cs. Image paths resolve against the current directory, then `root` (if given), then
// the particle file's own directory; a missing file, column or bad value is an InputError naming the
// file and the record (row number). With require_poses, missing angle columns (STAR) or
// alignments3D/pose (.cs) are an InputError; without, the angles are 0. Every stack is opened (header
// only) to check the indices and to fill in box sizes.
ParticleSet read_particles(const std::string& path, const std::string& root = "", bool require_poses = true);

struct ParticleReadOptions {
  std::string root;            // the --root override for relative image paths
  bool require_poses = true;   // as above
  // false: image paths stay as written and no stack is opened (describing a file whose images are
  // elsewhere); box sizes then come only from the STAR file.
  bool check_images = true;
};
ParticleSet read_particles(const std::string& path, const ParticleReadOptions& opt);

// Writes the rows `keep` (indices into set.particles) as a RELION 3.1 STAR file, every original column kept.
// A STAR 3.0 input is converted on the way (optics table built from set.optics, pixel origins to Å;
// rlnImageSize only when every group's box size is known).
void write_particle_subset(const std::string& path, const ParticleSet& set, const std::vector<size_t>& keep);

// The same document in memory: the subset as a RELION 3.1 StarFile.
StarFile particle_subset_star(const ParticleSet& set, const std::vector<size_t>& keep);

}  // namespace cugmm::io
