// cryoSPARC .cs files written by numpy with cryoSPARC's field names: poses (compared as matrices against
// an independent Rodrigues formula in numpy), Å origins, CTF units, paths; the .npy reader's edge cases
// and its errors.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "io/cs.h"
#include "io/mrc.h"
#include "io/npy.h"
#include "io/particles.h"
#include "kernels/geometry.h"
#include "support.h"

using namespace cugmm;
using namespace cugmm::io;
namespace fs = std::filesystem;

namespace {

using test::python;
using test::input_error;
using test::contains;

// A refinement's particles as cryoSPARC writes them (a subset of the real fields, in the real layout),
// and what RELION would say about each: A = R(pose)^T, origin = shift * alignments3D/psize_A.
const char* kMakeCs = R"PY(
import numpy as np
rng = np.random.default_rng(7)
n = 6
dt = [('uid', '<u8'), ('blob/path', 'S40'), ('blob/idx', '<u4'), ('blob/shape', '<u4', (2,)),
      ('blob/psize_A', '<f4'), ('blob/sign', '<f4'), ('ctf/type', 'S1'), ('ctf/exp_group_id', '<u4'),
      ('ctf/accel_kv', '<f4'), ('ctf/cs_mm', '<f4'), ('ctf/amp_contrast', '<f4'), ('ctf/df1_A', '<f4'),
      ('ctf/df2_A', '<f4'), ('ctf/df_angle_rad', '<f4'), ('ctf/phase_shift_rad', '<f4'), ('ctf/scale', '<f4'),
      ('ctf/shift_A', '<f4', (2,)), ('ctf/tetra_A', '<f4', (4,)), ('ctf/bfactor', '<f4'),
      ('alignments3D/split', '<u4'), ('alignments3D/shift', '<f4', (2,)), ('alignments3D/pose', '<f4', (3,)),
      ('alignments3D/psize_A', '<f4'), ('alignments3D/error', '<f4'), ('alignments3D/class', '<u4'),
      ('location/micrograph_path', 'S40')]
a = np.zeros(n, dtype=dt)
a['uid'] = rng.integers(0, 2**63, n, dtype=np.uint64)
a['blob/path'] = [b'>J1/extract/s.mrcs'] * 4 + [b'J1/extract/t.mrcs'] * 2
a['blob/idx'] = [0, 1, 2, 4, 0, 1]
a['blob/shape'] = 32
a['blob/psize_A'] = 1.2
a['blob/sign'] = -1
a['ctf/type'] = b'i'
a['ctf/exp_group_id'] = [1, 1, 1, 1, 2, 2]
a['ctf/accel_kv'] = 300
a['ctf/cs_mm'] = 2.7
a['ctf/amp_contrast'] = 0.1
a['ctf/df1_A'] = rng.uniform(8000, 20000, n)
a['ctf/df2_A'] = a['ctf/df1_A'] - rng.uniform(0, 500, n)
a['ctf/df_angle_rad'] = rng.uniform(-np.pi, np.pi, n)
a['ctf/phase_shift_rad'] = [0, 0, 0, 0, np.pi / 2, 0.1]
a['ctf/scale'] = 1
a['ctf/bfactor'] = [0, 0, 10, 0, 0, -5]
a['alignments3D/split'] = [0, 1, 0, 1, 0, 1]
a['alignments3D/shift'] = rng.uniform(-4, 4, (n, 2))
poses = rng.normal(size=(n, 3))
poses /= np.linalg.norm(poses, axis=1)[:, None]
poses *= rng.uniform(0.1, 3.1, (n, 1))
poses[3] = [1e-6, -2e-6, 0.5e-6]          # almost the identity
poses[5] = np.array([0.3, -0.4, 0.866]) * (np.pi - 1e-3)  # almost a half turn
a['alignments3D/pose'] = poses
a['alignments3D/psize_A'] = 0.6
a['location/micrograph_path'] = b'>J0/imported/mic_001.mrc'
np.save('J2/particles.npy', a)
import os
os.rename('J2/particles.npy', 'J2/particles.cs')

def rodrigues(w):
    th = np.linalg.norm(w)
    k = w / th
    K = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(th) * K + (1 - np.cos(th)) * K @ K

with open('expected.txt', 'w') as f:
    for i in range(n):
        w = a['alignments3D/pose'][i].astype(np.float64)
        A = rodrigues(w).T
        o = a['alignments3D/shift'][i].astype(np.float64) * float(a['alignments3D/psize_A'][i])
        vals = list(A.ravel()) + list(o) + [a['ctf/df1_A'][i], a['ctf/df2_A'][i],
               np.degrees(a['ctf/df_angle_rad'][i]), np.degrees(a['ctf/phase_shift_rad'][i]), a['ctf/bfactor'][i]]
        f.write(' '.join('%.10g' % v for v in vals) + '\n')

# The same particles with no 3-D alignment (from 2-D classification, say).
b = np.zeros(2, dtype=[('uid', '<u8'), ('blob/path', 'S40'), ('blob/idx', '<u4'), ('blob/psize_A', '<f4')])
b['blob/path'] = b'J1/extract/s.mrcs'
b['blob/idx'] = [0, 1]
b['blob/psize_A'] = 1.2
with open('J2/nopose.cs', 'wb') as f:
    np.save(f, b)
)PY";

}  // namespace

