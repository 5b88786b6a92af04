#include "support.h"

#include <sys/wait.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <stdexcept>

#include "kernels/philox.h"

namespace fs = std::filesystem;

namespace cugmm::test {

std::vector<float> random_values(size_t n, uint64_t seed, uint64_t stream) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = 2 * philox_uniform(seed, stream, i) - 1;
  return v;
}

double scaled_diff(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return INFINITY;
  double d = 0, m = 1e-30;
  for (size_t i = 0; i < a.size(); ++i) {
    d = std::max(d, std::abs(double(a[i]) - b[i]));
    m = std::max(m, std::abs(double(b[i])));
  }
  return d / m;
}

namespace {
std::mutex scratch_mutex;
std::vector<fs::path> scratch_made;  // what this test program made, for run_tests to remove
}  // namespace

std::string scratch_dir(const std::string& name) {
  fs::path p = fs::path(CUGMM_BINARY_DIR) / "tests" / "scratch" / name;
  fs::remove_all(p);
  fs::create_directories(p);
  std::lock_guard<std::mutex> lock(scratch_mutex);
  scratch_made.push_back(p);
  return p.string();
}

int run_tests(int argc, char** argv) {
  doctest::Context ctx(argc, argv);
  const int status = ctx.run();
  const char* keep = std::getenv("CUGMM_KEEP_SCRATCH");
  if (status == 0 && !ctx.shouldExit() && !(keep && std::string(keep) == "1")) {
    std::lock_guard<std::mutex> lock(scratch_mutex);
    for (const fs::path& p : scratch_made) {
      std::error_code ec;  // best effort: a directory already gone is fine
      fs::remove_all(p, ec);
    }
  }
  return status;
}

RunResult run(const std::string& cmd, const std::string& dir) {
  std::string full = (dir.empty() ? "" : "cd '" + dir + "' && ") + "( " + cmd + " ) 2>&1";
  RunResult r{-1, ""};
  FILE* f = popen(full.c_str(), "r");
  if (!f) return r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), f)) > 0) r.out.append(buf.data(), n);
  int st = pclose(f);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

std::string cugmm_exe() {
  const char* e = std::getenv("CUGMM_EXE");
  if (e && *e) return e;
  return (fs::path(CUGMM_BINARY_DIR) / "cugmm").string();
}

bool oracle(const std::string& program) {
  bool present = run("command -v '" + program + "' >/dev/null").status == 0;
  if (present && program == kPython) present = run(program + " -c 'import mrcfile, numpy, gemmi'").status == 0;
  if (present) return true;
  const char* allow = std::getenv("CUGMM_ALLOW_MISSING_ORACLES");
  if (allow && std::string(allow) == "1") {
    std::printf("skipped: oracle %s is not installed here\n", program.c_str());
    return false;
  }
  throw std::runtime_error("oracle " + program + " is missing: run scripts/setup.sh");
}

void python(const std::string& dir, const std::string& script) {
  write_text(dir + "/script.py", script);
  auto r = run(std::string(kPython) + " script.py", dir);
  INFO(r.out);
  REQUIRE(r.status == 0);
}

std::vector<float> read_f32(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  REQUIRE(f);
  f.seekg(0, std::ios::end);
  std::vector<float> v(size_t(f.tellg()) / 4);
  f.seekg(0);
  f.read(reinterpret_cast<char*>(v.data()), std::streamsize(v.size() * 4));
  return v;
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream f(path);
  if (!f) throw std::runtime_error("cannot write " + path);
  f << text;
}

std::string read_text(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw std::runtime_error("cannot read " + path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace cugmm::test
