// MRC reading and writing against the oracles: python3-mrcfile writes every readable mode and byte order
// and validates what we write; RELION's relion_image_handler writes the not-quite-valid files users have.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <vector>

#include "core/error.h"
#include "io/mrc.h"
#include "support.h"

using namespace cugmm;
using namespace cugmm::io;
namespace fs = std::filesystem;

namespace {

using test::python;
using test::input_error;
using test::contains;
using test::read_f32;

std::vector<unsigned char> read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), {}};
}

void write_bytes(const std::string& path, const std::vector<unsigned char>& b) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(b.data()), std::streamsize(b.size()));
}

void put_i32(std::vector<unsigned char>& b, size_t off, int32_t v) { std::memcpy(b.data() + off, &v, 4); }

// A small valid float32 volume of our own, to corrupt.
std::vector<unsigned char> good_file(const std::string& dir) {
  std::vector<float> v(4 * 3 * 2);
  for (size_t i = 0; i < v.size(); ++i) v[i] = float(i) - 5.5f;
  write_mrc(dir + "/good.mrc", v.data(), 4, 3, 2, 1.5f, true);
  return read_bytes(dir + "/good.mrc");
}

}  // namespace

TEST_CASE("files mrcfile writes in modes 0, 1, 2, 6, 12 and either byte order read back exactly") {
  std::string dir = test::scratch_dir("io_mrc_modes");
  python(dir, R"(
import mrcfile, numpy as np
rng = np.random.default_rng(3)
shape = (3, 5, 7)
cases = {
  'm0': rng.integers(-128, 128, shape).astype('i1'),
  'm1': rng.integers(-32768, 32768, shape).astype('i2'),
  'm2': rng.normal(0, 10, shape).astype('f4'),
  'm6': rng.integers(0, 65536, shape).astype('u2'),
  # float16 with subnormals, the largest finite value and signed zeros
  'm12': np.concatenate([rng.normal(0, 100, 100), [6e-8, -3e-6, 65504, -65504, 0.0, -0.0, 1e-5]]
                        ).astype('f2')[:105].reshape(shape),
  'be2': rng.normal(0, 10, shape).astype('>f4'),
  'be1': rng.integers(-32768, 32768, shape).astype('>i2'),
  'be12': rng.normal(0, 10, shape).astype('>f2'),
}
for name, d in cases.items():
  with mrcfile.new(name + '.mrc', overwrite=True) as m:
    m.set_data(d)
    m.voxel_size = 1.25
  d.astype('<f4').tofile(name + '.f32')
# an extended header (NSYMBT = 100) must be skipped
with mrcfile.new('ext.mrc', overwrite=True) as m:
  m.set_data(cases['m2'])
  m.set_extended_header(np.arange(100, dtype='u1').view('V1'))
  m.header.exttyp = b'MRCO'
  m.voxel_size = (2.5, 2.5, 2.5)
cases['m2'].astype('<f4').tofile('ext.f32')
)");
  const char* names[] = {"m0", "m1", "m2", "m6", "m12", "be2", "be1", "be12", "ext"};
  const int modes[] = {0, 1, 2, 6, 12, 2, 1, 12, 2};
  for (int c = 0; c < 9; ++c) {
    CAPTURE(names[c]);
    std::string file = dir + "/" + names[c] + ".mrc";
    MrcHeader h = read_mrc_header(file);
    CHECK(h.mode == modes[c]);
    CHECK(h.little_endian == (names[c][0] != 'b'));
    CHECK(h.data_offset == (c == 8 ? 1124u : 1024u));
    CHECK(h.pixel_size == doctest::Approx(c == 8 ? 2.5 : 1.25));
    Image im = read_mrc(file);
    CHECK(im.nx == 7);
    CHECK(im.ny == 5);
    CHECK(im.nz == 3);
    std::vector<float> ref = read_f32(dir + "/" + names[c] + ".f32");
    REQUIRE(ref.size() == im.data.size());
    size_t bad = 0;
    for (size_t i = 0; i < ref.size(); ++i) bad += std::memcmp(&ref[i], &im.data[i], 4) != 0;  // bitwise, -0 too
    CHECK(bad == 0);
    // The memory-mapped path converts the same way.
    MrcStack st(file);
    REQUIRE(st.count() == 3);
    std::vector<float> sec(35);
    st.read_section(2, sec.data());
    CHECK(std::memcmp(sec.data(), im.data.data() + 70, 35 * 4) == 0);
  }
}

