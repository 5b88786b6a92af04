// RELION STAR files: data blocks holding either a loop (a table) or key-value pairs. Values stay text,
// so unknown columns survive a read/write round trip. CONTRACT: other layers code against this header.
#pragma once
#include <string>
#include <vector>

namespace cugmm::io {

struct StarBlock {
  std::string name;                                // "particles" for data_particles
  bool is_loop = true;
  std::vector<std::string> columns;                // without the leading underscore, e.g. "rlnImageName"
  std::vector<std::vector<std::string>> rows;      // loop rows; a key-value block has one row
  int column(const std::string& label) const;      // index or -1
  int require_column(const std::string& label, const std::string& file) const;  // InputError if absent
  int add_column(const std::string& label);        // appends (filling rows with "") or returns the existing
};

struct StarFile {
  std::vector<StarBlock> blocks;
  int version = 0;                                 // 30001 / 50001 from "# version", 0 when absent
  const StarBlock* find(const std::string& name) const;
  StarBlock* find(const std::string& name);
};

StarFile read_star(const std::string& path);
void write_star(const std::string& path, const StarFile& star);  // atomic (temporary name + rename)
// What write_star writes: each block, a loop's rows one per line, each block ended by a blank line.
std::string star_text(const StarFile& star);

}  // namespace cugmm::io