TEST_CASE(".cs to particles: poses as matrices, Å origins, CTF in degrees, '>' paths, 0-based indices") {
  std::string dir = test::scratch_dir("io_cs_poses");
  fs::create_directories(dir + "/J1/extract");
  fs::create_directories(dir + "/J2");
  std::vector<float> img(32 * 32 * 5, 0.5f);
  write_mrc(dir + "/J1/extract/s.mrcs", img.data(), 32, 32, 5, 1.2f, true);
  write_mrc(dir + "/J1/extract/t.mrcs", img.data(), 32, 32, 2, 1.2f, true);
  python(dir, kMakeCs);

  std::vector<std::vector<double>> expected;
  {
    std::ifstream f(dir + "/expected.txt");
    std::string line;
    while (std::getline(f, line)) {
      std::istringstream ss(line);
      std::vector<double> v;
      double x;
      while (ss >> x) v.push_back(x);
      expected.push_back(v);
    }
  }
  REQUIRE(expected.size() == 6);

  // cryoSPARC paths are relative to its project directory: given as --root.
  ParticleSet s = read_particles(dir + "/J2/particles.cs", dir);
  REQUIRE(s.particles.size() == 6);
  CHECK(s.has_ctf);
  REQUIRE(s.optics.size() == 2);  // two exposure groups
  CHECK(s.optics[0].pixel_size == doctest::Approx(1.2));
  CHECK(s.optics[0].box_size == 32);
  CHECK(s.optics[0].voltage == doctest::Approx(300));
  CHECK(s.optics[0].cs == doctest::Approx(2.7));
  CHECK(s.optics[0].amp_contrast == doctest::Approx(0.1));
  const long idx[6] = {0, 1, 2, 4, 0, 1};
  for (size_t i = 0; i < 6; ++i) {
    CAPTURE(i);
    const Particle& p = s.particles[i];
    const auto& e = expected[i];
    CHECK(fs::equivalent(p.image_file, dir + (i < 4 ? "/J1/extract/s.mrcs" : "/J1/extract/t.mrcs")));
    CHECK(p.index == idx[i]);
    Mat3<double> A = euler_to_matrix(p.rot, p.tilt, p.psi);
    for (int k = 0; k < 9; ++k) CHECK(A.m[k] == doctest::Approx(e[k]).scale(1).epsilon(2e-6));
    CHECK(p.origin_x == doctest::Approx(e[9]).epsilon(1e-6));
    CHECK(p.origin_y == doctest::Approx(e[10]).epsilon(1e-6));
    CHECK(p.ctf.defocus_u == doctest::Approx(e[11]).epsilon(1e-7));
    CHECK(p.ctf.defocus_v == doctest::Approx(e[12]).epsilon(1e-7));
    CHECK(p.ctf.defocus_angle == doctest::Approx(e[13]).epsilon(1e-6));
    CHECK(p.ctf.phase_shift == doctest::Approx(e[14]).epsilon(1e-6));
    CHECK(p.ctf.bfactor == doctest::Approx(e[15]));
    CHECK(p.random_subset == 1 + int(i % 2));
    CHECK(p.optics == (i < 4 ? 0 : 1));
  }
  const StarBlock* parts = s.star.find("particles");
  REQUIRE(parts);
  int mic = parts->column("rlnMicrographName");
  REQUIRE(mic >= 0);
  CHECK(parts->rows[0][mic] == "J0/imported/mic_001.mrc");
  CHECK(parts->rows[3][parts->column("rlnImageName")] == "000005@J1/extract/s.mrcs");

  // The STAR document round-trips through RELION's own tools.
  write_particle_subset(dir + "/converted.star", s, {0, 1, 2, 3, 4, 5});
  if (test::run("command -v relion_star_handler").status == 0) {
    auto r = test::run("relion_star_handler --i converted.star --o relion.star --select rlnAngleRot --minval -1000 "
                       "--maxval 1000",
                       dir);
    INFO(r.out);
    CHECK(r.status == 0);
    ParticleSet rel = read_particles(dir + "/relion.star");
    REQUIRE(rel.particles.size() == 6);
    for (size_t i = 0; i < 6; ++i) {
      Mat3<double> A = euler_to_matrix(rel.particles[i].rot, rel.particles[i].tilt, rel.particles[i].psi);
      for (int k = 0; k < 9; ++k) CHECK(A.m[k] == doctest::Approx(expected[i][k]).scale(1).epsilon(2e-6));
      CHECK(rel.particles[i].origin_x == doctest::Approx(expected[i][9]).epsilon(1e-5));
    }
  }

  // Without poses: an error naming the file for commands that need them, fine for those that do not.
  std::string e = input_error([&] { read_particles(dir + "/J2/nopose.cs", dir); });
  CHECK(contains(e, "nopose.cs"));
  CHECK(contains(e, "alignments3D/pose"));
  ParticleSet np = read_particles(dir + "/J2/nopose.cs", dir, false);
  CHECK(np.particles.size() == 2);
  CHECK_FALSE(np.has_ctf);
  CHECK(np.particles[1].index == 1);

  // Without --root, the directory above the .cs file's (the cryoSPARC project) is tried too...
  ParticleSet up = read_particles(dir + "/J2/particles.cs");
  CHECK(fs::equivalent(up.particles[0].image_file, dir + "/J1/extract/s.mrcs"));
  // ...and a file found nowhere is an error that says where it looked.
  fs::rename(dir + "/J1/extract/t.mrcs", dir + "/J1/extract/gone.mrcs");
  e = input_error([&] { read_particles(dir + "/J2/particles.cs"); });
  CHECK(contains(e, "particles.cs"));
  CHECK(contains(e, "row 5"));
  CHECK(contains(e, dir + "/J2/J1/extract/t.mrcs"));
  CHECK(contains(e, dir + "/J1/extract/t.mrcs"));
}

