// TIFF reading against the oracle python3-tifffile, which writes every sample type, byte order, strip and
// tile layout and compression we claim to read, and the bad files we must refuse.
#include <doctest/doctest.h>

#include <cstring>
#include <fstream>
#include <vector>

#include "core/error.h"
#include "io/image_read.h"
#include "io/tiff.h"
#include "support.h"

using namespace cugmm;
using namespace cugmm::io;

namespace {

using test::python;
using test::input_error;
using test::contains;
using test::read_f32;

bool have_tifffile() { return test::run(std::string(test::kPython) + " -c 'import tifffile'").status == 0; }

// A scratch directory holding the crafted files of tests/malformed/files (its make_io_files.py).
std::string malformed_files(const char* name) {
  const std::string dir = test::scratch_dir(name);
  python(dir, "import subprocess, sys\nsubprocess.check_call([sys.executable, '" CUGMM_SOURCE_DIR
              "/tests/malformed/files/make_io_files.py', '.'])\n");
  return dir;
}

}  // namespace

TEST_CASE("TIFFs tifffile writes (8/16-bit, float, big-endian, tiled, compressed, multi-page) read back exactly") {
  if (!have_tifffile()) {
    MESSAGE("python3-tifffile missing (scripts/setup.sh installs it): skipped");
    return;
  }
  std::string dir = test::scratch_dir("io_tiff_read");
  python(dir, R"(
import numpy as np, tifffile
rng = np.random.default_rng(5)
shape = (3, 37, 45)  # not a multiple of the 16 x 16 tiles
cases = {
  'u8':    (rng.integers(0, 256, shape).astype('u1'), {}),
  'u16':   (rng.integers(0, 65536, shape).astype('u2'), {}),
  'i16':   (rng.integers(-32768, 32768, shape).astype('i2'), {}),
  'f32':   (rng.normal(0, 5, shape).astype('f4'), {}),
  'be16':  (rng.integers(0, 65536, shape).astype('u2'), {'byteorder': '>'}),
  'bef32': (rng.normal(0, 5, shape).astype('f4'), {'byteorder': '>'}),
  'tiled': (rng.normal(0, 5, shape).astype('f4'), {'tile': (16, 16)}),
  'zlib':  (rng.integers(0, 65536, shape).astype('u2'), {'compression': 'zlib', 'rowsperstrip': 5}),
  'one':   (rng.integers(0, 256, shape[1:]).astype('u1'), {}),
}
for name, (d, kw) in cases.items():
  tifffile.imwrite(name + '.tif', d, photometric='minisblack', **kw)
  d.astype('<f4').tofile(name + '.f32')
)");
  for (const char* name : {"u8", "u16", "i16", "f32", "be16", "bef32", "tiled", "zlib", "one"}) {
    CAPTURE(name);
    Image im = read_tiff(dir + "/" + name + ".tif");
    CHECK(im.nx == 45);
    CHECK(im.ny == 37);
    CHECK(im.nz == (std::string(name) == "one" ? 1 : 3));
    CHECK(im.pixel_size == 0.f);
    CHECK(im.data == read_f32(dir + "/" + name + ".f32"));
  }
  // Random access, in any order, gives the same pages.
  TiffStack st(dir + "/tiled.tif");
  Image all = read_tiff(dir + "/tiled.tif");
  std::vector<float> page(45 * 37);
  for (long i : {2L, 0L, 1L}) {
    st.read_section(i, page.data());
    CHECK(std::memcmp(page.data(), all.data.data() + i * 45 * 37, page.size() * 4) == 0);
  }
}

