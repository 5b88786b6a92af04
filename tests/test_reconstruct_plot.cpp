// io/plot: the PNG and SVG line/scatter plots the reconstruct command (FSC) and later commands (loss
// curves, latent spaces) write. Checked by decoding the PNG with libpng and by reading the SVG text.
#include <doctest/doctest.h>
#include <png.h>

#include <cmath>
#include <cstring>
#include <cstdio>
#include <string>
#include <vector>

#include "core/error.h"
#include "io/plot.h"
#include "support.h"

using namespace cugmm;

namespace {

struct Rgb {
  int w = 0, h = 0;
  std::vector<unsigned char> px;
  unsigned at(int x, int y) const {
    const unsigned char* p = &px[(size_t(y) * w + x) * 3];
    return (unsigned(p[0]) << 16) | (unsigned(p[1]) << 8) | p[2];
  }
};

Rgb read_png(const std::string& path) {
  png_image im;
  std::memset(&im, 0, sizeof im);
  im.version = PNG_IMAGE_VERSION;
  REQUIRE(png_image_begin_read_from_file(&im, path.c_str()));
  im.format = PNG_FORMAT_RGB;
  Rgb r;
  r.w = int(im.width);
  r.h = int(im.height);
  r.px.resize(PNG_IMAGE_SIZE(im));
  REQUIRE(png_image_finish_read(&im, nullptr, r.px.data(), 0, nullptr));
  return r;
}

long count_color(const Rgb& r, unsigned c, int x0 = 0, int y0 = 0, int x1 = -1, int y1 = -1) {
  if (x1 < 0) x1 = r.w - 1;
  if (y1 < 0) y1 = r.h - 1;
  long n = 0;
  for (int y = y0; y <= y1; ++y)
    for (int x = x0; x <= x1; ++x) n += r.at(x, y) == c;
  return n;
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

TEST_CASE("a PNG line plot draws each series in its colour inside the axes, with text and legend") {
  std::string dir = test::scratch_dir("plot_png");
  io::Plot p;
  p.title("FSC").xlabel("resolution (1/Å)").ylabel("correlation").ylim(-0.1, 1.05);
  std::vector<double> x, y1, y2;
  for (int i = 0; i <= 50; ++i) {
    x.push_back(i * 0.01);
    y1.push_back(std::exp(-i / 20.0));
    y2.push_back(0.5);
  }
  p.add_series("decay", x, y1).color = 0xff0000;
  p.add_series("flat", x, y2).color = 0x00a000;
  p.add_hline(0.143, "0.143");
  std::string path = dir + "/fsc.png";
  p.write_png(path, 640, 480);
  Rgb im = read_png(path);
  CHECK(im.w == 640);
  CHECK(im.h == 480);
  CHECK(count_color(im, 0xff0000) > 300);  // the decay curve (and its legend swatch)
  CHECK(count_color(im, 0x00a000) > 300);
  CHECK(count_color(im, 0x555555) > 100);  // the dashed reference line
  // The flat series at y = 0.5 lies on one row band: find green on the row where 0.5 maps.
  // Plot area: left 90, right 616, top 50, bottom 416 (see Plot::layout).
  double y05 = 416 - (0.5 + 0.1) / 1.15 * (416 - 50);
  CHECK(count_color(im, 0x00a000, 100, int(y05) - 2, 400, int(y05) + 2) > 250);
  // Text and axes are black: tick labels left of the plot area, the title above it.
  CHECK(count_color(im, 0x000000, 0, 0, 88, 479) > 200);
  CHECK(count_color(im, 0x000000, 0, 0, 639, 40) > 50);
}

TEST_CASE("a scatter plot and its SVG variant") {
  std::string dir = test::scratch_dir("plot_scatter");
  io::Plot p;
  p.title("latent space").xlabel("z1").ylabel("z2");
  std::vector<double> x = {-1, 0, 1, 2, NAN}, y = {3, -2, 0.5, 1, 1};
  p.add_scatter("particles", x, y).color = 0x0000ff;
  p.write_png(dir + "/s.png", 400, 300);
  Rgb im = read_png(dir + "/s.png");
  CHECK(count_color(im, 0x0000ff) >= 4 * 9);  // four finite points of radius 2 (the NaN skipped)
  p.write_svg(dir + "/s.svg");
  std::string svg = test::read_text(dir + "/s.svg");
  CHECK(svg.find("<svg") == 0);
  size_t circles = 0;
  for (size_t pos = 0; (pos = svg.find("<circle", pos)) != std::string::npos; ++pos) ++circles;
  CHECK(circles == 4 + 1);  // four points and the legend marker
  CHECK(svg.find("latent space") != std::string::npos);
  CHECK(svg.find("</svg>") != std::string::npos);
}

TEST_CASE("mismatched series lengths are an error") {
  io::Plot p;
  CHECK_THROWS_AS(p.add_series("bad", {1, 2, 3}, {1, 2}), Error);
}
