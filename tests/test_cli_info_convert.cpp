// `cugmm info` and `cugmm convert` run as programs, checked against numpy / mrcfile / gemmi and against
// our own readers of what they write.
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "io/model.h"
#include "io/mrc.h"
#include "io/particles.h"
#include "kernels/geometry.h"
#include "support.h"

using namespace cugmm;
using namespace cugmm::io;
namespace fs = std::filesystem;

namespace {

using test::python;
using test::contains;

test::RunResult cugmm_run(const std::string& args, const std::string& dir) {
  return test::run("'" + test::cugmm_exe() + "' " + args, dir);
}

// The number after `key` in `text` (e.g. "min " -> -3).
double number_after(const std::string& text, const std::string& key) {
  size_t p = text.find(key);
  REQUIRE_MESSAGE(p != std::string::npos, "no '" << key << "' in: " << text);
  return std::strtod(text.c_str() + p + key.size(), nullptr);
}

}  // namespace

TEST_CASE("info on an MRC stack: dimensions, mode, pixel size and value statistics as numpy computes them") {
  std::string dir = test::scratch_dir("cli_info_image");
  python(dir, R"PY(
import numpy as np, mrcfile
rng = np.random.default_rng(3)
d = (rng.normal(100, 20, (4, 24, 20))).astype(np.int16)
with mrcfile.new('s.mrcs', overwrite=True) as m:
    m.set_data(d)
    m.set_image_stack()
    m.voxel_size = 1.75
d = d.astype(np.float64)
open('stats.txt', 'w').write('%.17g %.17g %.17g %.17g' % (d.min(), d.max(), d.mean(), d.std()))
)PY");
  auto r = cugmm_run("info s.mrcs", dir);
  INFO(r.out);
  REQUIRE(r.status == 0);
  CHECK(contains(r.out, "20 x 24 x 4"));
  CHECK(contains(r.out, "mode 1 (int16)"));
  CHECK(contains(r.out, "stack of 4 images"));
  CHECK(number_after(r.out, "pixel size: ") == doctest::Approx(1.75));
  std::istringstream st(test::read_text(dir + "/stats.txt"));
  double mn, mx, mean, sd;
  st >> mn >> mx >> mean >> sd;
  CHECK(number_after(r.out, "min ") == doctest::Approx(mn));
  CHECK(number_after(r.out, "max ") == doctest::Approx(mx));
  CHECK(number_after(r.out, "mean ") == doctest::Approx(mean).epsilon(1e-5));
  CHECK(number_after(r.out, "rms ") == doctest::Approx(sd).epsilon(1e-5));

  auto missing = cugmm_run("info nothing.mrc", dir);
  CHECK(missing.status != 0);
  CHECK(contains(missing.out, "nothing.mrc"));
}

TEST_CASE("info on STAR files: version, blocks, counts, per-group pixel and box sizes, columns") {
  std::string dir = test::scratch_dir("cli_info_star");
  std::vector<float> img(32 * 32 * 3, 1.0f);
  write_mrc(dir + "/a.mrcs", img.data(), 32, 32, 3, 1.5f, true);
  write_mrc(dir + "/b.mrcs", img.data(), 24, 24, 2, 2.25f, true);
  test::write_text(dir + "/p31.star",
                   "# version 30001\ndata_optics\nloop_\n_rlnOpticsGroupName\n_rlnOpticsGroup\n_rlnImagePixelSize\n"
                   "_rlnImageSize\n_rlnVoltage\n_rlnSphericalAberration\n_rlnAmplitudeContrast\n"
                   "g1 1 1.5 32 300 2.7 0.1\ng2 2 2.25 24 200 2.0 0.07\n\n"
                   "# version 30001\ndata_particles\nloop_\n_rlnImageName\n_rlnAngleRot\n_rlnAngleTilt\n"
                   "_rlnAnglePsi\n_rlnOpticsGroup\n_myExtra\n"
                   "1@a.mrcs 1 2 3 1 x\n2@a.mrcs 1 2 3 1 y\n1@b.mrcs 1 2 3 2 z\n");
  auto r = cugmm_run("info p31.star", dir);
  INFO(r.out);
  REQUIRE(r.status == 0);
  CHECK(contains(r.out, "version 30001"));
  CHECK(contains(r.out, "data_optics"));
  CHECK(contains(r.out, "particles: 3"));
  CHECK(contains(r.out, "optics groups: 2"));
  CHECK(contains(r.out, "poses: yes"));
  CHECK(contains(r.out, "'g1': 1.5000 Å/px, box 32 px"));
  CHECK(contains(r.out, "'g2': 2.2500 Å/px, box 24 px"));
  CHECK(contains(r.out, " myExtra"));
  CHECK(contains(r.out, "images: all found"));

  // A 3.0 file whose images are not here is still described, and says what it could not find.
  test::write_text(dir + "/p30.star", "data_\nloop_\n_rlnImageName\n_rlnPixelSize\n1@elsewhere.mrcs 1.1\n");
  r = cugmm_run("info p30.star", dir);
  INFO(r.out);
  REQUIRE(r.status == 0);
  CHECK(contains(r.out, "RELION 3.0"));
  CHECK(contains(r.out, "particles: 1"));
  CHECK(contains(r.out, "1.1000 Å/px, box unknown"));
  CHECK(contains(r.out, "poses: no"));
  CHECK(contains(r.out, "elsewhere.mrcs"));

  test::write_text(dir + "/bad.star", "data_\nloop_\n_rlnA\n_rlnB\n1\n");
  r = cugmm_run("info bad.star", dir);
  CHECK(r.status != 0);
  CHECK(contains(r.out, "bad.star, line 5"));
}

