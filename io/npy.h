// NumPy .npy files holding a (structured) array, as cryoSPARC's .cs files are: the magic, a version, a
// header length, a Python-literal dict {'descr': ..., 'fortran_order': ..., 'shape': ...}, then the
// records back to back. Only plain numeric, bool and fixed-length byte-string fields are readable.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

namespace cugmm::io {

struct NpyField {
  std::string name;           // "" for a plain (unstructured) array
  std::string type;           // as written, e.g. "<f4", "|S45"
  char kind = 'f';            // 'f' float, 'i' signed, 'u' unsigned, 'b' bool, 'S' bytes, 'V' padding/other
  bool big_endian = false;
  size_t elem_bytes = 0;      // bytes per element
  size_t elems = 1;           // product of the sub-array shape, e.g. 3 for ('pose', '<f4', (3,))
  std::vector<size_t> shape;  // the sub-array shape (empty for a scalar field)
  size_t offset = 0;          // byte offset within a record
  bool numeric() const { return kind == 'f' || kind == 'i' || kind == 'u' || kind == 'b'; }
};

struct NpyArray {
  std::string path;
  std::vector<NpyField> fields;
  std::vector<size_t> shape;  // the array shape; records = product
  size_t records = 0;
  size_t record_bytes = 0;
  std::vector<unsigned char> data;

  const NpyField* field(const std::string& name) const;  // nullptr when absent
  // Element `e` of a numeric field in record `r`, as double (InputError for non-numeric fields).
  double number(size_t r, const NpyField& f, size_t e = 0) const;
  // A byte-string field without its trailing NULs.
  std::string bytes(size_t r, const NpyField& f) const;
};

// Throws InputError naming the file for a bad magic, a malformed header, Fortran order, object (pickled)
// fields, nested records, or a data section shorter than the header says.
NpyArray read_npy(const std::string& path);

// The records `rows` (in that order) of `a` as a one-dimensional .npy file with the same fields (names,
// types, sub-array shapes), written atomically: a cryoSPARC .cs subset keeps every field, uid included.
void write_npy_records(const std::string& path, const NpyArray& a, const std::vector<size_t>& rows);

}  // namespace cugmm::io
