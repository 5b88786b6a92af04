// Particles from STAR 3.0 and 3.1: optics groups (different pixel and box sizes), pixel sizes, origins in
// Å and pixels, every CTF field, path resolution, stack checks, subsets, and RELION's own conversion of
// 3.0 to 3.1 as the oracle for ours.
#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>

#include "core/error.h"
#include "io/mrc.h"
#include "io/particles.h"
#include "support.h"

using namespace cugmm;
using namespace cugmm::io;
namespace fs = std::filesystem;

namespace {

using test::input_error;
using test::contains;

void write_stack(const std::string& path, int n, int nz, float pixel) {
  std::vector<float> v(size_t(n) * n * nz);
  for (size_t i = 0; i < v.size(); ++i) v[i] = float(i % 7) - 3;
  write_mrc(path, v.data(), n, n, nz, pixel, true);
}

// Two optics groups with different pixel and box sizes; unknown columns and a phase-flipped group.
const char* kStar31 =
    "\n# version 30001\n\ndata_optics\n\nloop_\n"
    "_rlnOpticsGroupName #1\n_rlnOpticsGroup #2\n_rlnImagePixelSize #3\n_rlnImageSize #4\n"
    "_rlnImageDimensionality #5\n_rlnVoltage #6\n_rlnSphericalAberration #7\n_rlnAmplitudeContrast #8\n"
    "_rlnCtfDataArePhaseFlipped #9\n"
    "opticsGroup1 1 1.5 32 2 300 2.7 0.1 0\n"
    "fast 2 2.25 24 2 200 2.0 0.07 1\n"
    "\n# version 30001\n\ndata_particles\n\nloop_\n"
    "_rlnImageName #1\n_rlnAngleRot #2\n_rlnAngleTilt #3\n_rlnAnglePsi #4\n_rlnOriginXAngst #5\n"
    "_rlnOriginYAngst #6\n_rlnDefocusU #7\n_rlnDefocusV #8\n_rlnDefocusAngle #9\n_rlnPhaseShift #10\n"
    "_rlnCtfBfactor #11\n_rlnCtfScalefactor #12\n_rlnOpticsGroup #13\n_rlnRandomSubset #14\n_myLabel #15\n"
    "000001@a.mrcs 10 20 30 1.5 -2.25 10000 9000 45 0 0 1 1 1 x\n"
    "000003@a.mrcs 11 21 31 -3 0.75 11000 10500 -10 90 50 0.9 1 2 'y z'\n"
    "000002@b.mrcs 12 22 32 4.5 0 12000 12000 0 0 -20 1 2 1 w\n"
    "\n";

}  // namespace

