// STAR syntax: blocks, loops and how they end, key-value pairs, comments, quoting, errors that name the
// line, and a round trip through RELION's own relion_star_handler.
#include <doctest/doctest.h>

#include <filesystem>
#include <string>

#include "core/error.h"
#include "io/star.h"
#include "io/text.h"
#include "support.h"

using namespace cugmm;
using namespace cugmm::io;
namespace fs = std::filesystem;

namespace {

using test::input_error;
using test::contains;

}  // namespace

TEST_CASE("blocks, comments, quoting, key-value pairs and every way a loop ends") {
  std::string dir = test::scratch_dir("io_star_syntax");
  std::string path = dir + "/a.star";
  test::write_text(path,
                   "# a comment before anything\n"
                   "\n"
                   "# version 30001\n"
                   "\n"
                   "data_general\n"
                   "\n"
                   "_rlnFinalResolution   3.5\n"
                   "_rlnModelName 'my model'\n"
                   "\n"
                   "data_optics\n"
                   "loop_ \n"
                   "_rlnOpticsGroupName #1 \n"
                   "\n"
                   "_rlnOpticsGroup #2\n"
                   "# a comment inside the loop\n"
                   "opticsGroup1 1\n"
                   "'group two' 2\n"
                   " \n"
                   "data_particles\n"
                   "loop_\n"
                   "_rlnImageName\n"
                   "_rlnMicrographName\n"
                   "1@a.mrcs \"mic one.mrc\"\n"
                   "2@a.mrcs mic'2.mrc\n"
                   "loop_\n"  // a second table in the same block: the first one ends here
                   "_rlnX\n"
                   "7\n"
                   "data_tail\n"  // a new data_ ends a loop without a blank line
                   "loop_\n"
                   "_rlnY #1\n"
                   "_rlnZ #2\n"
                   "8 9\n"
                   "10 11");  // and so does the end of the file, without a newline
  StarFile s = read_star(path);
  CHECK(s.version == 30001);
  REQUIRE(s.blocks.size() == 5);

  const StarBlock* gen = s.find("general");
  REQUIRE(gen);
  CHECK_FALSE(gen->is_loop);
  CHECK(gen->columns == std::vector<std::string>{"rlnFinalResolution", "rlnModelName"});
  REQUIRE(gen->rows.size() == 1);
  CHECK(gen->rows[0] == std::vector<std::string>{"3.5", "my model"});
  const StarBlock* optics = s.find("optics");
  REQUIRE(optics);
  CHECK(optics->is_loop);
  CHECK(optics->columns == std::vector<std::string>{"rlnOpticsGroupName", "rlnOpticsGroup"});
  REQUIRE(optics->rows.size() == 2);
  CHECK(optics->rows[1] == std::vector<std::string>{"group two", "2"});

  const StarBlock* parts = s.find("particles");
  REQUIRE(parts);
  REQUIRE(parts->rows.size() == 2);
  CHECK(parts->rows[0][1] == "mic one.mrc");
  CHECK(parts->rows[1][1] == "mic'2.mrc");  // a quote inside a word is part of it
  CHECK(parts->column("rlnMicrographName") == 1);
  CHECK(parts->column("rlnX") == -1);

  // The second loop_ of data_particles is kept as its own block of the same name.
  CHECK(s.blocks[3].name == "particles");
  CHECK(s.blocks[3].columns == std::vector<std::string>{"rlnX"});
  CHECK(s.blocks[3].rows == std::vector<std::vector<std::string>>{{"7"}});

  const StarBlock* tail = s.find("tail");
  REQUIRE(tail);
  CHECK(tail->rows == std::vector<std::vector<std::string>>{{"8", "9"}, {"10", "11"}});
}

TEST_CASE("format_fixed writes every double whole, however large") {
  CHECK(io::format_fixed(1.5) == "1.500000");
  CHECK(std::stod(io::format_fixed(-2e60)) == -2e60);  // 61 digits: the old buffer cut these short
  const std::string big = io::format_fixed(1e300);  // 301 digits, a point and 6 decimals: past the 64-byte buffer
  CHECK(big.size() == 308);
  CHECK(big.substr(big.size() - 7) == ".000000");
  CHECK(std::stod(big) == 1e300);
}

TEST_CASE("StarBlock column helpers") {
  StarBlock b;
  b.name = "particles";
  b.columns = {"rlnA"};
  b.rows = {{"1"}, {"2"}};
  CHECK(b.add_column("rlnA") == 0);
  CHECK(b.add_column("rlnB") == 1);
  CHECK(b.rows[1].size() == 2);
  CHECK(b.require_column("rlnB", "f.star") == 1);
  std::string e = input_error([&] { b.require_column("rlnImageName", "f.star"); });
  CHECK(contains(e, "f.star"));
  CHECK(contains(e, "data_particles"));
  CHECK(contains(e, "rlnImageName"));
}

TEST_CASE("malformed STAR files fail naming the file and the line") {
  std::string dir = test::scratch_dir("io_star_errors");
  auto fails = [&](const std::string& text, const std::string& expect) {
    std::string path = dir + "/bad.star";
    test::write_text(path, text);
    std::string e = input_error([&] { read_star(path); });
    CAPTURE(text);
    CAPTURE(e);
    CHECK(contains(e, path));
    CHECK(contains(e, expect));
  };
  fails("data_\nloop_\n_rlnA\n_rlnB\n1 2\n3\n", "line 6");                       // too few fields
  fails("data_\nloop_\n_rlnA\n_rlnB\n1 2\n3 4 5\n", "3 fields");                  // too many
  fails("data_\nloop_\n_rlnA\n_rlnA\n", "appears twice");
  fails("data_\nloop_\n_rlnA\n1\n\n2\n", "line 6");                              // a row after the loop ended
  fails("_rlnA 1\n", "line 1");                                                    // no data_ block
  fails("data_\n_rlnA\n", "expected '_label value'");
  fails("data_\nloop_\n7\n", "before any _label");
  std::string e = input_error([&] { read_star(dir + "/absent.star"); });
  CHECK(contains(e, "absent.star"));
}

