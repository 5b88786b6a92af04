// Errors are exceptions that say what failed and where, never exit(): the CLI prints them, a library
// user catches them. Messages are for users: they name the file, record and value; the source file:line
// of a CUGMM_FAIL / CUGMM_REQUIRE is added only with set_debug(true) (`--debug`), since it means nothing
// to a user and hides the message.
#pragma once
#include <exception>
#include <stdexcept>
#include <string>

#include "cugmm/error.h"  // Error, InputError, Cancelled: public, so library callers catch the same types

namespace cugmm {

[[noreturn]] void throw_error(const std::string& what, const char* file, int line);

// `--debug`: source locations in errors, notes that are otherwise silent (e.g. why no GPU is used).
void set_debug(bool on);
bool debug_enabled();

// A value from the user or a file as it may be quoted in a message: non-printable bytes escaped (\xNN),
// at most `max_chars` characters kept (the rest said as "... (N bytes)"), so binary or megabytes of
// input are never echoed.
std::string quote_value(const std::string& value, size_t max_chars = 64);

// What a user is told about any exception (the program's "error:" line, and what the library API
// rethrows as cugmm::Error): a cugmm::Error as it is; texts of the standard library and nlohmann::json
// ("stoll", "type_error.302") mapped to what happened, the original added only with set_debug(true).
std::string user_message(std::exception_ptr e);

}  // namespace cugmm

#define CUGMM_FAIL(msg) ::cugmm::throw_error((msg), __FILE__, __LINE__)
#define CUGMM_REQUIRE(cond, msg) \
  do { if (!(cond)) ::cugmm::throw_error(std::string(msg), __FILE__, __LINE__); } while (0)
