#include "io/npy.h"

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include "core/error.h"
#include "core/memory.h"
#include "io/atomic_file.h"
#include "io/input_file.h"

namespace cugmm::io {

namespace {

// The subset of Python literals numpy writes in a header: dicts, lists, tuples, strings, integers,
// True/False/None.
struct PyValue {
  enum Kind { none, boolean, integer, string, list, dict } kind = none;  // tuples are lists
  bool b = false;
  long long i = 0;
  std::string s;
  std::vector<PyValue> items;                            // list / tuple
  std::vector<std::pair<std::string, PyValue>> entries;  // dict (string keys)
  const PyValue* get(const std::string& key) const {
    for (const auto& e : entries)
      if (e.first == key) return &e.second;
    return nullptr;
  }
};

class PyParser {
 public:
  PyParser(const std::string& text, const std::string& file) : t_(text), file_(file) {}

  PyValue parse_all() {
    PyValue v = value();
    skip();
    if (p_ != t_.size()) fail("unexpected text after the header dict");
    return v;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw InputError(file_, "npy header, character " + std::to_string(p_), what);
  }
  void skip() {
    while (p_ < t_.size() && (t_[p_] == ' ' || t_[p_] == '\t' || t_[p_] == '\n' || t_[p_] == '\r')) ++p_;
  }
  bool eat(char c) {
    skip();
    if (p_ < t_.size() && t_[p_] == c) { ++p_; return true; }
    return false;
  }
  PyValue value() {
    skip();
    if (p_ >= t_.size()) fail("header ends early");
    char c = t_[p_];
    if (c == '{') return sequence('}', true);
    if (c == '[') return sequence(']', false);
    if (c == '(') return sequence(')', false);
    if (c == '\'' || c == '"') return str();
    if (c == '-' || (c >= '0' && c <= '9')) return number();
    for (const char* w : {"True", "False", "None"}) {
      size_t n = std::strlen(w);
      if (t_.compare(p_, n, w) == 0) {
        p_ += n;
        PyValue v;
        if (w[0] != 'N') { v.kind = PyValue::boolean; v.b = w[0] == 'T'; }
        return v;
      }
    }
    fail(std::string("unexpected character '") + c + "'");
  }
  PyValue sequence(char close, bool is_dict) {
    ++p_;
    PyValue v;
    v.kind = is_dict ? PyValue::dict : PyValue::list;
    while (!eat(close)) {
      if (is_dict) {
        PyValue k = value();
        if (k.kind != PyValue::string) fail("dict key is not a string");
        if (!eat(':')) fail("expected ':'");
        v.entries.emplace_back(k.s, value());
      } else {
        v.items.push_back(value());
      }
      if (eat(close)) break;
      if (!eat(',')) fail(std::string("expected ',' or '") + close + "'");
    }
    return v;
  }
  PyValue str() {
    char q = t_[p_++];
    PyValue v;
    v.kind = PyValue::string;
    while (p_ < t_.size() && t_[p_] != q) {
      if (t_[p_] == '\\' && p_ + 1 < t_.size()) ++p_;
      v.s += t_[p_++];
    }
    if (p_ >= t_.size()) fail("unterminated string");
    ++p_;
    return v;
  }
  PyValue number() {
    size_t a = p_;
    if (t_[p_] == '-') ++p_;
    while (p_ < t_.size() && t_[p_] >= '0' && t_[p_] <= '9') ++p_;
    if (p_ < t_.size() && t_[p_] == 'L') ++p_;  // Python 2 longs in old headers
    std::string digits = t_.substr(a, p_ - a);
    if (!digits.empty() && digits.back() == 'L') digits.pop_back();
    if (digits.empty() || digits == "-") fail("bad number");
    PyValue v;
    v.kind = PyValue::integer;
    // strtoll, not stoll: a number beyond 64 bits (found by the npy fuzz target) is the file's fault, and
    // stoll's std::out_of_range would reach the user as a bare library text.
    errno = 0;
    v.i = std::strtoll(digits.c_str(), nullptr, 10);
    if (errno == ERANGE) {
      p_ = a;  // the message points at the number's start
      fail("the integer " + quote_value(digits, 24) + " does not fit in 64 bits");
    }
    return v;
  }
  const std::string& t_;
  const std::string& file_;
  size_t p_ = 0;
};

std::vector<size_t> shape_of(const PyValue& v, const std::string& file, const std::string& what) {
  if (v.kind != PyValue::list) throw InputError(file, "npy header", what + " is not a tuple");
  std::vector<size_t> s;
  for (const auto& d : v.items) {
    if (d.kind != PyValue::integer || d.i < 0) throw InputError(file, "npy header", what + " has a bad dimension");
    s.push_back(size_t(d.i));
  }
  return s;
}

NpyField make_field(const std::string& name, const std::string& type, const std::string& file) {
  NpyField f;
  f.name = name;
  f.type = type;
  auto bad = [&](const std::string& why) {
    return InputError(file, "npy header, field '" + excerpt(name) + "'", "type '" + excerpt(type) + "' " + why);
  };
  if (type.size() < 2) throw bad("is not a dtype");
  char order = type[0];
  size_t k = 1;
  if (order != '<' && order != '>' && order != '|' && order != '=') { order = '|'; k = 0; }
  f.big_endian = order == '>';
  f.kind = type[k];
  std::string count = type.substr(k + 1);
  if (f.kind == 'O') throw bad("holds Python objects (pickled), which cannot be read");
  if (f.kind == 'U') throw bad("is a unicode string; only byte strings ('S') are supported");
  if (std::string("fiubSaV").find(f.kind) == std::string::npos) throw bad("is not supported");
  if (f.kind == 'a') f.kind = 'S';
  char* end = nullptr;
  long n = std::strtol(count.c_str(), &end, 10);
  if (count.empty() || *end != '\0' || n <= 0) throw bad("has no valid size");
  f.elem_bytes = size_t(n);
  bool numeric_size = f.elem_bytes == 1 || f.elem_bytes == 2 || f.elem_bytes == 4 || f.elem_bytes == 8;
  if (f.kind == 'f' && f.elem_bytes != 4 && f.elem_bytes != 8) throw bad("is not float32 or float64");
  if ((f.kind == 'i' || f.kind == 'u') && !numeric_size) throw bad("has an unsupported size");
  if (f.kind == 'b' && f.elem_bytes != 1) throw bad("has an unsupported size");
  return f;
}

}  // namespace

const NpyField* NpyArray::field(const std::string& name) const {
  for (const auto& f : fields)
    if (f.name == name) return &f;
  return nullptr;
}

double NpyArray::number(size_t r, const NpyField& f, size_t e) const {
  if (!f.numeric()) throw InputError(path, "field '" + f.name + "'", "is not numeric (" + f.type + ")");
  if (r >= records || e >= f.elems) CUGMM_FAIL("npy index out of range");
  unsigned char b[8];
  std::memcpy(b, data.data() + r * record_bytes + f.offset + e * f.elem_bytes, f.elem_bytes);
  if (f.big_endian)
    for (size_t i = 0; i < f.elem_bytes / 2; ++i) std::swap(b[i], b[f.elem_bytes - 1 - i]);
  // The host is little-endian (x86-64 / aarch64), so the bytes now are the value.
  switch (f.kind) {
    case 'f': {
      if (f.elem_bytes == 4) { float v; std::memcpy(&v, b, 4); return v; }
      double v; std::memcpy(&v, b, 8); return v;
    }
    case 'b': return b[0] ? 1 : 0;
    case 'i':
      switch (f.elem_bytes) {
        case 1: { int8_t v; std::memcpy(&v, b, 1); return v; }
        case 2: { int16_t v; std::memcpy(&v, b, 2); return v; }
        case 4: { int32_t v; std::memcpy(&v, b, 4); return v; }
        default: { int64_t v; std::memcpy(&v, b, 8); return double(v); }
      }
    default:
      switch (f.elem_bytes) {
        case 1: return b[0];
        case 2: { uint16_t v; std::memcpy(&v, b, 2); return v; }
        case 4: { uint32_t v; std::memcpy(&v, b, 4); return v; }
        default: { uint64_t v; std::memcpy(&v, b, 8); return double(v); }
      }
  }
}

std::string NpyArray::bytes(size_t r, const NpyField& f) const {
  if (f.kind != 'S') throw InputError(path, "field '" + f.name + "'", "is not a byte string (" + f.type + ")");
  if (r >= records) CUGMM_FAIL("npy index out of range");
  const char* p = reinterpret_cast<const char*>(data.data() + r * record_bytes + f.offset);
  size_t n = f.elem_bytes * f.elems;
  while (n > 0 && p[n - 1] == '\0') --n;
  return std::string(p, n);
}

NpyArray read_npy(const std::string& path) {
  input_file_size(path);  // a directory or a device is named as such, and never read
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path, "", "cannot open");
  unsigned char pre[12] = {};
  in.read(reinterpret_cast<char*>(pre), 10);
  if (in.gcount() != 10 || std::memcmp(pre, "\x93NUMPY", 6) != 0)
    throw InputError(path, "npy magic", "not a NumPy .npy / cryoSPARC .cs file");
  int major = pre[6];
  size_t header_len;
  if (major == 1) {
    header_len = pre[8] | (size_t(pre[9]) << 8);
  } else if (major == 2 || major == 3) {
    in.read(reinterpret_cast<char*>(pre + 10), 2);
    if (in.gcount() != 2) throw InputError(path, "npy header", "file ends inside the header length");
    header_len = pre[8] | (size_t(pre[9]) << 8) | (size_t(pre[10]) << 16) | (size_t(pre[11]) << 24);
  } else {
    throw InputError(path, "npy header", "unsupported .npy version " + std::to_string(major));
  }
  if (header_len > (size_t(1) << 26)) throw InputError(path, "npy header", "implausible header length");
  std::string text(header_len, '\0');
  in.read(text.data(), std::streamsize(header_len));
  if (size_t(in.gcount()) != header_len) throw InputError(path, "npy header", "file ends inside the header");

