#include "io/tiff.h"

#include <sys/stat.h>
#include <tiffio.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdarg>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "core/memory.h"
#include "io/input_file.h"

namespace cugmm::io {

// libtiff reports through callbacks; this one keeps the first error of its own handle so the InputError
// can say what libtiff found, and nothing goes to stderr.
struct TiffStack::Handle {
  TIFF* tif = nullptr;
  std::string error;
  ~Handle() { if (tif) TIFFClose(tif); }
  std::string take_error() {
    std::string e = error.empty() ? "libtiff could not read it" : error;
    error.clear();
    return e;
  }
};

namespace {

int on_error(TIFF*, void* user, const char* module, const char* fmt, va_list ap) {
  auto* h = static_cast<TiffStack::Handle*>(user);
  if (h->error.empty()) {
    char buf[512];
    std::vsnprintf(buf, sizeof buf, fmt, ap);
    h->error = std::string(module ? module : "libtiff") + ": " + buf;
  }
  return 1;  // handled: do not also call the global handler (which prints)
}

int on_warning(TIFF*, void*, const char*, const char*, va_list) { return 1; }  // unknown tags etc.: harmless

struct Layout {
  uint32_t w = 0, h = 0;
  uint16_t bits = 0, format = SAMPLEFORMAT_UINT, spp = 1;
  bool operator==(const Layout& o) const { return w == o.w && h == o.h && bits == o.bits && format == o.format; }
};

std::string page_name(long i) { return "page " + std::to_string(i + 1); }

// The best ratio libtiff's codecs reach on real data, with room: deflate's ~1032:1 is the practical
// ceiling of those cameras use.
constexpr uint64_t kMaxCompressionRatio = 2048;

// A page's size is checked against the bytes its strips or tiles hold before anything is allocated: an
// 8 KB file claiming 65535 x 65535 pixels must be refused here, not after a 17 GB buffer. Uncompressed
// data must be all there; compressed data is bounded by kMaxCompressionRatio, and the decoded page must
// fit in memory either way. Strips may overlap (each may name the same bytes), so what they hold is at
// most the file's length: summed as they were, 16 strips of one 40 KB file passed for 2^30 samples (4 GB
// as floats; likely why the tiff fuzz target's memory leapt by 820 MB at one input). A tiled page decodes
// whole tiles, which may reach past its edges: libtiff takes any tile size, so a 16 x 16 page in one tile
// 2^30 pixels wide would ask it for a 16 GB tile buffer. Returns the bytes of one decoded tile (0 for
// strips).
uint64_t check_page_bytes(TIFF* tif, const Layout& L, uint64_t file_size, const std::string& path,
                          const std::string& where) {
  const bool tiled = TIFFIsTiled(tif);
  const uint32_t chunks = tiled ? TIFFNumberOfTiles(tif) : TIFFNumberOfStrips(tif);
  uint64_t raw = uint64_t(L.w) * L.h * (L.bits / 8), tile = 0;
  std::string tiles;
  if (tiled) {
    uint32_t tw = 0, th = 0;
    TIFFGetField(tif, TIFFTAG_TILEWIDTH, &tw);
    TIFFGetField(tif, TIFFTAG_TILELENGTH, &th);
    tiles = " in tiles of " + std::to_string(tw) + " x " + std::to_string(th);
    // No product wraps: tw, th <= 2^30 keep the tile below 2^62 bytes, and a tile below 2^32 bytes keeps
    // chunks x tile (chunks < 2^32) below 2^64.
    if (tw == 0 || th == 0 || tw > 1u << 30 || th > 1u << 30 ||
        (tile = uint64_t(tw) * th * (L.bits / 8)) >= (uint64_t(1) << 32))
      throw InputError(path, where, "absurd tile size " + std::to_string(tw) + " x " + std::to_string(th));
    raw = std::max(raw, uint64_t(chunks) * tile);
  }
  uint64_t* counts = nullptr;
  uint64_t* offsets = nullptr;
  if (chunks == 0 || !TIFFGetField(tif, tiled ? TIFFTAG_TILEBYTECOUNTS : TIFFTAG_STRIPBYTECOUNTS, &counts) ||
      !TIFFGetField(tif, tiled ? TIFFTAG_TILEOFFSETS : TIFFTAG_STRIPOFFSETS, &offsets) || !counts || !offsets)
    throw InputError(path, where, "no strip or tile offsets: the image data cannot be located");
  const std::string claim = std::to_string(L.w) + " x " + std::to_string(L.h) + " pixels of " +
                            std::to_string(L.bits) + " bits" + tiles + " (" + std::to_string(raw) + " bytes)";
  uint64_t held = 0;
  for (uint32_t c = 0; c < chunks; ++c) {
    if (offsets[c] > file_size || counts[c] > file_size - offsets[c])
      throw InputError(path, where, "the header claims " + claim + " but " + (tiled ? "tile " : "strip ") +
                                        std::to_string(c) + " (offset " + std::to_string(offsets[c]) + ", " +
                                        std::to_string(counts[c]) + " bytes) lies beyond the end of the file (" +
                                        std::to_string(file_size) + " bytes)");
    held = std::min(held + counts[c], file_size);  // counts[c] <= file_size: no wrap
  }
  uint16_t compression = COMPRESSION_NONE;
  TIFFGetFieldDefaulted(tif, TIFFTAG_COMPRESSION, &compression);
  if (compression == COMPRESSION_NONE && held < raw)
    throw InputError(path, where, "the header claims " + claim + " but its uncompressed " +
                                      (tiled ? "tiles" : "strips") + " hold " + std::to_string(held) + " bytes");
  if (compression != COMPRESSION_NONE && raw / kMaxCompressionRatio > held)
    throw InputError(path, where, "the header claims " + claim + " from " + std::to_string(held) +
                                      " compressed bytes, beyond any real compression ratio");
  require_host_memory(checked_mul(size_t(L.w) * L.h, sizeof(float), path) + size_t(tile), path + ", " + where);
  return tile;
}

Layout page_layout(TIFF* tif, const std::string& path, long page, uint64_t file_size, uint64_t* tile_bytes = nullptr) {
  Layout L;
  uint16_t planar = PLANARCONFIG_CONTIG;
  TIFFGetField(tif, TIFFTAG_IMAGEWIDTH, &L.w);
  TIFFGetField(tif, TIFFTAG_IMAGELENGTH, &L.h);
  TIFFGetFieldDefaulted(tif, TIFFTAG_BITSPERSAMPLE, &L.bits);
  TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLEFORMAT, &L.format);
  TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLESPERPIXEL, &L.spp);
  TIFFGetFieldDefaulted(tif, TIFFTAG_PLANARCONFIG, &planar);
  const std::string where = page_name(page);
  if (L.w == 0 || L.h == 0 || L.w > 1u << 30 || L.h > 1u << 30 || uint64_t(L.w) * L.h > (uint64_t(1) << 34))
    throw InputError(path, where, "absurd image size " + std::to_string(L.w) + " x " + std::to_string(L.h));
  if (L.spp != 1)
    throw InputError(path, where, std::to_string(L.spp) + " samples per pixel: only greyscale images can be read");
  bool ints = (L.format == SAMPLEFORMAT_UINT || L.format == SAMPLEFORMAT_INT) && (L.bits == 8 || L.bits == 16);
  bool floats = L.format == SAMPLEFORMAT_IEEEFP && L.bits == 32;
  if (!ints && !floats)
    throw InputError(path, where, std::to_string(L.bits) + "-bit samples of format " + std::to_string(L.format) +
                     " are not supported (readable: 8/16-bit integers, 32-bit float)");
  const uint64_t tile = check_page_bytes(tif, L, file_size, path, where);
  if (tile_bytes) *tile_bytes = tile;
  return L;
}

