#include "io/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <vector>

#include "core/error.h"

namespace cugmm::io {

// mkstemp makes 0600 files; the final file should get the permissions any other new file would. The
// process umask can only be read race-free from /proc (umask() itself sets it).
static mode_t new_file_mode() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("Umask:", 0) == 0) return mode_t(0666) & ~mode_t(std::strtol(line.c_str() + 6, nullptr, 8));
  return 0644;
}

AtomicFile::AtomicFile(const std::string& path) : path_(path) {
  std::vector<char> name(path.begin(), path.end());
  for (char c : std::string(".XXXXXX")) name.push_back(c);
  name.push_back('\0');
  fd_ = mkstemp(name.data());
  if (fd_ < 0) throw Error("cannot create " + path + ".XXXXXX: " + std::strerror(errno));
  tmp_ = name.data();
  fchmod(fd_, new_file_mode());
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) close(fd_);
  if (!tmp_.empty()) unlink(tmp_.c_str());
}

void AtomicFile::write(const void* data, size_t bytes) {
  CUGMM_REQUIRE(fd_ >= 0, "AtomicFile::write after commit");
  const char* p = static_cast<const char*>(data);
  while (bytes > 0) {
    ssize_t n = ::write(fd_, p, bytes);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw Error("cannot write " + path_ + ": " + std::strerror(n < 0 ? errno : ENOSPC));
    p += n;
    bytes -= size_t(n);
  }
}

void AtomicFile::commit() {
  CUGMM_REQUIRE(fd_ >= 0, "AtomicFile::commit twice");
  // fsync before rename: otherwise a power cut can leave the new name pointing at an empty file.
  if (fsync(fd_) != 0 && errno != EINVAL) throw Error("cannot write " + path_ + ": " + std::strerror(errno));
  int rc = close(fd_);
  fd_ = -1;
  if (rc != 0) throw Error("cannot write " + path_ + ": " + std::strerror(errno));
  if (std::rename(tmp_.c_str(), path_.c_str()) != 0)
    throw Error("cannot rename " + tmp_ + " to " + path_ + ": " + std::strerror(errno));
  tmp_.clear();
}

void write_file_atomic(const std::string& path, const std::string& content) {
  AtomicFile f(path);
  f.write(content.data(), content.size());
  f.commit();
}

}  // namespace cugmm::io