TEST_CASE("STAR 3.1: optics groups with different pixel and box sizes, every CTF field, Å origins") {
  std::string dir = test::scratch_dir("io_particles_31");
  write_stack(dir + "/a.mrcs", 32, 3, 1.5f);
  write_stack(dir + "/b.mrcs", 24, 2, 2.25f);
  test::write_text(dir + "/p.star", kStar31);
  ParticleSet s = read_particles(dir + "/p.star");
  CHECK(s.source == dir + "/p.star");
  CHECK(s.has_ctf);
  REQUIRE(s.optics.size() == 2);
  CHECK(s.optics[0].number == 1);
  CHECK(s.optics[0].name == "opticsGroup1");
  CHECK(s.optics[0].pixel_size == 1.5);
  CHECK(s.optics[0].box_size == 32);
  CHECK_FALSE(s.optics[0].phase_flipped);
  CHECK(s.optics[1].name == "fast");
  CHECK(s.optics[1].pixel_size == 2.25);
  CHECK(s.optics[1].box_size == 24);
  CHECK(s.optics[1].voltage == 200);
  CHECK(s.optics[1].cs == 2.0);
  CHECK(s.optics[1].amp_contrast == 0.07);
  CHECK(s.optics[1].phase_flipped);

  REQUIRE(s.particles.size() == 3);
  const Particle& p0 = s.particles[0];
  CHECK(fs::equivalent(p0.image_file, dir + "/a.mrcs"));  // found beside the STAR file
  CHECK(p0.index == 0);
  CHECK(p0.rot == 10);
  CHECK(p0.tilt == 20);
  CHECK(p0.psi == 30);
  CHECK(p0.origin_x == 1.5);
  CHECK(p0.origin_y == -2.25);
  CHECK(p0.ctf.defocus_u == 10000);
  CHECK(p0.ctf.defocus_v == 9000);
  CHECK(p0.ctf.defocus_angle == 45);
  CHECK(p0.ctf.voltage == 300);
  CHECK(p0.ctf.cs == 2.7);
  CHECK(p0.ctf.amp_contrast == 0.1);
  CHECK(p0.optics == 0);
  CHECK(p0.random_subset == 1);
  const Particle& p1 = s.particles[1];
  CHECK(p1.index == 2);
  CHECK(p1.ctf.phase_shift == 90);
  CHECK(p1.ctf.bfactor == 50);
  CHECK(p1.ctf.scale == 0.9);
  CHECK(p1.random_subset == 2);
  const Particle& p2 = s.particles[2];
  CHECK(fs::equivalent(p2.image_file, dir + "/b.mrcs"));
  CHECK(p2.index == 1);
  CHECK(p2.optics == 1);
  CHECK(p2.ctf.voltage == 200);  // optics values copied into each particle's CTF
  CHECK(p2.ctf.cs == 2.0);
  CHECK(p2.ctf.amp_contrast == 0.07);
  CHECK(p2.ctf.bfactor == -20);
  CHECK(p2.origin_x == 4.5);
}

