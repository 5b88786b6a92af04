// Refusing work that cannot fit before it starts: sizes computed from files or options are checked
// for overflow, and allocations are compared with the memory the machine has free, so a wrong header
// or a typo in --box is a clear error instead of an OOM kill minutes later.
#pragma once
#include <cstddef>
#include <string>

namespace cugmm {

// MemAvailable from /proc/meminfo, or the physical memory when that is unknown (bytes).
size_t available_host_memory();

// Throws cugmm::Error "<what> needs N GiB of memory, M GiB are available" when `bytes` exceeds what is
// available (with a small reserve for the rest of the program).
void require_host_memory(size_t bytes, const std::string& what);

// a * b, throwing cugmm::Error naming `what` on overflow of size_t.
size_t checked_mul(size_t a, size_t b, const std::string& what);

// Human-readable size: "512 MiB", "3.2 GiB".
std::string format_bytes(size_t bytes);

}  // namespace cugmm
