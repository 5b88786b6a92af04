// io/plot: the figures the reconstruct and score commands (FSC) and later commands (loss curves, latent
// spaces) write through PLplot. Checked from outside: Debian's python3 decodes the PNG with zlib and numpy
// (signature, size, pixel statistics, where a curve lands), parses the SVG as XML (the text as written,
// "Å" included), and reads the PDF header.
#include <doctest/doctest.h>

#include <chrono>
#include <ctime>
#include <cmath>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "io/plot.h"
#include "support.h"

using namespace cugmm;

namespace {

// A PNG decoder in python3 with zlib and numpy (no imaging library): `stats.py IMAGE COLOR...` writes
// "key value" lines: width, height, the grey-level standard deviation, for each colour the pixels within 40
// of it per channel and the row holding most of them.
const char* kPngStats = R"PY(
import sys, zlib, struct
import numpy as np
data = open(sys.argv[1], 'rb').read()
assert data[:8] == b'\x89PNG\r\n\x1a\n', 'not a PNG signature'
pos, idat = 8, b''
while pos < len(data):
    n, kind = struct.unpack('>I4s', data[pos:pos + 8])
    body = data[pos + 8:pos + 8 + n]
    if kind == b'IHDR':
        w, h, depth, ctype = struct.unpack('>IIBB', body[:10])
    elif kind == b'IDAT':
        idat += body
    pos += 12 + n
assert depth == 8 and ctype in (2, 6), (depth, ctype)
bpp = 3 if ctype == 2 else 4
raw, stride = zlib.decompress(idat), w * bpp
img, prev = np.zeros((h, stride), np.uint8), np.zeros(stride, np.int64)
for y in range(h):
    f = raw[y * (stride + 1)]
    line = np.frombuffer(raw, np.uint8, stride, y * (stride + 1) + 1).astype(np.int64)
    if f == 1:
        line = np.cumsum(line.reshape(w, bpp), axis=0).reshape(-1) & 255
    elif f == 2:
        line = (line + prev) & 255
    elif f in (3, 4):  # these depend on the decoded byte to the left: one byte at a time
        out, b = line.tolist(), prev.tolist()
        for i in range(stride):
            a = out[i - bpp] if i >= bpp else 0
            if f == 3:
                out[i] = (out[i] + (a + b[i]) // 2) & 255
            else:
                c = b[i - bpp] if i >= bpp else 0
                p = a + b[i] - c
                pa, pb, pc = abs(p - a), abs(p - b[i]), abs(p - c)
                out[i] = (out[i] + (a if pa <= pb and pa <= pc else b[i] if pb <= pc else c)) & 255
        line = np.array(out, np.int64)
    img[y], prev = line, line
rgb = img.reshape(h, w, bpp)[:, :, :3].astype(np.int64)
out = open('stats.txt', 'w')
out.write('width %d\nheight %d\nstd %f\n' % (w, h, rgb.mean(axis=2).std()))
for col in sys.argv[2:]:
    c = np.array([int(col[i:i + 2], 16) for i in (0, 2, 4)])
    per_row = (np.abs(rgb - c) <= 40).all(axis=2).sum(axis=1)
    out.write('n_%s %d\nrow_%s %d\n' % (col, per_row.sum(), col, per_row.argmax()))
)PY";

std::map<std::string, double> png_stats(const std::string& dir, const std::string& png, const std::string& colors) {
  test::write_text(dir + "/stats.py", kPngStats);
  test::RunResult r = test::run(std::string(test::kPython) + " stats.py " + png + " " + colors, dir);
  INFO(r.out);
  REQUIRE(r.status == 0);
  std::map<std::string, double> m;
  std::istringstream in(test::read_text(dir + "/stats.txt"));
  std::string k;
  double v;
  while (in >> k >> v) m[k] = v;
  return m;
}

// The text of every <text> element of an SVG, as XML parsers read it, one per line.
std::string svg_text(const std::string& dir, const std::string& svg) {
  test::python(dir, "import xml.etree.ElementTree as ET\n"
                    "root = ET.parse('" + svg + "').getroot()\n"
                    "assert root.tag.endswith('svg'), root.tag\n"
                    "texts = [''.join(e.itertext()) for e in root.iter() if e.tag.endswith('text')]\n"
                    "open('text.txt', 'w', encoding='utf-8').write('\\n'.join(texts))\n");
  return test::read_text(dir + "/text.txt");
}

io::Plot fsc_plot() {
  io::Plot p;
  p.title("FSC of half-maps #3").xlabel("resolution (Å⁻¹)").ylabel("correlation").ylim(-0.1, 1.05);
  std::vector<double> x, y1, y2;
  for (int i = 0; i <= 50; ++i) {
    x.push_back(i * 0.01);
    y1.push_back(std::exp(-i / 20.0));
    y2.push_back(0.5);
  }
  p.add_series("decay", x, y1).color = 0xff0000;
  p.add_series("flat", x, y2).color = 0x00a000;
  p.add_hline(0.143, "0.143");
  return p;
}

}  // namespace

