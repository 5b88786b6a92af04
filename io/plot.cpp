#include "io/plot.h"

#include <png.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <sstream>

#include "core/error.h"
#include "io/atomic_file.h"

namespace cugmm::io {

namespace {

// A 5x7 bitmap font, drawn here: one string of 7 rows x 5 columns per glyph ('#' = ink).
struct Glyph {
  char c;
  const char* rows;
};
const Glyph kFont[] = {
  {' ', "....." "....." "....." "....." "....." "....." "....."},
  {'0', ".###." "#...#" "#..##" "#.#.#" "##..#" "#...#" ".###."},
  {'1', "..#.." ".##.." "..#.." "..#.." "..#.." "..#.." ".###."},
  {'2', ".###." "#...#" "....#" "...#." "..#.." ".#..." "#####"},
  {'3', "#####" "...#." "..#.." "...#." "....#" "#...#" ".###."},
  {'4', "...#." "..##." ".#.#." "#..#." "#####" "...#." "...#."},
  {'5', "#####" "#...." "####." "....#" "....#" "#...#" ".###."},
  {'6', "..##." ".#..." "#...." "####." "#...#" "#...#" ".###."},
  {'7', "#####" "....#" "...#." "..#.." ".#..." ".#..." ".#..."},
  {'8', ".###." "#...#" "#...#" ".###." "#...#" "#...#" ".###."},
  {'9', ".###." "#...#" "#...#" ".####" "....#" "...#." ".##.."},
  {'A', ".###." "#...#" "#...#" "#####" "#...#" "#...#" "#...#"},
  {'B', "####." "#...#" "#...#" "####." "#...#" "#...#" "####."},
  {'C', ".###." "#...#" "#...." "#...." "#...." "#...#" ".###."},
  {'D', "###.." "#..#." "#...#" "#...#" "#...#" "#..#." "###.."},
  {'E', "#####" "#...." "#...." "####." "#...." "#...." "#####"},
  {'F', "#####" "#...." "#...." "####." "#...." "#...." "#...."},
  {'G', ".###." "#...#" "#...." "#.###" "#...#" "#...#" ".####"},
  {'H', "#...#" "#...#" "#...#" "#####" "#...#" "#...#" "#...#"},
  {'I', ".###." "..#.." "..#.." "..#.." "..#.." "..#.." ".###."},
  {'J', "..###" "...#." "...#." "...#." "...#." "#..#." ".##.."},
  {'K', "#...#" "#..#." "#.#.." "##..." "#.#.." "#..#." "#...#"},
  {'L', "#...." "#...." "#...." "#...." "#...." "#...." "#####"},
  {'M', "#...#" "##.##" "#.#.#" "#.#.#" "#...#" "#...#" "#...#"},
  {'N', "#...#" "#...#" "##..#" "#.#.#" "#..##" "#...#" "#...#"},
  {'O', ".###." "#...#" "#...#" "#...#" "#...#" "#...#" ".###."},
  {'P', "####." "#...#" "#...#" "####." "#...." "#...." "#...."},
  {'Q', ".###." "#...#" "#...#" "#...#" "#.#.#" "#..#." ".##.#"},
  {'R', "####." "#...#" "#...#" "####." "#.#.." "#..#." "#...#"},
  {'S', ".####" "#...." "#...." ".###." "....#" "....#" "####."},
  {'T', "#####" "..#.." "..#.." "..#.." "..#.." "..#.." "..#.."},
  {'U', "#...#" "#...#" "#...#" "#...#" "#...#" "#...#" ".###."},
  {'V', "#...#" "#...#" "#...#" "#...#" "#...#" ".#.#." "..#.."},
  {'W', "#...#" "#...#" "#...#" "#.#.#" "#.#.#" "#.#.#" ".#.#."},
  {'X', "#...#" "#...#" ".#.#." "..#.." ".#.#." "#...#" "#...#"},
  {'Y', "#...#" "#...#" ".#.#." "..#.." "..#.." "..#.." "..#.."},
  {'Z', "#####" "....#" "...#." "..#.." ".#..." "#...." "#####"},
  {'.', "....." "....." "....." "....." "....." ".##.." ".##.."},
  {',', "....." "....." "....." "....." ".##.." "..#.." ".#..."},
  {'-', "....." "....." "....." "#####" "....." "....." "....."},
  {'+', "....." "..#.." "..#.." "#####" "..#.." "..#.." "....."},
  {'(', "...#." "..#.." ".#..." ".#..." ".#..." "..#.." "...#."},
  {')', ".#..." "..#.." "...#." "...#." "...#." "..#.." ".#..."},
  {'[', ".###." ".#..." ".#..." ".#..." ".#..." ".#..." ".###."},
  {']', ".###." "...#." "...#." "...#." "...#." "...#." ".###."},
  {'/', "....." "....#" "...#." "..#.." ".#..." "#...." "....."},
  {':', "....." ".##.." ".##.." "....." ".##.." ".##.." "....."},
  {'=', "....." "....." "#####" "....." "#####" "....." "....."},
  {'%', "##..." "##..#" "...#." "..#.." ".#..." "#..##" "...##"},
  {'_', "....." "....." "....." "....." "....." "....." "#####"},
  {'<', "...#." "..#.." ".#..." "#...." ".#..." "..#.." "...#."},
  {'>', ".#..." "..#.." "...#." "....#" "...#." "..#.." ".#..."},
  {'*', "....." "..#.." "#.#.#" ".###." "#.#.#" "..#.." "....."},
  {'^', "..#.." ".#.#." "#...#" "....." "....." "....." "....."},
  {'\'', "..#.." "..#.." ".#..." "....." "....." "....." "....."},
  {'#', ".#.#." ".#.#." "#####" ".#.#." "#####" ".#.#." ".#.#."},
  {'!', "..#.." "..#.." "..#.." "..#.." "..#.." "....." "..#.."},
  {'?', ".###." "#...#" "....#" "...#." "..#.." "....." "..#.."},
  {'|', "..#.." "..#.." "..#.." "..#.." "..#.." "..#.." "..#.."},
};

const char* glyph_rows(char c) {
  if (c >= 'a' && c <= 'z') c = char(c - 'a' + 'A');
  for (const Glyph& g : kFont)
    if (g.c == c) return g.rows;
  return glyph_rows('?');
}

// UTF-8 to the font's ASCII: 'Å' (U+00C5) and 'å' print as 'A', other non-ASCII as '?'.
std::string to_ascii(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) { out += char(c); continue; }
    size_t len = (c >= 0xF0) ? 4 : (c >= 0xE0) ? 3 : 2;
    bool angstrom = c == 0xC3 && i + 1 < s.size() && (static_cast<unsigned char>(s[i + 1]) == 0x85 ||
                                                     static_cast<unsigned char>(s[i + 1]) == 0xA5);
    out += angstrom ? 'A' : '?';
    i += len - 1;
  }
  return out;
}

