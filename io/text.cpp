#include "io/text.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <cstdlib>

#include "core/error.h"
#include "io/input_file.h"

namespace cugmm::io {

std::string_view trim(std::string_view s) {
  size_t a = s.find_first_not_of(" \t\r\n");
  if (a == std::string_view::npos) return {};
  size_t b = s.find_last_not_of(" \t\r\n");
  return s.substr(a, b - a + 1);
}

std::vector<std::string> split_fields(std::string_view line) {
  std::vector<std::string> out;
  size_t i = 0, n = line.size();
  while (i < n) {
    while (i < n && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r' || line[i] == '\n')) ++i;
    if (i >= n) break;
    char q = line[i];
    if (q == '"' || q == '\'') {
      // A quote opens a field only at its start and closes it only before whitespace (CIF/STAR rule).
      size_t j = i + 1;
      while (j < n && !(line[j] == q && (j + 1 == n || line[j + 1] == ' ' || line[j + 1] == '\t'))) ++j;
      out.emplace_back(line.substr(i + 1, j - i - 1));
      i = j + 1;
    } else {
      size_t j = i;
      while (j < n && line[j] != ' ' && line[j] != '\t' && line[j] != '\r' && line[j] != '\n') ++j;
      out.emplace_back(line.substr(i, j - i));
      i = j;
    }
  }
  return out;
}

std::string lower_extension(const std::string& path) {
  std::string e = std::filesystem::path(path).extension().string();
  std::transform(e.begin(), e.end(), e.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  return e;
}

std::string format_fixed(double v) {
  char b[64];
  const int n = std::snprintf(b, sizeof b, "%.6f", v);
  if (n >= 0 && size_t(n) < sizeof b) return b;
  std::string big(size_t(n) + 1, '\0');  // |v| >= 1e56: the digits do not fit the buffer (1e308 takes 316)
  std::snprintf(big.data(), big.size(), "%.6f", v);
  big.pop_back();
  return big;
}

double parse_double(std::string_view s, const std::string& file, const std::string& record) {
  std::string t(trim(s));
  char* end = nullptr;
  errno = 0;
  double v = std::strtod(t.c_str(), &end);
  if (t.empty() || *end != '\0' || errno == ERANGE) throw InputError(file, record, "'" + excerpt(t) + "' is not a number");
  return v;
}

long parse_long(std::string_view s, const std::string& file, const std::string& record) {
  std::string t(trim(s));
  char* end = nullptr;
  errno = 0;
  long v = std::strtol(t.c_str(), &end, 10);
  if (t.empty() || *end != '\0' || errno == ERANGE) throw InputError(file, record, "'" + excerpt(t) + "' is not an integer");
  return v;
}

std::string format_number(const char* fmt, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}

}  // namespace cugmm::io