TEST_CASE("read_npy: plain arrays, big-endian fields, sub-array shapes, version 2 headers") {
  std::string dir = test::scratch_dir("io_npy_forms");
  python(dir, R"PY(
import numpy as np
np.save('plain.npy', np.arange(6, dtype='<f8').reshape(2, 3))
a = np.zeros(3, dtype=[('i', '>i4'), ('u', '<u2'), ('f', '>f8'), ('b', '?'), ('s', 'S5'), ('m', '<i8', (2, 2))])
a['i'] = [-1, 2, -300000]
a['u'] = [1, 65535, 7]
a['f'] = [0.5, -1e300, 3]
a['b'] = [True, False, True]
a['s'] = [b'ab', b'abcde', b'']
a['m'] = np.arange(12).reshape(3, 2, 2) - 5
np.save('rec.npy', a)
np.lib.format.write_array(open('v2.npy', 'wb'), a, version=(2, 0))
)PY");
  NpyArray p = read_npy(dir + "/plain.npy");
  CHECK(p.records == 6);
  REQUIRE(p.fields.size() == 1);
  CHECK(p.number(4, p.fields[0]) == 4.0);

  for (const char* f : {"/rec.npy", "/v2.npy"}) {
    NpyArray a = read_npy(dir + f);
    CAPTURE(f);
    REQUIRE(a.records == 3);
    REQUIRE(a.fields.size() == 6);
    const NpyField* i = a.field("i");
    const NpyField* u = a.field("u");
    const NpyField* d = a.field("f");
    const NpyField* s = a.field("s");
    const NpyField* m = a.field("m");
    REQUIRE((i && u && d && s && m && a.field("b")));
    CHECK(i->big_endian);
    CHECK(a.number(2, *i) == -300000);
    CHECK(a.number(1, *u) == 65535);
    CHECK(a.number(1, *d) == -1e300);
    CHECK(a.number(1, *a.field("b")) == 0);
    CHECK(a.bytes(0, *s) == "ab");
    CHECK(a.bytes(1, *s) == "abcde");
    CHECK(a.bytes(2, *s) == "");
    CHECK(m->elems == 4);
    CHECK(m->shape == std::vector<size_t>{2, 2});
    CHECK(a.number(2, *m, 3) == 11 - 5);
    CHECK(a.field("absent") == nullptr);
    CHECK_THROWS_AS(a.number(0, *s), InputError);
    CHECK_THROWS_AS(a.bytes(0, *i), InputError);
  }
}