const uint32_t kPalette[] = {0x1f77b4, 0xff7f0e, 0x2ca02c, 0xd62728, 0x9467bd,
                             0x8c564b, 0xe377c2, 0x7f7f7f, 0xbcbd22, 0x17becf};

std::string fmt_tick(double v, double step) {
  if (std::fabs(v) < step * 1e-9) v = 0;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

std::string svg_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '<') o += "&lt;";
    else if (c == '>') o += "&gt;";
    else if (c == '&') o += "&amp;";
    else if (c == '"') o += "&quot;";
    else o += c;
  }
  return o;
}

std::string hex_color(uint32_t c) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "#%06x", c & 0xffffff);
  return buf;
}

// An RGB raster with the few primitives a plot needs.
class Canvas {
 public:
  Canvas(int w, int h) : w_(w), h_(h), px_(size_t(w) * h * 3, 255) {}
  void set(int x, int y, uint32_t c) {
    if (x < 0 || y < 0 || x >= w_ || y >= h_) return;
    unsigned char* p = &px_[(size_t(y) * w_ + x) * 3];
    p[0] = (c >> 16) & 255; p[1] = (c >> 8) & 255; p[2] = c & 255;
  }
  void rect(int x0, int y0, int x1, int y1, uint32_t c) {
    for (int y = y0; y <= y1; ++y)
      for (int x = x0; x <= x1; ++x) set(x, y, c);
  }
  // A line `thick` pixels wide; dashed lines alternate 8 on, 6 off along their length.
  void line(double x0, double y0, double x1, double y1, uint32_t c, int thick = 1, bool dashed = false) {
    double len = std::hypot(x1 - x0, y1 - y0);
    int steps = std::max(1, int(std::ceil(len * 2)));
    for (int i = 0; i <= steps; ++i) {
      double t = double(i) / steps;
      if (dashed && std::fmod(t * len, 14.0) >= 8.0) continue;
      int x = int(std::lround(x0 + t * (x1 - x0))), y = int(std::lround(y0 + t * (y1 - y0)));
      int lo = -(thick - 1) / 2, hi = thick / 2;
      rect(x + lo, y + lo, x + hi, y + hi, c);
    }
  }
  void disc(double cx, double cy, double r, uint32_t c) {
    for (int y = int(std::floor(cy - r)); y <= int(std::ceil(cy + r)); ++y)
      for (int x = int(std::floor(cx - r)); x <= int(std::ceil(cx + r)); ++x)
        if ((x - cx) * (x - cx) + (y - cy) * (y - cy) <= r * r) set(x, y, c);
  }
  static int text_width(const std::string& s, int scale) { return int(to_ascii(s).size()) * 6 * scale - scale; }
  // Text with its top-left at (x, y); `up` draws it rotated a quarter turn, reading bottom to top, with
  // (x, y) its bottom-left.
  void text(int x, int y, const std::string& s, uint32_t c, int scale = 2, bool up = false) {
    std::string a = to_ascii(s);
    for (size_t i = 0; i < a.size(); ++i) {
      const char* g = glyph_rows(a[i]);
      for (int r = 0; r < 7; ++r)
        for (int col = 0; col < 5; ++col) {
          if (g[r * 5 + col] != '#') continue;
          int u = int(i) * 6 * scale + col * scale, v = r * scale;  // along / across the text
          for (int dy = 0; dy < scale; ++dy)
            for (int dx = 0; dx < scale; ++dx) {
              if (up) set(x + v + dy, y - u - dx, c);
              else set(x + u + dx, y + v + dy, c);
            }
        }
    }
  }
  std::string png() const;

