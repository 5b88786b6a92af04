#include "cli/files.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <system_error>

#include "core/error.h"
#include "io/input_file.h"
#include "io/text.h"

namespace fs = std::filesystem;

namespace cugmm::cli {

namespace {

// "12@stack.mrcs" names stack.mrcs.
std::string file_of(const std::string& ref) {
  size_t at = ref.find('@');
  if (at != std::string::npos && at > 0 && ref.find_first_not_of("0123456789") == at) return ref.substr(at + 1);
  return ref;
}

// Absolute, symlinks resolved as far as the path exists, the rest lexical: an output that does not exist
// yet resolves to its real parent directory plus its name.
fs::path resolved(const std::string& p) {
  std::error_code ec;
  fs::path r = fs::weakly_canonical(fs::absolute(p), ec);
  return ec ? fs::absolute(p).lexically_normal() : r;
}

bool same_file(const std::string& a, const std::string& b) {
  if (resolved(a) == resolved(b)) return true;
  struct stat sa, sb;  // hard links
  return ::stat(a.c_str(), &sa) == 0 && ::stat(b.c_str(), &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

void check_input(const std::string& ref) {
  const std::string path = file_of(ref);
  io::input_file_size(path);  // the readers' own check: exists, a regular file (says what it is otherwise)
  if (::access(path.c_str(), R_OK) != 0) throw InputError(path, "", "cannot be read (permission denied)");
}

// A file's directory must exist and be writable (only declared output directories are created); a
// directory is created under its nearest existing ancestor, which must be writable.
void check_writable_location(const std::string& out, bool is_dir) {
  const fs::path p = resolved(out);
  std::error_code ec;
  if (fs::exists(p, ec)) {
    bool dir = fs::is_directory(p, ec);
    if (is_dir && !dir) throw Error(out + ": exists and is not a directory (it is to be the output directory)");
    if (!is_dir && dir) throw Error(out + ": is a directory; the output is a file here");
    if (::access(p.c_str(), W_OK) != 0) throw Error(out + ": not writable (permission denied)");
    if (is_dir) return;
  }
  fs::path a = p.parent_path();
  if (!is_dir && !fs::is_directory(a, ec))
    throw Error(out + ": cannot be written: the directory " + a.string() + " does not exist");
  while (!a.empty() && !fs::exists(a, ec)) a = a.parent_path();
  if (a.empty() || !fs::is_directory(a, ec))
    throw Error(out + ": cannot be created (" + (a.empty() ? std::string("no existing parent") : a.string() + " is not a directory") + ")");
  if (::access(a.c_str(), W_OK | X_OK) != 0) throw Error(out + ": cannot be written (" + a.string() + " is not writable)");
}

}  // namespace

void refuse_overwriting(const std::vector<std::string>& outputs, const std::vector<std::string>& inputs,
                        const std::string& what) {
  for (const std::string& o : outputs)
    for (const std::string& i : inputs)
      if (same_file(o, file_of(i)))
        throw Error(o + ": this output would overwrite the input " + file_of(i) + (what.empty() ? "" : " (" + what + ")") +
                    "; choose another output");
}

std::vector<std::string> stack_candidates(const std::vector<std::string>& image_files, const std::string& particles,
                                          const std::string& root) {
  std::vector<std::string> out;
  std::string last;
  for (const std::string& f : image_files) {
    if (f == last) continue;
    last = f;
    out.push_back(f);
    if (fs::path(f).is_relative()) {
      out.push_back((fs::path(particles).parent_path() / f).string());
      if (!root.empty()) out.push_back((fs::path(root) / f).string());
    }
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

void check_files(const FileSpec& spec, bool create_dirs) {
  for (const std::string& i : spec.inputs) check_input(i);
  refuse_overwriting(spec.outputs, spec.inputs, "");
  for (const std::string& d : spec.output_dirs) {
    for (const std::string& i : spec.inputs)
      if (same_file(d, file_of(i))) throw Error(d + ": the output directory is the input " + i);
    check_writable_location(d, true);
  }
  for (const std::string& o : spec.outputs) {
    bool inside = std::any_of(spec.output_dirs.begin(), spec.output_dirs.end(), [&](const std::string& d) {
      return resolved(o).parent_path() == resolved(d);
    });
    // Inside a directory about to be created: that directory's check stands for it, unless o exists.
    if (!inside || fs::exists(o)) check_writable_location(o, false);
  }
  if (create_dirs)
    for (const std::string& d : spec.output_dirs) fs::create_directories(d);
}

void require_extension(const std::string& option, const std::string& path, const std::vector<std::string>& exts) {
  std::string e = io::lower_extension(path);
  if (std::find(exts.begin(), exts.end(), e) != exts.end()) return;
  std::string list;
  for (const std::string& x : exts) list += (list.empty() ? "" : ", ") + x;
  throw Error(option + " " + quote_value(path, 200) + ": the output file must end in " + list);
}

void require_directory_name(const std::string& option, const std::string& path) {
  static const std::vector<std::string> file_like = {".csv", ".png", ".svg", ".pdf", ".json", ".txt", ".mrc",
                                                     ".mrcs", ".map", ".star", ".cs", ".cugmm-cache"};
  std::string e = io::lower_extension(path);
  if (std::find(file_like.begin(), file_like.end(), e) != file_like.end())
    throw Error(option + " " + quote_value(path, 200) + ": is the output directory for this command (it writes " +
                "several files into it), not a " + e + " file");
}

}  // namespace cugmm::cli