TEST_CASE("bad TIFFs are InputErrors naming the file and the page") {
  if (!have_tifffile()) {
    MESSAGE("python3-tifffile missing: skipped");
    return;
  }
  std::string dir = test::scratch_dir("io_tiff_bad");
  python(dir, R"(
import numpy as np, tifffile
tifffile.imwrite('rgb.tif', np.zeros((8, 8, 3), 'u1'), photometric='rgb')
tifffile.imwrite('f64.tif', np.zeros((8, 8), 'f8'), photometric='minisblack')
tifffile.imwrite('u32.tif', np.zeros((8, 8), 'u4'), photometric='minisblack')
with tifffile.TiffWriter('mixed.tif') as w:
  w.write(np.zeros((8, 8), 'u2'), photometric='minisblack')
  w.write(np.zeros((8, 9), 'u2'), photometric='minisblack')
d = np.ones((3, 8, 8), 'f4')
d[1, 2, 5] = np.nan
d[2, 0, 0] = np.inf
tifffile.imwrite('nan.tif', d, photometric='minisblack')
big = np.arange(64 * 64, dtype='u2').reshape(64, 64)
tifffile.imwrite('big.tif', big, photometric='minisblack')
b = open('big.tif', 'rb').read()
open('short.tif', 'wb').write(b[:len(b) // 2])  # the pixel data is cut, the header (at the start) is not
open('text.tif', 'w').write('this is not a TIFF at all\n')
)");
  auto err = [&](const std::string& name) {
    std::string m = input_error([&] { read_tiff(dir + "/" + name); });
    CHECK(contains(m, dir + "/" + name));
    return m;
  };
  CHECK(contains(err("rgb.tif"), "greyscale"));
  CHECK(contains(err("f64.tif"), "64-bit"));
  CHECK(contains(err("u32.tif"), "32-bit samples of format 1"));
  CHECK(contains(err("mixed.tif"), "page 2"));
  CHECK(contains(err("short.tif"), "page 1"));
  CHECK(contains(err("text.tif"), "not a readable TIFF"));
  CHECK(contains(err("missing.tif"), "not found"));
  std::string nan = err("nan.tif");
  CHECK(contains(nan, "page 2"));
  CHECK(contains(nan, "x 5, y 2"));
  TiffStack st(dir + "/nan.tif");
  std::vector<float> page(64);
  st.read_section(0, page.data());
  CHECK(page[63] == 1.f);
  CHECK(contains(input_error([&] { st.read_section(2, page.data()); }), "infinite"));
  CHECK(contains(input_error([&] { st.read_section(3, page.data()); }), "past the end"));
}

TEST_CASE("read_image picks the format by extension or content, and N@file is image N of a stack") {
  std::string dir = test::scratch_dir("io_image_read");
  std::vector<float> v(6 * 5 * 4);
  for (size_t i = 0; i < v.size(); ++i) v[i] = float(i);
  write_mrc(dir + "/vol.mrc", v.data(), 6, 5, 4, 2.f, false);
  write_mrc(dir + "/st.mrcs", v.data(), 6, 5, 4, 2.f, true);
  write_mrc(dir + "/odd.dat", v.data(), 6, 5, 4, 2.f, true);
  write_mrc(dir + "/a@b.mrc", v.data(), 6, 5, 4, 2.f, true);
  test::write_text(dir + "/notes.txt", "hello\n");

  CHECK(parse_image_ref("000012@x/a.mrcs").index == 11);
  CHECK(parse_image_ref("000012@x/a.mrcs").path == "x/a.mrcs");
  CHECK(parse_image_ref("x/a.mrcs").index == -1);
  CHECK(parse_image_ref("run@2/a.mrcs").index == -1);  // not "<digits>@": an ordinary path
  CHECK(contains(input_error([] { parse_image_ref("0@a.mrcs"); }), "start at 1"));

  ImageInfo vi = read_image_info(dir + "/vol.mrc");
  CHECK(vi.is_volume);
  CHECK(vi.nz == 4);
  CHECK(vi.pixel_size == 2.f);
  CHECK_FALSE(read_image_info(dir + "/st.mrcs").is_volume);
  CHECK(read_image(dir + "/vol.mrc").data == v);
  // A volume referenced with @ is read as a stack: image 3 is section index 2.
  for (const char* f : {"vol.mrc", "st.mrcs", "odd.dat"}) {
    CAPTURE(f);
    Image im = read_image("3@" + dir + "/" + f);
    CHECK(im.nz == 1);
    CHECK(im.pixel_size == 2.f);
    CHECK(im.data == std::vector<float>(v.begin() + 60, v.begin() + 90));
  }
  CHECK(read_image(dir + "/a@b.mrc").nz == 4);
  CHECK(contains(input_error([&] { read_image("5@" + dir + "/st.mrcs"); }), "past the end"));
  CHECK(contains(input_error([&] { read_image(dir + "/notes.txt"); }), "unknown image format"));
  CHECK(contains(input_error([&] { read_image(dir + "/none.xyz"); }), "not found"));

  if (!have_tifffile()) return;
  python(dir, R"(
import numpy as np, tifffile
d = np.arange(120, dtype='f4').reshape(4, 5, 6)
tifffile.imwrite('t.tif', d, photometric='minisblack')
tifffile.imwrite('t.frames', d, photometric='minisblack')
)");
  CHECK(read_image(dir + "/t.tif").data == v);
  ImageInfo ti = read_image_info(dir + "/t.frames");
  CHECK(ti.format == ImageFormat::Tiff);
  CHECK(ti.nz == 4);
  CHECK(read_image("3@" + dir + "/t.frames").data == std::vector<float>(v.begin() + 60, v.begin() + 90));
  ImageStack st(dir + "/t.tif");
  CHECK(st.count() == 4);
}

TEST_CASE("an 8 KB TIFF claiming 65535 x 65535 pixels is refused before anything is allocated (defect 6)") {
  const std::string dir = malformed_files("io_tiff_huge");
  for (const char* name : {"io_huge.tif", "io_huge_deflate.tif"}) {
    std::string e = input_error([&] { TiffStack st(dir + "/" + name); });
    CAPTURE(e);
    CHECK(contains(e, dir + "/" + name));
    CHECK(contains(e, "page 1"));
    CHECK(contains(e, "65535 x 65535"));
  }
  CHECK(contains(input_error([&] { read_image_info(dir + "/io_huge.tif"); }), "beyond the end of the file (8192 bytes)"));
  CHECK(contains(input_error([&] { TiffStack st(dir); }), "not a regular file"));
}

TEST_CASE("a tile larger than the bytes behind it is refused before libtiff allocates it; a tile past the edges reads") {
  // libtiff takes any tile size: a 16 x 16 page in one tile 2^30 pixels wide had read_section ask for a
  // 16 GB tile buffer (and a 4 GB row it never used). Tiles are bounded like pages: by the bytes they hold.
  const std::string dir = malformed_files("io_tiff_tiles");
  std::string e = input_error([&] { TiffStack st(dir + "/io_tile_2e30.tif"); });
  CAPTURE(e);
  CHECK(contains(e, dir + "/io_tile_2e30.tif, page 1: absurd tile size 1073741824 x 16"));
  e = input_error([&] { read_tiff(dir + "/io_tile_4096.tif"); });
  CAPTURE(e);
  CHECK(contains(e, "16 x 16 pixels of 8 bits in tiles of 4096 x 4096 (16777216 bytes)"));
  CHECK(contains(e, "uncompressed tiles hold 256 bytes"));
  // A valid file may use a tile larger than its page (GDAL's 256 x 256 blocks on a small image do).
  Image im = read_tiff(dir + "/io_tile_32.tif");
  CHECK(im.nx == 16);
  CHECK(im.ny == 16);
  CHECK(im.data == std::vector<float>(256, 0.f));
}

TEST_CASE("strips or pages that share their bytes are bounded by the file's length, not counted twice (fuzzing)") {
  // Summed strip by strip, 16 deflate strips naming one 40 KB region passed for 2^30 samples (4 GB as
  // floats; likely why the tiff fuzz target's memory leapt by 820 MB at one input); pages may share strips
  // the same way.
  const std::string dir = malformed_files("io_tiff_shared");
  std::string e = input_error([&] { TiffStack st(dir + "/io_shared_strips.tif"); });
  CAPTURE(e);
  CHECK(contains(e, "io_shared_strips.tif, page 1: the header claims 1024 x 1024 pixels of 8 bits (1048576 bytes)"));
  CHECK(contains(e, "uncompressed strips hold 7170 bytes"));
  e = input_error([&] { TiffStack st(dir + "/io_shared_strips_deflate.tif"); });
  CAPTURE(e);
  CHECK(contains(e, "(67108864 bytes) from 7250 compressed bytes, beyond any real compression ratio"));
  e = input_error([&] { read_tiff(dir + "/io_shared_pages.tif"); });
  CAPTURE(e);
  CHECK(contains(e, "io_shared_pages.tif, page 4: pages 1-4 claim 4194304 bytes of samples from a file of 1944 bytes"));
}
