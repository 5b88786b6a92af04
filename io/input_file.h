// What every reader checks before it opens an input: that the path names a regular file (a directory,
// /dev/zero or a FIFO given as a stack or STAR file is "not a regular file", not "not found", and is
// never read until memory runs out), and its length, which bounds every size its header may claim.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>

namespace cugmm::io {

// The file's length in bytes; InputError naming `path` when it does not exist, cannot be examined, or is
// not a regular file (saying what it is instead).
size_t input_file_size(const std::string& path);

// Text from an input for an error message: non-printable bytes escaped (\x00), at most `max` characters
// kept and the rest counted, so a message never echoes binary or megabytes of input.
std::string excerpt(std::string_view text, size_t max = 64);

}  // namespace cugmm::io
