#include "nn/checkpoint.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <zlib.h>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/json_fields.h"

namespace cugmm::nn {

namespace {
constexpr char kMagic[8] = {'C', 'U', 'G', 'M', 'M', 'C', 'K', 'P'};
constexpr size_t kPrefix = 8 + 4 + 8;  // magic, version, header length
constexpr size_t kMaxHeader = 64u << 20;

// n bytes at `offset`; a short read means the file shrank since it was checked.
void read_all(int fd, void* p, size_t n, size_t offset, const std::string& path) {
  char* c = static_cast<char*>(p);
  while (n) {
    ssize_t r = ::pread(fd, c, n, static_cast<off_t>(offset));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) throw Error("reading " + path + ": " + std::strerror(errno));
    if (r == 0) throw InputError(path, "", "truncated checkpoint (it ends before its arrays do)");
    c += r;
    offset += static_cast<size_t>(r);
    n -= static_cast<size_t>(r);
  }
}

// A NaN or infinity in values [0, n) of a chunk that starts at element `first` of array `name`.
void check_finite(const float* v, size_t n, size_t first, const std::string& name, const std::string& source) {
  // Weights, Adam moments and normalisations are finite in any checkpoint a run wrote: a NaN here (a file
  // edited, or written by a defect) would otherwise flow silently into every latent and map decoded from it.
  for (size_t i = 0; i < n; ++i)
    if (!std::isfinite(v[i]))
      throw InputError(source, "", "array '" + name + "' element " + std::to_string(first + i) + " is " +
                                       (std::isnan(v[i]) ? "NaN" : "infinite"));
}
}  // namespace

struct Checkpoint::File {
  int fd = -1;
  size_t data_start = 0;  // where the arrays begin
  ~File() {
    if (fd >= 0) ::close(fd);
  }
};

// zlib's (the same CRC): several GB/s where a byte-at-a-time table did ~0.4 GB/s, which made checksumming a
// G = 100,000 checkpoint (~6 GB, on every write and every load) take longer than writing it.
// zlib returns 0 for a null buffer (its way to ask for the initial value): an empty array (a network without
// batch-norm has an empty state) must leave the running CRC as it is.
uint32_t crc32(uint32_t crc, const void* data, size_t n) {
  if (n == 0) return crc;
  return static_cast<uint32_t>(::crc32_z(crc, static_cast<const Bytef*>(data), n));
}

void Checkpoint::put_f32(const std::string& name, const std::vector<float>& v) {
  Array& a = arrays_[name] = Array{};
  a.dtype = "f32";
  a.count = v.size();
  a.bytes.assign(reinterpret_cast<const char*>(v.data()), reinterpret_cast<const char*>(v.data() + v.size()));
}

void Checkpoint::put_u16(const std::string& name, const std::vector<uint16_t>& v) {
  Array& a = arrays_[name] = Array{};
  a.dtype = "u16";
  a.count = v.size();
  a.bytes.assign(reinterpret_cast<const char*>(v.data()), reinterpret_cast<const char*>(v.data() + v.size()));
}

void Checkpoint::put_ref(const std::string& name, const char* dtype, const void* p, size_t count, Device dev,
                         void* stream) {
  Array& a = arrays_[name] = Array{};
  a.dtype = dtype;
  a.count = count;
  a.ref = p;
  a.ref_dev = dev;
  a.ref_stream = stream;
}

void Checkpoint::put_f32(const std::string& name, const Buffer<float>& b) {
  put_ref(name, "f32", b.data(), b.size(), b.device(), b.stream());
}

void Checkpoint::put_u16(const std::string& name, const Buffer<uint16_t>& b) {
  put_ref(name, "u16", b.data(), b.size(), b.device(), b.stream());
}

std::string Checkpoint::dtype(const std::string& name) const {
  auto it = arrays_.find(name);
  if (it == arrays_.end()) throw InputError(source, name, "the checkpoint has no array '" + name + "'");
  return it->second.dtype;
}

const Checkpoint::Array& Checkpoint::find(const std::string& name, const char* dtype, size_t count) const {
  auto it = arrays_.find(name);
  if (it == arrays_.end()) throw InputError(source, name, "the checkpoint has no array '" + name + "'");
  const Array& a = it->second;
  if (a.dtype != dtype) throw InputError(source, name, "holds " + a.dtype + ", expected " + dtype);
  if (a.count != count)
    throw InputError(source, name,
                     "holds " + std::to_string(a.count) + " values, this network needs " + std::to_string(count));
  return a;
}