template <class T>
void widen(const unsigned char* src, size_t n, float* dst) {
  for (size_t i = 0; i < n; ++i) {
    T v;
    std::memcpy(&v, src + i * sizeof(T), sizeof(T));
    dst[i] = float(v);
  }
}

// n samples already in host byte order (libtiff swaps them) to float.
void to_float(const unsigned char* src, size_t n, const Layout& L, float* dst) {
  const bool u = L.format == SAMPLEFORMAT_UINT;
  if (L.bits == 8) u ? widen<uint8_t>(src, n, dst) : widen<int8_t>(src, n, dst);
  else if (L.bits == 16) u ? widen<uint16_t>(src, n, dst) : widen<int16_t>(src, n, dst);
  else std::memcpy(dst, src, n * 4);
}

}  // namespace

TiffStack::TiffStack(const std::string& path) : path_(path), tif_(new Handle) {
  const size_t size = input_file_size(path);
  TIFFOpenOptions* opts = TIFFOpenOptionsAlloc();
  TIFFOpenOptionsSetErrorHandlerExtR(opts, on_error, tif_.get());
  TIFFOpenOptionsSetWarningHandlerExtR(opts, on_warning, nullptr);
  tif_->tif = TIFFOpenExt(path.c_str(), "r", opts);
  TIFFOpenOptionsFree(opts);
  if (!tif_->tif) throw InputError(path, "header", "not a readable TIFF: " + tif_->take_error());
  file_size_ = uint64_t(size);
  Layout first = page_layout(tif_->tif, path, 0, file_size_);
  nx_ = int(first.w), ny_ = int(first.h);
  // Walk every page now: a stack whose pages differ fails here, not halfway through a job. Pages, too, may
  // share their strips: the whole stack's samples are bounded by the file's length as one page's are.
  const uint64_t page_bytes = uint64_t(first.w) * first.h * (first.bits / 8);
  long n = 1;
  while (TIFFReadDirectory(tif_->tif)) {
    if (!(page_layout(tif_->tif, path, n, file_size_) == first))
      throw InputError(path, page_name(n), "its size or sample type differs from page 1");
    ++n;
    if (uint64_t(n) * page_bytes / kMaxCompressionRatio > file_size_)
      throw InputError(path, page_name(n - 1),
                       "pages 1-" + std::to_string(n) + " claim " + std::to_string(uint64_t(n) * page_bytes) +
                           " bytes of samples from a file of " + std::to_string(file_size_) +
                           " bytes, beyond any real compression ratio (pages that share their strips?)");
  }
  if (!tif_->error.empty()) throw InputError(path, page_name(n), tif_->take_error());
  pages_ = n;
}

