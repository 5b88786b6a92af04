// `cugmm convert IN OUT`: between the formats cugmm reads and writes. Particles: .cs -> STAR 3.1, STAR
// 3.0 -> 3.1. Images: anything readable (or N@stack) -> float32 MRC. Models: native, PDB, mmCIF, .cmm.
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>

#include "cli/args.h"
#include "core/error.h"
#include "io/text.h"
#include "io/cs.h"
#include "io/image_read.h"
#include "io/model.h"
#include "io/mrc.h"
#include "io/particles.h"

namespace cugmm::cli {

namespace {

bool is_native_model(const std::string& e) { return e == ".txt" || e == ".gmm"; }
bool is_pseudo_atoms(const std::string& e) { return e == ".pdb" || e == ".ent" || e == ".cif" || e == ".mmcif"; }
bool is_mrc(const std::string& e) { return e == ".mrc" || e == ".mrcs" || e == ".map" || e == ".st"; }

const char* kConversions =
    "supported conversions: .cs -> .star; .star (3.0 or 3.1) -> .star (3.1); image or stack (MRC, TIFF, N@stack) "
    "-> .mrc/.mrcs/.map (float32); model (.txt/.gmm, .pdb/.ent, .cif/.mmcif) -> .txt/.gmm, .pdb, .cif, .cmm";

}  // namespace

static int run_convert(Args& args) {
  std::string root = args.str("root", "", "STAR: where relative image paths resolve (the RELION project directory)");
  bool no_images = args.flag("no-images", "STAR 3.0 -> 3.1 without opening the images (rlnImageSize then omitted)");
  bool no_poses = args.flag("no-poses", ".cs: accept particles without alignments3D/pose");
  int box = int(args.integer("box", 0, "models: the box (pixels) of the pseudo-atoms' map frame"));
  double angpix = args.num("angpix", 0, "models: the pixel size (Å) of the map frame; images: pixel size to write");
  std::string in = args.positional(0, "IN");
  std::string out = args.positional(1, "OUT");
  if (args.done("cugmm convert IN OUT [--root DIR] [--no-images] [--no-poses] [--box N] [--angpix A]\n  " +
                    std::string(kConversions),
                2))
    return 0;
  const std::string ei = io::lower_extension(in), eo = io::lower_extension(out);

  if (ei == ".cs") {
    if (eo != ".star") throw Error(std::string("a .cs file converts to .star; ") + kConversions);
    io::StarFile star = io::cs_to_star(in, !no_poses);
    io::write_star(out, star);
    std::printf("%s: %zu particles, %zu optics group(s), RELION STAR 3.1\n", out.c_str(), star.blocks[1].rows.size(),
                star.blocks[0].rows.size());
    return 0;
  }

  if (ei == ".star") {
    if (eo != ".star") throw Error(std::string("a STAR file converts to .star; ") + kConversions);
    io::ParticleReadOptions opt;
    opt.root = root;
    opt.require_poses = false;
    opt.check_images = !no_images;
    io::ParticleSet set = io::read_particles(in, opt);
    std::vector<size_t> all(set.particles.size());
    for (size_t i = 0; i < all.size(); ++i) all[i] = i;
    io::write_particle_subset(out, set, all);
    std::printf("%s: %zu particles, %zu optics group(s), RELION STAR 3.1 (from %s)\n", out.c_str(), all.size(),
                set.optics.size(), set.star.version ? "3.1" : "3.0");
    return 0;
  }

  if (is_native_model(ei) || is_pseudo_atoms(ei)) {
    if (is_pseudo_atoms(ei) && (box <= 0 || !(angpix > 0)))
      throw Error("reading " + in + " needs --box N and --angpix A: pseudo-atom coordinates are in the frame of a " +
                  "map (x_Å = centre + N/2 * pixel), so the box and pixel size of that map are needed to place them");
    io::GaussianModel m = io::load_any_model(in, box, angpix);
    if (box > 0) m.box_size = box;
    if (angpix > 0) m.pixel_size = angpix;
    if (is_native_model(eo))
      io::write_model(out, m);
    else if (eo == ".pdb" || eo == ".cif" || eo == ".mmcif")
      io::write_pseudo_atoms(out, m);
    else if (eo == ".cmm")
      io::write_cmm(out, m);
    else
      throw Error("cannot write a model as '" + eo + "'; " + kConversions);
    std::printf("%s: %zu Gaussians, box %d px at %.4f Å/px\n", out.c_str(), m.size(), m.box_size, m.pixel_size);
    return 0;
  }

  // Anything else must be an image; read_image_info says so or names the problem.
  if (!is_mrc(eo)) throw Error("images convert to MRC (.mrc, .mrcs, .map); " + std::string(kConversions));
  io::ImageRef ref = io::parse_image_ref(in);
  io::ImageInfo ii = io::read_image_info(ref.path);
  io::Image im = io::read_image(in);
  if (angpix > 0) im.pixel_size = float(angpix);
  bool volume = ii.is_volume && ref.index < 0;
  io::write_mrc(out, im, !volume);
  std::printf("%s: %d x %d x %d float32 %s at %.4f Å/px%s\n", out.c_str(), im.nx, im.ny, im.nz,
              volume ? "volume" : "stack", im.pixel_size, im.pixel_size > 0 ? "" : " (unknown: pass --angpix)");
  return 0;
}

static RegisterCommand reg("convert", "convert particles (.cs, STAR 3.0), images and models between formats",
                           run_convert);

}  // namespace cugmm::cli
