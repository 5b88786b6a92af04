// PDB and mmCIF pseudo-atoms through gemmi: the first byte picks the format, the rest is the file.
#include "io/model.h"
#include "fuzz_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string path = cugmm::fuzz::write_input(data + 1, size - 1, (data[0] & 1) ? ".cif" : ".pdb");
  cugmm::fuzz::expect_clean([&] { cugmm::io::read_pseudo_atoms(path, 64, 3.0); });
  return 0;
}