TEST_CASE("nice_ticks: round steps covering the range") {
  std::vector<double> t = io::nice_ticks(0, 1);
  REQUIRE(t.size() >= 4);
  CHECK(t.front() == doctest::Approx(0));
  CHECK(t.back() == doctest::Approx(1));
  CHECK(t[1] - t[0] == doctest::Approx(0.2));
  t = io::nice_ticks(-3.7, 112.0);
  CHECK(t.front() >= -3.7);
  CHECK(t.back() <= 112.0);
  CHECK(t[1] - t[0] == doctest::Approx(20));
}

TEST_CASE("a PNG line plot: the size asked for, not blank, each series in its colour where its values map") {
  if (!test::oracle(test::kPython)) return;
  std::string dir = test::scratch_dir("plot_png");
  fsc_plot().write(dir + "/fsc.png", 640, 480);
  auto s = png_stats(dir, "fsc.png", "ff0000 00a000");
  CHECK(s["width"] == 640);
  CHECK(s["height"] == 480);
  CHECK(s["std"] > 10);  // white page with ink on it
  CHECK(s["n_ff0000"] > 200);
  CHECK(s["n_00a000"] > 200);
  // The flat series (y = 0.5) is a horizontal line: its row follows from the viewport (13%..90% of the
  // height, bottom up, with a title) and the fixed y range -0.1..1.05.
  double row = 480 * (1 - (0.13 + (0.5 + 0.1) / 1.15 * (0.90 - 0.13)));
  CHECK(std::fabs(s["row_00a000"] - row) <= 3);
}

TEST_CASE("an SVG keeps its text as written: title, lower case, Å and ⁻¹, '#', legend entries") {
  if (!test::oracle(test::kPython)) return;
  std::string dir = test::scratch_dir("plot_svg");
  fsc_plot().write(dir + "/fsc.svg");
  std::string text = svg_text(dir, "fsc.svg");
  INFO(text);
  CHECK(test::contains(text, "FSC of half-maps #3"));
  CHECK(test::contains(text, "resolution (Å⁻¹)"));
  CHECK(test::contains(text, "correlation"));
  CHECK(test::contains(text, "decay"));
  CHECK(test::contains(text, "0.143"));
}

TEST_CASE("a PDF, and the format chosen by the extension") {
  std::string dir = test::scratch_dir("plot_pdf");
  io::Plot p = fsc_plot();
  p.write(dir + "/fsc.PDF");
  std::string pdf = test::read_text(dir + "/fsc.PDF");
  CHECK(pdf.rfind("%PDF-", 0) == 0);
  CHECK(test::contains(pdf.substr(pdf.size() - 16), "%%EOF"));
  CHECK(test::contains(pdf, "/FontName"));  // text in an embedded font, not strokes
  p.write_pdf(dir + "/named.anything");
  CHECK(test::read_text(dir + "/named.anything").rfind("%PDF-", 0) == 0);
  p.write(dir + "/x.svg");
  CHECK(test::read_text(dir + "/x.svg").find("<svg") != std::string::npos);
}