TEST_CASE("STAR 3.0: pixel size from detector/magnification, origins in pixels, RELION's 3.1 conversion agrees") {
  std::string dir = test::scratch_dir("io_particles_30");
  write_stack(dir + "/s.mrcs", 32, 4, 0);  // no pixel size in the stack: the STAR file must supply it
  test::write_text(dir + "/p30.star",
                   "data_\n\nloop_\n_rlnImageName #1\n_rlnAngleRot #2\n_rlnAngleTilt #3\n_rlnAnglePsi #4\n"
                   "_rlnOriginX #5\n_rlnOriginY #6\n_rlnDefocusU #7\n_rlnDefocusV #8\n_rlnDefocusAngle #9\n"
                   "_rlnVoltage #10\n_rlnSphericalAberration #11\n_rlnAmplitudeContrast #12\n"
                   "_rlnMagnification #13\n_rlnDetectorPixelSize #14\n_rlnRandomSubset #15\n_rlnClassNumber #16\n"
                   "000001@s.mrcs 10 20 30 1.5 -2.25 10000 9000 45 300 2.7 0.1 10000 1.5 1 3\n"
                   "000004@s.mrcs 11 21 31 -3 2 11000 9500 40 300 2.7 0.1 10000 1.5 2 1\n"
                   "000002@s.mrcs 12 22 32 0 1 12000 9600 35 300 2.7 0.1 10000 1.5 1 2\n");
  ParticleSet s = read_particles(dir + "/p30.star");
  REQUIRE(s.optics.size() == 1);
  CHECK(s.optics[0].pixel_size == doctest::Approx(1.5));  // 1e4 * 1.5 um / 10000
  CHECK(s.optics[0].box_size == 32);                      // from the stack
  REQUIRE(s.particles.size() == 3);
  CHECK(s.particles[0].origin_x == doctest::Approx(2.25));  // 1.5 px * 1.5 Å
  CHECK(s.particles[0].origin_y == doctest::Approx(-3.375));
  CHECK(s.particles[1].index == 3);
  CHECK(s.particles[1].origin_x == doctest::Approx(-4.5));
  CHECK(s.particles[2].random_subset == 1);

  // rlnPixelSize is the other 3.0 spelling.
  test::write_text(dir + "/px.star", "data_images\nloop_\n_rlnImageName\n_rlnPixelSize\n_rlnOriginX\n1@s.mrcs 2.0 3\n");
  ParticleSet px = read_particles(dir + "/px.star", "", false);
  CHECK(px.optics[0].pixel_size == 2.0);
  CHECK(px.particles[0].origin_x == 6.0);
  CHECK_FALSE(px.has_ctf);

  // Our 3.1 rewrite, read back, is the same set of particles.
  std::vector<size_t> all = {0, 1, 2};
  write_particle_subset(dir + "/ours31.star", s, all);
  ParticleSet o = read_particles(dir + "/ours31.star");
  CHECK(o.star.version == 30001);
  REQUIRE(o.star.find("optics"));
  CHECK(o.star.find("particles")->column("rlnClassNumber") >= 0);  // unknown-to-us columns survive
  CHECK(o.star.find("particles")->column("rlnOriginX") < 0);

  auto same = [](const ParticleSet& a, const ParticleSet& b) {
    REQUIRE(a.particles.size() == b.particles.size());
    CHECK(a.optics[0].pixel_size == doctest::Approx(b.optics[0].pixel_size));
    CHECK(a.optics[0].box_size == b.optics[0].box_size);
    for (size_t i = 0; i < a.particles.size(); ++i) {
      const Particle &p = a.particles[i], &q = b.particles[i];
      CHECK(fs::equivalent(p.image_file, q.image_file));
      CHECK(p.index == q.index);
      CHECK(p.rot == doctest::Approx(q.rot));
      CHECK(p.tilt == doctest::Approx(q.tilt));
      CHECK(p.psi == doctest::Approx(q.psi));
      CHECK(p.origin_x == doctest::Approx(q.origin_x));
      CHECK(p.origin_y == doctest::Approx(q.origin_y));
      CHECK(p.ctf.defocus_u == doctest::Approx(q.ctf.defocus_u));
      CHECK(p.ctf.defocus_v == doctest::Approx(q.ctf.defocus_v));
      CHECK(p.ctf.defocus_angle == doctest::Approx(q.ctf.defocus_angle));
      CHECK(p.ctf.voltage == doctest::Approx(q.ctf.voltage));
      CHECK(p.ctf.cs == doctest::Approx(q.ctf.cs));
      CHECK(p.ctf.amp_contrast == doctest::Approx(q.ctf.amp_contrast));
      CHECK(p.random_subset == q.random_subset);
    }
  };
  same(s, o);

  if (test::run("command -v relion_star_handler").status != 0) {
    MESSAGE("relion_star_handler not installed: skipping the RELION oracle");
    return;
  }
  auto r = test::run("relion_star_handler --i p30.star --o relion31.star --select rlnAngleRot --minval -1000 "
                     "--maxval 1000",
                     dir);
  INFO(r.out);
  REQUIRE(r.status == 0);
  ParticleSet rel = read_particles(dir + "/relion31.star");
  CHECK(rel.star.version == 30001);
  same(s, rel);

  // And RELION reads our conversion and keeps its values.
  r = test::run("relion_star_handler --i ours31.star --o relion_again.star --select rlnAngleRot --minval -1000 "
                "--maxval 1000",
                dir);
  REQUIRE(r.status == 0);
  same(s, read_particles(dir + "/relion_again.star"));
}

