#include "engine/particle_poses.h"

#include <unordered_map>

#include "core/error.h"
#include "io/text.h"

namespace cugmm {

io::StarFile whole_set_star(const io::ParticleSet& set) {
  std::vector<size_t> all(set.particles.size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = i;
  return io::particle_subset_star(set, all);
}

io::StarBlock& particle_table(io::StarFile& star) {
  io::StarBlock* b = star.find("particles");
  CUGMM_REQUIRE(b, "particle table missing from the STAR document");
  return *b;
}

std::vector<std::string> image_names(const io::ParticleSet& set, const std::string& path,
                                     std::unordered_map<std::string, size_t>& row_of) {
  io::StarFile star = whole_set_star(set);
  const io::StarBlock& t = particle_table(star);
  const int col = t.require_column("rlnImageName", path);
  std::vector<std::string> names;
  for (size_t r = 0; r < t.rows.size(); ++r) {
    names.push_back(t.rows[r][size_t(col)]);
    if (!row_of.emplace(names.back(), r).second)
      throw InputError(path, "row " + std::to_string(r + 1),
                       "image " + names.back() + " appears twice (rows " + std::to_string(row_of[names.back()] + 1) +
                           " and " + std::to_string(r + 1) + "): poses cannot be matched by rlnImageName");
  }
  return names;
}

std::vector<ParticlePose> poses_from_file(const io::ParticleSet& set, const std::string& path,
                                          const std::string& root) {
  io::ParticleReadOptions ro;
  ro.root = root;
  ro.check_images = false;  // matched by name; the images are the set's
  const io::ParticleSet other = io::read_particles(path, ro);
  std::unordered_map<std::string, size_t> mine, theirs;
  const std::vector<std::string> names = image_names(set, set.source, mine);
  const std::vector<std::string> other_names = image_names(other, path, theirs);
  for (size_t r = 0; r < other_names.size(); ++r)
    if (!mine.count(other_names[r]))
      throw InputError(path, "row " + std::to_string(r + 1),
                       "image " + other_names[r] + " is not one of the particles of " + set.source +
                           ": the poses are for another particle set");
  std::vector<ParticlePose> poses(names.size());
  for (size_t r = 0; r < names.size(); ++r) {
    auto it = theirs.find(names[r]);
    if (it == theirs.end())
      throw InputError(path, "", "has no row for image " + names[r] + " (row " + std::to_string(r + 1) + " of " +
                                     set.source + "); " + std::to_string(names.size()) + " particles there, " +
                                     std::to_string(other_names.size()) + " here");
    const io::Particle& p = other.particles[it->second];
    poses[r] = {p.rot, p.tilt, p.psi, p.origin_x, p.origin_y};
  }
  return poses;
}

void set_pose_columns(io::StarBlock& t, size_t row, const ParticlePose& p) {
  const std::pair<const char*, double> v[5] = {{"rlnAngleRot", p.rot}, {"rlnAngleTilt", p.tilt},
                                               {"rlnAnglePsi", p.psi}, {"rlnOriginXAngst", p.origin_x},
                                               {"rlnOriginYAngst", p.origin_y}};
  for (const auto& [label, value] : v) t.rows[row][size_t(t.add_column(label))] = io::format_number("%.6f", value);
}

void apply_poses(io::ParticleSet& set, const std::vector<ParticlePose>& poses) {
  CUGMM_REQUIRE(poses.size() == set.particles.size(), "apply_poses: one pose per particle");
  io::StarFile star = whole_set_star(set);
  io::StarBlock& t = particle_table(star);
  for (size_t r = 0; r < poses.size(); ++r) {
    io::Particle& p = set.particles[r];
    p.rot = poses[r].rot;
    p.tilt = poses[r].tilt;
    p.psi = poses[r].psi;
    p.origin_x = poses[r].origin_x;
    p.origin_y = poses[r].origin_y;
    set_pose_columns(t, r, poses[r]);
  }
  set.star = std::move(star);
}

}  // namespace cugmm