TEST_CASE("malformed .npy / .cs files fail naming the file") {
  std::string dir = test::scratch_dir("io_npy_errors");
  auto npy = [&](const std::string& name, const std::string& header, size_t data_bytes, bool v1 = true) {
    std::string h = header;
    std::string out = std::string("\x93NUMPY", 6) + char(v1 ? 1 : 3) + char(0);
    if (v1) {
      out += char(h.size() & 0xff);
      out += char(h.size() >> 8);
    } else {
      for (int k = 0; k < 4; ++k) out += char((h.size() >> (8 * k)) & 0xff);
    }
    out += h + std::string(data_bytes, '\0');
    std::ofstream(dir + "/" + name, std::ios::binary) << out;
    return dir + "/" + name;
  };
  auto fails = [&](const std::string& path, const std::string& expect) {
    std::string e = input_error([&] { read_npy(path); });
    CAPTURE(e);
    CHECK(contains(e, path));
    CHECK(contains(e, expect));
  };
  test::write_text(dir + "/text.cs", "data_\nloop_\n");
  fails(dir + "/text.cs", "not a NumPy");
  fails(npy("unclosed.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (2,)\n", 8), "header");
  fails(npy("nodescr.npy", "{'fortran_order': False, 'shape': (2,)}\n", 8), "'descr'");
  fails(npy("object.npy", "{'descr': [('a', '|O')], 'fortran_order': False, 'shape': (1,)}\n", 8), "pickled");
  fails(npy("unicode.npy", "{'descr': [('a', '<U4')], 'fortran_order': False, 'shape': (1,)}\n", 16), "unicode");
  fails(npy("nested.npy", "{'descr': [('a', [('b', '<f4')])], 'fortran_order': False, 'shape': (1,)}\n", 4), "nested");
  fails(npy("short.npy", "{'descr': [('a', '<f8')], 'fortran_order': False, 'shape': (10,)}\n", 16), "promises 10");
  fails(npy("fortran.npy", "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2)}\n", 16), "Fortran");
  fails(npy("badtype.npy", "{'descr': [('a', '<q9')], 'fortran_order': False, 'shape': (1,)}\n", 16), "'<q9'");
  fails(npy("badshape.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': 'x'}\n", 16), "'shape'");
  fails(npy("junk.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (1,)} x\n", 4), "after the header");
  // Sizes whose product wraps around 2^64 (2^61 records of 8 bytes would be "0 bytes"): an error, not an
  // array that claims records it does not hold.
  fails(npy("wrap.npy", "{'descr': '<f8', 'fortran_order': False, 'shape': (2305843009213693952,)}\n", 0), "too large");
  fails(npy("wrap2.npy", "{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296)}\n", 0),
        "too large");
  fails(npy("wrapf.npy", "{'descr': [('a', '<f8', (2305843009213693952,))], 'fortran_order': False, 'shape': (1,)}\n",
            0),
        "too large");
  std::string e = input_error([&] { read_npy(dir + "/absent.cs"); });
  CHECK(contains(e, "absent.cs"));

  // Version 3 headers and Python 2 longs parse.
  NpyArray ok = read_npy(npy("v3.npy", "{'descr': '<u2', 'fortran_order': False, 'shape': (3L,), }\n", 6, false));
  CHECK(ok.records == 3);

  // blob/idx stored as floats: an infinite or huge index is an error, not a name like "-9223372036854775807@".
  for (const char* bad : {"inf", "1e30", "-1", "2.5"}) {
    CAPTURE(bad);
    std::string pidx = npy("badidx.cs", "{'descr': [('blob/path', '|S4'), ('blob/idx', '<f8')], 'fortran_order': False, "
                                        "'shape': (1,)}\n", 0);
    double v = std::strtod(bad, nullptr);
    std::string rec = "a.mr" + std::string(reinterpret_cast<const char*>(&v), 8);
    std::ofstream(pidx, std::ios::binary | std::ios::app) << rec;
    e = input_error([&] { cs_to_star(pidx, false); });
    CHECK(contains(e, "bad blob/idx"));
  }

  // A structured array that is not a particle file.
  std::string p = npy("notcs.cs", "{'descr': [('x', '<f4')], 'fortran_order': False, 'shape': (1,)}\n", 4);
  e = input_error([&] { cs_to_star(p); });
  CHECK(contains(e, "notcs.cs"));
  CHECK(contains(e, "blob/path"));
}