TEST_CASE("subsets of a 3.1 file keep the optics table and every column") {
  std::string dir = test::scratch_dir("io_particles_subset");
  write_stack(dir + "/a.mrcs", 32, 3, 1.5f);
  write_stack(dir + "/b.mrcs", 24, 2, 2.25f);
  test::write_text(dir + "/p.star", kStar31);
  ParticleSet s = read_particles(dir + "/p.star");
  write_particle_subset(dir + "/sub.star", s, {2, 0});
  StarFile sub = read_star(dir + "/sub.star");
  CHECK(sub.version == 30001);
  REQUIRE(sub.find("optics"));
  CHECK(sub.find("optics")->rows == s.star.find("optics")->rows);
  const StarBlock* parts = sub.find("particles");
  REQUIRE(parts);
  CHECK(parts->columns == s.star.find("particles")->columns);
  REQUIRE(parts->rows.size() == 2);
  CHECK(parts->rows[0] == s.star.find("particles")->rows[2]);
  CHECK(parts->rows[1] == s.star.find("particles")->rows[0]);
  ParticleSet back = read_particles(dir + "/sub.star");
  CHECK(back.particles[0].optics == 1);
  CHECK(back.particles[1].origin_y == -2.25);
  CHECK_THROWS_AS(write_particle_subset(dir + "/bad.star", s, {3}), Error);
}

TEST_CASE("image paths: the current directory, then --root, then the STAR file's directory") {
  std::string dir = test::scratch_dir("io_particles_paths");
  fs::create_directories(dir + "/project/Extract");
  fs::create_directories(dir + "/jobs");
  fs::create_directories(dir + "/cwd/Extract");
  write_stack(dir + "/project/Extract/s.mrcs", 16, 2, 1);
  test::write_text(dir + "/jobs/p.star", "data_\nloop_\n_rlnImageName\n2@Extract/s.mrcs\n");

  std::string e = input_error([&] { read_particles(dir + "/jobs/p.star", "", false); });
  CHECK(contains(e, "jobs/p.star"));
  CHECK(contains(e, "row 1"));
  CHECK(contains(e, "Extract/s.mrcs"));
  CHECK(contains(e, dir + "/jobs/Extract/s.mrcs"));  // names the places it looked
  CHECK(contains(e, "--root"));

  // Describing a file whose images are elsewhere: paths stay as written, no stack is opened, and a 3.0
  // file's 3.1 rewrite leaves out the unknown box size rather than writing 0.
  ParticleReadOptions blind;
  blind.require_poses = false;
  blind.check_images = false;
  ParticleSet b = read_particles(dir + "/jobs/p.star", blind);
  CHECK(b.particles[0].image_file == "Extract/s.mrcs");
  CHECK(b.particles[0].index == 1);
  CHECK(b.optics[0].box_size == 0);
  StarFile b31 = particle_subset_star(b, {0});
  REQUIRE(b31.find("optics"));
  CHECK(b31.find("optics")->column("rlnImageSize") < 0);

  ParticleSet s = read_particles(dir + "/jobs/p.star", dir + "/project", false);
  CHECK(fs::equivalent(s.particles[0].image_file, dir + "/project/Extract/s.mrcs"));
  StarFile s31 = particle_subset_star(s, {0});
  int c_box = s31.find("optics")->column("rlnImageSize");
  REQUIRE(c_box >= 0);
  CHECK(s31.find("optics")->rows[0][size_t(c_box)] == "16");
  CHECK(s.particles[0].index == 1);

  // A stack beside the STAR file is found when nothing earlier matches...
  fs::create_directories(dir + "/jobs/Extract");
  write_stack(dir + "/jobs/Extract/s.mrcs", 16, 2, 1);
  s = read_particles(dir + "/jobs/p.star", "", false);
  CHECK(fs::equivalent(s.particles[0].image_file, dir + "/jobs/Extract/s.mrcs"));
  // ...--root comes before it...
  s = read_particles(dir + "/jobs/p.star", dir + "/project", false);
  CHECK(fs::equivalent(s.particles[0].image_file, dir + "/project/Extract/s.mrcs"));
  // ...and the current directory before both (RELION runs from its project directory).
  write_stack(dir + "/cwd/Extract/s.mrcs", 16, 2, 1);
  std::string old = fs::current_path().string();
  fs::current_path(dir + "/cwd");
  ParticleSet c;
  std::string err;
  try {
    c = read_particles(dir + "/jobs/p.star", dir + "/project", false);
  } catch (const std::exception& ex) {
    err = ex.what();
  }
  fs::current_path(old);
  REQUIRE(err.empty());
  CHECK(fs::equivalent(c.particles[0].image_file, dir + "/cwd/Extract/s.mrcs"));
}

