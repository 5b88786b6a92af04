// The particle cache (issue 4 item 3, DESIGN §4): particles preprocessed once into band-limited Fourier
// coefficients on one working grid, in one file that later commands memory-map (data sets larger than RAM
// stream from disk).
//
// File layout (native byte order, checked by an endianness marker):
//   [0, 128)           preamble: magic "CUGMMPC\0", format version (2), endianness marker, the sizes below,
//                      the particles per checksummed block and an FNV-1a checksum of the JSON and the
//                      particle table
//   [128, ...)         JSON header: grid (box, pixel size), band (maxres, ring_max, size), what was done
//                      (normalisation, background radius, ramp), per optics group the resampling plan, and
//                      the inputs it was made from (particle file: absolute path, size, mtime and content
//                      checksum; every image stack: path, size, mtime)
//   table_offset       count x CachedParticle (8-byte aligned)
//   block_offset       one checksum per block of block_particles particles (8-byte aligned): a damaged
//                      block is found, and named with the particles it holds, whenever the cache is opened
//                      for use (open_particle_cache), which rebuilds it when its sources are still there
//   data_offset        count x band.size() complex floats (4096-byte aligned), particle after particle, in
//                      engine/fourier_band.h order and scale/phase convention, on the working grid
// Written under a temporary name and renamed into place when complete: a file under the final name is
// whole, and a corrupt or foreign one is refused by its preamble, sizes (overflow-checked products, against
// the file's length) and checksums. Temporaries are named as io/atomic_file.h names them, so a build
// killed with -9 leaves one that the next build of the same cache removes.
//
// Consumers that need a loss band (--minres) take loss_band(minres): ring_min only marks the rings the
// loss counts, so its coefficients and their order are band()'s.
//
// Working grid: the finest optics group's pixel size and box (ties: the first); --box N resamples it to N
// pixels over the same field of view (pixel * box / N). Every group reaches that grid by
// engine/preprocess.h's plan_grid_resample (Fourier crop/pad at constant physical frequency, then a centred
// real-space crop/pad if its field of view differs).
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/fft.h"
#include "engine/fourier_band.h"
#include "engine/preprocess.h"
#include "kernels/ctf.h"
#include "kernels/geometry.h"

namespace cugmm {

namespace io { struct ParticleSet; }

struct CacheOptions {
  std::string particles;     // STAR or .cs
  std::string root;          // where relative image paths resolve (io::read_particles)
  int box = 0;               // working box; 0 = the finest optics group's own
  double maxres = 0;         // Å; coefficients up to this resolution are kept; 0 = Nyquist
  bool normalise = true;     // RELION's background normalisation (engine/preprocess.h)
  bool ramp = true;          // ... subtracting a fitted plane, as relion_preprocess does by default
  double bg_radius = -1;     // pixels of the native images; < 0: default_bg_radius(native box)
  // For commands that consume a cache (score, ...): one made with any of the options above will do as long
  // as its inputs are unchanged; only a missing or stale one is (re)built, with these options.
  bool accept_any_options = false;
};

// Per-particle metadata, stored as is in the file (fixed layout).
struct CachedParticle {
  double rot, tilt, psi;               // degrees, RELION convention
  double origin_x, origin_y;           // Å; the image is the projection translated by -origin
  double defocus_u, defocus_v, defocus_angle, voltage, cs, amp_contrast, phase_shift, bfactor, ctf_scale;
  int32_t optics;                      // index into the optics groups of the header
  int32_t random_subset;               // rlnRandomSubset (1 or 2), 0 when the input has none
  int32_t ctf_mode;                    // CtfMode: full for raw particles, phase_flipped when the group says
                                       // so, none when the particle file gives no defocus values
  int32_t reserved;
  int64_t source_row;                  // row in the particle file
  Mat3<double> rotation() const { return euler_to_matrix(rot, tilt, psi); }
  CtfParams ctf() const;
  CtfMode mode() const { return CtfMode(ctf_mode); }
};
static_assert(sizeof(CachedParticle) == 136, "CachedParticle is a file format");

// An open cache, memory-mapped read-only. Move-only.
class ParticleCache {
 public:
  // Throws cugmm::InputError naming the file when it is not a complete, consistent cache of this version.
  explicit ParticleCache(const std::string& path);
  ~ParticleCache();
  ParticleCache(ParticleCache&&) noexcept;
  ParticleCache& operator=(ParticleCache&&) noexcept;
  ParticleCache(const ParticleCache&) = delete;
  ParticleCache& operator=(const ParticleCache&) = delete;

