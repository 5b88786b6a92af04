// Reading atoms through gemmi (header-only, slow to compile: kept to this file and io/model_gemmi.cpp).
#include <cstdint>  // Debian 12's gemmi headers use std::uint8_t without including it (an error under GCC 13)
#include <gemmi/mmread.hpp>

#include <algorithm>
#include <climits>
#include <fstream>
#include <sstream>
#include <string_view>

#include "core/error.h"
#include "io/input_file.h"
#include "io/atoms.h"
#include "io/structure_read.h"

namespace cugmm::io {

namespace {

// PDB records that carry coordinates. The others (DBREF2's ten-digit fields, HELIX, SHEET, ...) are
// never needed to read atoms, and leaving them out keeps them away from gemmi's unchecked integers.
bool is_coordinate_record(std::string_view line) {
  for (std::string_view name : {"ATOM  ", "HETATM", "MODEL ", "ENDMDL", "TER", "END"})
    if (line.substr(0, name.size()) == name) return true;
  return false;
}

std::string pdb_coordinate_lines(const std::string& path) {
  input_file_size(path);
  std::ifstream f(path, std::ios::binary);
  std::string line, kept;
  for (size_t n = 1; std::getline(f, line); ++n) {
    // gemmi turns every record name into an integer id by shifts undefined for bytes above 0x7f.
    for (size_t i = 0; i < std::min<size_t>(6, line.size()); ++i) {
      const unsigned char c = static_cast<unsigned char>(line[i]);
      if ((c < 0x20 && c != '\t' && c != '\r') || c > 0x7e)
        throw InputError(path, "line " + std::to_string(n),
                         "record name '" + excerpt(line.substr(0, 6)) + "' is not plain text: not a PDB file");
    }
    if (is_coordinate_record(line)) kept += line + '\n';
  }
  return kept;
}

// Whether `v` begins (after blanks and a sign) with digits whose value does not fit in an int: gemmi's
// string_to_int reads such a prefix with signed overflow (an 11-digit _atom_site.id, found by fuzzing).
bool leading_integer_overflows(const std::string& v) {
  size_t i = v.find_first_not_of(" \t");
  if (i == std::string::npos) return false;
  if (v[i] == '-' || v[i] == '+') ++i;
  long long n = 0;
  for (; i < v.size() && v[i] >= '0' && v[i] <= '9'; ++i)
    if ((n = n * 10 + (v[i] - '0')) > INT_MAX) return true;
  return false;
}

gemmi::Structure mmcif_atom_site(const std::string& path) {
  input_file_size(path);
  gemmi::cif::Document doc = gemmi::cif::read_file(path);
  if (doc.blocks.empty()) throw InputError(path, "", "no data block");
  doc.blocks.resize(1);  // gemmi builds the structure from the first block
  std::vector<gemmi::cif::Item> kept;
  for (gemmi::cif::Item& item : doc.blocks[0].items)
    if (item.has_prefix("_atom_site.")) kept.push_back(std::move(item));
  doc.blocks[0].items = std::move(kept);
  auto check = [&](const std::string& value, const std::string& tag, size_t row) {
    if (leading_integer_overflows(value))
      throw InputError(path, tag + (row ? " (row " + std::to_string(row) + ")" : ""),
                       "value '" + excerpt(value) + "' is a number too large for this field");
  };
  for (const gemmi::cif::Item& item : doc.blocks[0].items) {
    if (item.type == gemmi::cif::ItemType::Pair) check(item.pair[1], item.pair[0], 0);
    if (item.type != gemmi::cif::ItemType::Loop || item.loop.tags.empty()) continue;
    const size_t width = item.loop.tags.size();
    for (size_t k = 0; k < item.loop.values.size(); ++k)
      check(item.loop.values[k], item.loop.tags[k % width], k / width + 1);
  }
  return gemmi::make_structure(doc);
}

}  // namespace

gemmi::Structure read_coordinate_records(const std::string& path) {
  const gemmi::CoorFormat format = gemmi::coor_format_from_ext(path);
  try {
    if (format == gemmi::CoorFormat::Mmcif) return mmcif_atom_site(path);
    if (format == gemmi::CoorFormat::Pdb) return gemmi::read_pdb_string(pdb_coordinate_lines(path), path);
  } catch (const InputError&) {
    throw;
  } catch (const std::exception& e) {
    throw InputError(path, "", std::string("not a readable PDB/mmCIF file: ") + e.what());
  }
  input_file_size(path);  // a missing file says so before the extension is blamed
  throw InputError(path, "", "not a PDB (.pdb, .ent) or mmCIF (.cif, .mmcif) file name");
}

AtomicModel read_atoms(const std::string& path) {
  const gemmi::Structure st = read_coordinate_records(path);
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