TEST_CASE("bad particle files fail naming the file, the row and the column") {
  std::string dir = test::scratch_dir("io_particles_errors");
  write_stack(dir + "/s.mrcs", 16, 2, 1);
  write_stack(dir + "/r.mrcs", 16, 1, 1);
  // Only the stack is square here; a non-square one is an error too.
  std::vector<float> rect(16 * 12, 1.0f);
  write_mrc(dir + "/rect.mrcs", rect.data(), 16, 12, 1, 1, true);
  auto fails = [&](const std::string& text, std::vector<std::string> expect, bool poses = true) {
    std::string path = dir + "/bad.star";
    test::write_text(path, text);
    std::string e = input_error([&] { read_particles(path, "", poses); });
    CAPTURE(text);
    CAPTURE(e);
    CHECK(contains(e, path));
    for (const auto& x : expect) CHECK(contains(e, x));
  };
  const std::string head = "data_\nloop_\n_rlnImageName\n_rlnAngleRot\n_rlnAngleTilt\n_rlnAnglePsi\n";
  fails("data_\nloop_\n_rlnAngleRot\n1\n", {"rlnImageName"});
  fails("data_\nloop_\n_rlnImageName\n_rlnAngleRot\n1@s.mrcs 2\n", {"rlnAngleTilt"});
  fails(head + "1@s.mrcs 1 2 3\n2@s.mrcs 1 2\n", {"line 8", "3 fields"});
  fails(head + "1@s.mrcs 1 2 3\n2@s.mrcs 1 abc 3\n", {"row 2", "rlnAngleTilt", "'abc'"});
  fails(head + "3@s.mrcs 1 2 3\n", {"row 1", "past the end", "2 images"});
  fails(head + "1@s.mrcs 1 2 nan\n", {"row 1", "rlnAnglePsi", "finite"});
  fails(head + "0@s.mrcs 1 2 3\n", {"row 1", "1 or more"});
  fails(head + "x@s.mrcs 1 2 3\n", {"row 1", "rlnImageName"});
  fails(head + "1@missing.mrcs 1 2 3\n", {"row 1", "missing.mrcs", dir + "/missing.mrcs"});
  fails(head + "1@s.mrcs 1 2 3\n1@rect.mrcs 1 2 3\n", {"row 2", "square"});
  fails("data_\nloop_\n_rlnImageName\n_rlnOriginX\n1@s.mrcs 2\n", {"row 1", "pixel size"}, false);
  fails("data_optics\nloop_\n_rlnOpticsGroup\n_rlnImageSize\n1 16\n\ndata_particles\nloop_\n_rlnImageName\n"
        "_rlnOpticsGroup\n1@s.mrcs 3\n",
        {"row 1", "optics group 3"}, false);
  fails("data_optics\nloop_\n_rlnOpticsGroup\n_rlnImageSize\n1 32\n\ndata_particles\nloop_\n_rlnImageName\n"
        "_rlnOpticsGroup\n1@s.mrcs 1\n",
        {"16 px", "32 px", "rlnImageSize"}, false);
  fails("data_optics\nloop_\n_rlnOpticsGroup\n1\n2\n\ndata_particles\nloop_\n_rlnImageName\n1@s.mrcs\n",
        {"rlnOpticsGroup"}, false);
  fails("data_\nloop_\n_rlnImageName\n_rlnAmplitudeContrast\n1@s.mrcs 1.5\n", {"row 1", "rlnAmplitudeContrast"},
        false);
  fails("data_\nloop_\n_rlnX\n1\n", {"no particle table"});

  // Without poses required, absent angles are zero; with them, present angles are accepted.
  test::write_text(dir + "/ok.star", "data_\nloop_\n_rlnImageName\n1@r.mrcs\n");
  ParticleSet s = read_particles(dir + "/ok.star", "", false);
  CHECK(s.particles[0].rot == 0);
  CHECK(s.optics[0].box_size == 16);
  CHECK(s.optics[0].pixel_size == 1);  // from the stack header when the STAR file has none
}