TEST_CASE("write_star then read_star gives back every value, quoting where needed") {
  std::string dir = test::scratch_dir("io_star_roundtrip");
  StarFile s;
  s.version = 50001;
  StarBlock kv;
  kv.name = "general";
  kv.is_loop = false;
  kv.columns = {"rlnA", "rlnB"};
  kv.rows = {{"1.25", "two words"}};
  StarBlock t;
  t.name = "particles";
  t.columns = {"rlnImageName", "rlnWeird", "rlnEmpty"};
  t.rows = {{"000001@s.mrcs", "_underscore", ""},
            {"000002@s.mrcs", "#hash", "x"},
            {"000003@s.mrcs", "say \"hi\"", "data_like"},
            {"000004@s.mrcs", "loop_", "'q"}};
  s.blocks = {kv, t};
  std::string path = dir + "/out.star";
  write_star(path, s);
  StarFile r = read_star(path);
  CHECK(r.version == 50001);
  REQUIRE(r.blocks.size() == 2);
  CHECK_FALSE(r.blocks[0].is_loop);
  CHECK(r.blocks[0].columns == kv.columns);
  CHECK(r.blocks[0].rows == kv.rows);
  CHECK(r.blocks[1].is_loop);
  CHECK(r.blocks[1].columns == t.columns);
  CHECK(r.blocks[1].rows == t.rows);

  // Atomic: only the final file is left, and a directory that does not exist is an error naming it.
  int files = 0;
  for (auto& e : fs::directory_iterator(dir)) files += e.is_regular_file();
  CHECK(files == 1);
  std::string e;
  try {
    write_star(dir + "/no/such/dir/x.star", s);
  } catch (const Error& err) {
    e = err.what();
  }
  CHECK(contains(e, "no/such/dir/x.star"));

  // A row whose width disagrees with its columns is a programming error, not a silently broken file.
  s.blocks[1].rows[0].pop_back();
  CHECK_THROWS_AS(write_star(dir + "/broken.star", s), Error);
  CHECK_FALSE(fs::exists(dir + "/broken.star"));
}

TEST_CASE("RELION reads and rewrites our STAR file, and we read its output back unchanged") {
  if (test::run("command -v relion_star_handler").status != 0) {
    MESSAGE("relion_star_handler not installed: skipping the RELION round trip");
    return;
  }
  std::string dir = test::scratch_dir("io_star_relion");
  StarFile s;
  s.version = 30001;
  StarBlock optics;
  optics.name = "optics";
  optics.columns = {"rlnOpticsGroupName", "rlnOpticsGroup", "rlnImagePixelSize", "rlnImageSize",
                    "rlnImageDimensionality", "rlnVoltage", "rlnSphericalAberration", "rlnAmplitudeContrast"};
  optics.rows = {{"opticsGroup1", "1", "1.5", "64", "2", "300", "2.7", "0.1"},
                 {"opticsGroup2", "2", "2.0", "48", "2", "200", "2.0", "0.07"}};
  StarBlock parts;
  parts.name = "particles";
  parts.columns = {"rlnImageName", "rlnAngleRot", "rlnAngleTilt", "rlnAnglePsi", "rlnOriginXAngst",
                   "rlnOriginYAngst", "rlnDefocusU", "rlnOpticsGroup", "cugmmUnknownLabel", "rlnMicrographName"};
  for (int i = 0; i < 5; ++i)
    parts.rows.push_back({"00000" + std::to_string(i + 1) + "@stack.mrcs", std::to_string(10.5 * i),
                          std::to_string(20.25 + i), std::to_string(-30 - i), "1.5", std::to_string(-2.25 * i),
                          std::to_string(10000 + 100 * i), std::to_string(1 + i % 2), "tag" + std::to_string(i),
                          "mic " + std::to_string(i) + ".mrc"});
  s.blocks = {optics, parts};
  write_star(dir + "/ours.star", s);
  auto r = test::run("relion_star_handler --i ours.star --o theirs.star --select rlnAngleRot --minval -1000 "
                     "--maxval 1000",
                     dir);
  INFO(r.out);
  REQUIRE(r.status == 0);
  StarFile t = read_star(dir + "/theirs.star");
  CHECK(t.version == 30001);
  for (const StarBlock& ours : s.blocks) {
    const StarBlock* theirs = t.find(ours.name);
    REQUIRE(theirs);
    REQUIRE(theirs->rows.size() == ours.rows.size());
    for (size_t c = 0; c < ours.columns.size(); ++c) {
      int tc = theirs->column(ours.columns[c]);
      CAPTURE(ours.columns[c]);
      REQUIRE(tc >= 0);
      for (size_t i = 0; i < ours.rows.size(); ++i) {
        const std::string& a = ours.rows[i][c];
        const std::string& b = theirs->rows[i][tc];
        // RELION reformats numbers ("1.5" -> "1.500000"); text must survive as is.
        char* end = nullptr;
        double va = std::strtod(a.c_str(), &end);
        if (*end == '\0')
          CHECK(std::stod(b) == doctest::Approx(va).epsilon(1e-6));
        else
          CHECK(b == a);
      }
    }
  }
}
