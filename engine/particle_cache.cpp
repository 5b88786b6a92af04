#include "engine/particle_cache.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/log.h"
#include "core/memory.h"
#include "engine/particle_cache_hash.h"
#include "io/atomic_file.h"
#include "io/json_fields.h"
#include "io/mrc.h"
#include "io/particles.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace cugmm {

namespace {

constexpr char kMagic[8] = {'C', 'U', 'G', 'M', 'M', 'P', 'C', '\0'};
constexpr uint32_t kVersion = 2;  // 2: per-block checksums
constexpr uint32_t kEndianMarker = 0x01020304;
constexpr size_t kPreambleBytes = 128;
constexpr size_t kDataAlign = 4096;

struct Preamble {
  char magic[8];
  uint32_t version, endian;
  uint64_t json_bytes, table_offset, data_offset, count, band_size;
  uint64_t header_checksum;  // JSON + particle table
  uint64_t block_offset;     // the block checksum table: ceil(count / block_particles) x uint64
  uint64_t block_particles;  // particles per checksummed block
  char pad[kPreambleBytes - 8 - 8 - 8 * 8];
};
static_assert(sizeof(Preamble) == kPreambleBytes, "preamble size");

size_t align_up(size_t v, size_t a) { return (v + a - 1) / a * a; }

uint64_t fold(const uint64_t* hs, size_t n) { return particle_cache_hash(hs, n * sizeof(uint64_t)); }

// Where each part of a cache of `n` particles of `nb` coefficients lies; Error (naming nothing: the
// caller says which file) when a size overflows, so a crafted count cannot wrap past the length check.
struct Layout {
  size_t table_offset, block_offset, blocks, data_offset, total;
};

Layout layout_of(size_t json_bytes, size_t n, size_t nb, size_t block_particles) {
  Layout L;
  const size_t table_bytes = checked_mul(n, sizeof(CachedParticle), "particle table");
  const size_t particle_bytes = checked_mul(nb, sizeof(cfloat), "coefficients per particle");
  const size_t data_bytes = checked_mul(n, particle_bytes, "coefficients");
  CUGMM_REQUIRE(block_particles > 0, "block size 0");
  L.blocks = n / block_particles + (n % block_particles != 0);
  // Every addend is below 2^63 here or the products above would have failed for any real file; the sum
  // is still checked because json_bytes comes from the file too.
  size_t end;
  if (__builtin_add_overflow(kPreambleBytes, json_bytes, &end) || end > (size_t(1) << 62) ||
      table_bytes > (size_t(1) << 62) || data_bytes > (size_t(1) << 62))
    throw Error("cache sizes overflow");
  L.table_offset = align_up(end, 8);
  L.block_offset = align_up(L.table_offset + table_bytes, 8);
  L.data_offset = align_up(L.block_offset + L.blocks * sizeof(uint64_t), kDataAlign);
  if (__builtin_add_overflow(L.data_offset, data_bytes, &L.total)) throw Error("cache sizes overflow");
  return L;
}

// Particles per checksummed block: small enough that a damaged block names a few hundred particles,
// large enough that the table stays tiny (8 bytes per block).
constexpr size_t kBlockParticles = 256;

struct FileStamp {
  uint64_t size = 0;
  int64_t mtime_ns = 0;
};

FileStamp stamp(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return {};
  return {uint64_t(st.st_size), int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec};
}

uint64_t hash_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw InputError(path, "", "cannot read");
  std::vector<char> buf(1 << 20);
  uint64_t h = 1469598103934665603ull;
  while (f) {
    f.read(buf.data(), std::streamsize(buf.size()));
    h = particle_cache_hash(buf.data(), size_t(f.gcount()), h);
  }
  return h;
}

std::string absolute(const std::string& p) { return fs::absolute(fs::path(p)).lexically_normal().string(); }

json options_json(const CacheOptions& o) {
  return {{"box", o.box}, {"maxres", o.maxres}, {"normalise", o.normalise}, {"ramp", o.ramp},
          {"bg_radius", o.bg_radius}, {"root", o.root}};
}

