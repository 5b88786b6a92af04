#include "io/mrc.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "core/error.h"
#include "core/memory.h"
#include "io/atomic_file.h"
#include "io/input_file.h"

namespace cugmm::io {

namespace {

constexpr size_t kHeaderBytes = 1024;

bool host_little_endian() {
  const uint16_t one = 1;
  unsigned char b;
  std::memcpy(&b, &one, 1);
  return b == 1;
}

template <class T>
T load(const unsigned char* p, bool swap) {
  unsigned char b[sizeof(T)];
  std::memcpy(b, p, sizeof(T));
  if (swap) std::reverse(b, b + sizeof(T));
  T v;
  std::memcpy(&v, b, sizeof(T));
  return v;
}

// IEEE 754 binary16 -> binary32, subnormals, infinities and NaN included.
float half_to_float(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, man = h & 0x3ffu, bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (man << 13);
  } else if (exp != 0) {
    bits = sign | ((exp + 112) << 23) | (man << 13);
  } else if (man == 0) {
    bits = sign;
  } else {  // subnormal: normalise the mantissa
    int e = -1;
    do { man <<= 1; ++e; } while (!(man & 0x400u));
    bits = sign | uint32_t(112 - e) << 23 | ((man & 0x3ffu) << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

std::string hex_byte(unsigned char b) {
  const char* d = "0123456789abcdef";
  return {d[b >> 4], d[b & 15]};
}

size_t mode_bytes(int mode) {
  switch (mode) {
    case 0: return 1;
    case 1: case 6: case 12: return 2;
    case 2: return 4;
    default: return 0;
  }
}

bool mode_known(int32_t mode) { return mode_bytes(mode) != 0 || mode == 3 || mode == 4 || mode == 101; }

// Per-file facts read_mrc_header does not expose: byte order relative to the host and the axis order.
struct Layout {
  MrcHeader h;
  bool swap = false;
  int map[3] = {1, 2, 3};  // MAPC, MAPR, MAPS: which axis (1 = x) runs along columns, rows, sections
  int cols = 0, rows = 0, secs = 0;  // NX, NY, NZ as stored
};

Layout parse_header(const unsigned char* p, size_t file_size, const std::string& path) {
  if (file_size < kHeaderBytes)
    throw InputError(path, "header", "truncated: " + std::to_string(file_size) + " bytes, an MRC header is 1024");
  Layout L;
  MrcHeader& h = L.h;
  // MACHST: 0x44 0x44 (or 0x44 0x41) little-endian, 0x11 0x11 big-endian. Pre-2000 files often leave it
  // zero; then the byte order that gives a known mode wins.
  const unsigned char st = p[212];
  bool file_le;
  if (st == 0x44 || st == 0x41) file_le = true;
  else if (st == 0x11) file_le = false;
  else file_le = mode_known(load<int32_t>(p + 12, !host_little_endian())) || !mode_known(load<int32_t>(p + 12, host_little_endian()));
  L.swap = file_le != host_little_endian();
  h.little_endian = file_le;
  auto i32 = [&](size_t off) { return load<int32_t>(p + off, L.swap); };
  auto f32 = [&](size_t off) { return load<float>(p + off, L.swap); };

  // The format ID: "MAP " (MRC2014) or "MAP\0". Files from before MRC2000 have zeros here: accepted, since
  // every other field is checked below (mode, sizes, file length). Anything else is not an MRC file.
  const unsigned char* id = p + 208;
  bool map_ok = std::memcmp(id, "MAP", 3) == 0 && (id[3] == ' ' || id[3] == 0);
  bool blank = id[0] == 0 && id[1] == 0 && id[2] == 0 && id[3] == 0;
  if (!map_ok && !blank) throw InputError(path, "header field MAP (byte 208)", "no 'MAP ' format ID: not an MRC file");

  L.cols = i32(0), L.rows = i32(4), L.secs = i32(8);
  int32_t mode = i32(12);
  // A MODE that is only a known mode with its bytes reversed (2 read as 33554432) means MACHST gives the
  // wrong byte order: say so, rather than naming a mode nobody wrote.
  if (mode_bytes(mode) == 0 && mode_known(load<int32_t>(p + 12, !L.swap)))
    throw InputError(path, "header fields MACHST/MODE",
                     "byte order: MACHST (byte 212: 0x" + hex_byte(st) + ") says " +
                         (file_le ? "little" : "big") + "-endian, but MODE only makes sense as " +
                         std::to_string(load<int32_t>(p + 12, !L.swap)) + " read " + (file_le ? "big" : "little") +
                         "-endian: the header's byte-order stamp is wrong");
  if (mode_bytes(mode) == 0)
    throw InputError(path, "header field MODE", "mode " + std::to_string(mode) +
                     " is not supported (readable: 0 int8, 1 int16, 2 float32, 6 uint16, 12 float16)");
  h.mode = mode;
  const char* names[3] = {"NX", "NY", "NZ"};
  int dims[3] = {L.cols, L.rows, L.secs};
  for (int a = 0; a < 3; ++a)
    if (dims[a] <= 0)
      throw InputError(path, std::string("header field ") + names[a], std::to_string(dims[a]) + " is not a positive size");

  int m[3] = {i32(64), i32(68), i32(72)};
  if (!(m[0] == 0 && m[1] == 0 && m[2] == 0)) {  // all zero: old writers that leave the default order
    int seen = 0;
    for (int a = 0; a < 3; ++a)
      if (m[a] >= 1 && m[a] <= 3) seen |= 1 << m[a];
    if (seen != 0xe)
      throw InputError(path, "header fields MAPC/MAPR/MAPS", std::to_string(m[0]) + "," + std::to_string(m[1]) + "," +
                       std::to_string(m[2]) + " is not a permutation of 1,2,3");
    std::copy(m, m + 3, L.map);
  }
  int xyz[3];
  for (int a = 0; a < 3; ++a) xyz[L.map[a] - 1] = dims[a];
  h.nx = xyz[0], h.ny = xyz[1], h.nz = xyz[2];
  for (int a = 0; a < 3; ++a) h.start[L.map[a] - 1] = i32(16 + 4 * size_t(a));  // stored per column/row/section
  for (int a = 0; a < 3; ++a) {
    const float o = f32(196 + 4 * size_t(a));
    h.origin[a] = std::isfinite(o) ? o : 0.f;  // a garbage origin places the map nowhere: ignore it
  }

  int32_t nsymbt = i32(92);
  if (nsymbt < 0) throw InputError(path, "header field NSYMBT", std::to_string(nsymbt) + " is negative");
  h.data_offset = kHeaderBytes + size_t(nsymbt);
  size_t plane, voxels, bytes;
  if (__builtin_mul_overflow(size_t(L.cols), size_t(L.rows), &plane) ||
      __builtin_mul_overflow(plane, size_t(L.secs), &voxels) ||
      __builtin_mul_overflow(voxels, mode_bytes(mode), &bytes) || bytes > file_size)
    throw InputError(path, "header fields NX/NY/NZ", std::to_string(L.cols) + " x " + std::to_string(L.rows) + " x " +
                     std::to_string(L.secs) + " voxels of mode " + std::to_string(mode) +
                     " do not fit in the file (" + std::to_string(file_size) + " bytes)");
  if (h.data_offset + bytes > file_size)
    throw InputError(path, "data", "truncated: the header promises " + std::to_string(h.data_offset + bytes) +
                     " bytes (1024 + NSYMBT " + std::to_string(nsymbt) + " + data), the file has " +
                     std::to_string(file_size));
  // Longer than the header accounts for: an NX/NY/NZ or NSYMBT that lost its true value (a stack whose
  // NZ was not updated after appending, a wrong extended-header size). RELION (rwMRC.h), cryoSPARC and
  // mrcfile write exact sizes and mrcfile.validate() rejects longer files, so reading on would silently
  // drop or misalign images: refused.
  if (h.data_offset + bytes < file_size)
    throw InputError(path, "data", "the file has " + std::to_string(file_size - h.data_offset - bytes) +
                     " bytes more than its header accounts for (1024 + NSYMBT " + std::to_string(nsymbt) + " + " +
                     std::to_string(L.cols) + " x " + std::to_string(L.rows) + " x " + std::to_string(L.secs) +
                     " values of mode " + std::to_string(mode) + " = " + std::to_string(h.data_offset + bytes) +
                     "): NX/NY/NZ or NSYMBT are wrong");

  int32_t mx = i32(28), mz = i32(36);
  float cella_x = f32(40);
  h.pixel_size = (mx > 0 && std::isfinite(cella_x) && cella_x > 0) ? cella_x / float(mx) : 0.f;
  // RELION writes ISPG 0 for volumes too but sets MZ = NZ (stacks get MZ = 1), hence the second test.
  int32_t ispg = i32(88);
  h.is_volume = (ispg >= 1 && ispg <= 230) || (ispg == 0 && h.nz > 1 && mz == h.nz);
  h.dmin = f32(76), h.dmax = f32(80), h.dmean = f32(84), h.rms = f32(216);
  return L;
}

// Converts n stored values to float.
void convert(const unsigned char* src, size_t n, int mode, bool swap, float* dst) {
  switch (mode) {
    case 0:
      for (size_t i = 0; i < n; ++i) dst[i] = float(static_cast<int8_t>(src[i]));
      break;
    case 1:
      for (size_t i = 0; i < n; ++i) dst[i] = float(load<int16_t>(src + 2 * i, swap));
      break;
    case 6:
      for (size_t i = 0; i < n; ++i) dst[i] = float(load<uint16_t>(src + 2 * i, swap));
      break;
    case 12:
      for (size_t i = 0; i < n; ++i) dst[i] = half_to_float(load<uint16_t>(src + 2 * i, swap));
      break;
    case 2:
      if (!swap) std::memcpy(dst, src, n * 4);
      else for (size_t i = 0; i < n; ++i) dst[i] = load<float>(src + 4 * i, true);
      break;
  }
}

}  // namespace

void check_pixels(const float* v, size_t n, int nx, const std::string& path, const std::string& where) {
  for (size_t i = 0; i < n; ++i)
    if (!(std::fabs(v[i]) <= kMaxPixelMagnitude)) {
      char value[32];
      std::snprintf(value, sizeof value, "%.3g", double(v[i]));
      const std::string what = std::isnan(v[i]) ? "NaN" : std::isinf(v[i]) ? "infinite" : value;
      throw InputError(path, where, "pixel (x " + std::to_string(i % nx) + ", y " + std::to_string(i / nx) + ") is " +
                                        what + (std::isfinite(v[i]) ? " (beyond +-1e15: sums of it overflow)" : ""));
    }
}

namespace {

std::string section_name(long i, long count) {
  return "image " + std::to_string(i + 1) + " of " + std::to_string(count) + " (" + std::to_string(i + 1) + "@)";
}

struct Fd {
  int fd;
  ~Fd() { if (fd >= 0) close(fd); }
};

size_t file_size_of(int fd, const std::string& path) {
  struct stat s;
  if (fstat(fd, &s) != 0) throw InputError(path, "", std::strerror(errno));
  if (!S_ISREG(s.st_mode)) input_file_size(path);  // throws, saying what it is instead
  return size_t(s.st_size);
}

int open_or_throw(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw InputError(path, "", std::string("cannot open: ") + std::strerror(errno));
  return fd;
}

void read_exact(int fd, unsigned char* dst, size_t n, size_t offset, const std::string& path) {
  while (n > 0) {
    ssize_t r = pread(fd, dst, n, off_t(offset));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) throw InputError(path, "data", r < 0 ? std::strerror(errno) : "unexpected end of file");
    dst += r, n -= size_t(r), offset += size_t(r);
  }
}

Layout read_layout(int fd, const std::string& path) {
  size_t size = file_size_of(fd, path);
  unsigned char hdr[kHeaderBytes] = {};
  if (size >= kHeaderBytes) read_exact(fd, hdr, kHeaderBytes, 0, path);
  return parse_header(hdr, size, path);
}

}  // namespace

MrcHeader read_mrc_header(const std::string& path) {
  Fd f{open_or_throw(path)};
  return read_layout(f.fd, path).h;
}

Image read_mrc(const std::string& path) {
  Fd f{open_or_throw(path)};
  Layout L = read_layout(f.fd, path);
  const MrcHeader& h = L.h;
  Image im;
  im.nx = h.nx, im.ny = h.ny, im.nz = h.nz, im.pixel_size = h.pixel_size;
  std::copy(h.start, h.start + 3, im.start);
  std::copy(h.origin, h.origin + 3, im.origin);
  // The sizes fit the file (parse_header), but an 8-bit file grows four times as float.
  require_host_memory(checked_mul(im.voxels(), sizeof(float), path), "reading " + path);
  im.data.resize(im.voxels());
  const size_t plane = size_t(L.cols) * L.rows, bpv = mode_bytes(h.mode);
  std::vector<unsigned char> raw(plane * bpv);
  std::vector<float> sec(plane);
  const bool natural = L.map[0] == 1 && L.map[1] == 2 && L.map[2] == 3;
  size_t stride[3];  // Image strides of the x, y, z axes
  stride[0] = 1, stride[1] = size_t(h.nx), stride[2] = size_t(h.nx) * h.ny;
  for (int s = 0; s < L.secs; ++s) {
    read_exact(f.fd, raw.data(), raw.size(), h.data_offset + size_t(s) * raw.size(), path);
    float* dst = natural ? im.data.data() + size_t(s) * plane : sec.data();
    convert(raw.data(), plane, h.mode, L.swap, dst);
    if (h.mode == 2 || h.mode == 12) check_pixels(dst, plane, L.cols, path, "section " + std::to_string(s + 1) + " of " + std::to_string(L.secs));
    if (natural) continue;
    // Crystallographic maps may store y or z fastest: put every value where its x, y, z say.
    const size_t sc = stride[L.map[0] - 1], sr = stride[L.map[1] - 1], ss = stride[L.map[2] - 1];
    for (int r = 0; r < L.rows; ++r)
      for (int c = 0; c < L.cols; ++c) im.data[c * sc + r * sr + s * ss] = sec[size_t(r) * L.cols + c];
  }
  return im;
}

MrcStack::MrcStack(const std::string& path) : path_(path) {
  Fd f{open_or_throw(path)};
  size_t size = file_size_of(f.fd, path);
  if (size < kHeaderBytes) parse_header(nullptr, size, path);  // throws the truncation error
  void* m = mmap(nullptr, size, PROT_READ, MAP_SHARED, f.fd, 0);
  if (m == MAP_FAILED) throw InputError(path, "", std::string("cannot map: ") + std::strerror(errno));
  map_ = static_cast<const unsigned char*>(m);
  map_size_ = size;
  try {
    Layout L = parse_header(map_, size, path);
    if (!(L.map[0] == 1 && L.map[1] == 2 && L.map[2] == 3))
      throw InputError(path, "header fields MAPC/MAPR/MAPS", "a particle stack must store x fastest, then y, then images");
    h_ = L.h;
  } catch (...) {
    munmap(m, size);
    map_ = nullptr;
    throw;
  }
}

MrcStack::~MrcStack() {
  if (map_) munmap(const_cast<unsigned char*>(map_), map_size_);
}

void MrcStack::read_section(long i, float* out) const {
  if (i < 0 || i >= h_.nz)
    throw InputError(path_, section_name(i, h_.nz), "past the end of the stack (" + std::to_string(h_.nz) + " images)");
  const size_t plane = size_t(h_.nx) * h_.ny, bytes = plane * mode_bytes(h_.mode);
  const bool swap = h_.little_endian != host_little_endian();
  convert(map_ + h_.data_offset + size_t(i) * bytes, plane, h_.mode, swap, out);
  if (h_.mode == 2 || h_.mode == 12) check_pixels(out, plane, h_.nx, path_, section_name(i, h_.nz));
}

void write_mrc(const std::string& path, const float* data, int nx, int ny, int nz, float pixel_size, bool is_stack,
               const int start[3], const float origin[3]) {
  if (nx <= 0 || ny <= 0 || nz <= 0)
    throw Error("write_mrc " + path + ": size " + std::to_string(nx) + " x " + std::to_string(ny) + " x " +
                std::to_string(nz) + " is not positive");
  if (!(pixel_size >= 0) || !std::isfinite(pixel_size))
    throw Error("write_mrc " + path + ": pixel size " + std::to_string(pixel_size) + " is not >= 0");
  const size_t n = size_t(nx) * ny * nz;
  double lo = data[0], hi = data[0], sum = 0;
  for (size_t i = 0; i < n; ++i) {
    if (!std::isfinite(data[i])) throw Error("write_mrc " + path + ": value " + std::to_string(i) + " is not finite");
    lo = std::min(lo, double(data[i])), hi = std::max(hi, double(data[i])), sum += data[i];
  }
  const double mean = sum / double(n);
  double ss = 0;  // two passes: a one-pass variance loses the spread of data far from zero
  for (size_t i = 0; i < n; ++i) ss += (data[i] - mean) * (data[i] - mean);
  const double rms = std::sqrt(ss / double(n));  // MRC2014's RMS is the standard deviation from the mean

  unsigned char h[kHeaderBytes] = {};
  const bool le = host_little_endian();  // written in the host's order; MACHST says which
  auto put_i = [&](size_t off, int32_t v) { std::memcpy(h + off, &v, 4); };
  auto put_f = [&](size_t off, float v) { std::memcpy(h + off, &v, 4); };
  const int mz = is_stack ? 1 : nz;
  put_i(0, nx), put_i(4, ny), put_i(8, nz);
  put_i(12, 2);
  put_i(28, nx), put_i(32, ny), put_i(36, mz);
  put_f(40, float(double(pixel_size) * nx)), put_f(44, float(double(pixel_size) * ny)),
      put_f(48, float(double(pixel_size) * mz));
  put_f(52, 90), put_f(56, 90), put_f(60, 90);
  put_i(64, 1), put_i(68, 2), put_i(72, 3);
  if (start) put_i(16, start[0]), put_i(20, start[1]), put_i(24, start[2]);
  if (origin) put_f(196, origin[0]), put_f(200, origin[1]), put_f(204, origin[2]);
  put_f(76, float(lo)), put_f(80, float(hi)), put_f(84, float(mean));
  put_i(88, is_stack ? 0 : 1);
  put_i(108, 20140);
  std::memcpy(h + 208, "MAP ", 4);
  if (le) h[212] = 0x44, h[213] = 0x44;
  else h[212] = 0x11, h[213] = 0x11;
  put_f(216, float(rms));
  put_i(220, 1);
  char label[81];
  std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  std::strftime(label, sizeof label, "cugmm %Y-%m-%d %H:%M:%S UTC", &utc);
  std::memcpy(h + 224, label, std::strlen(label));

  AtomicFile f(path);
  f.write(h, kHeaderBytes);
  f.write(data, n * sizeof(float));
  f.commit();
}

}  // namespace cugmm::io