void Checkpoint::fetch(const Array& a, size_t first, size_t n, void* dst) const {
  if (!n) return;
  if (a.file_offset != SIZE_MAX) read_all(file_->fd, dst, n, file_->data_start + a.file_offset + first, source);
  else if (a.ref) mem_copy(Device::cpu, dst, a.ref_dev, static_cast<const char*>(a.ref) + first, n, a.ref_stream);
  else std::memcpy(dst, a.bytes.data() + first, n);
}

template <class F>
void Checkpoint::for_each_chunk(const Array& a, size_t chunk_bytes, std::vector<char>& staging, F&& f) const {
  const size_t total = a.nbytes();
  if (a.file_offset == SIZE_MAX && (!a.ref || a.ref_dev == Device::cpu)) {  // host memory: no copy at all
    f(a.ref ? static_cast<const char*>(a.ref) : a.bytes.data(), total);
    return;
  }
  const size_t chunk = std::max<size_t>(4, chunk_bytes / 4 * 4);  // whole elements of either type
  if (staging.size() < std::min(chunk, total)) staging.resize(std::min(chunk, total));
  for (size_t first = 0; first < total; first += chunk) {
    const size_t n = std::min(chunk, total - first);
    fetch(a, first, n, staging.data());
    f(staging.data(), n);
  }
}

std::vector<float> Checkpoint::get_f32(const std::string& name, size_t count) const {
  const Array& a = find(name, "f32", count);
  std::vector<float> v(count);
  fetch(a, 0, count * sizeof(float), v.data());
  check_finite(v.data(), count, 0, name, source);
  return v;
}

std::vector<uint16_t> Checkpoint::get_u16(const std::string& name, size_t count) const {
  const Array& a = find(name, "u16", count);
  std::vector<uint16_t> v(count);
  fetch(a, 0, count * sizeof(uint16_t), v.data());
  return v;
}

void Checkpoint::read_into(const std::string& name, const char* dtype, void* dst, Device dev, void* stream,
                           size_t count) const {
  const Array& a = find(name, dtype, count);
  const bool f32 = a.dtype == "f32";
  const size_t elem = f32 ? 4 : 2, total = a.nbytes();
  char* out = static_cast<char*>(dst);
  if (dev == Device::cpu) {  // the buffer is host memory: read straight into it
    fetch(a, 0, total, out);
    if (f32) check_finite(reinterpret_cast<const float*>(out), count, 0, name, source);
    return;
  }
  std::vector<char> staging(std::min(kChunkBytes, total));
  for (size_t first = 0; first < total; first += kChunkBytes) {
    const size_t n = std::min(kChunkBytes, total - first);
    fetch(a, first, n, staging.data());
    if (f32) check_finite(reinterpret_cast<const float*>(staging.data()), n / 4, first / elem, name, source);
    mem_copy(dev, out + first, Device::cpu, staging.data(), n, stream);
  }
}

void Checkpoint::read_f32(const std::string& name, Buffer<float>& dst) const {
  read_into(name, "f32", dst.data(), dst.device(), dst.stream(), dst.size());
}

void Checkpoint::read_u16(const std::string& name, Buffer<uint16_t>& dst) const {
  read_into(name, "u16", dst.data(), dst.device(), dst.stream(), dst.size());
}

