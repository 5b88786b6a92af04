// A heterogeneous system (engine/hetero_system.h) ready to image: one band-limited map per rigid body in a
// SliceProjector, and each state turned into the bodies' motions. Shared by the simulator and the oracle
// reference, so both image a state the same way.
#pragma once
#include <memory>
#include <vector>

#include "engine/hetero_system.h"
#include "engine/slice_projector.h"

namespace cugmm {

class SystemImager {
 public:
  // The neutral structure (all motions at state 0, every atom present) is centred in the box.
  SystemImager(const HeteroSystem& system, int box, double pixel, int oversample = 2);

  const SliceProjector& projector() const { return *projector_; }
  const Bodies& bodies() const { return bodies_; }
  // Å to add to atom coordinates to place them in the map frame (voxel i at i * pixel).
  const Vec3<double>& atom_shift() const { return shift_; }

  BodyMotion body_motion(size_t body, const std::vector<double>& state) const;
  std::vector<BodyMotion> motions(const std::vector<double>& state) const;

 private:
  const HeteroSystem& system_;
  Bodies bodies_;
  Vec3<double> shift_, to_box_;          // to_box_: atom frame -> Å from the box centre
  std::vector<Vec3<double>> pivots_;     // Å from the box centre
  std::unique_ptr<SliceProjector> projector_;
};

}  // namespace cugmm
