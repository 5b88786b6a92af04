// STAR reading and writing as RELION does it: one table (loop) or one set of key-value pairs per data
// block, one row per line, a blank line ending a loop. Values are kept as text so nothing is lost.
#include "io/star.h"

#include <fstream>
#include <sstream>

#include "core/error.h"
#include "core/memory.h"
#include "io/atomic_file.h"
#include "io/input_file.h"
#include "io/text.h"

namespace cugmm::io {

int StarBlock::column(const std::string& label) const {
  for (size_t i = 0; i < columns.size(); ++i)
    if (columns[i] == label) return int(i);
  return -1;
}

int StarBlock::require_column(const std::string& label, const std::string& file) const {
  int c = column(label);
  if (c < 0) throw InputError(file, "data_" + name, "missing column _" + label);
  return c;
}

int StarBlock::add_column(const std::string& label) {
  int c = column(label);
  if (c >= 0) return c;
  columns.push_back(label);
  for (auto& r : rows) r.resize(columns.size());
  return int(columns.size()) - 1;
}

const StarBlock* StarFile::find(const std::string& name) const {
  for (const auto& b : blocks)
    if (b.name == name) return &b;
  return nullptr;
}

StarBlock* StarFile::find(const std::string& name) {
  for (auto& b : blocks)
    if (b.name == name) return &b;
  return nullptr;
}

namespace {

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

// Where the parser is inside the current data block.
enum class State { outside, loop_header, loop_rows, pairs };

}  // namespace

StarFile read_star(const std::string& path) {
  // One read, then lines as views: getline's copy per line was a third of the time on big files.
  std::string text;
  {
    // A directory or a device is named as such and never read; the whole text must fit in memory.
    require_host_memory(input_file_size(path), "reading " + path);
    std::ifstream in(path, std::ios::binary);
    if (!in) throw InputError(path, "", "cannot open STAR file");
    in.seekg(0, std::ios::end);
    std::streamoff n = in.tellg();
    in.seekg(0);
    if (n > 0) {
      text.resize(size_t(n));
      in.read(text.data(), n);
      if (in.gcount() != n) throw InputError(path, "", "read error");
    }
  }
  StarFile star;
  State state = State::outside;
  StarBlock* cur = nullptr;
  long lineno = 0;
  auto record = [&] { return "line " + std::to_string(lineno); };
  // A second loop_ (or key-value pairs after a loop) inside one data block becomes another block of the
  // same name, so nothing read is dropped.
  auto fresh_block = [&](bool is_loop) {
    if (!cur) throw InputError(path, record(), "data outside any data_ block");
    if (!cur->columns.empty()) {
      std::string name = cur->name;
      star.blocks.push_back(StarBlock{});
      cur = &star.blocks.back();
      cur->name = name;
    }
    cur->is_loop = is_loop;
  };
  for (size_t pos = 0; pos < text.size();) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string::npos) eol = text.size();
    std::string_view t = trim(std::string_view(text).substr(pos, eol - pos));
    pos = eol + 1;
    ++lineno;
    if (t.empty()) {
      // Blank lines between loop_ and the first row are layout; after rows they end the table.
      if (state == State::loop_rows) state = State::outside;
      continue;
    }
    if (t[0] == '#') {
      std::istringstream ss{std::string(t.substr(1))};
      std::string word;
      long v = 0;
      if (ss >> word && word == "version" && ss >> v) star.version = int(v);
      continue;
    }
    // "data_x" and "loop_" are single words; a row whose first value starts with "data_" is still a row.
    bool one_word = t.find_first_of(" \t") == std::string_view::npos;
    if (one_word && starts_with(t, "data_")) {
      star.blocks.push_back(StarBlock{});
      cur = &star.blocks.back();
      cur->name = std::string(t.substr(5));
      state = State::outside;
      continue;
    }
    if (one_word && t == "loop_") {
      fresh_block(true);
      state = State::loop_header;
      continue;
    }
    if (t[0] == '_') {
      auto f = split_fields(t);
      std::string label = f[0].substr(1);
      if (state == State::loop_header) {
        // "_rlnLabel #3": the number is informative; the order of the lines is what counts.
        if (cur->column(label) >= 0) throw InputError(path, record(), "column _" + label + " appears twice");
        cur->columns.push_back(label);
        continue;
      }
      if (state != State::pairs) {
        fresh_block(false);
        cur->rows.emplace_back();
        state = State::pairs;
      }
      if (f.size() != 2) throw InputError(path, record(), "expected '_label value', got '" + excerpt(t) + "'");
      if (cur->column(label) >= 0) throw InputError(path, record(), "key _" + label + " appears twice");
      cur->columns.push_back(label);
      cur->rows[0].push_back(f[1]);
      continue;
    }
    if (state == State::loop_header || state == State::loop_rows) {
      if (cur->columns.empty()) throw InputError(path, record(), "loop_ row before any _label line");
      auto f = split_fields(t);
      if (f.size() != cur->columns.size())
        throw InputError(path, record(),
                         "row has " + std::to_string(f.size()) + " fields, the table data_" + cur->name + " has " +
                             std::to_string(cur->columns.size()) + " columns");
      cur->rows.push_back(std::move(f));
      state = State::loop_rows;
      continue;
    }
    throw InputError(path, record(), "unexpected text outside a table: '" + excerpt(t) + "'");
  }
  return star;
}