  const std::string& path() const { return path_; }
  // Particles as consumers see them: with a symmetry expansion (expand()) every cached particle counts once
  // per operator, copies of one particle consecutive.
  size_t count() const { return per_copy_ ? count_ : count_ * copies_; }
  const FourierBand& band() const { return band_; }
  FourierBand loss_band(double minres) const {
    return make_fourier_band(band_.box, band_.pixel_size, minres, band_.ring_resolution(band_.ring_max));
  }
  int box() const { return band_.box; }
  double pixel_size() const { return band_.pixel_size; }
  const CachedParticle& particle(size_t i) const { return copies_ > 1 && !per_copy_ ? expanded_[i] : table_[i]; }
  const cfloat* coefficients(size_t i) const { return data_ + (per_copy_ ? i : source_index(i)) * band_.size(); }

  // Symmetry expansion (engine/symmetry.h) at the index level: particle i is copy i % n of cached particle
  // i / n, its record that particle's with the pose A R_k (RELION angles of the product) and its data the
  // cached particle's own coefficients (not duplicated). `operators` identity first; n = 1 undoes it.
  // A per-copy cache (per_copy()) holds its copies already: expanding it by its own group does nothing,
  // by another one throws.
  void expand(const std::string& group, const std::vector<Mat3<double>>& operators);
  // A derived cache written from an expanded one (write_derived_cache): one record and one image per copy
  // in the file, e.g. signal-subtracted in each copy's own frame, so the images are NOT shared.
  bool per_copy() const { return per_copy_; }
  size_t copies() const { return copies_; }
  const std::string& symmetry() const { return symmetry_; }  // "C1" without expansion
  size_t source_index(size_t i) const { return i / copies_; }
  size_t copy_index(size_t i) const { return i % copies_; }
  const std::string& header_json() const { return json_; }

  // What a derived cache (write_derived_cache) was made by: its header's "derived", null for a plain cache.
  nlohmann::json derivation() const;

  // Why this cache does not answer `request` (inputs changed on disk, or other options, or it is a derived
  // cache), "" when it does.
  std::string stale_reason(const CacheOptions& request) const;
  // Re-reads every coefficient and compares the per-block checksums (a full pass over the data).
  bool verify_data() const;
  // The lowest-numbered block whose coefficients do not match their checksum, -1 when none.
  long first_damaged_block() const;
  bool block_ok(size_t block) const;
  size_t block_count() const { return block_count_; }
  size_t block_particles() const { return block_particles_; }
  // "particle cache <path>: block b of B (particles i-j) is damaged: ..."
  std::string damage_report(long block) const;
  static constexpr size_t kMaxBlockParticles = 4096;

 private:
  void release();
  std::string path_, json_;
  size_t count_ = 0;  // records in the file (cached particles, or their copies when per_copy_)
  size_t copies_ = 1;
  bool per_copy_ = false;  // the file holds count_ = particles x copies_ records and images
  std::string symmetry_ = "C1";
  std::vector<CachedParticle> expanded_;  // count_ x copies_ records when copies_ > 1
  FourierBand band_;
  const CachedParticle* table_ = nullptr;
  const cfloat* data_ = nullptr;
  const uint64_t* blocks_ = nullptr;
  size_t block_count_ = 0, block_particles_ = 0;
  const unsigned char* map_ = nullptr;
  size_t map_size_ = 0;
};

// Reads the particles and images and writes the cache to `out` (OpenMP over particles, progress shown).
// Non-finite pixels are an InputError naming the particle.
void build_particle_cache(const CacheOptions& options, const std::string& out);

// A cache derived from `source`, e.g. signal-subtracted (engine/signal_subtraction.h): the same grid, band,
// optics groups and inputs, the records `table` (one per particle of source.count(), same order) and the
// coefficients `fill(first, n, out)` writes for particles first..first+n-1 (n x band().size(), called in
// order, once per block of particles), `derivation` under "derived" in its header. From an expanded source
// it is a per-copy cache (its header names the group and the copies; opened, it is already expanded): n
// times the source's size on disk. Written atomically.
void write_derived_cache(const ParticleCache& source, const std::vector<CachedParticle>& table,
                         const nlohmann::json& derivation, const std::function<void(size_t, size_t, cfloat*)>& fill,
                         const std::string& out);

// The cache at `path` when it answers `options`; otherwise (missing, stale or corrupt) rebuilds it when
// `rebuild` is set, saying why, or throws saying why. An empty path means default_cache_path().
ParticleCache open_particle_cache(const CacheOptions& options, std::string path = "", bool rebuild = true);

// Beside the particle file: particles.star -> particles.cugmm-cache.
std::string default_cache_path(const std::string& particles);

// The working grid a particle set is cached on (see the header comment); fills in optics boxes that the
// particle file leaves unknown from the first image of each group.
WorkingGrid choose_working_grid(io::ParticleSet& set, int box);

}  // namespace cugmm
