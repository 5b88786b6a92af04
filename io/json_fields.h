// Fields of the JSON headers that cugmm's own binary files carry (checkpoints, particle caches), read
// without undefined behaviour: nlohmann's get<size_t>() of 1e30 or -1.5 is a float-to-integer conversion
// out of range (undefined; found by fuzzing the checkpoint reader) and of -1 a silent wrap to 2^64 - 1.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace cugmm::io {

// obj[key] as an integer in [0, max], written as one (no fraction, no exponent, no sign). InputError naming
// `file`, `record` and the key when it is missing, of another type, negative, fractional or above max.
uint64_t json_count(const nlohmann::json& obj, const char* key, uint64_t max, const std::string& file,
                    const std::string& record);

}  // namespace cugmm::io