TEST_CASE("NaN in a .cs field meant as an integer or a number is an InputError naming record and field (defect 13)") {
  std::string dir = test::scratch_dir("io_cs_nan");
  python(dir, "import subprocess, sys\nsubprocess.check_call([sys.executable, '" CUGMM_SOURCE_DIR
              "/tests/malformed/files/make_io_files.py', '.'])\n");
  struct Case { const char* file; const char* field; };
  for (Case c : {Case{"io_nan_shape.cs", "blob/shape"}, Case{"io_nan_split.cs", "alignments3D/split"},
                 Case{"io_nan_psize.cs", "blob/psize_A"}}) {
    std::string e = input_error([&] { cs_to_star(dir + "/" + c.file, false); });
    CAPTURE(e);
    CHECK(contains(e, dir + "/" + c.file));
    CHECK(contains(e, "record 0 (0-based)"));
    CHECK(contains(e, c.field));
    CHECK(contains(e, "NaN"));
    CHECK_FALSE(contains(e, "9223372036854775808"));
  }
}

TEST_CASE(".cs subsets: every field of the chosen records, uid kept, read back by numpy; a .csg beside") {
  std::string dir = test::scratch_dir("io_cs_subset");
  fs::create_directories(dir + "/J1/extract");
  fs::create_directories(dir + "/J2");
  python(dir, kMakeCs);
  write_cs_subset(dir + "/sub.cs", dir + "/J2/particles.cs", {4, 1, 2});
  python(dir, R"PY(
import numpy as np
a = np.load('J2/particles.cs')
b = np.load('sub.cs')
assert b.dtype == a.dtype, (a.dtype, b.dtype)
assert b.shape == (3,), b.shape
assert (b == a[[4, 1, 2]]).all()
assert list(b['uid']) == list(a['uid'][[4, 1, 2]])
# A heterogeneous job's per-class alignments, for the .csg's data types.
dt = a.dtype.descr + [('alignments_class_0/pose', '<f4', (3,)), ('alignments_class_1/pose', '<f4', (3,))]
h = np.zeros(len(a), dtype=dt)
for f in a.dtype.names: h[f] = a[f]
with open('J2/het.cs', 'wb') as f: np.save(f, h)
)PY");
  write_cs_subset(dir + "/het_sub.cs", dir + "/J2/het.cs", {0, 3});
  // The .csg as cryoSPARC v4 exports it (created, group, results per field prefix, version), read by a YAML
  // parser, not by string matching.
  const std::string text = test::read_text(dir + "/sub.csg");
  CHECK(text.rfind("created: ", 0) == 0);
  if (test::run("/usr/bin/python3 -c 'import yaml'").status == 0)
    python(dir, R"PY(
import datetime, numpy as np, yaml
for csg, cs, n in (('sub.csg', 'sub.cs', 3), ('het_sub.csg', 'het_sub.cs', 2)):
    y = yaml.safe_load(open(csg))
    assert set(y) == {'created', 'group', 'results', 'version'}, y
    assert isinstance(y['created'], datetime.datetime), y['created']
    assert y['group']['name'] == 'particles' and y['group']['type'] == 'particle', y['group']
    assert isinstance(y['group']['title'], str) and isinstance(y['group']['description'], str), y['group']
    a = np.load(cs)
    prefixes = sorted({f.split('/')[0] for f in a.dtype.names if '/' in f})
    assert sorted(y['results']) == prefixes, (sorted(y['results']), prefixes)
    for k, r in y['results'].items():
        assert set(r) == {'metafile', 'num_items', 'type'}, r
        assert r['metafile'] == '>' + cs and r['num_items'] == n == len(a), r
        want = 'alignments3D' if k.startswith('alignments_class_') else k
        assert r['type'] == 'particle.' + want, (k, r)
y = yaml.safe_load(open('het_sub.csg'))
assert y['results']['alignments_class_1']['type'] == 'particle.alignments3D'
)PY");
}