TEST_CASE("convert .cs -> STAR: the STAR file holds cryoSPARC's poses (as matrices) and Å origins") {
  std::string dir = test::scratch_dir("cli_convert_cs");
  python(dir, R"PY(
import numpy as np
rng = np.random.default_rng(11)
n = 5
dt = [('uid', '<u8'), ('blob/path', 'S32'), ('blob/idx', '<u4'), ('blob/shape', '<u4', (2,)), ('blob/psize_A', '<f4'),
      ('ctf/accel_kv', '<f4'), ('ctf/cs_mm', '<f4'), ('ctf/amp_contrast', '<f4'), ('ctf/df1_A', '<f4'),
      ('ctf/df2_A', '<f4'), ('ctf/df_angle_rad', '<f4'), ('ctf/phase_shift_rad', '<f4'),
      ('alignments3D/shift', '<f4', (2,)), ('alignments3D/pose', '<f4', (3,)), ('alignments3D/psize_A', '<f4')]
a = np.zeros(n, dtype=dt)
a['blob/path'] = b'>J3/extract/p.mrcs'
a['blob/idx'] = np.arange(n)
a['blob/shape'] = 64
a['blob/psize_A'] = 1.1
a['ctf/accel_kv'] = 300; a['ctf/cs_mm'] = 2.7; a['ctf/amp_contrast'] = 0.1
a['ctf/df1_A'] = 15000; a['ctf/df2_A'] = 14000; a['ctf/df_angle_rad'] = 0.5
a['alignments3D/shift'] = rng.uniform(-5, 5, (n, 2))
w = rng.normal(size=(n, 3)); w /= np.linalg.norm(w, axis=1)[:, None]; w *= rng.uniform(0.2, 3.0, (n, 1))
a['alignments3D/pose'] = w
a['alignments3D/psize_A'] = 1.1
with open('p.cs', 'wb') as f:
    np.save(f, a)
def rot(w):
    t = np.linalg.norm(w); k = w / t
    K = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(t) * K + (1 - np.cos(t)) * K @ K
with open('expected.txt', 'w') as f:
    for i in range(n):
        A = rot(a['alignments3D/pose'][i].astype(np.float64)).T
        o = a['alignments3D/shift'][i].astype(np.float64) * 1.1
        f.write(' '.join('%.12g' % v for v in list(A.ravel()) + list(o)) + '\n')
b = np.zeros(1, dtype=dt[:3])
b['blob/path'] = b'x.mrcs'
with open('nopose.cs', 'wb') as f:
    np.save(f, b)
)PY");
  auto r = cugmm_run("convert p.cs p.star", dir);
  INFO(r.out);
  REQUIRE(r.status == 0);
  ParticleReadOptions opt;
  opt.check_images = false;
  ParticleSet s = read_particles(dir + "/p.star", opt);
  CHECK(s.star.version == 30001);
  REQUIRE(s.particles.size() == 5);
  CHECK(s.optics.size() == 1);
  CHECK(s.optics[0].pixel_size == doctest::Approx(1.1));
  CHECK(s.optics[0].box_size == 64);
  std::ifstream f(dir + "/expected.txt");
  for (size_t i = 0; i < 5; ++i) {
    CAPTURE(i);
    double e[11];
    for (double& v : e) f >> v;
    const Particle& p = s.particles[i];
    CHECK(p.image_file == "J3/extract/p.mrcs");
    CHECK(p.index == long(i));
    Mat3<double> A = euler_to_matrix(p.rot, p.tilt, p.psi);
    for (int k = 0; k < 9; ++k) CHECK(A.m[k] == doctest::Approx(e[k]).scale(1).epsilon(2e-6));
    CHECK(p.origin_x == doctest::Approx(e[9]).epsilon(1e-5));
    CHECK(p.origin_y == doctest::Approx(e[10]).epsilon(1e-5));
    CHECK(p.ctf.defocus_u == 15000);
    CHECK(p.ctf.defocus_angle == doctest::Approx(rad2deg(0.5)).epsilon(1e-6));
  }

  r = cugmm_run("convert nopose.cs nopose.star", dir);
  CHECK(r.status != 0);
  CHECK(contains(r.out, "nopose.cs"));
  CHECK(contains(r.out, "alignments3D/pose"));
  CHECK_FALSE(fs::exists(dir + "/nopose.star"));
  r = cugmm_run("convert nopose.cs nopose.star --no-poses", dir);
  CHECK(r.status == 0);

  r = cugmm_run("info p.cs", dir);
  INFO(r.out);
  CHECK(r.status == 0);
  CHECK(contains(r.out, "5 record(s)"));
  CHECK(contains(r.out, "alignments3D/pose"));
  CHECK(contains(r.out, "poses: yes"));
}

