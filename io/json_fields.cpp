#include "io/json_fields.h"

#include "core/error.h"
#include "io/input_file.h"

namespace cugmm::io {

uint64_t json_count(const nlohmann::json& obj, const char* key, uint64_t max, const std::string& file,
                    const std::string& record) {
  const std::string field = record + (record.empty() ? "" : ", ") + "'" + key + "'";
  if (!obj.is_object() || !obj.contains(key)) throw InputError(file, field, "missing");
  const nlohmann::json& v = obj[key];
  // Only the parser's unsigned kind is a whole number >= 0 as written: 1e3 and 2.0 parse as floats.
  if (!v.is_number_unsigned() || v.get<uint64_t>() > max)
    throw InputError(file, field, excerpt(v.dump()) + " is not an integer in [0, " + std::to_string(max) + "]");
  return v.get<uint64_t>();
}

}  // namespace cugmm::io
