// Parsing helpers for the text formats (STAR, model files): numbers that fail say which file and record.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace cugmm::io {

std::string_view trim(std::string_view s);
// Splits on runs of whitespace; honours '...' and "..." quoting as STAR files use it.
std::vector<std::string> split_fields(std::string_view line);
// Full-string conversions; throw InputError(file, record, ...) naming the bad text.
// A file's extension in lower case, with its dot (".mrcs"); "" when it has none.
std::string lower_extension(const std::string& path);
// A number as STAR files hold it: fixed point, 6 decimals.
std::string format_fixed(double v);
// One number through a printf format ("%.9g", "%.2f"), for text outputs and messages.
std::string format_number(const char* fmt, double v);

double parse_double(std::string_view s, const std::string& file, const std::string& record);
long parse_long(std::string_view s, const std::string& file, const std::string& record);

}  // namespace cugmm::io
