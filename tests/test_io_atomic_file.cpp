// io/atomic_file.h: temporaries named so that a later writer of the same path recognises those of a
// killed run (kill -9 leaves them) and removes them, while those of a live writer are left alone.
#include <doctest/doctest.h>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "io/atomic_file.h"
#include "io/mrc.h"
#include "support.h"

using namespace cugmm;
namespace fs = std::filesystem;

namespace {

long dead_pid() {
  pid_t p = fork();
  if (p == 0) _exit(0);
  waitpid(p, nullptr, 0);
  return long(p);
}

size_t temps_in(const std::string& dir) {
  size_t n = 0;
  for (auto& e : fs::directory_iterator(dir)) n += e.path().filename().string().find(".cugmm-tmp-") != std::string::npos;
  return n;
}

}  // namespace

TEST_CASE("a temporary is named after its final file and its writer, and removed unless committed") {
  std::string dir = test::scratch_dir("atomic_name");
  {
    io::AtomicFile f(dir + "/half1.mrc");
    const std::string name = fs::path(f.temp_path()).filename().string();
    CHECK(name.rfind(".half1.mrc.cugmm-tmp-" + std::to_string(getpid()) + "-", 0) == 0);
    CHECK(io::temp_writer_pid(dir + "/half1.mrc", name) == long(getpid()));
    CHECK(io::temp_writer_pid(dir + "/half2.mrc", name) == -1);  // another file's temporary
    CHECK(fs::exists(f.temp_path()));
  }  // never committed
  CHECK(temps_in(dir) == 0);
  CHECK_FALSE(fs::exists(dir + "/half1.mrc"));
  CHECK(io::temp_writer_pid(dir + "/x", ".x.cugmm-tmp-12ab-0") == -1);
  CHECK(io::temp_writer_pid(dir + "/x", ".x.cugmm-tmp--5-0") == -1);
}

TEST_CASE("the next write of a path removes temporaries left by dead writers, keeps live ones (defect 8)") {
  std::string dir = test::scratch_dir("atomic_stale");
  const std::string target = dir + "/half1.mrc";
  const std::string dead = dir + "/.half1.mrc.cugmm-tmp-" + std::to_string(dead_pid()) + "-3";
  const std::string live = dir + "/.half1.mrc.cugmm-tmp-" + std::to_string(long(getppid())) + "-0";
  const std::string other = dir + "/.half2.mrc.cugmm-tmp-" + std::to_string(dead_pid()) + "-0";
  const std::string user = dir + "/half1.mrc.notes";  // not a temporary at all
  for (const auto& p : {dead, live, other, user}) test::write_text(p, "left behind");
  const float v[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  io::write_mrc(target, v, 2, 2, 2, 1.0f, false);  // half-maps are written this way
  CHECK(fs::exists(target));
  CHECK_FALSE(fs::exists(dead));
  CHECK(fs::exists(live));
  CHECK(fs::exists(other));  // only the temporaries of the path being written
  CHECK(fs::exists(user));
}

TEST_CASE("a file written atomically gets the permissions the umask gives new files") {
  std::string dir = test::scratch_dir("atomic_mode");
  const mode_t old = umask(027);
  io::write_file_atomic(dir + "/a.txt", "x");
  umask(old);
  CHECK((fs::status(dir + "/a.txt").permissions() & fs::perms::all) ==
        (fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read));
  CHECK(test::read_text(dir + "/a.txt") == "x");
}

TEST_CASE("a writer killed but not yet reaped (a zombie) counts as gone") {
  std::string dir = test::scratch_dir("atomic_zombie");
  pid_t child = fork();
  if (child == 0) _exit(0);
  // Not reaped until the end: the child stays a zombie. Wait until the kernel says so.
  for (int i = 0; i < 200; ++i) {
    std::ifstream st("/proc/" + std::to_string(child) + "/stat");
    std::string t;
    std::getline(st, t);
    if (t.find(") Z") != std::string::npos) break;
    usleep(10000);
  }
  const std::string zombie = dir + "/.m.mrc.cugmm-tmp-" + std::to_string(long(child)) + "-0";
  test::write_text(zombie, "killed mid-write");
  io::write_file_atomic(dir + "/m.mrc", "x");
  CHECK_FALSE(fs::exists(zombie));
  waitpid(child, nullptr, 0);
}
