// What tests share: scratch directories, running the program and RELION's tools, the Python oracle.
#pragma once
#include <string>

namespace cugmm::test {

// A fresh, empty directory for one test under the build tree (removed and recreated each run).
std::string scratch_dir(const std::string& name);

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

void write_text(const std::string& path, const std::string& text);
std::string read_text(const std::string& path);

}  // namespace cugmm::test
