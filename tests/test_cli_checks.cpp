// What the command line guarantees beyond single messages (issue 10): output directories made only once
// the inputs are good, one naming rule for outputs, outputs that reach an input through a symlink
// refused, `info` failing on what it cannot read, source locations only with --debug, convert --box.
// The one-line refusals are in the corpus (tests/malformed/cli.cases, run by test_malformed.cpp).
#include <doctest/doctest.h>

#include <filesystem>

#include "core/device.h"
#include "io/mrc.h"
#include "support.h"

namespace fs = std::filesystem;
using namespace cugmm;

namespace {

// A copy of the corpus's small data set (16 px, 8 particles) in a fresh directory.
std::string data_dir(const std::string& name) {
  std::string dir = test::scratch_dir(name);
  fs::copy(fs::path(CUGMM_SOURCE_DIR) / "tests" / "malformed" / "files", dir, fs::copy_options::recursive);
  return dir;
}

test::RunResult run_cugmm(const std::string& args, const std::string& dir) {
  return test::run("'" + test::cugmm_exe() + "' " + args, dir);
}

}  // namespace

TEST_CASE("reconstruct: a bad mask is refused before the back-projection, and no output directory is made") {
  std::string dir = data_dir("cli_mask_first");
  auto r = run_cugmm("reconstruct --particles p.star --out out --device cpu --mask zero_mask.mrc", dir);
  INFO(r.out);
  CHECK(r.status == 1);
  CHECK(test::contains(r.out, "zero everywhere"));
  CHECK_FALSE(test::contains(r.out, "back-projecting"));
  CHECK_FALSE(fs::exists(dir + "/out"));
  r = run_cugmm("reconstruct --particles p.star --out out --device cpu --mask-radius 20", dir);
  CHECK_MESSAGE(r.status == 0, r.out);
  CHECK(fs::exists(dir + "/out/fsc.json"));
}

TEST_CASE("score: --out is a directory holding scores.csv, scores.png and the cache; nothing beside the data") {
  std::string dir = data_dir("cli_score_out");
  auto r = run_cugmm("score --models m.txt --particles p.star --out d.v2/scores --device cpu", dir);
  INFO(r.out);
  REQUIRE(r.status == 0);
  for (const char* f : {"scores.csv", "scores.png", "p.cugmm-cache"}) CHECK_MESSAGE(fs::exists(dir + "/d.v2/scores/" + f), f);
  CHECK_FALSE(fs::exists(dir + "/d.v2/scores.png"));
  CHECK_FALSE(fs::exists(dir + "/p.cugmm-cache"));
  r = run_cugmm("score --models m.txt --particles p.star --out s2 --cache-dir caches --device cpu", dir);
  CHECK_MESSAGE(r.status == 0, r.out);
  CHECK(fs::exists(dir + "/caches/p.cugmm-cache"));
  CHECK_FALSE(fs::exists(dir + "/s2/p.cugmm-cache"));
}

TEST_CASE("an output that is a symlink or hard link to an input is refused, the input unchanged") {
  std::string dir = data_dir("cli_symlink");
  const std::string before = test::read_text(dir + "/p.mrcs");
  fs::create_symlink("p.mrcs", dir + "/link.mrcs");
  auto r = run_cugmm("project --model m.txt --particles p.star --out link.mrcs --device cpu", dir);
  CHECK(r.status == 1);
  CHECK_MESSAGE(test::contains(r.out, "would overwrite the input"), r.out);
  fs::create_hard_link(dir + "/p.mrcs", dir + "/hard.mrcs");
  r = run_cugmm("convert hard.mrcs p.mrcs", dir);
  CHECK(r.status == 1);
  CHECK_MESSAGE(test::contains(r.out, "would overwrite the input"), r.out);
  CHECK(test::read_text(dir + "/p.mrcs") == before);
}

TEST_CASE("info fails on a STAR file that is not a readable particle file") {
  std::string dir = test::scratch_dir("cli_info_fails");
  test::write_text(dir + "/t.star", "data_things\n\nloop_\n_rlnSomething #1\n1\n2\n");
  auto r = run_cugmm("info t.star", dir);
  INFO(r.out);
  CHECK(r.status == 1);
  CHECK(test::contains(r.out, "not a readable particle file"));
}

TEST_CASE("source locations appear in errors only with --debug") {
  std::string dir = data_dir("cli_debug");
  const std::string args = "reconstruct --particles p.star --out o --device cpu --subset-column rlnClassNumber "
                           "--subset-values ,";
  auto r = run_cugmm(args, dir);
  CHECK(r.status == 1);
  CHECK_MESSAGE(test::contains(r.out, "no values given"), r.out);
  CHECK_FALSE(test::contains(r.out, ".cpp:"));
  r = run_cugmm(args + " --debug", dir);
  CHECK_MESSAGE(test::contains(r.out, "cmd_reconstruct.cpp:"), r.out);
}

TEST_CASE("convert --box downsamples a stack by Fourier cropping and keeps it a stack") {
  std::string dir = data_dir("cli_convert_box");
  auto r = run_cugmm("convert p.mrcs small.mrcs --box 8", dir);
  REQUIRE_MESSAGE(r.status == 0, r.out);
  test::python(dir, R"PY(
import mrcfile, numpy as np
with mrcfile.open('small.mrcs', permissive=False) as s, mrcfile.open('p.mrcs') as p:
    assert s.header.ispg == 0, s.header.ispg
    assert s.data.shape == (8, 8, 8), s.data.shape
    assert abs(float(s.voxel_size.x) - 2 * float(p.voxel_size.x)) < 1e-4
    # The DC term is kept: each image's mean is unchanged (values stay densities per area).
    d = np.abs(s.data.mean(axis=(1, 2)) - p.data.mean(axis=(1, 2))).max()
    assert d < 1e-4 * (np.abs(p.data).max() + 1e-12), d
)PY");
}

TEST_CASE("no GPU: auto falls back quietly (a note with --debug), --device cuda is an error, info never asks") {
  if (cuda_available()) return;  // the fallback exists only where there is no GPU
  std::string dir = data_dir("cli_no_gpu");
  auto r = run_cugmm("project --model m.txt --particles p.star --out q.mrcs", dir);
  CHECK_MESSAGE(r.status == 0, r.out);
  CHECK_FALSE(test::contains(r.out, "no usable GPU"));
  r = run_cugmm("project --model m.txt --particles p.star --out q.mrcs --debug", dir);
  CHECK(test::contains(r.out, "no usable GPU"));
  r = run_cugmm("project --model m.txt --particles p.star --out q.mrcs --device cuda", dir);
  CHECK(r.status == 1);
  CHECK(test::contains(r.out, "--device cuda: no usable GPU"));
  r = run_cugmm("info m.txt --debug", dir);
  CHECK_FALSE(test::contains(r.out, "GPU"));
}
