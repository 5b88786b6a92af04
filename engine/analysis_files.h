// The files `cugmm analyze` writes for a latent path and a latent point (issue 15 item 1), named for
// ChimeraX and for the report:
//   NAME.pdb (or .cif beyond PDB's 99,999 serials)   the decoded Gaussians, one MODEL per frame
//   NAME/vol_001.mrc ...                             density maps of the frames on the neutral model's grid
//   NAME_arrows.bild                                 first -> last frame motion, lengths x arrow_scale
//   NAME_path.txt                                    each frame's coordinate t and latent point
#pragma once
#include <string>
#include <vector>

#include "engine/latent_analysis.h"
#include "io/model.h"

namespace cugmm {

struct PathFiles {
  std::string trajectory, arrows, path_txt;
  std::vector<std::string> maps;
};

// The names only (for checking outputs before any work).
PathFiles path_file_names(const std::string& dir, const std::string& name, int frames, int gaussians);
// params: frames x 5G decoded parameters of path.points. Arrows shorter than min_arrow Å (after scaling) are
// left out.
PathFiles write_path_files(const std::string& dir, const LatentPath& path, const std::vector<float>& params,
                           const io::GaussianModel& neutral, double arrow_scale, double min_arrow);

// One decoded point: DIR/NAME.txt (native), .cif, .cmm and .mrc.
void write_point_files(const std::string& base, const io::GaussianModel& m);

// fold.txt of a symmetry-expanded run: one line per original particle (input order): its 1-based number, the
// copy (1-based, rlnCugmmSymmetryCopy) that moves most, each copy's motion (Å), each copy's cluster label
// (1-based; when labels are given, one per copy row), then the folded latent (rule: the chosen copy's or the mean).
void write_fold_txt(const std::string& path, const FoldedCopies& f, size_t copies, const std::vector<double>& motion,
                    const std::vector<int>& labels, const std::string& rule);

}  // namespace cugmm
