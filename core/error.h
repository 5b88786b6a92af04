// Errors are exceptions that say what failed and where, never exit(): the CLI prints them, a library
// user catches them.
#pragma once
#include <stdexcept>
#include <string>

namespace cugmm {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// An input file is wrong: names the file, the record (may be empty) and what is wrong.
struct InputError : Error {
  InputError(const std::string& file, const std::string& record, const std::string& what);
};

[[noreturn]] void throw_error(const std::string& what, const char* file, int line);

}  // namespace cugmm

#define CUGMM_FAIL(msg) ::cugmm::throw_error((msg), __FILE__, __LINE__)
#define CUGMM_REQUIRE(cond, msg) \
  do { if (!(cond)) ::cugmm::throw_error(std::string(msg), __FILE__, __LINE__); } while (0)