TEST_CASE("convert STAR 3.0 -> 3.1: optics table, Å origins, unknown columns kept") {
  std::string dir = test::scratch_dir("cli_convert_star");
  std::vector<float> img(16 * 16 * 2, 1.0f);
  write_mrc(dir + "/s.mrcs", img.data(), 16, 16, 2, 0, true);
  test::write_text(dir + "/p30.star",
                   "data_\nloop_\n_rlnImageName\n_rlnAngleRot\n_rlnOriginX\n_rlnOriginY\n_rlnMagnification\n"
                   "_rlnDetectorPixelSize\n_rlnVoltage\n_rlnClassNumber\n"
                   "1@s.mrcs 10 2 -1 20000 5 200 3\n2@s.mrcs 20 0 0.5 20000 5 200 1\n");
  auto r = cugmm_run("convert p30.star p31.star", dir);
  INFO(r.out);
  REQUIRE(r.status == 0);
  StarFile t = read_star(dir + "/p31.star");
  CHECK(t.version == 30001);
  REQUIRE(t.find("optics"));
  const StarBlock* parts = t.find("particles");
  REQUIRE(parts);
  CHECK(parts->column("rlnClassNumber") >= 0);
  CHECK(parts->column("rlnVoltage") < 0);
  CHECK(parts->column("rlnOriginX") < 0);
  ParticleSet s = read_particles(dir + "/p31.star", "", false);
  CHECK(s.optics[0].pixel_size == doctest::Approx(2.5));
  CHECK(s.optics[0].box_size == 16);
  CHECK(s.optics[0].voltage == 200);
  CHECK(s.particles[0].origin_x == doctest::Approx(5.0));
  CHECK(s.particles[1].origin_y == doctest::Approx(1.25));

  // Images elsewhere: an error naming where it looked, unless --no-images.
  fs::rename(dir + "/s.mrcs", dir + "/gone.mrcs");
  r = cugmm_run("convert p30.star q.star", dir);
  CHECK(r.status != 0);
  CHECK(contains(r.out, "s.mrcs"));
  CHECK(contains(r.out, "row 1"));
  r = cugmm_run("convert p30.star q.star --no-images", dir);
  CHECK(r.status == 0);
}

