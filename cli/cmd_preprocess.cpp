// `cugmm preprocess`: particles into the band-limited Fourier cache (engine/particle_cache.h) that later
// commands reuse. Runs on the CPU (FFTW, OpenMP over particles).
#include <cstdio>

#include "cli/command.h"
#include "cli/files.h"
#include "cli/limits.h"
#include "core/memory.h"
#include "core/threads.h"
#include "core/error.h"
#include "core/log.h"
#include "engine/particle_cache.h"

namespace cugmm::cli {

static int run_preprocess(Command& c) {
  CacheOptions o;
  std::string out;
  bool no_normalise = false, no_ramp = false, force = false, verify = false;
  c.text("--particles", o.particles, "particle STAR or cryoSPARC .cs file")->required();
  // Required: a RELION job directory may be shared or read-only, so nothing is written beside the data
  // unless the user says so.
  c.text("--out", out, "cache file to write, ending in .cugmm-cache")->required();
  c.text("--root", o.root, "directory that relative image paths are relative to");
  c.integer("--box", o.box, "working box in pixels, by Fourier cropping (0: the finest optics group's)", 0, kMaxBox);
  c.number("--maxres", o.maxres, "keep coefficients up to this resolution in Å (0: Nyquist)", 0, 1e4);
  c.number("--bg-radius", o.bg_radius, "background circle radius in native pixels (-1: round(0.375 box), "
                                       "RELION's default)", -1, double(kMaxBox));
  c.flag("--no-normalise", no_normalise, "keep the images as they are (no background normalisation)");
  c.flag("--no-ramp", no_ramp, "subtract the background mean only, not a fitted plane (relion_preprocess --no_ramp)");
  c.flag("--force", force, "rebuild even when an up-to-date cache exists");
  c.flag("--verify", verify, "re-read the cache and check the checksum of every coefficient");
  c.thread_options();  // CPU work only (FFTW / OpenMP), so --threads but no --device
  if (c.parse()) return 0;
  if (o.box != 0 && (o.box < 4 || o.box % 2))
    throw Error("--box must be even and at least 4 (or 0: the data's own), not " + std::to_string(o.box));
  o.normalise = !no_normalise;
  o.ramp = !no_ramp;
  if (o.bg_radius < 0 && o.bg_radius != -1) throw Error("--bg-radius must be -1 (RELION's default) or >= 0");
  require_extension("--out", out, {".cugmm-cache"});
  check_files({{o.particles}, {out}, {}});
  if (o.box > 0)  // per-thread FFT scratch of the working box (complex, a few copies)
    require_host_memory(checked_mul(checked_mul(size_t(o.box) * size_t(o.box), 32, "--box"), size_t(num_threads()), "--box"),
                        "preprocessing at --box " + std::to_string(o.box));

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
