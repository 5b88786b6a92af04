// `cugmm preprocess`: particles into the band-limited Fourier cache (engine/particle_cache.h) that later
// commands reuse. Runs on the CPU (FFTW, OpenMP over particles).
#include <cstdio>

#include "cli/args.h"
#include "core/error.h"
#include "core/log.h"
#include "engine/particle_cache.h"

namespace cugmm::cli {

static int run_preprocess(Args& args) {
  CacheOptions o;
  o.particles = args.required("particles", "particle STAR or cryoSPARC .cs file");
  std::string out = args.str("out", "", "cache file (default: beside the particles, .cugmm-cache)");
  o.root = args.str("root", "", "directory that relative image paths are relative to");
  o.box = int(args.integer("box", 0, "working box in pixels, by Fourier cropping (0: the finest optics group's)"));
  o.maxres = args.num("maxres", 0, "keep coefficients up to this resolution in Å (0: Nyquist)");
  o.bg_radius = args.num("bg-radius", -1, "background circle radius in native pixels (<0: round(0.375 box), RELION's default)");
  o.normalise = !args.flag("no-normalise", "keep the images as they are (no background normalisation)");
  o.ramp = !args.flag("no-ramp", "subtract the background mean only, not a fitted plane (relion_preprocess --no_ramp)");
  bool force = args.flag("force", "rebuild even when an up-to-date cache exists");
  bool verify = args.flag("verify", "re-read the cache and check the checksum of every coefficient");
  // CPU work only (FFTW / OpenMP), so --threads but no --device.
  args.threads();
  if (args.done("cugmm preprocess --particles STAR [--out CACHE] [--box N] [--maxres A] [--root DIR]", 0)) return 0;
  if (out.empty()) out = default_cache_path(o.particles);

  if (force) build_particle_cache(o, out);
  ParticleCache cache = open_particle_cache(o, out, true);
  if (verify && !cache.verify_data()) throw Error("particle cache " + out + ": coefficient checksum mismatch (damaged)");
  std::printf("%s: %zu particles, %d px at %.4f Å, %zu coefficients each (rings <= %d)%s\n", out.c_str(), cache.count(),
              cache.box(), cache.pixel_size(), cache.band().size(), cache.band().ring_max, verify ? ", verified" : "");
  return 0;
}

static RegisterCommand reg("preprocess", "build the particles' Fourier cache (normalised, on one working grid)",
                           run_preprocess);

}  // namespace cugmm::cli
