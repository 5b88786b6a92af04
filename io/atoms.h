// Atomic models (PDB / mmCIF through gemmi) as the simulator needs them: positions, how strongly each atom
// scatters, its B-factor, and the chain and residue number that selections name. The ground truth of
// simulated data sets starts here, independently of the Gaussian model the engine fits.
#pragma once
#include <string>
#include <vector>

namespace cugmm::io {

struct Atom {
  float x, y, z;        // Å, the file's frame
  float electrons;      // atomic number (the weight of the atom's density: a simple, documented model)
  float b;              // B-factor, Å^2
  std::string chain;
  int residue;          // sequence number
};

struct AtomicModel {
  std::vector<Atom> atoms;
  std::string source;   // the file it came from (for messages)
};

// The first model of a PDB or mmCIF file; waters are skipped (they are not part of a particle's signal in
// a simulation), hydrogens kept. Throws InputError naming the file when it holds no atoms.
AtomicModel read_atoms(const std::string& path);

// Which atoms a selection names: comma-separated items "CHAIN" or "CHAIN:FIRST-LAST" (residue numbers,
// inclusive), e.g. "B" or "A:120-180,C". Throws InputError naming the item that selects nothing or does
// not parse.
std::vector<char> select_atoms(const AtomicModel& m, const std::string& selection);

}  // namespace cugmm::io
