#include "core/error.h"

#include <cstdio>

namespace cugmm {

namespace {
bool g_debug = false;
}

static std::string input_message(const std::string& file, const std::string& record, const std::string& what) {
  std::string m = file;
  if (!record.empty()) m += ", " + record;
  return m + ": " + what;
}

InputError::InputError(const std::string& file, const std::string& record, const std::string& what)
    : Error(input_message(file, record, what)) {}

void set_debug(bool on) { g_debug = on; }
bool debug_enabled() { return g_debug; }

void throw_error(const std::string& what, const char* file, int line) {
  if (!g_debug) throw Error(what);
  throw Error(what + " (" + file + ":" + std::to_string(line) + ")");
}

std::string quote_value(const std::string& value, size_t max_chars) {
  std::string q;
  size_t shown = 0;
  for (unsigned char c : value) {
    if (shown == max_chars) {
      q += "... (" + std::to_string(value.size()) + " bytes)";
      break;
    }
    if (c >= 0x20 && c < 0x7f) {
      q += char(c);
    } else {  // control bytes and anything outside ASCII: binary input must not reach the terminal
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      q += hex;
    }
    ++shown;
  }
  return q;
}

}  // namespace cugmm