CachedParticle make_entry(const io::Particle& p, const io::OpticsGroup& g, bool has_ctf, size_t row) {
  CachedParticle c{};
  c.rot = p.rot; c.tilt = p.tilt; c.psi = p.psi;
  c.origin_x = p.origin_x; c.origin_y = p.origin_y;
  c.defocus_u = p.ctf.defocus_u; c.defocus_v = p.ctf.defocus_v; c.defocus_angle = p.ctf.defocus_angle;
  c.voltage = p.ctf.voltage; c.cs = p.ctf.cs; c.amp_contrast = p.ctf.amp_contrast;
  c.phase_shift = p.ctf.phase_shift; c.bfactor = p.ctf.bfactor; c.ctf_scale = p.ctf.scale;
  c.optics = p.optics;
  c.random_subset = p.random_subset;
  c.ctf_mode = int32_t(!has_ctf ? CtfMode::none : g.phase_flipped ? CtfMode::phase_flipped : CtfMode::full);
  c.source_row = int64_t(row);
  return c;
}

std::string particle_name(const io::Particle& p, size_t row) {
  return "particle " + std::to_string(row + 1) + " (" + std::to_string(p.index + 1) + "@" + p.image_file + ")";
}

// The output file: a temporary beside the target (io/atomic_file.h names it, so a later run removes it
// if this one is killed) with the final size, filled by positional writes (safe from many threads at once,
// and without the page faults a writable mapping of a fresh file costs), renamed into place by commit()
// and removed if that never happens.
class OutputFile {
 public:
  OutputFile(const std::string& path, size_t bytes) : path_(path) {
    fd_ = io::create_temp_for(path, tmp_);
    if (::ftruncate(fd_, off_t(bytes)) != 0) fail("cannot size");
  }
  ~OutputFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) ::unlink(tmp_.c_str());
  }
  void write_at(size_t offset, const void* data, size_t bytes) {
    const char* p = static_cast<const char*>(data);
    while (bytes > 0) {
      ssize_t w = ::pwrite(fd_, p, bytes, off_t(offset));
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) fail("cannot write");
      p += w; offset += size_t(w); bytes -= size_t(w);
    }
  }
  void commit() {
    if (::fsync(fd_) != 0) fail("cannot flush");
    ::close(fd_);
    fd_ = -1;
    if (::rename(tmp_.c_str(), path_.c_str()) != 0) fail("cannot rename to " + path_ + " from");
    committed_ = true;
  }

 private:
  [[noreturn]] void fail(const std::string& what) {
    throw Error(what + " " + tmp_ + ": " + std::strerror(errno));
  }
  std::string path_, tmp_;
  int fd_ = -1;
  bool committed_ = false;
};

// A cache file being written: the JSON header and the particle table first, then each particle's
// coefficients (from any thread) with their checksum, then the block checksums and the preamble, which
// makes it valid; renamed into place by commit().
class CacheWriter {
 public:
  CacheWriter(const std::string& out, const std::string& text, const std::vector<CachedParticle>& table, size_t nb)
      : n_(table.size()), nb_(nb), L_(layout_of(text.size(), n_, nb, kBlockParticles)), file_(out, L_.total), hashes_(n_) {
    std::memcpy(pre_.magic, kMagic, 8);
    pre_.version = kVersion;
    pre_.endian = kEndianMarker;
    pre_.json_bytes = text.size();
    pre_.table_offset = L_.table_offset;
    pre_.block_offset = L_.block_offset;
    pre_.block_particles = kBlockParticles;
    pre_.data_offset = L_.data_offset;
    pre_.count = n_;
    pre_.band_size = nb;
    file_.write_at(kPreambleBytes, text.data(), text.size());
    file_.write_at(pre_.table_offset, table.data(), n_ * sizeof(CachedParticle));
    pre_.header_checksum = particle_cache_hash(table.data(), n_ * sizeof(CachedParticle),
                                               particle_cache_hash(text.data(), text.size()));
  }
  void write(size_t i, const cfloat* coeffs) {
    hashes_[i] = particle_cache_hash(coeffs, nb_ * sizeof(cfloat));
    file_.write_at(pre_.data_offset + i * nb_ * sizeof(cfloat), coeffs, nb_ * sizeof(cfloat));
  }
  void commit() {
    std::vector<uint64_t> blocks(L_.blocks);
    for (size_t b = 0; b < L_.blocks; ++b) {
      const size_t first = b * kBlockParticles;
      blocks[b] = fold(hashes_.data() + first, std::min(n_, first + kBlockParticles) - first);
    }
    file_.write_at(pre_.block_offset, blocks.data(), blocks.size() * sizeof(uint64_t));
    file_.write_at(0, &pre_, sizeof(pre_));
    file_.commit();
  }