namespace {

// A value that would otherwise split, vanish, or read as syntax is written in quotes.
bool needs_quotes(const std::string& v) {
  return v.empty() || v[0] == '_' || v[0] == '#' || v[0] == '\'' || v[0] == '"' || v == "loop_" ||
         v.rfind("data_", 0) == 0 || v.find_first_of(" \t\r\n") != std::string::npos;
}

size_t written_size(const std::string& v) { return v.size() + (needs_quotes(v) ? 2 : 0); }

void append_value(std::string& out, const std::string& v) {
  if (!needs_quotes(v)) {
    out += v;
    return;
  }
  char q = v.find('"') == std::string::npos ? '"' : '\'';
  out += q;
  out += v;
  out += q;
}

}  // namespace

std::string star_text(const StarFile& star) {
  std::string os;
  for (const auto& b : star.blocks) {
    os += "\n";
    if (star.version) os += "# version " + std::to_string(star.version) + "\n\n";
    os += "data_" + b.name + "\n\n";
    if (!b.is_loop) {
      size_t w = 0;
      for (const auto& c : b.columns) w = std::max(w, c.size());
      for (size_t i = 0; i < b.columns.size(); ++i) {
        std::string v = b.rows.empty() || i >= b.rows[0].size() ? "" : b.rows[0][i];
        os += "_" + b.columns[i] + std::string(w + 2 - b.columns[i].size(), ' ');
        append_value(os, v);
        os += "\n";
      }
      os += "\n";
      continue;
    }
    os += "loop_\n";
    for (size_t i = 0; i < b.columns.size(); ++i) os += "_" + b.columns[i] + " #" + std::to_string(i + 1) + "\n";
    // Pad each column to its widest value so the table stays readable.
    std::vector<size_t> width(b.columns.size(), 0);
    size_t line = 0;
    for (size_t r = 0; r < b.rows.size(); ++r) {
      if (b.rows[r].size() != b.columns.size())
        CUGMM_FAIL("STAR text: row " + std::to_string(r + 1) + " of data_" + b.name + " has " +
                   std::to_string(b.rows[r].size()) + " values for " + std::to_string(b.columns.size()) + " columns");
      for (size_t c = 0; c < b.columns.size(); ++c) width[c] = std::max(width[c], written_size(b.rows[r][c]));
    }
    for (size_t w : width) line += w + 2;
    os.reserve(os.size() + b.rows.size() * line + 2);
    for (const auto& row : b.rows) {
      for (size_t c = 0; c < row.size(); ++c) {
        append_value(os, row[c]);
        if (c + 1 < row.size()) os.append(width[c] + 2 - written_size(row[c]), ' ');
      }
      os += "\n";
    }
    os += "\n";
  }
  return os;
}

void write_star(const std::string& path, const StarFile& star) { write_file_atomic(path, star_text(star)); }

}  // namespace cugmm::io
