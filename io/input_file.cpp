#include "io/input_file.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "core/error.h"

namespace cugmm::io {

size_t input_file_size(const std::string& path) {
  struct stat s;
  if (::stat(path.c_str(), &s) != 0)
    throw InputError(path, "", errno == ENOENT ? std::string("not found") : std::string("cannot examine: ") + std::strerror(errno));
  if (!S_ISREG(s.st_mode)) {
    const char* what = S_ISDIR(s.st_mode)  ? "a directory"
                       : S_ISCHR(s.st_mode) ? "a character device"
                       : S_ISBLK(s.st_mode) ? "a block device"
                       : S_ISFIFO(s.st_mode) ? "a pipe"
                       : S_ISSOCK(s.st_mode) ? "a socket"
                                             : "not a file";
    throw InputError(path, "", std::string("not a regular file (") + what + ")");
  }
  return size_t(s.st_size);
}

std::string excerpt(std::string_view text, size_t max) {
  std::string out;
  size_t i = 0;
  for (; i < text.size() && out.size() < max; ++i) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c < 0x7f) {
      out += char(c);
    } else {  // control bytes and anything beyond ASCII: binary input must not reach a terminal
      const char* d = "0123456789abcdef";
      out += "\\x";
      out += d[c >> 4];
      out += d[c & 15];
    }
  }
  if (i < text.size()) out += "... (" + std::to_string(text.size() - i) + " more bytes)";
  return out;
}

}  // namespace cugmm::io
