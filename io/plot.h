// Figures for reports: line plots (FSC curves, loss curves) and scatter plots (latent spaces, coloured by
// cluster, by a value or by density), with a grid, axis labels, a title, a legend and a colour bar, drawn
// by PLplot (Debian libplplot17 + plplot-driver-cairo) in real fonts: UTF-8 text such as "Å" or "⁻¹"
// prints as written. PNG and PDF come from PLplot's cairo devices; SVG from its own svg device, which
// keeps text as <text> (editable, searchable) where cairo would turn it into outlines. Files are written
// atomically (io/atomic_file.h); every error is a cugmm::Error naming the file.
//
//   io::Plot p;
//   p.title("FSC").xlabel("resolution (Å⁻¹)").ylabel("FSC").ylim(-0.1, 1.05);
//   p.add_series("half-maps", freq, fsc);
//   p.add_hline(0.143, "0.143");
//   p.write("fsc.png");   // or .svg / .pdf; write_png() etc. name the format outright
//
// Sizes are pixels for PNG and points (1/72 in) for SVG and PDF, so the layout is the same in all three.
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
  // Scatter only: when not empty (one per point), each point takes the colour map's colour for its value,
  // the plot gets a colour bar, and points are drawn in increasing value (high values on top).
  std::vector<double> value;
};

enum class PlotFormat { Png, Svg, Pdf };

class Plot {
 public:
  Plot& title(const std::string& t) { title_ = t; return *this; }
  Plot& xlabel(const std::string& t) { xlabel_ = t; return *this; }
  Plot& ylabel(const std::string& t) { ylabel_ = t; return *this; }
  // Fixed axis ranges; without them the range is the data's, widened to round tick values.
  Plot& xlim(double lo, double hi);
  Plot& ylim(double lo, double hi);
  // Logarithmic axes (decades labelled 10^n); points with a coordinate <= 0 are skipped like non-finite ones.
  Plot& xlog(bool on = true) { xlog_ = on; return *this; }
  Plot& ylog(bool on = true) { ylog_ = on; return *this; }
  // The colour bar of value-coloured scatters: its label, a fixed range and a logarithmic scale.
  Plot& colorbar_label(const std::string& t) { clabel_ = t; return *this; }
  Plot& clim(double lo, double hi);
  Plot& clog(bool on = true) { clog_ = on; return *this; }

  // x and y must have the same length; non-finite points are skipped (a line breaks there).
  PlotSeries& add_series(const std::string& name, const std::vector<double>& x, const std::vector<double>& y);
  PlotSeries& add_scatter(const std::string& name, const std::vector<double>& x, const std::vector<double>& y);
  PlotSeries& add_hline(double y, const std::string& name);  // a dashed reference line across the plot
  // Points coloured by `value` through the colour map (viridis), with a colour bar.
  PlotSeries& add_colored_scatter(const std::string& name, const std::vector<double>& x,
                                  const std::vector<double>& y, const std::vector<double>& value);
  // Points coloured by the local density of the points (a smoothed 2-D histogram, relative to its peak),
  // the densest on top: a latent space of 10^5 particles where plain points would be one blot.
  PlotSeries& add_density_scatter(const std::string& name, const std::vector<double>& x,
                                  const std::vector<double>& y);
  // One scatter series per distinct label, named `prefix` + label, in palette colours (clusters).
  void add_clusters(const std::vector<double>& x, const std::vector<double>& y, const std::vector<int>& labels,
                    const std::string& prefix = "cluster ");
  const std::vector<PlotSeries>& series() const { return series_; }

  // The format from the extension (.png, .svg, .pdf, any case); an Error for any other.
  void write(const std::string& path, int width = 800, int height = 560) const;
  void write(const std::string& path, PlotFormat format, int width = 800, int height = 560) const;
  void write_png(const std::string& path, int width = 800, int height = 560) const;
  void write_svg(const std::string& path, int width = 800, int height = 560) const;
  void write_pdf(const std::string& path, int width = 800, int height = 560) const;
  static PlotFormat format_of(const std::string& path);

 private:
  friend class PlotRenderer;
  std::string title_, xlabel_, ylabel_, clabel_;
  double xlo_ = 0, xhi_ = 1, ylo_ = 0, yhi_ = 1, clo_ = 0, chi_ = 1;
  bool xfixed_ = false, yfixed_ = false, cfixed_ = false, xlog_ = false, ylog_ = false, clog_ = false;
  std::vector<PlotSeries> series_;
  std::vector<char> hline_;  // per series: 1 when it is a reference line spanning the x range
};

// Round tick positions covering [lo, hi], about `target` of them (1, 2 or 5 times a power of ten).
std::vector<double> nice_ticks(double lo, double hi, int target = 6);

}  // namespace cugmm::io
