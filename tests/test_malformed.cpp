// The malformed-input corpus (tests/malformed/README.md): every case of every tests/malformed/*.cases
// file is run as a command a user could type, and must end with its exit code and a message containing
// its substring; no case may print a C++ exception text or a source file:line, and no case may change
// the input files (each case runs on a fresh copy of tests/malformed/files).
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "support.h"

namespace fs = std::filesystem;
using namespace cugmm;

namespace {

struct Case {
  std::string file, name, args, substring;
  int status = 0;
  int line = 0;
};

std::vector<Case> read_cases() {
  std::vector<Case> cases;
  fs::path dir = fs::path(CUGMM_SOURCE_DIR) / "tests" / "malformed";
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".cases") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  for (const fs::path& f : files) {
    std::ifstream in(f);
    std::string line;
    for (int ln = 1; std::getline(in, line); ++ln) {
      if (line.empty() || line[0] == '#') continue;
      std::vector<std::string> cols;
      std::stringstream ss(line);
      for (std::string c; std::getline(ss, c, '\t');) cols.push_back(c);
      REQUIRE_MESSAGE(cols.size() == 4, f.filename().string() << ":" << ln << ": expected 4 tab-separated columns");
      Case c{f.filename().string(), cols[0], cols[1], cols[3], std::stoi(cols[2]), ln};
      cases.push_back(c);
    }
  }
  return cases;
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t p = 0; (p = s.find(from, p)) != std::string::npos; p += to.size()) s.replace(p, from.size(), to);
  return s;
}

// Every regular file under `dir` with its content, to see that a case left its inputs alone.
std::map<std::string, std::string> snapshot(const fs::path& dir) {
  std::map<std::string, std::string> m;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) m[fs::relative(e.path(), dir).string()] = test::read_text(e.path().string());
  return m;
}

}  // namespace

TEST_CASE("every malformed-input case fails as its corpus line says, clearly, and destroys no input") {
  const std::vector<Case> cases = read_cases();
  REQUIRE(cases.size() >= 30);
  const fs::path data = fs::path(CUGMM_SOURCE_DIR) / "tests" / "malformed" / "files";
  // Texts of the C++ library and locations in our sources: never for a user's eyes.
  const std::regex leak(R"((std::|stoll|stoi|stod|_M_|basic_string|bad_alloc|type_error|out_of_range|)"
                        R"(invalid_argument|what\(\)|\.(cpp|cu|h|hpp):[0-9]+))");
  for (const Case& c : cases) {
    const std::string tmp = test::scratch_dir("malformed/" + c.name);
    fs::copy(data, fs::path(tmp) / "data", fs::copy_options::recursive);
    const auto before = snapshot(fs::path(tmp) / "data");
    std::string args = replace_all(replace_all(c.args, "{data}", tmp + "/data"), "{tmp}", tmp);
    test::RunResult r = test::run("'" + test::cugmm_exe() + "' " + args + " </dev/null", tmp);
    INFO(c.file << ":" << c.line << " " << c.name << ": cugmm " << args << "\n" << r.out);
    CHECK(r.status == c.status);
    CHECK(test::contains(r.out, c.substring));
    CHECK_FALSE(std::regex_search(r.out, leak));
    CHECK(r.out.size() < 4000);  // never megabytes of input echoed
    CHECK(snapshot(fs::path(tmp) / "data") == before);
  }
}
