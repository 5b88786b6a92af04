// What tests share: scratch directories, running the program and RELION's tools, the Python oracle.
#pragma once
#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/error.h"

namespace cugmm::test {

// n values uniform in [-1, 1) from Philox (seed, stream): random inputs that are the same on every run.
std::vector<float> random_values(size_t n, uint64_t seed, uint64_t stream);
// max |a - b| / max |b|: for sums, whose rounding scales with the largest values, not each one's own
// (infinity when the sizes differ).
double scaled_diff(const std::vector<float>& a, const std::vector<float>& b);

// A fresh, empty directory for one test under the build tree (removed and recreated each run). The test
// program removes the directories it made when every test in it passed (a suite run would otherwise leave
// gigabytes behind, and a full disk fails the next test); a failing program keeps them to look at, and
// CUGMM_KEEP_SCRATCH=1 keeps them always.
std::string scratch_dir(const std::string& name);

// What main() runs (tests/main.cpp, tests/gpu_main.cpp): the doctest run, then the scratch clean-up above.
int run_tests(int argc, char** argv);

struct RunResult {
  int status;       // exit status, or -1 when the command could not run
  std::string out;  // stdout and stderr together
};
// Runs a shell command in `dir` (when not empty).
RunResult run(const std::string& cmd, const std::string& dir = "");

// The `cugmm` program built with the tests.
std::string cugmm_exe();

// Debian's python3, whose python3-mrcfile, numpy and gemmi are the oracles (not a pyenv one).
constexpr const char* kPython = "/usr/bin/python3";

// Whether an oracle program (relion_project, /usr/bin/python3 with mrcfile, ...) can be used. Where it is
// missing the calling test fails (CI installs every oracle), except with CUGMM_ALLOW_MISSING_ORACLES=1
// (GPU machines without Debian's packages): then it prints that the check is skipped and returns false.
// Use as:  if (!test::oracle("relion_project")) return;
bool oracle(const std::string& program);

// Runs a script with Debian's python3 in `dir` (as script.py there); the test stops if it fails.
void python(const std::string& dir, const std::string& script);

// The message of the InputError `f` throws ("" when it throws none): tests assert on what it names.
template <class F>
std::string input_error(F&& f) {
  try {
    f();
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

inline bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// A raw file of float32 values (what numpy's tofile() writes): oracle data from the Python scripts.
std::vector<float> read_f32(const std::string& path);

void write_text(const std::string& path, const std::string& text);
std::string read_text(const std::string& path);

}  // namespace cugmm::test
