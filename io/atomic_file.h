// Files written under a temporary name in the destination's directory and renamed into place once
// complete, so a reader (or a crash) never sees a half-written file under the final name.
#pragma once
#include <cstddef>
#include <string>

namespace cugmm::io {

class AtomicFile {
 public:
  explicit AtomicFile(const std::string& path);  // creates `path`.XXXXXX beside it; Error if it cannot
  ~AtomicFile();                                 // removes the temporary unless commit() ran
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  void write(const void* data, size_t bytes);
  void commit();  // flushes to disk, then renames over `path`

 private:
  std::string path_, tmp_;
  int fd_ = -1;
};

// The whole content at once (text formats).
void write_file_atomic(const std::string& path, const std::string& content);

}  // namespace cugmm::io
