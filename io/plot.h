// Small plots for reports: line plots (FSC curves, loss curves) and scatter plots (latent spaces), with
// axes, tick labels, axis labels, a title and a legend, written as PNG (libpng, a built-in 5x7 bitmap
// font; lowercase prints as uppercase, non-ASCII as '?', 'Å' as 'A') or SVG. Files are written under a
// temporary name and renamed.
//
//   io::Plot p;
//   p.title("FSC").xlabel("resolution (1/A)").ylabel("FSC").ylim(-0.1, 1.05);
//   p.add_series("half-maps", freq, fsc);
//   p.add_hline(0.143, "0.143");
//   p.write_png("fsc.png");
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace cugmm::io {

struct PlotSeries {
  std::string name;                 // legend entry; empty = none
  std::vector<double> x, y;
  bool scatter = false;             // points instead of a polyline
  uint32_t color = 0;               // 0xRRGGBB; 0 = next from the palette
  double point_radius = 2;          // pixels, scatter only
  bool dashed = false;
};

class Plot {
 public:
  Plot& title(const std::string& t) { title_ = t; return *this; }
  Plot& xlabel(const std::string& t) { xlabel_ = t; return *this; }
  Plot& ylabel(const std::string& t) { ylabel_ = t; return *this; }
  // Fixed axis ranges; without them the range is the data's, widened to round tick values.
  Plot& xlim(double lo, double hi) { xlo_ = lo; xhi_ = hi; xfixed_ = true; return *this; }
  Plot& ylim(double lo, double hi) { ylo_ = lo; yhi_ = hi; yfixed_ = true; return *this; }
  // x and y must have the same length; non-finite points are skipped (a line breaks there).
  PlotSeries& add_series(const std::string& name, const std::vector<double>& x, const std::vector<double>& y);
  PlotSeries& add_scatter(const std::string& name, const std::vector<double>& x, const std::vector<double>& y);
  PlotSeries& add_hline(double y, const std::string& name);  // a dashed reference line across the plot
  const std::vector<PlotSeries>& series() const { return series_; }

  void write_png(const std::string& path, int width = 800, int height = 560) const;
  void write_svg(const std::string& path, int width = 800, int height = 560) const;

 private:
  struct Layout;
  Layout layout(int width, int height) const;
  std::string title_, xlabel_, ylabel_;
  double xlo_ = 0, xhi_ = 1, ylo_ = 0, yhi_ = 1;
  bool xfixed_ = false, yfixed_ = false;
  std::vector<PlotSeries> series_;
  std::vector<char> hline_;  // per series: 1 when it is a reference line spanning the x range
};

// Round tick positions covering [lo, hi], about `target` of them (1, 2 or 5 times a power of ten).
std::vector<double> nice_ticks(double lo, double hi, int target = 6);

}  // namespace cugmm::io