TEST_CASE("errors name the file: unknown extension, unwritable directory, bad sizes and limits") {
  std::string dir = test::scratch_dir("plot_errors");
  io::Plot p = fsc_plot();
  auto message = [](auto&& f) {
    try {
      f();
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  CHECK(test::contains(message([&] { p.write(dir + "/fsc.jpg"); }), "fsc.jpg"));
  CHECK(test::contains(message([&] { p.write(dir + "/missing/fsc.png"); }), dir + "/missing/fsc.png"));
  CHECK(test::contains(message([&] { p.write(dir + "/tiny.png", 10, 10); }), "tiny.png"));
  CHECK_THROWS_AS(p.add_series("bad", {1, 2, 3}, {1, 2}), Error);
  CHECK_THROWS_AS(p.xlim(1, NAN), Error);
  io::Plot log;
  log.ylog().ylim(0, 1);
  log.add_series("loss", {1, 2}, {1, 0.1});
  CHECK(test::contains(message([&] { log.write(dir + "/log.svg"); }), "> 0"));
  // A failed plot leaves PLplot usable and no temporary files behind.
  p.write(dir + "/after.svg");
  CHECK(test::run("ls " + dir).out == "after.svg\n");
}

TEST_CASE("many plots in one program: each its own PLplot stream, ended (PLplot has 100 slots)") {
  std::string dir = test::scratch_dir("plot_many");
  io::Plot p;
  p.add_series("line", {0, 1}, {0, 1});
  for (int i = 0; i < 110; ++i) p.write_svg(dir + "/p.svg", 200, 150);
  CHECK(test::read_text(dir + "/p.svg").find("<svg") != std::string::npos);
}

TEST_CASE("a latent space of 100,000 points coloured by density, with a colour bar, in a few seconds") {
  if (!test::oracle(test::kPython)) return;
  std::string dir = test::scratch_dir("plot_latent");
  std::mt19937 rng(3);
  std::normal_distribution<double> g(0, 1);
  std::vector<double> x, y;
  std::vector<int> label;
  for (int i = 0; i < 100000; ++i) {
    int c = i % 3;
    x.push_back(g(rng) * 0.6 + 2.5 * c);
    y.push_back(g(rng) * 0.6 + (c == 1 ? 2.0 : 0.0));
    label.push_back(c);
  }
  io::Plot p;
  p.title("latent space").xlabel("z₁").ylabel("z₂");
  p.add_density_scatter("particles", x, y);
  // CPU time, not wall time: the machines that run the tests are shared, and drawing is one thread.
  auto t0 = std::chrono::steady_clock::now();
  std::clock_t c0 = std::clock();
  p.write(dir + "/density.png");
  double cpu = double(std::clock() - c0) / CLOCKS_PER_SEC;
  double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  MESSAGE("100,000-point density scatter to PNG: " << cpu << " s CPU, " << wall << " s wall");
  CHECK(cpu < 3);
  // viridis' ends: the sparse rim dark purple, the three dense cores yellow.
  auto s = png_stats(dir, "density.png", "440154 fde725");
  CHECK(s["std"] > 10);
  CHECK(s["n_440154"] > 500);
  CHECK(s["n_fde725"] > 200);

  // Coloured by cluster: each in its palette colour, in the PNG; the legend's text in a (smaller) SVG.
  io::Plot c;
  c.title("clusters").xlabel("z₁").ylabel("z₂");
  c.add_clusters(x, y, label);
  c.write(dir + "/clusters.png", 480, 360);
  s = png_stats(dir, "clusters.png", "1f77b4 ff7f0e 2ca02c");
  CHECK(s["n_1f77b4"] > 1000);
  CHECK(s["n_ff7f0e"] > 1000);
  CHECK(s["n_2ca02c"] > 1000);
  io::Plot few;
  few.add_clusters(std::vector<double>(x.begin(), x.begin() + 3000), std::vector<double>(y.begin(), y.begin() + 3000),
                   std::vector<int>(label.begin(), label.begin() + 3000), "class ");
  few.write(dir + "/clusters.svg", 600, 450);
  std::string text = svg_text(dir, "clusters.svg");
  CHECK(test::contains(text, "class 0"));
  CHECK(test::contains(text, "class 2"));
}

TEST_CASE("log axes: a loss curve over decades, points <= 0 skipped; a log colour bar") {
  if (!test::oracle(test::kPython)) return;
  std::string dir = test::scratch_dir("plot_log");
  std::vector<double> step, loss;
  for (int i = 1; i <= 1000; ++i) {
    step.push_back(i);
    loss.push_back(i == 500 ? 0.0 : 2.0 / std::sqrt(double(i)));
  }
  io::Plot p;
  p.title("training").xlabel("step").ylabel("loss").xlog().ylog();
  p.add_series("train", step, loss).color = 0x0000ff;
  p.write(dir + "/loss.png", 500, 400);
  auto s = png_stats(dir, "loss.png", "0000ff");
  CHECK(s["n_0000ff"] > 150);

  // A colour bar on a log scale: values over four decades spread over the whole colour map.
  std::vector<double> x, y, v;
  for (int i = 0; i < 400; ++i) {
    x.push_back(i % 20);
    y.push_back(i / 20);
    v.push_back(std::pow(10.0, i / 100.0));
  }
  io::Plot c;
  c.xlabel("x").ylabel("y").colorbar_label("error (Å)").clog();
  c.add_colored_scatter("", x, y, v).point_radius = 4;
  c.write(dir + "/clog.png", 500, 400);
  s = png_stats(dir, "clog.png", "440154 21918c fde725");
  CHECK(s["n_440154"] > 300);
  CHECK(s["n_21918c"] > 300);
  CHECK(s["n_fde725"] > 300);
}