 private:
  int w_, h_;
  std::vector<unsigned char> px_;
};

void png_append(png_structp png, png_bytep data, png_size_t n) {
  auto* out = static_cast<std::string*>(png_get_io_ptr(png));
  out->append(reinterpret_cast<const char*>(data), n);
}

std::string Canvas::png() const {
  std::string out;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  CUGMM_REQUIRE(png, "libpng: cannot create a writer");
  png_infop info = png_create_info_struct(png);
  if (!info || setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, info ? &info : nullptr);
    CUGMM_FAIL("libpng: encoding failed");
  }
  png_set_write_fn(png, &out, png_append, nullptr);
  png_set_IHDR(png, info, png_uint_32(w_), png_uint_32(h_), 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  for (int y = 0; y < h_; ++y) png_write_row(png, const_cast<png_bytep>(&px_[size_t(y) * w_ * 3]));
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  return out;
}

}  // namespace

std::vector<double> nice_ticks(double lo, double hi, int target) {
  if (!(hi > lo) || !std::isfinite(lo) || !std::isfinite(hi)) return {lo};
  double raw = (hi - lo) / std::max(1, target);
  double p = std::pow(10.0, std::floor(std::log10(raw)));
  double step = p;
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * p >= raw) { step = m * p; break; }
  std::vector<double> t;
  for (double v = std::ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step) t.push_back(v);
  return t;
}

PlotSeries& Plot::add_series(const std::string& name, const std::vector<double>& x, const std::vector<double>& y) {
  CUGMM_REQUIRE(x.size() == y.size(), "plot: series '" + name + "' has " + std::to_string(x.size()) +
                                          " x values and " + std::to_string(y.size()) + " y values");
  PlotSeries s;
  s.name = name; s.x = x; s.y = y;
  series_.push_back(s);
  hline_.push_back(0);
  return series_.back();
}