 private:
  size_t n_, nb_;
  Layout L_;
  OutputFile file_;
  Preamble pre_{};
  std::vector<uint64_t> hashes_;
};

}  // namespace

CtfParams CachedParticle::ctf() const {
  CtfParams p;
  p.defocus_u = defocus_u; p.defocus_v = defocus_v; p.defocus_angle = defocus_angle;
  p.voltage = voltage; p.cs = cs; p.amp_contrast = amp_contrast;
  p.phase_shift = phase_shift; p.bfactor = bfactor; p.scale = ctf_scale;
  return p;
}

std::string default_cache_path(const std::string& particles) {
  return fs::path(particles).replace_extension(".cugmm-cache").string();
}

WorkingGrid choose_working_grid(io::ParticleSet& set, int box) {
  CUGMM_REQUIRE(!set.optics.empty() && !set.particles.empty(), "no particles in " + set.source);
  for (size_t g = 0; g < set.optics.size(); ++g) {
    io::OpticsGroup& o = set.optics[g];
    if (o.box_size > 0) continue;
    for (const io::Particle& p : set.particles)
      if (size_t(p.optics) == g) { o.box_size = io::read_mrc_header(p.image_file).nx; break; }
  }
  int finest = -1;
  for (size_t g = 0; g < set.optics.size(); ++g) {
    const io::OpticsGroup& o = set.optics[g];
    if (o.box_size <= 0) continue;  // a group without particles
    if (!(o.pixel_size > 0)) throw InputError(set.source, "optics group " + std::to_string(o.number), "no pixel size");
    if (finest < 0 || o.pixel_size < set.optics[finest].pixel_size) finest = int(g);
  }
  CUGMM_REQUIRE(finest >= 0, "no optics group of " + set.source + " has a known box size");
  WorkingGrid w{set.optics[finest].box_size, set.optics[finest].pixel_size};
  if (box > 0) {
    CUGMM_REQUIRE(box % 2 == 0 && box >= 4, "--box must be even and at least 4, not " + std::to_string(box));
    w.pixel = w.pixel * w.box / box;
    w.box = box;
  }
  return w;
}

