// `cugmm convert IN OUT`: between the formats cugmm reads and writes. Particles: .cs -> STAR 3.1, STAR
// 3.0 -> 3.1. Images: anything readable (or N@stack) -> float32 MRC. Models: native, PDB, mmCIF, .cmm.
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>

#include "cli/command.h"
#include "cli/files.h"
#include "cli/limits.h"
#include "core/memory.h"
#include "engine/preprocess.h"
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

// Every section of a stack to box x box pixels by Fourier cropping (engine/preprocess.h's convention: the
// field of view is kept, the pixel grows by n / box, values stay densities per Å^2).
io::Image downsample_images(const io::Image& im, int box) {
  if (im.nx != im.ny) throw Error("--box: images must be square, these are " + std::to_string(im.nx) + " x " +
                                  std::to_string(im.ny));
  const int n = im.nx;
  if (box > n) throw Error("--box " + std::to_string(box) + ": larger than the images (" + std::to_string(n) +
                           " px); --box only downsamples");
  if (box % 2) throw Error("--box " + std::to_string(box) + ": must be even (the Fourier crop keeps a Nyquist term)");
  const double pixel = im.pixel_size > 0 ? im.pixel_size : 1.0;  // cancels out; unknown stays unknown
  io::Image out;
  out.nx = out.ny = box;
  out.nz = im.nz;
  out.pixel_size = im.pixel_size > 0 ? float(im.pixel_size * double(n) / box) : 0.f;
  out.data.resize(size_t(box) * box * size_t(im.nz));
#pragma omp parallel
  {
    std::vector<cfloat> a(size_t(n) * (n / 2 + 1)), b(size_t(box) * (box / 2 + 1));
#pragma omp for schedule(static)
    for (int z = 0; z < im.nz; ++z) {
      image_to_fourier(im.data.data() + size_t(z) * n * n, n, pixel, a.data());
      fourier_resize(a.data(), n, b.data(), box);
      fourier_to_image(b.data(), box, pixel * n / box, out.data.data() + size_t(z) * box * box);
    }
  }
  return out;
}

}  // namespace

static int run_convert(Command& c) {
  std::string root, in, out;
  bool no_images = false, no_poses = false;
  int box = 0;
  double angpix = 0;
  c.app.footer(kConversions);
  c.text("IN", in, "the file to convert (N@stack for one image of a stack)")->required();
  c.text("OUT", out, "the file to write; its extension says the format")->required();
  c.text("--root", root, "STAR: where relative image paths resolve (the RELION project directory)");
  c.flag("--no-images", no_images, "STAR 3.0 -> 3.1 without opening the images (rlnImageSize then omitted)");
  c.flag("--no-poses", no_poses, ".cs: accept particles without alignments3D/pose");
  c.integer("--box", box, "models: the box (pixels) of the pseudo-atoms' map frame; images and stacks: "
                          "downsample to N pixels by Fourier cropping (0: keep)", 0, kMaxBox);
  c.number("--angpix", angpix, "models: the pixel size (Å) of the map frame; images: pixel size to write", 0, 1e4);
  if (c.parse()) return 0;
  check_files({{in}, {out}, {}});
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
  if (ii.nz > 1 || ref.index >= 0 || box > 0) {
    const size_t n = size_t(ii.nx) * size_t(ii.ny);
    require_host_memory(checked_mul(n, size_t(ref.index >= 0 ? 1 : ii.nz) * 2 * sizeof(float), "the images"),
                        "converting " + in);
  }
  io::Image im = io::read_image(in);
  if (angpix > 0) im.pixel_size = float(angpix);
  // A stack stays a stack (ISPG 0): only a volume read whole, with no resampling, is written as one.
  bool volume = ii.is_volume && ref.index < 0 && ei != ".mrcs" && eo != ".mrcs" && box == 0;
  if (box > 0 && box != im.nx) {
    if (ii.is_volume && ref.index < 0) throw Error("--box resamples images and stacks, not volumes (" + in + ")");
    im = downsample_images(im, box);
  }
  io::write_mrc(out, im, !volume);
  std::printf("%s: %d x %d x %d float32 %s at %.4f Å/px%s\n", out.c_str(), im.nx, im.ny, im.nz,
              volume ? "volume" : "stack", im.pixel_size, im.pixel_size > 0 ? "" : " (unknown: pass --angpix)");
  return 0;
}

static RegisterCommand reg("convert", "convert particles (.cs, STAR 3.0), images and models between formats",
                           run_convert);

}  // namespace cugmm::cli
