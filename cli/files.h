// What a command reads and writes, declared in one place and checked by one function before the first
// expensive step, so that for every command: an input is never overwritten (an output that resolves,
// after symlinks and hard links, to an input is refused), every input is a regular readable file, every
// output location is writable, and output directories are created only once all of that holds.
//
// The naming rule for outputs (README "Outputs"): --out is a directory for commands that write several
// files (simulate, score, reconstruct) and a file with the right extension for commands that write one
// (render, project, preprocess, convert). Files are written under a temporary name and renamed
// (io/atomic_file.h).
#pragma once
#include <string>
#include <vector>

namespace cugmm::cli {

struct FileSpec {
  std::vector<std::string> inputs;       // files read ("N@stack" references name the stack)
  std::vector<std::string> outputs;      // files written (inside output_dirs or not)
  std::vector<std::string> output_dirs;  // directories written into; created by check_files
};

// Throws cugmm::Error naming the file and what is wrong; then, with `create_dirs`, creates the output
// directories (commands that still have inputs to check, e.g. a mask or the stacks a STAR names, call it
// first without and create them once those are known to be good).
void check_files(const FileSpec& spec, bool create_dirs = true);

// Throws when one of `outputs` is one of `inputs` (after symlinks / hard links), naming both; for inputs
// known only once a particle file is read (the stacks it references).
void refuse_overwriting(const std::vector<std::string>& outputs, const std::vector<std::string>& inputs,
                        const std::string& what);

// The stacks a particle file names, as every place they may resolve to: the name as given (relative to
// the current directory or --root) and, for a relative name, beside the particle file (io/particles.h's
// fallback), so that an output is compared with the stack whichever one the reader would open.
std::vector<std::string> stack_candidates(const std::vector<std::string>& image_files, const std::string& particles,
                                          const std::string& root);

// Throws unless `path`'s extension is one of `exts` (lower case, with the dot), saying which option.
void require_extension(const std::string& option, const std::string& path, const std::vector<std::string>& exts);

// Throws when a directory output is given a name that looks like a file of the kinds cugmm writes
// (`--out x.png` for a command that writes a directory).
void require_directory_name(const std::string& option, const std::string& path);

}  // namespace cugmm::cli