PlotSeries& Plot::add_scatter(const std::string& name, const std::vector<double>& x, const std::vector<double>& y) {
  PlotSeries& s = add_series(name, x, y);
  s.scatter = true;
  return s;
}

PlotSeries& Plot::add_hline(double y, const std::string& name) {
  PlotSeries& s = add_series(name, {0, 0}, {y, y});
  s.dashed = true;
  s.color = 0x555555;
  hline_.back() = 1;
  return s;
}

struct Plot::Layout {
  int left, top, right, bottom;  // the plot area in pixels
  double xlo, xhi, ylo, yhi;
  std::vector<double> xt, yt;
  double sx(double x) const { return left + (x - xlo) / (xhi - xlo) * (right - left); }
  double sy(double y) const { return bottom - (y - ylo) / (yhi - ylo) * (bottom - top); }
};

Plot::Layout Plot::layout(int width, int height) const {
  Layout L;
  L.left = 90; L.right = width - 24; L.top = title_.empty() ? 24 : 50; L.bottom = height - 64;
  CUGMM_REQUIRE(L.right - L.left > 40 && L.bottom - L.top > 40, "plot: the image is too small");
  double xlo = 1e300, xhi = -1e300, ylo = 1e300, yhi = -1e300;
  for (size_t i = 0; i < series_.size(); ++i)
    for (size_t k = 0; k < series_[i].x.size(); ++k) {
      double x = series_[i].x[k], y = series_[i].y[k];
      if (!std::isfinite(x) || !std::isfinite(y)) continue;
      if (!hline_[i]) { xlo = std::min(xlo, x); xhi = std::max(xhi, x); }
      ylo = std::min(ylo, y); yhi = std::max(yhi, y);
    }
  auto widen = [](double& lo, double& hi) {
    if (lo > hi) { lo = 0; hi = 1; }
    if (hi - lo < 1e-12 * std::max(1.0, std::fabs(hi))) { lo -= 0.5; hi += 0.5; }
    std::vector<double> t = nice_ticks(lo, hi);
    double step = t.size() > 1 ? t[1] - t[0] : 1;
    lo = std::floor(lo / step + 1e-9) * step;
    hi = std::ceil(hi / step - 1e-9) * step;
  };
  if (xfixed_) { xlo = xlo_; xhi = xhi_; } else widen(xlo, xhi);
  if (yfixed_) { ylo = ylo_; yhi = yhi_; } else widen(ylo, yhi);
  CUGMM_REQUIRE(xhi > xlo && yhi > ylo, "plot: an axis range is empty");
  L.xlo = xlo; L.xhi = xhi; L.ylo = ylo; L.yhi = yhi;
  L.xt = nice_ticks(xlo, xhi);
  L.yt = nice_ticks(ylo, yhi);
  return L;
}

