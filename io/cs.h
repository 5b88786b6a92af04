// cryoSPARC particle files (.cs, a NumPy structured array; DESIGN §3) turned into the RELION 3.1 STAR
// document the rest of cugmm reads: blob/path ('>' stripped) + 0-based blob/idx -> rlnImageName,
// alignments3D/pose (axis-angle, A_relion = R(pose)^T) -> Euler angles, alignments3D/shift (pixels of
// alignments3D/psize_A) -> rlnOriginX/YAngst, ctf/* -> the CTF columns (radians -> degrees), one optics
// group per distinct (pixel size, box, voltage, Cs, Q0, exposure group).
#pragma once
#include <string>
#include <vector>

#include "io/star.h"

namespace cugmm::io {

// InputError naming the file when blob/path or blob/idx is missing, or, with require_poses, when there is
// no alignments3D/pose (a .cs from 2-D work or extraction).
StarFile cs_to_star(const std::string& path, bool require_poses = true);

// A subset of a .cs file for cryoSPARC to import: records `rows` of `source` with every field (uid kept)
// in `cs_path`, and beside it the group file (same name, .csg) naming it once per result group (the field
// prefix before '/': blob, ctf, alignments3D, ...) in the layout of the .csg files cryoSPARC v4 exports
// (created, group, results with metafile '>NAME.cs', num_items and type particle.<data type>, version),
// checked against public exports and cryosparc-tools, not against a running cryoSPARC.
void write_cs_subset(const std::string& cs_path, const std::string& source, const std::vector<size_t>& rows);

}  // namespace cugmm::io