void build_particle_cache(const CacheOptions& opt, const std::string& out) {
  io::ParticleSet set = io::read_particles(opt.particles, opt.root);
  CUGMM_REQUIRE(!set.particles.empty(), "no particles in " + opt.particles);
  const WorkingGrid grid = choose_working_grid(set, opt.box);
  const FourierBand band = make_fourier_band(grid.box, grid.pixel, 0, opt.maxres);
  const size_t n = set.particles.size(), nb = band.size();

  json groups = json::array();
  std::vector<GridResample> plans(set.optics.size());
  for (size_t g = 0; g < set.optics.size(); ++g) {
    const io::OpticsGroup& o = set.optics[g];
    json j = {{"number", o.number}, {"name", o.name}, {"pixel_size", o.pixel_size}, {"box", o.box_size},
              {"phase_flipped", o.phase_flipped}};
    if (o.box_size > 0) {
      plans[g] = plan_grid_resample(o.box_size, o.pixel_size, grid);
      if (plans[g].pixel_error > 1e-3)
        log_warn("optics group " + std::to_string(o.number) + ": " + std::to_string(o.box_size) + " px at " +
                 std::to_string(o.pixel_size) + " Å resamples to " + std::to_string(plans[g].pixel) +
                 " Å, not the working " + std::to_string(grid.pixel) + " Å (the box ratio is not integral)");
      // A coarser group has nothing beyond its own Nyquist: those rings of its particles are zero.
      const double nyquist = 2 * o.pixel_size;
      if (band.ring_resolution(band.ring_max) < nyquist * (1 - 1e-6))
        log_warn("optics group " + std::to_string(o.number) + " (" + std::to_string(o.pixel_size) +
                 " Å/px) has no data beyond " + std::to_string(nyquist) + " Å but the cache keeps rings to " +
                 std::to_string(band.ring_resolution(band.ring_max)) + " Å: give --maxres " + std::to_string(nyquist) +
                 " or coarser");
      j["fourier_box"] = plans[g].fourier_box;
      j["resampled_pixel_size"] = plans[g].pixel;
      j["bg_radius"] = opt.bg_radius >= 0 ? opt.bg_radius : default_bg_radius(o.box_size);
    }
    groups.push_back(j);
  }

  // Every stack once: opened (mapped) up front, stamped so later changes make the cache stale.
  std::map<std::string, std::unique_ptr<io::MrcStack>> stacks;
  for (const io::Particle& p : set.particles)
    if (!stacks.count(p.image_file)) stacks[p.image_file] = std::make_unique<io::MrcStack>(p.image_file);
  json stack_list = json::array();
  for (auto& kv : stacks) {
    FileStamp s = stamp(kv.first);
    stack_list.push_back({{"path", absolute(kv.first)}, {"size", s.size}, {"mtime_ns", s.mtime_ns}});
  }
  std::vector<const io::MrcStack*> stack_of(n);
  std::vector<CachedParticle> table(n);
  for (size_t i = 0; i < n; ++i) {
    const io::Particle& p = set.particles[i];
    const io::OpticsGroup& g = set.optics[p.optics];
    stack_of[i] = stacks[p.image_file].get();
    const io::MrcHeader& h = stack_of[i]->header();
    if (h.nx != g.box_size || h.ny != g.box_size)
      throw InputError(opt.particles, particle_name(p, i),
                       "the image is " + std::to_string(h.nx) + " x " + std::to_string(h.ny) + " px, optics group " +
                           std::to_string(g.number) + " says " + std::to_string(g.box_size));
    if (p.index < 0 || p.index >= stack_of[i]->count())
      throw InputError(opt.particles, particle_name(p, i),
                       "the stack holds only " + std::to_string(stack_of[i]->count()) + " images");
    table[i] = make_entry(p, g, set.has_ctf, i);
  }

  FileStamp ps = stamp(opt.particles);
  json header = {{"format", "cugmm particle cache"},
                 {"grid", {{"box", grid.box}, {"pixel_size", grid.pixel}}},
                 {"band", {{"maxres", opt.maxres}, {"ring_max", band.ring_max}, {"size", nb}}},
                 {"count", n},
                 {"options", options_json(opt)},
                 {"optics", groups},
                 {"inputs",
                  {{"particles", {{"path", absolute(opt.particles)}, {"size", ps.size}, {"mtime_ns", ps.mtime_ns},
                                  {"hash", hash_file(opt.particles)}}},
                   {"stacks", stack_list}}}};
  const std::string text = header.dump();
  CacheWriter file(out, text, table, nb);

  std::string first_error;
  size_t first_error_at = n;
  std::atomic<bool> failed{false};  // the rest is skipped once a particle fails
  Progress progress("preprocessing", n);
  const Job* job = current_job();  // the workers have none of their own: the caller's cancel flag stops them
#pragma omp parallel
  {
    ResampleScratch scratch;
    std::vector<float> image;
    std::vector<cfloat> half(size_t(grid.box) * (grid.box / 2 + 1)), coeffs(nb);
#pragma omp for schedule(dynamic, 8)
    for (size_t i = 0; i < n; ++i) {
      if (failed.load(std::memory_order_relaxed) || (job && job->cancel.load(std::memory_order_relaxed))) continue;
      try {
        const io::Particle& p = set.particles[i];
        const GridResample& plan = plans[p.optics];
        image.resize(size_t(plan.native_box) * plan.native_box);
        stack_of[i]->read_section(p.index, image.data());
        for (float v : image)
          if (!std::isfinite(v)) throw Error("a pixel is NaN or infinite");
        if (opt.normalise) {
          double r = opt.bg_radius >= 0 ? opt.bg_radius : default_bg_radius(plan.native_box);
          normalise_background(image.data(), plan.native_box, plan.native_box, r, opt.ramp);
        }
        resample_to_grid(image.data(), plan, grid, half.data(), scratch);
        band_gather(band, half.data(), coeffs.data());
        file.write(i, coeffs.data());
      } catch (const std::exception& e) {
#pragma omp critical(cugmm_cache_error)
        if (i < first_error_at) {
          first_error_at = i;
          first_error = e.what();
        }
        failed = true;
      }
      if (i % 64 == 63 || i + 1 == n) {
#pragma omp critical(cugmm_cache_progress)
        progress.add(i % 64 + 1);
      }
    }
  }
  if (first_error_at < n)
    throw InputError(opt.particles, particle_name(set.particles[first_error_at], first_error_at), first_error);
  throw_if_cancelled();  // before anything is committed: the temporary is removed
  progress.finish();
  file.commit();
  log_info("particle cache " + out + ": " + std::to_string(n) + " particles, " + std::to_string(grid.box) + " px at " +
           std::to_string(grid.pixel) + " Å, " + std::to_string(nb) + " coefficients each (rings <= " +
           std::to_string(band.ring_max) + ")");
}