TEST_CASE("a directory or a device given as a stack or STAR file is 'not a regular file' (defect 11)") {
  std::string dir = test::scratch_dir("io_particles_not_regular");
  fs::create_directories(dir + "/d.mrcs");
  test::write_text(dir + "/p.star", "data_\nloop_\n_rlnImageName\n1@d.mrcs\n");
  std::string e = input_error([&] { read_particles(dir + "/p.star", "", false); });
  CAPTURE(e);
  CHECK(contains(e, "row 1"));
  CHECK(contains(e, "not a regular file (a directory)"));
  CHECK_FALSE(contains(e, "not found"));
  e = input_error([&] { read_particles("/dev/zero", "", false); });
  CHECK(contains(e, "/dev/zero: not a regular file (a character device)"));
  e = input_error([&] { read_particles(dir, "", false); });
  CHECK(contains(e, "not a regular file (a directory)"));
  test::write_text(dir + "/z.star", "data_\nloop_\n_rlnImageName\n1@/dev/zero\n");
  CHECK(contains(input_error([&] { read_particles(dir + "/z.star", "", false); }), "character device"));
}

TEST_CASE("a non-positive pixel size or an rlnRandomSubset outside {1, 2} names the record (defect 13)") {
  std::string dir = test::scratch_dir("io_particles_values");
  write_stack(dir + "/s.mrcs", 16, 2, 1.5f);
  auto error = [&](const std::string& text) {
    test::write_text(dir + "/bad.star", text);
    return input_error([&] { read_particles(dir + "/bad.star", "", false); });
  };
  const std::string optics = "data_optics\nloop_\n_rlnOpticsGroup\n_rlnImagePixelSize\n1 ";
  const std::string parts = "\n\ndata_particles\nloop_\n_rlnImageName\n_rlnOpticsGroup\n1@s.mrcs 1\n";
  for (const char* px : {"0", "-1.2"}) {
    std::string e = error(optics + px + parts);
    CAPTURE(e);
    CHECK(contains(e, "data_optics row 1, _rlnImagePixelSize"));
    CHECK(contains(e, "not positive"));
  }
  std::string e = error("data_\nloop_\n_rlnImageName\n_rlnDetectorPixelSize\n_rlnMagnification\n1@s.mrcs 0 10000\n");
  CHECK(contains(e, "row 1, _rlnDetectorPixelSize"));
  for (const char* subset : {"0", "3", "-1"}) {
    e = error(std::string("data_\nloop_\n_rlnImageName\n_rlnRandomSubset\n1@s.mrcs 1\n2@s.mrcs ") + subset + "\n");
    CAPTURE(e);
    CHECK(contains(e, "row 2, _rlnRandomSubset"));
    CHECK(contains(e, std::string(subset) + " is not 1 or 2"));
  }
  e = error("data_\nloop_\n_rlnImageName\n_rlnImageSize\n1@s.mrcs 4294967312\n");
  CHECK(contains(e, "4294967312 is not a box size"));
  // A value that cannot be shown whole is cut short, never echoed in full.
  e = error("data_\nloop_\n_rlnImageName\n_rlnAngleRot\n1@s.mrcs " + std::string(100000, 'x') + "\x01\n");
  CHECK(contains(e, "more bytes"));
  CHECK(e.size() < 400);
}
