// Files written under a temporary name in the destination's directory and renamed into place once
// complete, so a reader (or a crash) never sees a half-written file under the final name.
//
// Temporary names are `.<final name>.cugmm-tmp-<pid>-<n>` beside the final file: a writer killed with
// kill -9 (or a power cut) leaves one behind, and the next writer of the same final path recognises it
// and removes it once no process with that pid is alive (a live writer's file is left alone).
#pragma once
#include <cstddef>
#include <string>
#include <vector>

namespace cugmm::io {

// Creates a fresh temporary file for `final_path` (O_EXCL, the permissions the umask gives any new file)
// after removing the stale temporaries of that path; returns its descriptor and sets `tmp` to its name.
// Error naming the path when the directory is not writable.
int create_temp_for(const std::string& final_path, std::string& tmp);

// The temporaries of `final_path` left by processes that are gone: removed, their names returned.
std::vector<std::string> remove_stale_temps(const std::string& final_path);

// The pid encoded in a temporary's name for `final_path`, or -1 when `name` is not one of them.
long temp_writer_pid(const std::string& final_path, const std::string& name);

class AtomicFile {
 public:
  explicit AtomicFile(const std::string& path);  // create_temp_for(path); Error if it cannot
  ~AtomicFile();                                 // removes the temporary unless commit() ran
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  void write(const void* data, size_t bytes);
  void commit();  // flushes to disk, then renames over `path`
  const std::string& temp_path() const { return tmp_; }

 private:
  std::string path_, tmp_;
  int fd_ = -1;
};

// The whole content at once (text formats).
void write_file_atomic(const std::string& path, const std::string& content);

}  // namespace cugmm::io
