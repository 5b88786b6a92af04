// Reading atoms through gemmi (header-only, slow to compile: kept to this file and io/model_gemmi.cpp).
#include <gemmi/mmread.hpp>

#include <algorithm>
#include <sstream>

#include "core/error.h"
#include "io/input_file.h"
#include "io/atoms.h"

namespace cugmm::io {

AtomicModel read_atoms(const std::string& path) {
  require_pdb_record_names(path);  // before gemmi: see io/input_file.h
  gemmi::Structure st;
  try {
    st = gemmi::read_structure_file(path);
  } catch (const std::exception& e) {
    throw InputError(path, "", std::string("not a readable PDB/mmCIF file (") + e.what() + ")");
  }
  AtomicModel m;
  m.source = path;
  if (st.models.empty()) throw InputError(path, "", "no model in the file");
  for (const gemmi::Chain& ch : st.models[0].chains)
    for (const gemmi::Residue& res : ch.residues) {
      if (res.is_water()) continue;
      for (const gemmi::Atom& a : res.atoms) {
        const int z = a.element.atomic_number();
        if (z <= 0) continue;  // unknown element: no defensible weight
        m.atoms.push_back({float(a.pos.x), float(a.pos.y), float(a.pos.z), float(z) * float(a.occ), float(a.b_iso),
                           ch.name, int(res.seqid.num.value)});
      }
    }
  if (m.atoms.empty()) throw InputError(path, "", "no atoms (waters and unknown elements are skipped)");
  return m;
}

std::vector<char> select_atoms(const AtomicModel& m, const std::string& selection) {
  std::vector<char> sel(m.atoms.size(), 0);
  std::stringstream ss(selection);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item.empty()) continue;
    std::string chain = item;
    long first = -1000000000, last = 1000000000;
    if (auto colon = item.find(':'); colon != std::string::npos) {
      chain = item.substr(0, colon);
      const std::string range = item.substr(colon + 1);
      char* end = nullptr;
      first = std::strtol(range.c_str(), &end, 10);
      if (end == range.c_str() || *end != '-')
        throw InputError(m.source, "selection '" + item + "'", "expected CHAIN or CHAIN:FIRST-LAST");
      const char* second = end + 1;
      last = std::strtol(second, &end, 10);
      if (end == second || *end != '\0' || last < first)
        throw InputError(m.source, "selection '" + item + "'", "expected CHAIN or CHAIN:FIRST-LAST with FIRST <= LAST");
    }
    size_t n = 0;
    for (size_t i = 0; i < m.atoms.size(); ++i) {
      const Atom& a = m.atoms[i];
      if (a.chain == chain && a.residue >= first && a.residue <= last) { sel[i] = 1; ++n; }
    }
    if (!n) throw InputError(m.source, "selection '" + item + "'", "selects no atom");
  }
  return sel;
}

}  // namespace cugmm::io
