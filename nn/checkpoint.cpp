#include "nn/checkpoint.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/error.h"

namespace cugmm::nn {

namespace {
constexpr char kMagic[8] = {'C', 'U', 'G', 'M', 'M', 'C', 'K', 'P'};
constexpr size_t kPrefix = 8 + 4 + 8;  // magic, version, header length
constexpr size_t kMaxHeader = 64u << 20;

struct CrcTable {
  uint32_t t[256];
  CrcTable() {
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
  }
};

void write_all(int fd, const void* p, size_t n, const std::string& path) {
  const char* c = static_cast<const char*>(p);
  while (n) {
    ssize_t w = ::write(fd, c, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) throw Error("writing " + path + ": " + std::strerror(errno));
    c += w;
    n -= static_cast<size_t>(w);
  }
}
}  // namespace

uint32_t crc32(uint32_t crc, const void* data, size_t n) {
  static const CrcTable table;
  const unsigned char* p = static_cast<const unsigned char*>(data);
  crc = ~crc;
  for (size_t i = 0; i < n; ++i) crc = table.t[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
  return ~crc;
}

void Checkpoint::put_f32(const std::string& name, const std::vector<float>& v) {
  Array& a = arrays_[name];
  a.dtype = "f32";
  a.count = v.size();
  a.bytes.assign(reinterpret_cast<const char*>(v.data()), reinterpret_cast<const char*>(v.data() + v.size()));
}

void Checkpoint::put_u16(const std::string& name, const std::vector<uint16_t>& v) {
  Array& a = arrays_[name];
  a.dtype = "u16";
  a.count = v.size();
  a.bytes.assign(reinterpret_cast<const char*>(v.data()), reinterpret_cast<const char*>(v.data() + v.size()));
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

std::vector<float> Checkpoint::get_f32(const std::string& name, size_t count) const {
  const Array& a = find(name, "f32", count);
  std::vector<float> v(count);
  if (count) std::memcpy(v.data(), a.bytes.data(), count * sizeof(float));
  // Weights, Adam moments and normalisations are finite in any checkpoint a run wrote: a NaN here (a file
  // edited, or written by a defect) would otherwise flow silently into every latent and map decoded from it.
  for (size_t i = 0; i < count; ++i)
    if (!std::isfinite(v[i]))
      throw InputError(source, "", "array '" + name + "' element " + std::to_string(i) + " is " +
                                       (std::isnan(v[i]) ? "NaN" : "infinite"));
  return v;
}

std::vector<uint16_t> Checkpoint::get_u16(const std::string& name, size_t count) const {
  const Array& a = find(name, "u16", count);
  std::vector<uint16_t> v(count);
  if (count) std::memcpy(v.data(), a.bytes.data(), count * sizeof(uint16_t));
  return v;
}

void Checkpoint::save(const std::string& path) const {
  nlohmann::json h;
  h["meta"] = meta;
  h["arrays"] = nlohmann::json::array();
  size_t off = 0;
  for (const auto& [name, a] : arrays_) {
    h["arrays"].push_back({{"name", name}, {"dtype", a.dtype}, {"count", a.count}, {"offset", off}});
    off += a.bytes.size();
  }
  std::string header = h.dump();
  uint32_t version = kVersion;
  uint64_t hlen = header.size();

  namespace fs = std::filesystem;
  fs::path final_path(path);
  fs::path dir = final_path.has_parent_path() ? final_path.parent_path() : fs::path(".");
  std::string tmp = (dir / ("." + final_path.filename().string() + ".tmp." + std::to_string(::getpid()))).string();
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw Error("cannot write checkpoint " + path + ": " + std::strerror(errno));
  try {
    uint32_t crc = 0;
    auto out = [&](const void* p, size_t n) {
      crc = crc32(crc, p, n);
      write_all(fd, p, n, tmp);
    };
    out(kMagic, 8);
    out(&version, 4);
    out(&hlen, 8);
    out(header.data(), header.size());
    for (const auto& kv : arrays_) out(kv.second.bytes.data(), kv.second.bytes.size());
    write_all(fd, &crc, 4, tmp);
    if (::fsync(fd) != 0) throw Error("fsync " + tmp + ": " + std::strerror(errno));
  } catch (...) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  ::close(fd);
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    throw Error("cannot rename " + tmp + " to " + path + ": " + std::strerror(e));
  }
  // The rename itself must reach the disk too.
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

Checkpoint Checkpoint::load(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw InputError(path, "", "cannot open checkpoint");
  std::vector<char> buf((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  auto bad = [&](const std::string& what) { return InputError(path, "", what); };
  if (buf.size() < kPrefix + 4) throw bad("not a cugmm checkpoint (too short: " + std::to_string(buf.size()) + " bytes)");
  if (std::memcmp(buf.data(), kMagic, 8) != 0) throw bad("not a cugmm checkpoint (bad magic)");
  uint32_t version;
  uint64_t hlen;
  std::memcpy(&version, buf.data() + 8, 4);
  std::memcpy(&hlen, buf.data() + 12, 8);
  if (version != kVersion)
    throw bad("checkpoint format version " + std::to_string(version) + ", this cugmm reads version " +
              std::to_string(kVersion));
  if (hlen > kMaxHeader || kPrefix + hlen + 4 > buf.size())
    throw bad("truncated checkpoint (header of " + std::to_string(hlen) + " bytes, file of " +
              std::to_string(buf.size()) + ")");
  nlohmann::json h;
  try {
    h = nlohmann::json::parse(buf.begin() + kPrefix, buf.begin() + kPrefix + hlen);
  } catch (const nlohmann::json::exception& e) {
    throw bad(std::string("corrupt checkpoint header: ") + e.what());
  }
  Checkpoint ck;
  ck.source = path;
  size_t data = kPrefix + hlen, end = data;
  try {
    ck.meta = h.at("meta");
    for (const auto& a : h.at("arrays")) {
      Array arr;
      arr.dtype = a.at("dtype").get<std::string>();
      arr.count = a.at("count").get<size_t>();
      size_t off = a.at("offset").get<size_t>();
      size_t elem = arr.dtype == "f32" ? 4 : arr.dtype == "u16" ? 2 : 0;
      if (!elem) throw bad("unknown array type '" + arr.dtype + "'");
      if (arr.count > buf.size() / elem || data + off + arr.count * elem + 4 > buf.size())
        throw bad("truncated checkpoint (array '" + a.at("name").get<std::string>() + "' runs past the end)");
      arr.bytes.assign(buf.begin() + data + off, buf.begin() + data + off + arr.count * elem);
      end = std::max(end, data + off + arr.count * elem);
      ck.arrays_[a.at("name").get<std::string>()] = std::move(arr);
    }
  } catch (const nlohmann::json::exception& e) {
    throw bad(std::string("corrupt checkpoint header: ") + e.what());
  }
  if (end + 4 != buf.size())
    throw bad("checkpoint is " + std::to_string(buf.size()) + " bytes, its header describes " +
              std::to_string(end + 4) + (end + 4 > buf.size() ? " (truncated)" : " (trailing bytes)"));
  uint32_t stored;
  std::memcpy(&stored, buf.data() + end, 4);
  if (crc32(0, buf.data(), end) != stored) throw bad("checksum mismatch: the checkpoint is corrupt");
  return ck;
}

}  // namespace cugmm::nn