  PyValue h = PyParser(text, path).parse_all();
  if (h.kind != PyValue::dict) throw InputError(path, "npy header", "is not a dict");
  const PyValue* descr = h.get("descr");
  const PyValue* fortran = h.get("fortran_order");
  const PyValue* shape = h.get("shape");
  if (!descr || !fortran || !shape) throw InputError(path, "npy header", "needs 'descr', 'fortran_order' and 'shape'");
  if (fortran->kind != PyValue::boolean) throw InputError(path, "npy header", "'fortran_order' is not True/False");

  NpyArray a;
  a.path = path;
  a.shape = shape_of(*shape, path, "'shape'");
  // Every size product is checked: a header whose sizes wrap around 2^64 would otherwise pass the length
  // check below with a tiny buffer and make number()/bytes() read outside it.
  auto too_large = [&](const std::string& what) {
    return InputError(path, "npy header", what + " is too large (its size overflows)");
  };
  a.records = 1;
  for (size_t d : a.shape)
    if (__builtin_mul_overflow(a.records, d, &a.records)) throw too_large("'shape'");
  // A structured array is 1-D in practice; Fortran order only matters for more than one dimension.
  if (fortran->b && a.shape.size() > 1) throw InputError(path, "npy header", "Fortran-ordered arrays are not supported");