ParticleCache::ParticleCache(const std::string& path) : path_(path) {
  auto bad = [&](const std::string& what) { return InputError(path, "", "not a usable particle cache: " + what); };
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) throw InputError(path, "", std::string("cannot open: ") + std::strerror(errno));
  struct stat st;
  if (::fstat(fd, &st) != 0 || size_t(st.st_size) < kPreambleBytes) {
    ::close(fd);
    throw bad("too short");
  }
  map_size_ = size_t(st.st_size);
  void* m = ::mmap(nullptr, map_size_, PROT_READ, MAP_SHARED, fd, 0);
  ::close(fd);
  if (m == MAP_FAILED) throw InputError(path, "", std::string("cannot map: ") + std::strerror(errno));
  map_ = static_cast<const unsigned char*>(m);
  try {
    Preamble pre;
    std::memcpy(&pre, map_, sizeof(pre));
    if (std::memcmp(pre.magic, kMagic, 8) != 0) throw bad("wrong magic number");
    if (pre.endian != kEndianMarker) throw bad("written on a machine of the other byte order");
    if (pre.version != kVersion)
      throw bad("format version " + std::to_string(pre.version) + ", this program reads " + std::to_string(kVersion));
    const size_t nb = pre.band_size, n = pre.count;
    // Every size in the preamble is checked (products included, without wrapping) against the file's
    // length before anything beyond the preamble is read.
    auto too_big = [&] { return bad("its header claims " + std::to_string(n) + " particles of " + std::to_string(nb) +
                                    " coefficients, more than the file (" + std::to_string(map_size_) + " bytes) holds"); };
    if (pre.json_bytes > map_size_ || n > map_size_ || nb > map_size_ || pre.block_particles == 0 ||
        pre.block_particles > ParticleCache::kMaxBlockParticles)
      throw too_big();
    Layout L;
    try {
      L = layout_of(pre.json_bytes, n, nb, pre.block_particles);
    } catch (const Error&) {
      throw too_big();
    }
    bool sizes_ok = pre.table_offset == L.table_offset && pre.block_offset == L.block_offset &&
                    pre.data_offset == L.data_offset && map_size_ == L.total;
    if (!sizes_ok) throw bad("its size does not match its header (truncated or damaged)");
    block_particles_ = pre.block_particles;
    blocks_ = reinterpret_cast<const uint64_t*>(map_ + pre.block_offset);
    block_count_ = L.blocks;
    json_.assign(reinterpret_cast<const char*>(map_ + kPreambleBytes), pre.json_bytes);
    uint64_t h = particle_cache_hash(map_ + pre.table_offset, n * sizeof(CachedParticle),
                                     particle_cache_hash(json_.data(), json_.size()));
    if (h != pre.header_checksum) throw bad("header checksum mismatch (damaged)");
    json j = json::parse(json_);
    // Integers are checked before conversion: get<int>() of 1e99 is undefined (io/json_fields.h).
    const int box = int(io::json_count(j.at("grid"), "box", 32768, path, "header, grid"));
    const double pixel = j.at("grid").at("pixel_size").get<double>(), maxres = j.at("band").at("maxres").get<double>();
    // Bounded before the band is built (its cost grows with box^2; kx/ky are 16-bit).
    if (box < 4 || box > 32768 || !std::isfinite(pixel) || !(pixel > 0) || !std::isfinite(maxres) || maxres < 0)
      throw bad("grid box " + std::to_string(box) + ", pixel size " + std::to_string(pixel) + ", maxres " +
                std::to_string(maxres) + " are out of range");
    // Bounded by the band the file holds: a header's box of 32768 must not build a band of millions first.
    band_ = make_fourier_band(box, pixel, 0, maxres, nb);
    if (band_.size() != nb) throw bad("band size mismatch");
    count_ = n;
    if (j.contains("per_copy")) {  // a derived cache of an expanded one: its copies are in the file
      copies_ = io::json_count(j.at("per_copy"), "copies", n, path, "header, per_copy");
      symmetry_ = j.at("per_copy").at("symmetry").get<std::string>();
      if (copies_ < 2 || n % copies_ != 0)
        throw bad(std::to_string(n) + " records are not a whole number of " + std::to_string(copies_) + " copies");
      per_copy_ = true;
    }
    table_ = reinterpret_cast<const CachedParticle*>(map_ + pre.table_offset);
    data_ = reinterpret_cast<const cfloat*>(map_ + pre.data_offset);
    for (size_t i = 0; i < n; ++i)
      if (table_[i].optics < 0 || size_t(table_[i].optics) >= j.at("optics").size()) throw bad("bad optics index");
  } catch (const InputError&) {
    release();
    throw;
  } catch (const std::exception& e) {
    release();
    throw bad(e.what());
  }
}