void Plot::write_png(const std::string& path, int width, int height) const {
  Layout L = layout(width, height);
  Canvas cv(width, height);
  const uint32_t ink = 0x000000, grid = 0xe4e4e4;
  for (double t : L.xt) cv.line(L.sx(t), L.top, L.sx(t), L.bottom, grid);
  for (double t : L.yt) cv.line(L.left, L.sy(t), L.right, L.sy(t), grid);
  double xstep = L.xt.size() > 1 ? L.xt[1] - L.xt[0] : 1, ystep = L.yt.size() > 1 ? L.yt[1] - L.yt[0] : 1;
  for (double t : L.xt) {
    std::string s = fmt_tick(t, xstep);
    cv.line(L.sx(t), L.bottom, L.sx(t), L.bottom + 5, ink);
    cv.text(int(L.sx(t)) - Canvas::text_width(s, 2) / 2, L.bottom + 9, s, ink);
  }
  for (double t : L.yt) {
    std::string s = fmt_tick(t, ystep);
    cv.line(L.left - 5, L.sy(t), L.left, L.sy(t), ink);
    cv.text(L.left - 9 - Canvas::text_width(s, 2), int(L.sy(t)) - 7, s, ink);
  }
  // Series, clipped to the plot area by drawing only segments whose ends are both inside.
  auto inside = [&](double x, double y) {
    return x >= L.xlo && x <= L.xhi && y >= L.ylo && y <= L.yhi && std::isfinite(x) && std::isfinite(y);
  };
  int auto_color = 0;
  std::vector<uint32_t> colors;
  for (size_t i = 0; i < series_.size(); ++i) {
    const PlotSeries& s = series_[i];
    uint32_t c = s.color ? s.color : kPalette[auto_color++ % 10];
    colors.push_back(c);
    if (hline_[i]) {
      if (s.y[0] >= L.ylo && s.y[0] <= L.yhi) cv.line(L.left, L.sy(s.y[0]), L.right, L.sy(s.y[0]), c, 1, true);
      continue;
    }
    for (size_t k = 0; k < s.x.size(); ++k) {
      if (!inside(s.x[k], s.y[k])) continue;
      if (s.scatter) cv.disc(L.sx(s.x[k]), L.sy(s.y[k]), s.point_radius, c);
      else if (k + 1 < s.x.size() && inside(s.x[k + 1], s.y[k + 1]))
        cv.line(L.sx(s.x[k]), L.sy(s.y[k]), L.sx(s.x[k + 1]), L.sy(s.y[k + 1]), c, 2, s.dashed);
    }
  }
  cv.line(L.left, L.top, L.left, L.bottom, ink);
  cv.line(L.left, L.bottom, L.right, L.bottom, ink);
  cv.line(L.right, L.top, L.right, L.bottom, ink);
  cv.line(L.left, L.top, L.right, L.top, ink);
  if (!title_.empty()) cv.text((width - Canvas::text_width(title_, 2)) / 2, 16, title_, ink);
  cv.text((L.left + L.right - Canvas::text_width(xlabel_, 2)) / 2, height - 26, xlabel_, ink);
  cv.text(14, (L.top + L.bottom + Canvas::text_width(ylabel_, 2)) / 2, ylabel_, ink, 2, true);
  // Legend, top right inside the plot area.
  int row = 0, lw = 0;
  for (const PlotSeries& s : series_) lw = std::max(lw, s.name.empty() ? 0 : Canvas::text_width(s.name, 2));
  if (lw > 0) {
    int x0 = L.right - lw - 48, y0 = L.top + 8;
    int rows = 0;
    for (const PlotSeries& s : series_) rows += !s.name.empty();
    cv.rect(x0 - 6, y0 - 4, L.right - 6, y0 + rows * 20, 0xffffff);
    for (size_t i = 0; i < series_.size(); ++i) {
      if (series_[i].name.empty()) continue;
      int y = y0 + row * 20 + 7;
      if (series_[i].scatter) cv.disc(x0 + 12, y, 4, colors[i]);
      else cv.line(x0, y, x0 + 26, y, colors[i], 2, series_[i].dashed);
      cv.text(x0 + 34, y - 7, series_[i].name, ink);
      ++row;
    }
  }
  write_file_atomic(path, cv.png());
}