  if (descr->kind == PyValue::string) {
    a.fields.push_back(make_field("", descr->s, path));
  } else if (descr->kind == PyValue::list) {
    for (const auto& d : descr->items) {
      if (d.kind != PyValue::list || d.items.size() < 2 || d.items.size() > 3 || d.items[0].kind != PyValue::string)
        throw InputError(path, "npy header", "'descr' entries must be (name, type[, shape])");
      if (d.items[1].kind != PyValue::string)
        throw InputError(path, "npy header, field '" + excerpt(d.items[0].s) + "'", "nested records are not supported");
      NpyField f = make_field(d.items[0].s, d.items[1].s, path);
      if (d.items.size() == 3) {
        f.shape = shape_of(d.items[2], path, "shape of field '" + f.name + "'");
        for (size_t s : f.shape)
          if (__builtin_mul_overflow(f.elems, s, &f.elems)) throw too_large("the shape of field '" + f.name + "'");
      }
      a.fields.push_back(f);
    }
  } else {
    throw InputError(path, "npy header", "'descr' is neither a type nor a list of fields");
  }
  for (auto& f : a.fields) {
    f.offset = a.record_bytes;
    size_t field_bytes;
    if (__builtin_mul_overflow(f.elem_bytes, f.elems, &field_bytes) ||
        __builtin_add_overflow(a.record_bytes, field_bytes, &a.record_bytes))
      throw too_large("field '" + f.name + "'");
  }