TiffStack::~TiffStack() = default;

void TiffStack::read_section(long i, float* out) const {
  if (i < 0 || i >= pages_)
    throw InputError(path_, page_name(i), "past the end of the stack (" + std::to_string(pages_) + " pages)");
  std::lock_guard<std::mutex> lock(mutex_);
  TIFF* tif = tif_->tif;
  const std::string where = page_name(i);
  if (!TIFFSetDirectory(tif, tdir_t(i))) throw InputError(path_, where, tif_->take_error());
  uint64_t tile = 0;
  Layout L = page_layout(tif, path_, i, file_size_, &tile);
  const size_t bps = L.bits / 8;
  std::vector<unsigned char> buf;
  if (TIFFIsTiled(tif)) {
    uint32_t tw = 0, th = 0;
    TIFFGetField(tif, TIFFTAG_TILEWIDTH, &tw);
    TIFFGetField(tif, TIFFTAG_TILELENGTH, &th);
    // page_layout bounded the tile; libtiff decodes TIFFTileSize bytes into it, and the rows below read
    // tw x th samples of it.
    if (TIFFTileSize64(tif) != tile) throw InputError(path_, where, "libtiff's tile size differs from its tags");
    buf.resize(size_t(tile));
    for (uint32_t y0 = 0; y0 < L.h; y0 += th)
      for (uint32_t x0 = 0; x0 < L.w; x0 += tw) {
        if (TIFFReadTile(tif, buf.data(), x0, y0, 0, 0) < 0) throw InputError(path_, where, tif_->take_error());
        const uint32_t cw = std::min(tw, L.w - x0);
        for (uint32_t y = y0; y < std::min(y0 + th, L.h); ++y)
          to_float(buf.data() + size_t(y - y0) * tw * bps, cw, L, out + size_t(y) * L.w + x0);
      }
  } else {
    uint32_t rps = L.h;
    TIFFGetFieldDefaulted(tif, TIFFTAG_ROWSPERSTRIP, &rps);
    rps = std::max<uint32_t>(1, std::min(rps, L.h));
    buf.resize(size_t(TIFFStripSize(tif)));
    for (uint32_t y0 = 0; y0 < L.h; y0 += rps) {
      const uint32_t rows = std::min(rps, L.h - y0);
      const tmsize_t want = tmsize_t(size_t(rows) * L.w * bps);
      tmsize_t got = TIFFReadEncodedStrip(tif, TIFFComputeStrip(tif, y0, 0), buf.data(), want);
      if (got < want)
        throw InputError(path_, where, got < 0 ? tif_->take_error() : "strip at row " + std::to_string(y0) + " is short");
      to_float(buf.data(), size_t(rows) * L.w, L, out + size_t(y0) * L.w);
    }
  }
  if (L.format == SAMPLEFORMAT_IEEEFP) check_pixels(out, size_t(L.w) * L.h, int(L.w), path_, where);
}

Image read_tiff(const std::string& path) {
  TiffStack st(path);
  Image im;
  im.nx = st.nx(), im.ny = st.ny(), im.nz = int(st.count());
  require_host_memory(checked_mul(checked_mul(size_t(im.nx) * im.ny, size_t(im.nz), path), sizeof(float), path),
                      "reading " + path);
  im.data.resize(im.voxels());
  for (long i = 0; i < st.count(); ++i) st.read_section(i, im.data.data() + size_t(i) * im.nx * im.ny);
  return im;
}

}  // namespace cugmm::io
