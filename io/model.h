// The Gaussian model: G isotropic Gaussians, 5 numbers each (DESIGN §2-3). CONTRACT: other layers code
// against this header.
#pragma once
#include <string>
#include <vector>

namespace cugmm::io {

struct GaussianModel {
  int box_size = 0;           // the box (pixels) and pixel size (Å) the model was made for
  double pixel_size = 0;
  // Structure of arrays, G entries each: centre in Å from the box centre (voxel N/2), amplitude =
  // integrated mass, width = real-space standard deviation in Å.
  std::vector<float> x, y, z, amplitude, width;
  size_t size() const { return x.size(); }
  void resize(size_t g) { x.resize(g); y.resize(g); z.resize(g); amplitude.resize(g); width.resize(g); }
};

// The native text format (lossless): a header line with box size and pixel size, then one Gaussian per
// line: x y z amplitude width. Written as "box_size N pixel_size P" then the Gaussians, floats to 9 digits
// (exact); read: "#" starts a comment, the header may also be the bare "N P".
GaussianModel read_model(const std::string& path);
void write_model(const std::string& path, const GaussianModel& m);

// PDB / mmCIF pseudo-atoms (gemmi): occupancy = amplitude / max amplitude, B = 8 pi^2 s^2, coordinates in
// the map frame (x_Å = centre + N/2 * pixel). Reading needs the box and pixel size to undo the frame, and
// takes amplitude = occupancy (x `amplitude_scale`) and width from B. PDB field limits are handled.
GaussianModel read_pseudo_atoms(const std::string& path, int box_size, double pixel_size, double amplitude_scale = 1);
void write_pseudo_atoms(const std::string& path, const GaussianModel& m);  // .pdb or .cif by extension
// A trajectory: one MODEL per frame (PDB), or one model number (pdbx_PDB_model_num) per frame in one mmCIF
// block, as NMR ensembles are stored. Reading a trajectory gives its first frame.
void write_pseudo_atom_trajectory(const std::string& path, const std::vector<GaussianModel>& frames);

// Any of the above by extension (.txt/.gmm native, .pdb/.ent, .cif/.mmcif); box/pixel for pseudo-atoms.
GaussianModel load_any_model(const std::string& path, int box_size = 0, double pixel_size = 0);

// ChimeraX markers (.cmm) and arrows (.bild) for motions from `from` to `to` (same G).
void write_cmm(const std::string& path, const GaussianModel& m);
void write_bild_arrows(const std::string& path, const GaussianModel& from, const GaussianModel& to, double min_length);

}  // namespace cugmm::io
