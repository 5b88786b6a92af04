#include "io/atomic_file.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/error.h"

namespace fs = std::filesystem;

namespace cugmm::io {

namespace {

constexpr const char* kTempTag = ".cugmm-tmp-";

struct Split {
  std::string dir, name;
};

Split split(const std::string& final_path) {
  fs::path p(final_path);
  std::string dir = p.parent_path().string();
  return {dir.empty() ? "." : dir, p.filename().string()};
}

std::string temp_prefix(const std::string& name) { return "." + name + kTempTag; }

// kill(pid, 0) fails with ESRCH only when no such process exists; EPERM means it lives (another user's).
// A zombie (killed, not yet reaped by a parent that may never reap it) answers kill() too but writes
// nothing more: its state in /proc/<pid>/stat is 'Z'.
bool pid_alive(long pid) {
  if (pid <= 0 || (::kill(pid_t(pid), 0) != 0 && errno == ESRCH)) return false;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text;
  std::getline(stat, text);
  const size_t close = text.rfind(')');  // the command name, in parentheses, may hold spaces
  return !(close != std::string::npos && close + 2 < text.size() && text[close + 2] == 'Z');
}

}  // namespace

long temp_writer_pid(const std::string& final_path, const std::string& name) {
  const std::string prefix = temp_prefix(split(final_path).name);
  if (name.compare(0, prefix.size(), prefix) != 0) return -1;
  const char* s = name.c_str() + prefix.size();
  char* end = nullptr;
  errno = 0;
  long pid = std::strtol(s, &end, 10);
  if (end == s || *end != '-' || errno != 0 || pid <= 0) return -1;
  return pid;
}

std::vector<std::string> remove_stale_temps(const std::string& final_path) {
  const Split sp = split(final_path);
  std::vector<std::string> removed;
  DIR* d = ::opendir(sp.dir.c_str());
  if (!d) return removed;  // the caller's create reports an unusable directory
  while (const dirent* e = ::readdir(d)) {
    const long pid = temp_writer_pid(final_path, e->d_name);
    if (pid < 0 || pid == long(::getpid()) || pid_alive(pid)) continue;
    const std::string full = (fs::path(sp.dir) / e->d_name).string();
    if (::unlink(full.c_str()) == 0) removed.push_back(full);
  }
  ::closedir(d);
  return removed;
}

int create_temp_for(const std::string& final_path, std::string& tmp) {
  remove_stale_temps(final_path);
  static std::atomic<unsigned> counter{0};
  const Split sp = split(final_path);
  for (int attempt = 0; attempt < 100; ++attempt) {
    tmp = (fs::path(sp.dir) / (temp_prefix(sp.name) + std::to_string(::getpid()) + "-" +
                               std::to_string(counter.fetch_add(1)))).string();
    // O_EXCL: never another writer's file; mode 0666 so the umask decides, as for any new file.
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd >= 0) return fd;
    if (errno != EEXIST) throw Error("cannot create " + tmp + " (to write " + final_path + "): " + std::strerror(errno));
  }
  throw Error("cannot create a temporary file for " + final_path);
}

AtomicFile::AtomicFile(const std::string& path) : path_(path) { fd_ = create_temp_for(path, tmp_); }

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