TEST_CASE("files we write pass mrcfile.validate() and carry the right data, voxel size and space group") {
  std::string dir = test::scratch_dir("io_mrc_write");
  Image vol;
  vol.nx = 6, vol.ny = 5, vol.nz = 4, vol.pixel_size = 1.7f;
  vol.data.resize(vol.voxels());
  for (size_t i = 0; i < vol.data.size(); ++i) vol.data[i] = 1000.f + std::sin(float(i)) * 3.f;  // mean far from 0
  write_mrc(dir + "/vol.mrc", vol, false);
  write_mrc(dir + "/stack.mrcs", vol, true);
  vol.data.data()[0] = 123.f;
  python(dir, R"(
import mrcfile, numpy as np, sys
for name, ispg, mz in (('vol.mrc', 1, 4), ('stack.mrcs', 0, 1)):
  assert mrcfile.validate(name), name
  with mrcfile.open(name) as m:
    h = m.header
    assert h.nversion == 20140 and h.ispg == ispg and h.mz == mz and h.mode == 2, (name, h)
    assert bytes(h.machst[:2]) == b'\x44\x44'
    assert abs(float(m.voxel_size.x) - 1.7) < 1e-6 and abs(float(m.voxel_size.z) - 1.7) < 1e-6, m.voxel_size
    assert m.data.shape == (4, 5, 6)
    i = np.arange(120, dtype=np.float32)
    assert np.array_equal(m.data.ravel(), (np.float32(1000) + np.sin(i) * np.float32(3)).astype('f4')) or \
           np.allclose(m.data.ravel(), 1000 + np.sin(i) * 3, atol=1e-4)
    assert abs(h.rms - m.data.std()) < 1e-3 * m.data.std() and h.dmin == m.data.min() and h.dmax == m.data.max()
    assert (m.is_volume() if ispg == 1 else m.is_image_stack())
)");
  MrcHeader h = read_mrc_header(dir + "/vol.mrc");
  CHECK(h.is_volume);
  CHECK(h.pixel_size == doctest::Approx(1.7));
  CHECK_FALSE(read_mrc_header(dir + "/stack.mrcs").is_volume);
  Image back = read_mrc(dir + "/vol.mrc");
  CHECK(back.data[5] == 1000.f + std::sin(5.f) * 3.f);
  // Nothing but the two files: the temporaries were renamed, not left behind.
  int n = 0;
  for (auto& e : fs::directory_iterator(dir)) n += e.path().extension() != ".py";
  CHECK(n == 2);
}

TEST_CASE("a failed write leaves the old file intact and no temporary behind") {
  std::string dir = test::scratch_dir("io_mrc_atomic");
  std::vector<float> v(8, 1.f);
  write_mrc(dir + "/a.mrc", v.data(), 2, 2, 2, 1.f, false);
  auto before = read_bytes(dir + "/a.mrc");
  v[3] = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_AS(write_mrc(dir + "/a.mrc", v.data(), 2, 2, 2, 1.f, false), Error);
  CHECK(read_bytes(dir + "/a.mrc") == before);
  CHECK_THROWS_AS(write_mrc(dir + "/no/such/dir/b.mrc", v.data(), 2, 2, 2, 1.f, false), Error);
  int n = 0;
  for (auto it = fs::directory_iterator(dir); it != fs::directory_iterator(); ++it) ++n;
  CHECK(n == 1);
}

