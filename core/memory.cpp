#include "core/memory.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <limits>
#include <sstream>

#include "core/error.h"

namespace cugmm {

size_t available_host_memory() {
  std::ifstream f("/proc/meminfo");
  std::string key;
  size_t kb = 0;
  std::string unit;
  while (f >> key >> kb >> unit)
    if (key == "MemAvailable:") return kb * 1024;
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  return pages > 0 && page > 0 ? size_t(pages) * size_t(page) : std::numeric_limits<size_t>::max();
}

void require_host_memory(size_t bytes, const std::string& what) {
  const size_t avail = available_host_memory();
  const size_t reserve = size_t(256) << 20;  // the program itself, buffers of the C library, the page cache
  if (bytes > (avail > reserve ? avail - reserve : 0))
    throw Error(what + " needs " + format_bytes(bytes) + " of memory; " + format_bytes(avail) + " are available");
}

size_t checked_mul(size_t a, size_t b, const std::string& what) {
  if (a != 0 && b > std::numeric_limits<size_t>::max() / a) throw Error(what + ": size overflows");
  return a * b;
}

std::string format_bytes(size_t bytes) {
  char buf[64];
  const double b = double(bytes);
  if (b >= double(1ull << 30)) std::snprintf(buf, sizeof buf, "%.1f GiB", b / double(1ull << 30));
  else if (b >= double(1ull << 20)) std::snprintf(buf, sizeof buf, "%.0f MiB", b / double(1ull << 20));
  else if (b >= 1024) std::snprintf(buf, sizeof buf, "%.0f KiB", b / 1024);
  else std::snprintf(buf, sizeof buf, "%zu bytes", bytes);
  return buf;
}

}  // namespace cugmm