TEST_CASE("convert images to float32 MRC that mrcfile validates: MRC and TIFF stacks, N@stack") {
  std::string dir = test::scratch_dir("cli_convert_image");
  python(dir, R"PY(
import numpy as np, mrcfile, tifffile
d = (np.arange(3 * 8 * 10) % 17 - 8).astype(np.int16).reshape(3, 8, 10)
with mrcfile.new('in.mrcs', overwrite=True) as m:
    m.set_data(d)
    m.set_image_stack()
    m.voxel_size = 2.0
tifffile.imwrite('in.tif', (np.arange(2 * 6 * 5) * 3 % 255).astype(np.uint8).reshape(2, 6, 5))
)PY");
  auto r = cugmm_run("convert in.mrcs out.mrcs", dir);
  INFO(r.out);
  REQUIRE(r.status == 0);
  r = cugmm_run("convert 2@in.mrcs one.mrc --angpix 3", dir);
  REQUIRE(r.status == 0);
  // TIFF has no pixel size: --angpix supplies it.
  r = cugmm_run("convert in.tif tif.mrcs --angpix 0.8", dir);
  REQUIRE(r.status == 0);
  python(dir, R"PY(
import numpy as np, mrcfile, tifffile
src = mrcfile.open('in.mrcs').data.astype(np.float32)
tif = tifffile.imread('in.tif').astype(np.float32)
for name, want, px in [('out.mrcs', src, 2.0), ('one.mrc', src[1:2], 3.0), ('tif.mrcs', tif, 0.8)]:
    assert mrcfile.validate(name), name
    with mrcfile.open(name) as m:
        assert m.data.dtype == np.float32, m.data.dtype
        assert np.array_equal(m.data.reshape(want.shape), want), name
        assert abs(float(m.voxel_size.x) - px) < 1e-6, (name, m.voxel_size)
)PY");
  r = cugmm_run("convert in.mrcs out.png", dir);
  CHECK(r.status != 0);
  CHECK(contains(r.out, "MRC"));

  r = cugmm_run("info in.tif", dir);
  INFO(r.out);
  REQUIRE(r.status == 0);
  CHECK(contains(r.out, "TIFF stack of 2 images, 5 x 6 x 2"));
  CHECK(number_after(r.out, "max ") == doctest::Approx(177));
}

TEST_CASE("convert models: native -> PDB -> mmCIF -> native, PDB needs --box and --angpix") {
  std::string dir = test::scratch_dir("cli_convert_model");
  GaussianModel m;
  m.box_size = 40;
  m.pixel_size = 1.5;
  m.resize(3);
  const float v[3][5] = {{1, 2, 3, 10, 2}, {-4.5f, 0.25f, 7, 5, 3}, {0, -8, -2.5f, 2.5f, 1.5f}};
  for (int j = 0; j < 3; ++j) {
    m.x[j] = v[j][0], m.y[j] = v[j][1], m.z[j] = v[j][2], m.amplitude[j] = v[j][3], m.width[j] = v[j][4];
  }
  write_model(dir + "/m.txt", m);
  auto r = cugmm_run("info m.txt", dir);
  INFO(r.out);
  REQUIRE(r.status == 0);
  CHECK(contains(r.out, "3 Gaussians"));
  CHECK(contains(r.out, "box 40 px"));
  CHECK(number_after(r.out, "amplitude (mass): min ") == doctest::Approx(2.5));
  CHECK(number_after(r.out, "total mass: ") == doctest::Approx(17.5));

  REQUIRE(cugmm_run("convert m.txt m.pdb", dir).status == 0);
  r = cugmm_run("convert m.pdb m.cif", dir);
  CHECK(r.status != 0);
  CHECK(contains(r.out, "--box"));
  CHECK(contains(r.out, "--angpix"));
  r = cugmm_run("convert m.pdb m.cif --box 40 --angpix 1.5", dir);
  INFO(r.out);
  REQUIRE(r.status == 0);
  REQUIRE(cugmm_run("convert m.cif back.txt --box 40 --angpix 1.5", dir).status == 0);
  GaussianModel b = read_model(dir + "/back.txt");
  REQUIRE(b.size() == 3);
  CHECK(b.box_size == 40);
  for (int j = 0; j < 3; ++j) {
    CHECK(b.x[j] == doctest::Approx(m.x[j]).epsilon(1e-3).scale(1));
    CHECK(b.z[j] == doctest::Approx(m.z[j]).epsilon(1e-3).scale(1));
    // Pseudo-atoms keep amplitude relative to the largest (occupancy), and width through B.
    CHECK(b.amplitude[j] / b.amplitude[0] == doctest::Approx(m.amplitude[j] / m.amplitude[0]).epsilon(1e-2));
    CHECK(b.width[j] == doctest::Approx(m.width[j]).epsilon(1e-2));
  }
  python(dir, "import gemmi\nst = gemmi.read_structure('m.cif')\nassert st[0].count_atom_sites() == 3\n");
}