TEST_CASE("RELION's files (NVERSION 0, ISPG 0 for volumes) read with the right kind and pixel size") {
  if (test::run("command -v relion_image_handler").status != 0) {
    MESSAGE("relion_image_handler not installed: skipped");
    return;
  }
  std::string dir = test::scratch_dir("io_mrc_relion");
  std::vector<float> v(10 * 9 * 8);
  for (size_t i = 0; i < v.size(); ++i) v[i] = std::cos(0.1f * float(i));
  write_mrc(dir + "/in.mrc", v.data(), 10, 9, 8, 2.25f, false);
  write_mrc(dir + "/in.mrcs", v.data(), 10, 9, 8, 2.25f, true);
  for (const char* ext : {"mrc", "mrcs"}) {
    std::string out = std::string("out.") + ext;
    auto r = test::run(std::string("relion_image_handler --i in.") + ext + " --o " + out + " --multiply_constant 2", dir);
    INFO(r.out);
    REQUIRE(r.status == 0);
    MrcHeader h = read_mrc_header(dir + "/" + out);
    CHECK(h.is_volume == (ext == std::string("mrc")));
    CHECK(h.pixel_size == doctest::Approx(2.25));
    Image im = read_mrc(dir + "/" + out);
    REQUIRE(im.voxels() == v.size());
    CHECK(im.nx == 10);
    CHECK(im.nz == 8);
    double err = 0;
    for (size_t i = 0; i < v.size(); ++i) err = std::max(err, double(std::abs(im.data[i] - 2 * v[i])));
    CHECK(err < 1e-6);
  }
}

TEST_CASE("axis orders other than x,y,z (MAPC/MAPR/MAPS) are put back in x,y,z order") {
  std::string dir = test::scratch_dir("io_mrc_axes");
  python(dir, R"(
import mrcfile, numpy as np
d = np.arange(2 * 3 * 4, dtype='f4').reshape(2, 3, 4)  # stored: sections, rows, columns
with mrcfile.new('p.mrc', overwrite=True) as m:
  m.set_data(d)
  m.header.mapc, m.header.mapr, m.header.maps = 3, 1, 2  # columns run along z, rows along x, sections along y
# the same map in x fastest order: xyz[z, y, x] = d[y, x, z]
np.ascontiguousarray(d.transpose(2, 0, 1)).astype('<f4').tofile('p.f32')
)");
  Image im = read_mrc(dir + "/p.mrc");
  CHECK(im.nx == 3);
  CHECK(im.ny == 2);
  CHECK(im.nz == 4);
  CHECK(im.data == read_f32(dir + "/p.f32"));
  CHECK(contains(input_error([&] { MrcStack s(dir + "/p.mrc"); }), "MAPC"));
}

TEST_CASE("no pixel size in the header (CELLA = 0) gives pixel_size 0") {
  std::string dir = test::scratch_dir("io_mrc_nopix");
  auto b = good_file(dir);
  std::memset(b.data() + 40, 0, 12);
  write_bytes(dir + "/f.mrc", b);
  CHECK(read_mrc_header(dir + "/f.mrc").pixel_size == 0.f);
  CHECK(read_mrc(dir + "/f.mrc").pixel_size == 0.f);
}