void Checkpoint::save(const std::string& path, size_t chunk_bytes) const {
  nlohmann::json h;
  h["meta"] = meta;
  h["arrays"] = nlohmann::json::array();
  size_t off = 0;
  for (const auto& [name, a] : arrays_) {
    h["arrays"].push_back({{"name", name}, {"dtype", a.dtype}, {"count", a.count}, {"offset", off}});
    off += a.nbytes();
  }
  std::string header = h.dump();
  uint32_t version = kVersion;
  uint64_t hlen = header.size();

  // io::AtomicFile: a temporary beside the target, renamed once whole; the next writer of `path` removes
  // a temporary that a killed writer left.
  io::AtomicFile f(path);
  uint32_t crc = 0;
  auto out = [&](const void* p, size_t n) {
    crc = crc32(crc, p, n);
    f.write(p, n);
  };
  out(kMagic, 8);
  out(&version, 4);
  out(&hlen, 8);
  out(header.data(), header.size());
  std::vector<char> staging;  // one, reused by every device array
  for (const auto& kv : arrays_) for_each_chunk(kv.second, chunk_bytes, staging, out);
  f.write(&crc, 4);
  f.commit();
  namespace fs = std::filesystem;
  const fs::path final_path(path);
  const fs::path dir = final_path.has_parent_path() ? final_path.parent_path() : fs::path(".");
  // The rename itself must reach the disk too.
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

Checkpoint Checkpoint::load(const std::string& path) {
  auto file = std::make_shared<File>();
  file->fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  struct stat st;
  if (file->fd < 0 || ::fstat(file->fd, &st) != 0 || !S_ISREG(st.st_mode))
    throw InputError(path, "", "cannot open checkpoint");
  const size_t size = static_cast<size_t>(st.st_size);
  auto bad = [&](const std::string& what) { return InputError(path, "", what); };
  if (size < kPrefix + 4) throw bad("not a cugmm checkpoint (too short: " + std::to_string(size) + " bytes)");
  char prefix[kPrefix];
  read_all(file->fd, prefix, kPrefix, 0, path);
  if (std::memcmp(prefix, kMagic, 8) != 0) throw bad("not a cugmm checkpoint (bad magic)");
  uint32_t version;
  uint64_t hlen;
  std::memcpy(&version, prefix + 8, 4);
  std::memcpy(&hlen, prefix + 12, 8);
  if (version != kVersion)
    throw bad("checkpoint format version " + std::to_string(version) + ", this cugmm reads version " +
              std::to_string(kVersion));
  if (hlen > kMaxHeader || kPrefix + hlen + 4 > size)
    throw bad("truncated checkpoint (header of " + std::to_string(hlen) + " bytes, file of " + std::to_string(size) +
              ")");
  std::string text(hlen, '\0');
  read_all(file->fd, text.data(), hlen, kPrefix, path);
  nlohmann::json h;
  try {
    h = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw bad(std::string("corrupt checkpoint header: ") + e.what());
  }
  Checkpoint ck;
  ck.source = path;
  const size_t data = kPrefix + hlen;
  size_t end = data;
  try {
    ck.meta = h.at("meta");
    size_t index = 0;
    for (const auto& a : h.at("arrays")) {
      const std::string record = "header, array " + std::to_string(++index);
      Array arr;
      arr.dtype = a.at("dtype").get<std::string>();
      // Checked before conversion: get<size_t>() of 1e30 or -1.5 is undefined (found by fuzzing).
      arr.count = io::json_count(a, "count", SIZE_MAX, path, record);
      arr.file_offset = io::json_count(a, "offset", SIZE_MAX, path, record);
      size_t elem = arr.dtype == "f32" ? 4 : arr.dtype == "u16" ? 2 : 0;
      if (!elem) throw bad("unknown array type '" + arr.dtype + "'");
      if (arr.count > size / elem || arr.file_offset > size || data + arr.file_offset + arr.count * elem + 4 > size)
        throw bad("truncated checkpoint (array '" + a.at("name").get<std::string>() + "' runs past the end)");
      end = std::max(end, data + arr.file_offset + arr.count * elem);
      ck.arrays_[a.at("name").get<std::string>()] = std::move(arr);
    }
  } catch (const nlohmann::json::exception& e) {
    throw bad(std::string("corrupt checkpoint header: ") + e.what());
  }
  if (end + 4 != size)
    throw bad("checkpoint is " + std::to_string(size) + " bytes, its header describes " + std::to_string(end + 4) +
              (end + 4 > size ? " (truncated)" : " (trailing bytes)"));
  // The checksum over the whole file, in bounded chunks: no copy of the arrays is kept.
  uint32_t crc = 0, stored;
  std::vector<char> chunk(std::min(kChunkBytes, end));
  for (size_t first = 0; first < end; first += chunk.size()) {
    const size_t n = std::min(chunk.size(), end - first);
    read_all(file->fd, chunk.data(), n, first, path);
    crc = crc32(crc, chunk.data(), n);
  }
  read_all(file->fd, &stored, 4, end, path);
  if (crc != stored) throw bad("checksum mismatch: the checkpoint is corrupt");
  file->data_start = data;
  ck.file_ = std::move(file);
  return ck;
}

}  // namespace cugmm::nn
