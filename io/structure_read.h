// Opening a coordinate file (PDB or mmCIF) through gemmi for the two readers that need one: atoms for the
// simulator (atoms.h) and pseudo-atoms (model.h). gemmi parses integers without an overflow check and
// some header records with shifts that are undefined for bytes above 0x7f; fuzzing reached both. Reading
// atoms needs only the coordinate records, so only those reach gemmi, after checks that turn what would
// be undefined behaviour into an InputError naming the record.
#pragma once
#include <string>

namespace gemmi { struct Structure; }

namespace cugmm::io {

// The file's structure, from its coordinate records only: PDB's ATOM, HETATM, MODEL, ENDMDL, TER and END
// lines; mmCIF's `_atom_site.` items of the first data block. InputError naming the file and the record
// for a PDB record name that is not printable ASCII, an mmCIF `_atom_site` value that starts with an
// integer too large for an int, an unrecognised format, or anything gemmi rejects.
gemmi::Structure read_coordinate_records(const std::string& path);

}  // namespace cugmm::io