TEST_CASE("bad files are InputErrors naming the file and the field") {
  std::string dir = test::scratch_dir("io_mrc_bad");
  const auto good = good_file(dir);
  auto bad = [&](const std::string& name, auto edit) {
    auto b = good;
    edit(b);
    write_bytes(dir + "/" + name, b);
    std::string m1 = input_error([&] { read_mrc(dir + "/" + name); });
    std::string m2 = input_error([&] { MrcStack s(dir + "/" + name); });
    std::string m3 = input_error([&] { read_mrc_header(dir + "/" + name); });
    CHECK(m1 == m2);
    CHECK(m1 == m3);
    CHECK(contains(m1, dir + "/" + name));
    return m1;
  };
  CHECK(contains(bad("short_header.mrc", [](auto& b) { b.resize(600); }), "header"));
  CHECK(contains(bad("empty.mrc", [](auto& b) { b.clear(); }), "truncated"));
  CHECK(contains(bad("short_data.mrc", [](auto& b) { b.resize(b.size() - 4); }), "truncated"));
  CHECK(contains(bad("mode3.mrc", [](auto& b) { put_i32(b, 12, 3); }), "mode 3"));
  CHECK(contains(bad("mode7.mrc", [](auto& b) { put_i32(b, 12, 7); }), "MODE"));
  CHECK(contains(bad("magic.mrc", [](auto& b) { std::memcpy(b.data() + 208, "PAM ", 4); }), "MAP"));
  CHECK(contains(bad("neg.mrc", [](auto& b) { put_i32(b, 4, -3); }), "NY"));
  CHECK(contains(bad("zero.mrc", [](auto& b) { put_i32(b, 8, 0); }), "NZ"));
  CHECK(contains(bad("huge.mrc", [](auto& b) { put_i32(b, 0, 2000000000), put_i32(b, 4, 2000000000), put_i32(b, 8, 2000000000); }),
                 "do not fit"));
  CHECK(contains(bad("big.mrc", [](auto& b) { put_i32(b, 8, 3); }), "truncated"));
  CHECK(contains(bad("nsymbt.mrc", [](auto& b) { put_i32(b, 92, -4); }), "NSYMBT"));
  CHECK(contains(bad("nsymbt_big.mrc", [](auto& b) { put_i32(b, 92, 4); }), "truncated"));
  CHECK(contains(bad("axes.mrc", [](auto& b) { put_i32(b, 64, 2); }), "MAPC"));
  CHECK(contains(input_error([&] { read_mrc(dir + "/missing.mrc"); }), "missing.mrc"));
  CHECK(contains(input_error([&] { MrcStack s(dir + "/missing.mrc"); }), "cannot open"));
  CHECK(contains(input_error([&] { MrcStack s(dir); }), "not a regular file"));
}

TEST_CASE("a blank format ID (files from before MRC2000, no MACHST) is read when the rest is sane") {
  std::string dir = test::scratch_dir("io_mrc_old");
  auto b = good_file(dir);
  std::memset(b.data() + 208, 0, 8);  // no MAP, no MACHST: the byte order is inferred from MODE
  write_bytes(dir + "/old.mrc", b);
  Image im = read_mrc(dir + "/old.mrc");
  CHECK(im.data[7] == 7 - 5.5f);
  // The same bytes swapped to big-endian, still without a machine stamp.
  for (size_t off = 0; off < 1024 + 24 * 4; off += 4)
    if (off < 224 || off >= 1024) std::reverse(b.begin() + long(off), b.begin() + long(off) + 4);
  write_bytes(dir + "/old_be.mrc", b);
  MrcHeader h = read_mrc_header(dir + "/old_be.mrc");
  CHECK_FALSE(h.little_endian);
  CHECK(read_mrc(dir + "/old_be.mrc").data == im.data);
}

TEST_CASE("stack sections: an index past the end and NaN/Inf pixels name the image") {
  std::string dir = test::scratch_dir("io_mrc_sections");
  std::vector<float> v(4 * 4 * 3, 0.5f);
  v[16 + 5] = std::numeric_limits<float>::quiet_NaN();
  v[32 + 1] = -std::numeric_limits<float>::infinity();
  // write_mrc refuses non-finite data, so patch the values in afterwards.
  std::vector<float> clean(v.size(), 0.5f);
  write_mrc(dir + "/s.mrcs", clean.data(), 4, 4, 3, 1.f, true);
  auto b = read_bytes(dir + "/s.mrcs");
  std::memcpy(b.data() + 1024, v.data(), v.size() * 4);
  write_bytes(dir + "/s.mrcs", b);
  MrcStack st(dir + "/s.mrcs");
  CHECK(st.count() == 3);
  std::vector<float> out(16);
  st.read_section(0, out.data());
  CHECK(out[15] == 0.5f);
  std::string e = input_error([&] { st.read_section(1, out.data()); });
  CHECK(contains(e, "image 2 of 3"));
  CHECK(contains(e, "NaN"));
  CHECK(contains(e, "x 1, y 1"));
  CHECK(contains(input_error([&] { st.read_section(2, out.data()); }), "infinite"));
  CHECK(contains(input_error([&] { st.read_section(3, out.data()); }), "past the end"));
  CHECK(contains(input_error([&] { st.read_section(-1, out.data()); }), "past the end"));
  CHECK(contains(input_error([&] { read_mrc(dir + "/s.mrcs"); }), "section 2"));
}

