// MRC 2014 images, stacks and volumes (DESIGN §3). CONTRACT: other layers code against this header.
// Reading: modes 0 (int8), 1 (int16), 2 (float32), 6 (uint16), 12 (float16), either endianness (MACHST),
// extended headers (NSYMBT), pixel size = CELLA.x / MX with a fallback when CELLA is 0. Writing: float32,
// NVERSION 20140, ISPG 0 for stacks and 1 for volumes, MACHST 0x44 0x44, correct statistics, written to a
// temporary name and renamed (never a half-written file under the final name); passes mrcfile.validate().
// Lenient where real files need it: RELION's NVERSION 0 and ISPG 0 volumes (MZ == NZ > 1 marks those),
// MAPC/MAPR/MAPS permutations (read_mrc reorders to x fastest), and a blank format ID with no MACHST
// (pre-MRC2000 writers; byte order then from MODE) - but any other text in the MAP field is not an MRC
// file. Every size is checked against the file's length before anything is read.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace cugmm::io {

struct MrcHeader {
  int nx = 0, ny = 0, nz = 0;  // nz = sections (stack images) or volume depth
  int mode = 2;
  float pixel_size = 0;        // Å; 0 when the file does not say (caller decides the fallback)
  bool is_volume = false;      // ISPG 1..230 or NZ == MZ > 1 with a volume space group
  bool little_endian = true;
  size_t data_offset = 1024;   // 1024 + NSYMBT
  float dmin = 0, dmax = 0, dmean = 0, rms = 0;
  // Where the grid sits (x, y, z): NXSTART/NYSTART/NZSTART (voxels) and ORIGIN (Å). Kept so that a map
  // made on another's grid (fit-map's model.mrc) overlays it in ChimeraX.
  int start[3] = {0, 0, 0};
  float origin[3] = {0, 0, 0};
};

// A dense float image: nz sections of ny x nx, x fastest.
struct Image {
  int nx = 0, ny = 0, nz = 1;
  float pixel_size = 0;
  std::vector<float> data;
  int start[3] = {0, 0, 0};      // NXSTART..NZSTART of the file it came from (written back by write_mrc)
  float origin[3] = {0, 0, 0};   // ORIGIN, Å
  size_t voxels() const { return size_t(nx) * ny * nz; }
  float& at(int x, int y, int z = 0) { return data[(size_t(z) * ny + y) * nx + x]; }
  float at(int x, int y, int z = 0) const { return data[(size_t(z) * ny + y) * nx + x]; }
};

// Pixel values beyond this magnitude are refused as they are read: finite, but their squares summed over
// an image or a back-projection overflow float (3e38 pixels became "value N is not finite" only after the
// whole reconstruction). No detector count or normalised density comes near it.
constexpr float kMaxPixelMagnitude = 1e15f;
// InputError naming `path`, `where` (the image) and the pixel when one is NaN, infinite or beyond
// kMaxPixelMagnitude.
void check_pixels(const float* v, size_t n, int nx, const std::string& path, const std::string& where);

MrcHeader read_mrc_header(const std::string& path);  // throws InputError naming the file and field
Image read_mrc(const std::string& path);             // whole file as float32; NaN/Inf: InputError naming the section

// Random access to sections of a stack, memory-mapped (stacks larger than RAM), any readable mode.
// Thread-safe for concurrent read_section calls.
class MrcStack {
 public:
  explicit MrcStack(const std::string& path);
  ~MrcStack();
  MrcStack(const MrcStack&) = delete;
  MrcStack& operator=(const MrcStack&) = delete;
  const MrcHeader& header() const { return h_; }
  const std::string& path() const { return path_; }
  int count() const { return h_.nz; }
  // Section i (0-based) as float into out[ny * nx]; InputError if i is past the end or a pixel is NaN/Inf.
  void read_section(long i, float* out) const;

 private:
  std::string path_;
  MrcHeader h_;
  const unsigned char* map_ = nullptr;
  size_t map_size_ = 0;
};

// Writes float32 data as MRC. is_stack: ISPG 0 (a stack of nz images), else a volume (ISPG 1).
void write_mrc(const std::string& path, const float* data, int nx, int ny, int nz, float pixel_size, bool is_stack,
               const int start[3] = nullptr, const float origin[3] = nullptr);
inline void write_mrc(const std::string& path, const Image& im, bool is_stack) {
  write_mrc(path, im.data.data(), im.nx, im.ny, im.nz, im.pixel_size, is_stack, im.start, im.origin);
}

}  // namespace cugmm::io