ParticleCache::~ParticleCache() { release(); }

void ParticleCache::release() {
  if (map_) ::munmap(const_cast<unsigned char*>(map_), map_size_);
  map_ = nullptr;
  map_size_ = 0;
  table_ = nullptr;
  data_ = nullptr;
  blocks_ = nullptr;
  block_count_ = block_particles_ = 0;
  count_ = 0;
  copies_ = 1;
  per_copy_ = false;
  symmetry_ = "C1";
}

ParticleCache::ParticleCache(ParticleCache&& o) noexcept { *this = std::move(o); }

ParticleCache& ParticleCache::operator=(ParticleCache&& o) noexcept {
  if (this != &o) {
    release();
    path_ = std::move(o.path_);
    json_ = std::move(o.json_);
    band_ = std::move(o.band_);
    count_ = o.count_;
    copies_ = o.copies_;
    per_copy_ = o.per_copy_;
    symmetry_ = std::move(o.symmetry_);
    expanded_ = std::move(o.expanded_);
    table_ = o.table_;
    data_ = o.data_;
    blocks_ = o.blocks_;
    block_count_ = o.block_count_;
    block_particles_ = o.block_particles_;
    map_ = o.map_;
    map_size_ = o.map_size_;
    o.map_ = nullptr;
    o.map_size_ = 0;
    o.table_ = nullptr;
    o.data_ = nullptr;
    o.blocks_ = nullptr;
    o.block_count_ = o.block_particles_ = 0;
    o.count_ = 0;
    o.copies_ = 1;
    o.per_copy_ = false;
  }
  return *this;
}

void ParticleCache::expand(const std::string& group, const std::vector<Mat3<double>>& operators) {
  CUGMM_REQUIRE(!operators.empty(), "symmetry expansion without operators");
  if (per_copy_) {
    if (group != symmetry_ || operators.size() != copies_)
      throw Error("particle cache " + path_ + " holds the " + symmetry_ + " copies of its particles; it cannot be "
                  "expanded by " + group);
    return;
  }
  copies_ = operators.size();
  symmetry_ = group;
  expanded_.clear();
  if (copies_ == 1) return;
  expanded_.reserve(count_ * copies_);
  for (size_t i = 0; i < count_; ++i) {
    const Mat3<double> a = table_[i].rotation();
    for (size_t k = 0; k < copies_; ++k) {
      CachedParticle p = table_[i];
      if (k > 0) matrix_to_euler(mul(a, operators[k]), p.rot, p.tilt, p.psi);
      expanded_.push_back(p);
    }
  }
}

json ParticleCache::derivation() const {
  const json j = json::parse(json_);
  return j.contains("derived") ? j.at("derived") : json();
}

void write_derived_cache(const ParticleCache& source, const std::vector<CachedParticle>& table, const json& derivation,
                         const std::function<void(size_t, size_t, cfloat*)>& fill, const std::string& out) {
  CUGMM_REQUIRE(!source.per_copy(), "a derived cache is made from a cache of the particle file");
  CUGMM_REQUIRE(table.size() == source.count(), "a derived cache has one record per particle of its source");
  json header = json::parse(source.header_json());
  header["derived"] = derivation;
  if (source.copies() > 1) header["per_copy"] = {{"copies", source.copies()}, {"symmetry", source.symmetry()}};
  const size_t n = table.size(), nb = source.band().size();
  CacheWriter file(out, header.dump(), table, nb);
  std::vector<cfloat> block;
  for (size_t first = 0; first < n; first += kBlockParticles) {
    const size_t m = std::min(kBlockParticles, n - first);
    block.assign(m * nb, cfloat(0));
    fill(first, m, block.data());
    for (size_t i = 0; i < m; ++i) file.write(first + i, block.data() + i * nb);
  }
  file.commit();
}

