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
//
// Streaming, so a checkpoint never needs a second copy of the networks in host memory (at G = 100,000 the
// weights and Adam moments are ~6 GB): put_* of a Buffer only records a reference, and save() writes each
// array straight from its memory (CPU) or through one bounded staging buffer (CUDA: chunk by chunk
// downloads), checksumming as it goes. load() verifies the checksum in bounded chunks and keeps the file
// open; arrays are read from it on request (get_*: one array as a vector; read_*: into a Buffer, chunk by
// chunk). Peak extra host memory either way: one chunk (kChunkBytes), plus whatever vectors are put.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/buffer.h"

namespace cugmm::nn {

class Checkpoint {
 public:
  static constexpr uint32_t kVersion = 1;
  static constexpr size_t kChunkBytes = size_t(64) << 20;  // staging for device arrays, checksum reads

  nlohmann::json meta = nlohmann::json::object();  // architecture, optimizer settings, epoch, ...
  std::string source;                              // the file it was loaded from (for messages)

  // Copies the values (small arrays: normalisations, masks).
  void put_f32(const std::string& name, const std::vector<float>& v);
  void put_u16(const std::string& name, const std::vector<uint16_t>& v);
  // Records a reference: the buffer must stay alive and unchanged until save() returns.
  void put_f32(const std::string& name, const Buffer<float>& b);
  void put_u16(const std::string& name, const Buffer<uint16_t>& b);

  bool has(const std::string& name) const { return arrays_.count(name) > 0; }
  std::string dtype(const std::string& name) const;  // "f32" | "u16"; throws when absent
  // Throw cugmm::InputError when the array is absent, of another type, or not `count` long (f32: or holds
  // a NaN or infinity).
  std::vector<float> get_f32(const std::string& name, size_t count) const;
  std::vector<uint16_t> get_u16(const std::string& name, size_t count) const;
  // The same checks, into `dst` (dst.size() values, on its device) without a whole-array host copy.
  void read_f32(const std::string& name, Buffer<float>& dst) const;
  void read_u16(const std::string& name, Buffer<uint16_t>& dst) const;

  // chunk_bytes: the staging size for device arrays (tests make it small to cross chunk boundaries).
  void save(const std::string& path, size_t chunk_bytes = kChunkBytes) const;
  static Checkpoint load(const std::string& path);

 private:
  struct File;  // an open checkpoint file (shared by copies of a loaded Checkpoint)
  struct Array {
    std::string dtype;
    size_t count = 0;
    std::vector<char> bytes;         // owned values (put_* of a vector)
    const void* ref = nullptr;       // or a Buffer's memory on ref_dev
    Device ref_dev = Device::cpu;
    void* ref_stream = nullptr;
    size_t file_offset = SIZE_MAX;   // or bytes in the loaded file
    size_t nbytes() const { return count * (dtype == "f32" ? 4 : 2); }
  };
  const Array& find(const std::string& name, const char* dtype, size_t count) const;
  void put_ref(const std::string& name, const char* dtype, const void* p, size_t count, Device dev, void* stream);
  // Bytes [first, first + n) of `a` into host memory `dst` (n <= the staging size for device arrays).
  void fetch(const Array& a, size_t first, size_t n, void* dst) const;
  // Calls f(host pointer, bytes) over `a` in order, in chunks of at most chunk_bytes (host-resident
  // arrays in one piece, straight from their memory).
  template <class F>
  void for_each_chunk(const Array& a, size_t chunk_bytes, std::vector<char>& staging, F&& f) const;
  void read_into(const std::string& name, const char* dtype, void* dst, Device dev, void* stream,
                 size_t count) const;
  std::map<std::string, Array> arrays_;  // ordered, so the same content gives the same file
  std::shared_ptr<File> file_;
};

// CRC-32 (IEEE 802.3, reflected, as zlib's crc32): crc32(crc32(0, a), b) == crc32(0, a + b).
uint32_t crc32(uint32_t crc, const void* data, size_t n);

}  // namespace cugmm::nn
