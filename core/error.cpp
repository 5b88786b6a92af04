#include "core/error.h"

namespace cugmm {

static std::string input_message(const std::string& file, const std::string& record, const std::string& what) {
  std::string m = file;
  if (!record.empty()) m += ", " + record;
  return m + ": " + what;
}

InputError::InputError(const std::string& file, const std::string& record, const std::string& what)
    : Error(input_message(file, record, what)) {}

void throw_error(const std::string& what, const char* file, int line) {
  throw Error(what + " (" + file + ":" + std::to_string(line) + ")");
}

}  // namespace cugmm