void Plot::write_svg(const std::string& path, int width, int height) const {
  Layout L = layout(width, height);
  std::ostringstream o;
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << height
    << "\" viewBox=\"0 0 " << width << " " << height << "\" font-family=\"sans-serif\" font-size=\"13\">\n"
    << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  double xstep = L.xt.size() > 1 ? L.xt[1] - L.xt[0] : 1, ystep = L.yt.size() > 1 ? L.yt[1] - L.yt[0] : 1;
  for (double t : L.xt)
    o << "<line x1=\"" << L.sx(t) << "\" y1=\"" << L.top << "\" x2=\"" << L.sx(t) << "\" y2=\"" << L.bottom + 5
      << "\" stroke=\"#e4e4e4\"/>\n<text x=\"" << L.sx(t) << "\" y=\"" << L.bottom + 22
      << "\" text-anchor=\"middle\">" << fmt_tick(t, xstep) << "</text>\n";
  for (double t : L.yt)
    o << "<line x1=\"" << L.left - 5 << "\" y1=\"" << L.sy(t) << "\" x2=\"" << L.right << "\" y2=\"" << L.sy(t)
      << "\" stroke=\"#e4e4e4\"/>\n<text x=\"" << L.left - 9 << "\" y=\"" << L.sy(t) + 4
      << "\" text-anchor=\"end\">" << fmt_tick(t, ystep) << "</text>\n";
  o << "<defs><clipPath id=\"area\"><rect x=\"" << L.left << "\" y=\"" << L.top << "\" width=\"" << L.right - L.left
    << "\" height=\"" << L.bottom - L.top << "\"/></clipPath></defs>\n<g clip-path=\"url(#area)\">\n";
  int auto_color = 0;
  std::vector<uint32_t> colors;
  for (size_t i = 0; i < series_.size(); ++i) {
    const PlotSeries& s = series_[i];
    uint32_t c = s.color ? s.color : kPalette[auto_color++ % 10];
    colors.push_back(c);
    std::string dash = s.dashed ? " stroke-dasharray=\"8,6\"" : "";
    if (hline_[i]) {
      o << "<line x1=\"" << L.left << "\" y1=\"" << L.sy(s.y[0]) << "\" x2=\"" << L.right << "\" y2=\""
        << L.sy(s.y[0]) << "\" stroke=\"" << hex_color(c) << "\"" << dash << "/>\n";
      continue;
    }
    if (s.scatter) {
      for (size_t k = 0; k < s.x.size(); ++k)
        if (std::isfinite(s.x[k]) && std::isfinite(s.y[k]))
          o << "<circle cx=\"" << L.sx(s.x[k]) << "\" cy=\"" << L.sy(s.y[k]) << "\" r=\"" << s.point_radius
            << "\" fill=\"" << hex_color(c) << "\"/>\n";
      continue;
    }
    // A polyline per finite run.
    std::string pts;
    auto flush = [&] {
      if (!pts.empty())
        o << "<polyline fill=\"none\" stroke-width=\"2\" stroke=\"" << hex_color(c) << "\"" << dash
          << " points=\"" << pts << "\"/>\n";
      pts.clear();
    };
    for (size_t k = 0; k < s.x.size(); ++k) {
      if (!std::isfinite(s.x[k]) || !std::isfinite(s.y[k])) { flush(); continue; }
      pts += std::to_string(L.sx(s.x[k])) + "," + std::to_string(L.sy(s.y[k])) + " ";
    }
    flush();
  }
  o << "</g>\n<rect x=\"" << L.left << "\" y=\"" << L.top << "\" width=\"" << L.right - L.left << "\" height=\""
    << L.bottom - L.top << "\" fill=\"none\" stroke=\"black\"/>\n";
  if (!title_.empty())
    o << "<text x=\"" << width / 2 << "\" y=\"30\" text-anchor=\"middle\" font-size=\"16\">" << svg_escape(title_)
      << "</text>\n";
  o << "<text x=\"" << (L.left + L.right) / 2 << "\" y=\"" << height - 16 << "\" text-anchor=\"middle\">"
    << svg_escape(xlabel_) << "</text>\n";
  o << "<text transform=\"translate(22," << (L.top + L.bottom) / 2 << ") rotate(-90)\" text-anchor=\"middle\">"
    << svg_escape(ylabel_) << "</text>\n";
  int row = 0;
  for (size_t i = 0; i < series_.size(); ++i) {
    if (series_[i].name.empty()) continue;
    double y = L.top + 16 + row * 20, x = L.right - 200;
    if (series_[i].scatter)
      o << "<circle cx=\"" << x + 12 << "\" cy=\"" << y << "\" r=\"4\" fill=\"" << hex_color(colors[i]) << "\"/>\n";
    else
      o << "<line x1=\"" << x << "\" y1=\"" << y << "\" x2=\"" << x + 26 << "\" y2=\"" << y << "\" stroke=\""
        << hex_color(colors[i]) << "\" stroke-width=\"2\"" << (series_[i].dashed ? " stroke-dasharray=\"8,6\"" : "")
        << "/>\n";
    o << "<text x=\"" << x + 34 << "\" y=\"" << y + 4 << "\">" << svg_escape(series_[i].name) << "</text>\n";
    ++row;
  }
  o << "</svg>\n";
  write_file_atomic(path, o.str());
}

}  // namespace cugmm::io