TEST_CASE("a MODE that only makes sense byte-swapped is a byte-order error, not 'mode 33554432' (defect 11)") {
  std::string dir = test::scratch_dir("io_mrc_order");
  auto b = good_file(dir);
  b[212] = 0x11, b[213] = 0x11;  // MACHST says big-endian; every field is little-endian
  write_bytes(dir + "/order.mrc", b);
  std::string e = input_error([&] { read_mrc_header(dir + "/order.mrc"); });
  CAPTURE(e);
  CHECK(contains(e, "byte order"));
  CHECK(contains(e, "MACHST"));
  CHECK_FALSE(contains(e, "33554432"));
}

TEST_CASE("an MRC file longer than its header says is refused, naming the excess (defect 13)") {
  std::string dir = test::scratch_dir("io_mrc_long");
  auto b = good_file(dir);
  b.resize(b.size() + 4 * 4 * 3, 0);  // one more 4 x 3 section than NZ says
  write_bytes(dir + "/long.mrcs", b);
  for (const std::string& e : {input_error([&] { read_mrc(dir + "/long.mrcs"); }),
                               input_error([&] { MrcStack s(dir + "/long.mrcs"); })}) {
    CAPTURE(e);
    CHECK(contains(e, "long.mrcs"));
    CHECK(contains(e, "48 bytes more than its header accounts for"));
  }
}

TEST_CASE("pixels too large for any sum (3e38) are refused when read, naming the image (defect 11)") {
  std::string dir = test::scratch_dir("io_mrc_huge_values");
  std::vector<float> v(4 * 4 * 2, 1.f);
  write_mrc(dir + "/s.mrcs", v.data(), 4, 4, 2, 1.f, true);
  auto b = read_bytes(dir + "/s.mrcs");
  const float huge = 3e38f;
  std::memcpy(b.data() + 1024 + (16 + 6) * 4, &huge, 4);
  write_bytes(dir + "/s.mrcs", b);
  MrcStack st(dir + "/s.mrcs");
  std::vector<float> out(16);
  CHECK_NOTHROW(st.read_section(0, out.data()));
  std::string e = input_error([&] { st.read_section(1, out.data()); });
  CAPTURE(e);
  CHECK(contains(e, "image 2 of 2"));
  CHECK(contains(e, "x 2, y 1"));
  CHECK(contains(e, "overflow"));
}

TEST_CASE("MRC origin and start: read as mrcfile writes them, written as mrcfile reads them") {
  if (!test::oracle(test::kPython)) return;
  const std::string dir = test::scratch_dir("mrc_origin");
  test::python(dir, "import mrcfile, numpy as np\n"
                    "with mrcfile.new('theirs.mrc') as m:\n"
                    "    m.set_data(np.zeros((4, 6, 8), dtype=np.float32))\n"
                    "    m.header.origin = (10.5, -20.0, 30.25)\n"
                    "    m.header.nxstart, m.header.nystart, m.header.nzstart = -4, 3, 17\n");
  io::Image im = io::read_mrc(dir + "/theirs.mrc");
  CHECK(im.origin[0] == 10.5f);
  CHECK(im.origin[1] == -20.f);
  CHECK(im.origin[2] == 30.25f);
  CHECK(im.start[0] == -4);
  CHECK(im.start[1] == 3);
  CHECK(im.start[2] == 17);
  io::write_mrc(dir + "/ours.mrc", im, false);
  test::python(dir, "import mrcfile, sys\n"
                    "m = mrcfile.open('ours.mrc')\n"
                    "o = m.header.origin\n"
                    "ok = (float(o.x), float(o.y), float(o.z)) == (10.5, -20.0, 30.25) and "
                    "(int(m.header.nxstart), int(m.header.nystart), int(m.header.nzstart)) == (-4, 3, 17)\n"
                    "sys.exit(0 if ok and mrcfile.validate('ours.mrc') else 1)\n");
}