  size_t want;
  if (__builtin_mul_overflow(a.records, a.record_bytes, &want)) throw too_large("the data ('shape' x record size)");
  // Compared with what the file holds before allocating: a damaged header must not ask for terabytes.
  const std::streamoff here = in.tellg();
  in.seekg(0, std::ios::end);
  const std::streamoff end = in.tellg();
  in.seekg(here);
  const size_t held = here >= 0 && end >= here ? size_t(end - here) : 0;
  auto short_data = [&](size_t got) {
    return InputError(path, "npy data",
                      "holds " + std::to_string(got) + " bytes after the header; the header promises " +
                          std::to_string(a.records) + " records of " + std::to_string(a.record_bytes) + " bytes");
  };
  if (held < want) throw short_data(held);
  require_host_memory(want, "reading " + path);
  a.data.resize(want);
  in.read(reinterpret_cast<char*>(a.data.data()), std::streamsize(want));
  if (size_t(in.gcount()) != want) throw short_data(size_t(in.gcount()));
  return a;
}

void write_npy_records(const std::string& path, const NpyArray& a, const std::vector<size_t>& rows) {
  std::string descr;
  if (a.fields.size() == 1 && a.fields[0].name.empty()) {
    descr = "'" + a.fields[0].type + "'";
  } else {
    descr = "[";
    for (const NpyField& f : a.fields) {
      if (f.name.find('\'') != std::string::npos || f.name.find('\\') != std::string::npos)
        throw Error("write_npy_records: field name " + quote_value(f.name) + " needs quoting");
      descr += "('" + f.name + "', '" + f.type + "'";
      if (!f.shape.empty()) {
        descr += ", (";
        for (size_t s : f.shape) descr += std::to_string(s) + ",";
        descr += ")";
      }
      descr += "), ";
    }
    descr += "]";
  }
  std::string header = "{'descr': " + descr + ", 'fortran_order': False, 'shape': (" + std::to_string(rows.size()) + ",), }";
  // Version 1.0 holds a header of up to 65535 bytes, 2.0 beyond; the data starts on a 64-byte boundary.
  const bool v2 = header.size() + 1 + 10 > 65535;
  const size_t pre = v2 ? 12 : 10;
  header.append((64 - (pre + header.size() + 1) % 64) % 64, ' ');
  header += '\n';
  std::string out = std::string("\x93NUMPY", 6) + char(v2 ? 2 : 1) + char(0);
  const size_t len = header.size();
  for (size_t b = 0; b < (v2 ? 4u : 2u); ++b) out += char((len >> (8 * b)) & 0xff);
  out += header;
  out.reserve(out.size() + rows.size() * a.record_bytes);
  for (size_t r : rows) {
    CUGMM_REQUIRE(r < a.records, "write_npy_records: record " + std::to_string(r) + " of " + std::to_string(a.records));
    out.append(reinterpret_cast<const char*>(a.data.data()) + r * a.record_bytes, a.record_bytes);
  }
  write_file_atomic(path, out);
}

}  // namespace cugmm::io
