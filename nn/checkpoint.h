// Checkpoints: named arrays plus a JSON description, in one versioned binary file.
//
//   bytes 0..7    magic "CUGMMCKP"
//   bytes 8..11   format version (uint32, little-endian), currently 1
//   bytes 12..19  header length H (uint64)
//   H bytes       JSON header: {"meta": {...}, "arrays": [{"name", "dtype", "count", "offset"}...]}
//   data          the arrays, raw little-endian, at `offset` bytes from the end of the header
//   4 bytes       CRC-32 (IEEE) of everything before it
//
// Written atomically: a temporary file beside the target, fsync, rename, fsync of the directory, so
// the final name only ever holds a complete file. Loading checks the magic, the version, every length
// against the file size, and the checksum, and names the file and what is wrong when it refuses.
#pragma once
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace cugmm::nn {

class Checkpoint {
 public:
  static constexpr uint32_t kVersion = 1;

  nlohmann::json meta = nlohmann::json::object();  // architecture, optimizer settings, epoch, ...
  std::string source;                              // the file it was loaded from (for messages)

  void put_f32(const std::string& name, const std::vector<float>& v);
  void put_u16(const std::string& name, const std::vector<uint16_t>& v);
  bool has(const std::string& name) const { return arrays_.count(name) > 0; }
  std::string dtype(const std::string& name) const;  // "f32" | "u16"; throws when absent
  // Throw cugmm::InputError when the array is absent, of another type, or not `count` long.
  std::vector<float> get_f32(const std::string& name, size_t count) const;
  std::vector<uint16_t> get_u16(const std::string& name, size_t count) const;

  void save(const std::string& path) const;
  static Checkpoint load(const std::string& path);

 private:
  struct Array {
    std::string dtype;
    size_t count = 0;
    std::vector<char> bytes;
  };
  const Array& find(const std::string& name, const char* dtype, size_t count) const;
  std::map<std::string, Array> arrays_;  // ordered, so the same content gives the same file
};

// CRC-32 (IEEE 802.3, reflected, as zlib's crc32): crc32(crc32(0, a), b) == crc32(0, a + b).
uint32_t crc32(uint32_t crc, const void* data, size_t n);

}  // namespace cugmm::nn
