// Errors are exceptions that say what failed and where, never exit(): the CLI prints them, a library
// user catches them. Messages are for users: they name the file, record and value; the source file:line
// of a CUGMM_FAIL / CUGMM_REQUIRE is added only with set_debug(true) (`--debug`), since it means nothing
// to a user and hides the message.
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

// `--debug`: source locations in errors, notes that are otherwise silent (e.g. why no GPU is used).
void set_debug(bool on);
bool debug_enabled();

// A value from the user or a file as it may be quoted in a message: non-printable bytes escaped (\xNN),
// at most `max_chars` characters kept (the rest said as "... (N bytes)"), so binary or megabytes of
// input are never echoed.
std::string quote_value(const std::string& value, size_t max_chars = 64);

}  // namespace cugmm

#define CUGMM_FAIL(msg) ::cugmm::throw_error((msg), __FILE__, __LINE__)
#define CUGMM_REQUIRE(cond, msg) \
  do { if (!(cond)) ::cugmm::throw_error(std::string(msg), __FILE__, __LINE__); } while (0)
