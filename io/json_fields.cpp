#include "io/json_fields.h"

#include "core/error.h"
#include "io/input_file.h"

namespace cugmm::io {

uint64_t json_count(const nlohmann::json& obj, const char* key, uint64_t max, const std::string& file,
                    const std::string& record) {
  const std::string field = record + (record.empty() ? "" : ", ") + "'" + key + "'";
  if (!obj.is_object() || !obj.contains(key)) throw InputError(file, field, "missing");
  const nlohmann::json& v = obj[key];
  // A whole number >= 0 as written (1e3 and 2.0 parse as floats): the parser's unsigned kind, or a signed one
  // >= 0 (what a value set in memory, not yet written and read back, holds).
  const bool whole = v.is_number_unsigned() || (v.is_number_integer() && v.get<int64_t>() >= 0);
  if (!whole || v.get<uint64_t>() > max)
    throw InputError(file, field, excerpt(v.dump()) + " is not an integer in [0, " + std::to_string(max) + "]");
  return v.get<uint64_t>();
}

}  // namespace cugmm::io