std::string ParticleCache::stale_reason(const CacheOptions& req) const {
  json j = json::parse(json_);
  if (j.contains("derived")) return "it is a derived cache (" + j.at("derived").value("kind", std::string("?")) + ")";
  const json& in = j.at("inputs").at("particles");
  if (in.at("path").get<std::string>() != absolute(req.particles))
    return "it was made from " + in.at("path").get<std::string>();
  if (!req.accept_any_options && j.at("options") != options_json(req))
    return "it was made with other options (" + j.at("options").dump() + ")";
  FileStamp s = stamp(req.particles);
  if (s.size != in.at("size").get<uint64_t>()) return req.particles + " has changed";
  if (s.mtime_ns != in.at("mtime_ns").get<int64_t>() && hash_file(req.particles) != in.at("hash").get<uint64_t>())
    return req.particles + " has changed";
  for (const json& st : j.at("inputs").at("stacks")) {
    FileStamp t = stamp(st.at("path").get<std::string>());
    if (t.size != st.at("size").get<uint64_t>() || t.mtime_ns != st.at("mtime_ns").get<int64_t>())
      return st.at("path").get<std::string>() + " has changed";
  }
  return "";
}

bool ParticleCache::block_ok(size_t b) const {
  const size_t first = b * block_particles_, last = std::min(count_, first + block_particles_);
  const size_t nb = band_.size();
  uint64_t hashes[kMaxBlockParticles];
  for (size_t i = first; i < last; ++i) hashes[i - first] = particle_cache_hash(data_ + i * nb, nb * sizeof(cfloat));
  uint64_t stored;
  std::memcpy(&stored, blocks_ + b, sizeof stored);
  return fold(hashes, last - first) == stored;
}

long ParticleCache::first_damaged_block() const {
  long first = std::numeric_limits<long>::max();
  // Blocks in parallel (hashing runs at memory speed; a cold cache is read once, as score would read it),
  // the lowest damaged one reported so the message does not depend on the schedule.
#pragma omp parallel for schedule(dynamic, 1) reduction(min : first)
  for (long b = 0; b < long(block_count_); ++b)
    if (b < first && !block_ok(size_t(b))) first = b;
  return first == std::numeric_limits<long>::max() ? -1 : first;
}

std::string ParticleCache::damage_report(long b) const {
  const size_t first = size_t(b) * block_particles_, last = std::min(count_, first + block_particles_);
  return "particle cache " + path_ + ": block " + std::to_string(b + 1) + " of " + std::to_string(block_count_) +
         " (particles " + std::to_string(first + 1) + "-" + std::to_string(last) +
         ") is damaged: its coefficients do not match their checksum";
}

bool ParticleCache::verify_data() const { return first_damaged_block() < 0; }

ParticleCache open_particle_cache(const CacheOptions& options, std::string path, bool rebuild) {
  if (path.empty()) path = default_cache_path(options.particles);
  std::string reason = "it does not exist", refusal;
  if (fs::exists(path)) {
    try {
      ParticleCache c(path);
      // The data is checked as it is first mapped, before anything else: a bit flip or a zeroed region
      // must not be scored, and must be named even when the sources are gone.
      const long bad = c.first_damaged_block();
      if (bad >= 0) {
        reason = c.damage_report(bad);
        std::error_code ec;
        if (!rebuild || !fs::is_regular_file(options.particles, ec))
          refusal = reason + "; it cannot be rebuilt " +
                    (rebuild ? "because " + options.particles + " is not there" : std::string("here (run cugmm preprocess)"));
        else
          log_warn(reason + "; rebuilding it");
      } else {
        reason = c.stale_reason(options);
        if (reason.empty()) return c;
      }
    } catch (const std::exception& e) {  // not a usable cache: rebuilt below when allowed
      reason = e.what();
    }
  }
  if (!refusal.empty()) throw Error(refusal);
  if (!rebuild) throw Error("particle cache " + path + " cannot be used: " + reason + " (run cugmm preprocess)");
  log_info("building particle cache " + path + ": " + reason);
  build_particle_cache(options, path);
  return ParticleCache(path);
}

}  // namespace cugmm
