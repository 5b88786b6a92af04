#include "io/input_file.h"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <fstream>
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

void require_pdb_record_names(const std::string& path) {
  std::string ext = path.substr(path.find_last_of('.') == std::string::npos ? path.size() : path.find_last_of('.'));
  for (char& c : ext) c = char(std::tolower(static_cast<unsigned char>(c)));
  if (ext == ".cif" || ext == ".mmcif") return;
  input_file_size(path);
  std::ifstream f(path, std::ios::binary);
  std::string line;
  for (size_t n = 1; std::getline(f, line); ++n)
    for (size_t i = 0; i < std::min<size_t>(6, line.size()); ++i) {
      const unsigned char c = static_cast<unsigned char>(line[i]);
      if ((c < 0x20 && c != '\t' && c != '\r') || c > 0x7e)
        throw InputError(path, "line " + std::to_string(n),
                         "record name '" + excerpt(line.substr(0, 6)) + "' is not plain text: not a PDB file");
    }
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
