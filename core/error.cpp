#include "core/error.h"

#include <cstdio>
#include <filesystem>
#include <new>
#include <nlohmann/json.hpp>
#include <system_error>

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

Cancelled::Cancelled() : Error("stopped on request (cancelled)") {}

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

std::string user_message(std::exception_ptr e) {
  auto with = [](std::string m, const char* original) {
    if (g_debug) m += " [" + std::string(original) + "]";
    return m;
  };
  try {
    std::rethrow_exception(e);
  } catch (const Error& x) {
    return x.what();
  } catch (const std::bad_alloc& x) {
    return with("out of memory: the input or options ask for more memory than this machine has", x.what());
  } catch (const nlohmann::json::exception& x) {
    return with("a JSON file does not have the expected structure", x.what());
  } catch (const std::filesystem::filesystem_error& x) {
    std::string m = x.code().message();
    if (!x.path1().empty()) m = x.path1().string() + ": " + m;
    return with(m, x.what());
  } catch (const std::system_error& x) {
    return with("system error: " + x.code().message(), x.what());
  } catch (const std::out_of_range& x) {
    return with("a value in the input is out of range (internal check; run with --debug for details)", x.what());
  } catch (const std::invalid_argument& x) {
    return with("a value in the input could not be read as a number (run with --debug for details)", x.what());
  } catch (const std::length_error& x) {
    return with("a size in the input or options is too large", x.what());
  } catch (const std::exception& x) {
    return with("internal error (run with --debug for details)", x.what());
  } catch (...) {
    return "internal error (an unknown exception)";
  }
}

}  // namespace cugmm
