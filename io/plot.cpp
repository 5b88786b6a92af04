#include "io/plot.h"

#include <plplot.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <numeric>

#include "core/error.h"
#include "io/atomic_file.h"

namespace cugmm::io {

namespace {

const uint32_t kPalette[] = {0x1f77b4, 0xff7f0e, 0x2ca02c, 0xd62728, 0x9467bd,
                             0x8c564b, 0xe377c2, 0x7f7f7f, 0xbcbd22, 0x17becf};

// cmap0 indices this file reserves; series take kFirstSeries + i.
enum : PLINT { kWhite = 0, kBlack = 1, kGrid = 2, kFrame = 3, kMidMap = 4, kFirstSeries = 16 };

// Above this many points in a series its markers are squares, not 12-sided discs: cairo fills axis-aligned
// rectangles on a fast path (10^5 points: 0.25 s of CPU as squares, about 3x that as 12-gons, pngcairo on
// the reference machine), and at that density the shape is not seen.
constexpr size_t kDiscMarkersMax = 5000;
// Colour-mapped points are drawn in this many colour steps, one colour change per step, not per point.
constexpr int kColorSteps = 128;
// The density of add_density_scatter: a histogram of kDensityBins^2 cells over the points' range,
// smoothed twice by the binomial kernel [1 4 6 4 1]/16 (a Gaussian of about 1.4 cells).
constexpr int kDensityBins = 96;
// The margin around scatter plots' points, as a fraction of the data range on each side.
constexpr double kScatterMargin = 0.04;

// PLplot keeps its streams, its error handlers and its device table in globals: one plot at a time.
std::mutex& plplot_mutex() {
  static std::mutex m;
  return m;
}

// The file being drawn, for the error handlers (set under the mutex).
std::string g_path;
std::string g_abort;  // the first non-fatal PLplot error of this plot

// PLplot's fatal errors would end the process (plexit calls exit()); this handler runs first and turns
// them into an exception. Debian builds C with unwind tables, so it crosses PLplot's frames.
int on_plplot_exit(PLCHAR_VECTOR msg) {
  throw Error("cannot draw the plot " + g_path + ": PLplot: " + std::string(msg ? msg : "fatal error"));
}
void on_plplot_abort(PLCHAR_VECTOR msg) {
  if (g_abort.empty()) g_abort = msg ? msg : "error";
}

// PLplot reads '#' as its text escape (#u superscript, #d subscript): user text prints literally.
std::string literal(const std::string& s) {
  std::string o;
  for (char c : s) {
    o += c;
    if (c == '#') o += '#';
  }
  return o;
}

const char* device_of(PlotFormat f) {
  switch (f) {
    case PlotFormat::Png: return "pngcairo";
    case PlotFormat::Pdf: return "pdfcairo";
    case PlotFormat::Svg: return "svg";
  }
  return "";
}

void require_device(const char* dev, const std::string& path) {
  // An unknown name in plsdev makes plinit prompt on stdin for another: ask the table first.
  std::vector<const char*> menu_v(256), name_v(256);
  const char** menus = menu_v.data();
  const char** names = name_v.data();
  int n = 256;  // in: room; out: devices found
  plgDevs(&menus, &names, &n);
  for (int i = 0; i < n; ++i)
    if (std::string(names[i]) == dev) return;
  throw Error("cannot write the plot " + path + ": PLplot has no '" + dev +
              "' device (install Debian's plplot-driver-cairo)");
}

// The bytes PLplot writes go to memory (open_memstream), then to the file atomically. Once plinit has
// run, the stream owns the FILE: its driver closes it in plend1, and open_memstream's buffer then holds
// everything written.
class MemFile {
 public:
  MemFile() : f_(open_memstream(&buf_, &len_)) { CUGMM_REQUIRE(f_, "plot: open_memstream failed"); }
  ~MemFile() {
    if (f_) std::fclose(f_);
    std::free(buf_);
  }
  MemFile(const MemFile&) = delete;
  MemFile& operator=(const MemFile&) = delete;
  FILE* hand_to_plplot() {
    FILE* f = f_;
    f_ = nullptr;
    return f;
  }
  std::string bytes() const { return buf_ ? std::string(buf_, len_) : std::string(); }

 private:
  char* buf_ = nullptr;
  size_t len_ = 0;
  FILE* f_;
};

// A fresh PLplot stream for one plot, ended (its slot freed) and the previous stream restored after.
class Stream {
 public:
  Stream() {
    plgstrm(&prev_);
    plmkstrm(&id_);
  }
  ~Stream() {
    plend1();
    plsstrm(prev_);
  }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

 private:
  PLINT prev_ = 0, id_ = 0;
};

void set_color(PLINT index, uint32_t rgb) {
  plscol0(index, PLINT((rgb >> 16) & 255), PLINT((rgb >> 8) & 255), PLINT(rgb & 255));
}

// viridis at five stops, interpolated in RGB by PLplot: perceptually even, readable in grey and by the
// colour blind.
void set_viridis() {
  const PLFLT pos[5] = {0, 0.25, 0.5, 0.75, 1};
  const PLFLT r[5] = {0x44 / 255.0, 0x3b / 255.0, 0x21 / 255.0, 0x5e / 255.0, 0xfd / 255.0};
  const PLFLT g[5] = {0x01 / 255.0, 0x52 / 255.0, 0x91 / 255.0, 0xc9 / 255.0, 0xe7 / 255.0};
  const PLFLT b[5] = {0x54 / 255.0, 0x8b / 255.0, 0x8c / 255.0, 0x62 / 255.0, 0x25 / 255.0};
  plscmap1n(256);
  plscmap1l(1, 5, pos, r, g, b, nullptr);
}

// Axis limits from the data range (values already log10 on a log axis). Curves get round limits: whole
// tick steps, whole decades on a log axis. Scatters get a margin of kScatterMargin of the range instead,
// so that points on the extremes are not cut in half by the frame. Returns the tick step for plbox
// (0 = PLplot's own choice, for log axes).
double axis_range(double& lo, double& hi, bool fixed, bool log, bool scatter) {
  if (lo > hi) { lo = 0; hi = 1; }
  if (hi - lo < 1e-12 * std::max(1.0, std::fabs(hi))) { lo -= 0.5; hi += 0.5; }
  if (!fixed && scatter) {
    double pad = kScatterMargin * (hi - lo);
    lo -= pad;
    hi += pad;
  }
  if (log) {
    if (!fixed && !scatter) { lo = std::floor(lo + 1e-9); hi = std::ceil(hi - 1e-9); }
    return 0;
  }
  std::vector<double> t = nice_ticks(lo, hi);
  double step = t.size() > 1 ? t[1] - t[0] : 0;
  if (!fixed && !scatter && step > 0) {
    lo = std::floor(lo / step + 1e-9) * step;
    hi = std::ceil(hi / step - 1e-9) * step;
  }
  return step;
}

double axis_value(double v, bool log) { return log ? (v > 0 ? std::log10(v) : NAN) : v; }

// Relative density at each point: a smoothed 2-D histogram over the points' range, divided by its peak.
std::vector<double> point_density(const std::vector<double>& x, const std::vector<double>& y) {
  double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
  for (size_t i = 0; i < x.size(); ++i)
    if (std::isfinite(x[i]) && std::isfinite(y[i])) {
      xlo = std::min(xlo, x[i]); xhi = std::max(xhi, x[i]);
      ylo = std::min(ylo, y[i]); yhi = std::max(yhi, y[i]);
    }
  std::vector<double> d(x.size(), NAN);
  if (!(xlo <= xhi)) return d;
  const int n = kDensityBins;
  auto cell = [n](double v, double lo, double hi) {
    return hi > lo ? std::min(n - 1, std::max(0, int((v - lo) / (hi - lo) * n))) : n / 2;
  };
  std::vector<double> h(size_t(n) * n, 0.0), t(h.size());
  for (size_t i = 0; i < x.size(); ++i)
    if (std::isfinite(x[i]) && std::isfinite(y[i])) h[size_t(cell(y[i], ylo, yhi)) * n + cell(x[i], xlo, xhi)] += 1;
  const double k[5] = {1 / 16.0, 4 / 16.0, 6 / 16.0, 4 / 16.0, 1 / 16.0};
  for (int pass = 0; pass < 4; ++pass) {  // x, y, x, y
    bool along_x = pass % 2 == 0;
    for (int r = 0; r < n; ++r)
      for (int c = 0; c < n; ++c) {
        double s = 0;
        for (int o = -2; o <= 2; ++o) {
          int rr = along_x ? r : r + o, cc = along_x ? c + o : c;
          if (rr >= 0 && rr < n && cc >= 0 && cc < n) s += k[o + 2] * h[size_t(rr) * n + cc];
        }
        t[size_t(r) * n + c] = s;
      }
    h.swap(t);
  }
  double peak = 0;
  for (size_t i = 0; i < x.size(); ++i)
    if (std::isfinite(x[i]) && std::isfinite(y[i])) {
      d[i] = h[size_t(cell(y[i], ylo, yhi)) * n + cell(x[i], xlo, xhi)];
      peak = std::max(peak, d[i]);
    }
  for (double& v : d) v /= peak;
  return d;
}

std::string lower_extension(const std::string& path) {
  size_t dot = path.rfind('.'), slash = path.rfind('/');
  if (dot == std::string::npos || (slash != std::string::npos && dot < slash)) return "";
  std::string e = path.substr(dot + 1);
  for (char& c : e) c = char(std::tolower(static_cast<unsigned char>(c)));
  return e;
}

}  // namespace

// Draws one Plot on the current PLplot stream (set up by Plot::write).
class PlotRenderer {
 public:
  PlotRenderer(const Plot& p, int width, int height) : p_(p), w_(width), h_(height) {}
  void draw();

 private:
  void ranges();
  void series(size_t i, PLINT color);
  void markers(const std::vector<PLFLT>& x, const std::vector<PLFLT>& y, double radius_px, bool discs);
  void legend(const std::vector<PLINT>& colors);
  void colorbar();
  const Plot& p_;
  int w_, h_;
  double xlo_, xhi_, ylo_, yhi_, xstep_, ystep_, clo_ = 0, chi_ = 1;
  bool colored_ = false;
  PLFLT vx0_, vx1_, vy0_, vy1_;  // the viewport, as fractions of the page
};

void PlotRenderer::ranges() {
  double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
  double clo = INFINITY, chi = -INFINITY;
  bool scatter = false;
  for (size_t i = 0; i < p_.series_.size(); ++i) {
    const PlotSeries& s = p_.series_[i];
    for (size_t k = 0; k < s.x.size(); ++k) {
      double x = axis_value(s.x[k], p_.xlog_), y = axis_value(s.y[k], p_.ylog_);
      if (!std::isfinite(y) || (!p_.hline_[i] && !std::isfinite(x))) continue;
      if (!p_.hline_[i]) { xlo = std::min(xlo, x); xhi = std::max(xhi, x); }
      ylo = std::min(ylo, y); yhi = std::max(yhi, y);
      if (!s.value.empty()) {
        double c = axis_value(s.value[k], p_.clog_);
        if (std::isfinite(c)) { clo = std::min(clo, c); chi = std::max(chi, c); }
      }
    }
    colored_ = colored_ || !s.value.empty();
    scatter = scatter || s.scatter;
  }
  auto fixed = [](double v, bool log, const char* what) {
    double a = axis_value(v, log);
    CUGMM_REQUIRE(std::isfinite(a),
                  std::string("plot: a log ") + what + " limit must be > 0, not " + std::to_string(v));
    return a;
  };
  if (p_.xfixed_) { xlo = fixed(p_.xlo_, p_.xlog_, "x"); xhi = fixed(p_.xhi_, p_.xlog_, "x"); }
  if (p_.yfixed_) { ylo = fixed(p_.ylo_, p_.ylog_, "y"); yhi = fixed(p_.yhi_, p_.ylog_, "y"); }
  if (p_.cfixed_) { clo = fixed(p_.clo_, p_.clog_, "colour"); chi = fixed(p_.chi_, p_.clog_, "colour"); }
  xstep_ = axis_range(xlo, xhi, p_.xfixed_, p_.xlog_, scatter);
  ystep_ = axis_range(ylo, yhi, p_.yfixed_, p_.ylog_, scatter);
  if (clo > chi) { clo = 0; chi = 1; }
  if (chi - clo < 1e-12 * std::max(1.0, std::fabs(chi))) { clo -= 0.5; chi += 0.5; }
  xlo_ = xlo; xhi_ = xhi; ylo_ = ylo; yhi_ = yhi; clo_ = clo; chi_ = chi;
}

// Filled markers of `radius_px` page units: polygons in world coordinates, so they survive any device.
void PlotRenderer::markers(const std::vector<PLFLT>& x, const std::vector<PLFLT>& y, double radius_px,
                           bool discs) {
  double rx = radius_px * (xhi_ - xlo_) / ((vx1_ - vx0_) * w_);
  double ry = radius_px * (yhi_ - ylo_) / ((vy1_ - vy0_) * h_);
  const int sides = discs ? 12 : 4;
  // A square of the disc's area; a disc as a 12-gon.
  double scale = discs ? 1.0 : std::sqrt(M_PI) / 2;
  PLFLT ux[12], uy[12], px[12], py[12];
  for (int k = 0; k < sides; ++k) {
    double a = discs ? 2 * M_PI * k / sides : M_PI / 4 + M_PI / 2 * k;
    double f = discs ? 1.0 : std::sqrt(2.0);
    ux[k] = scale * f * rx * std::cos(a);
    uy[k] = scale * f * ry * std::sin(a);
  }
  for (size_t i = 0; i < x.size(); ++i) {
    for (int k = 0; k < sides; ++k) { px[k] = x[i] + ux[k]; py[k] = y[i] + uy[k]; }
    plfill(sides, px, py);
  }
}

void PlotRenderer::series(size_t i, PLINT color) {
  const PlotSeries& s = p_.series_[i];
  plcol0(color);
  pllsty(s.dashed ? 2 : 1);
  plwidth(s.dashed ? 1.5 : 2.0);
  if (p_.hline_[i]) {
    PLFLT x[2] = {xlo_, xhi_}, y[2] = {axis_value(s.y[0], p_.ylog_), axis_value(s.y[0], p_.ylog_)};
    if (std::isfinite(y[0])) plline(2, x, y);
    pllsty(1);
    return;
  }
  std::vector<PLFLT> xs, ys;
  std::vector<double> vs;
  for (size_t k = 0; k < s.x.size(); ++k) {
    double x = axis_value(s.x[k], p_.xlog_), y = axis_value(s.y[k], p_.ylog_);
    bool ok = std::isfinite(x) && std::isfinite(y);
    double v = 0;
    if (ok && !s.value.empty()) {
      v = axis_value(s.value[k], p_.clog_);
      ok = std::isfinite(v);
    }
    if (!ok) {
      // A line breaks at a skipped point; points are just left out.
      if (!s.scatter && xs.size() > 1) plline(PLINT(xs.size()), xs.data(), ys.data());
      if (!s.scatter) { xs.clear(); ys.clear(); }
      continue;
    }
    xs.push_back(x); ys.push_back(y); vs.push_back(v);
  }
  if (!s.scatter) {
    if (xs.size() > 1) plline(PLINT(xs.size()), xs.data(), ys.data());
    pllsty(1);
    return;
  }
  bool discs = xs.size() <= kDiscMarkersMax;
  if (s.value.empty()) {
    markers(xs, ys, s.point_radius, discs);
    return;
  }
  // Increasing value, so the high values (the dense core of a density scatter) stay visible; one colour
  // change per colour step.
  std::vector<size_t> order(xs.size());
  std::iota(order.begin(), order.end(), size_t(0));
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return vs[a] < vs[b]; });
  std::vector<PLFLT> gx, gy;
  int step = -1;
  auto flush = [&] {
    if (gx.empty()) return;
    plcol1(double(step) / (kColorSteps - 1));
    markers(gx, gy, s.point_radius, discs);
    gx.clear(); gy.clear();
  };
  for (size_t k : order) {
    double t = std::min(1.0, std::max(0.0, (vs[k] - clo_) / (chi_ - clo_)));
    int st = int(std::lround(t * (kColorSteps - 1)));
    if (st != step) { flush(); step = st; }
    gx.push_back(xs[k]); gy.push_back(ys[k]);
  }
  flush();
}

void PlotRenderer::legend(const std::vector<PLINT>& colors) {
  std::vector<PLINT> opt, text_col, line_col, line_sty, sym_col, sym_num, box_col, box_pat;
  std::vector<PLFLT> line_w, sym_scale, box_scale, box_w;
  std::vector<std::string> text;
  std::vector<const char*> text_p, sym_p;
  for (size_t i = 0; i < p_.series_.size(); ++i) {
    const PlotSeries& s = p_.series_[i];
    if (s.name.empty()) continue;
    opt.push_back(s.scatter ? PL_LEGEND_SYMBOL : PL_LEGEND_LINE);
    text.push_back(literal(s.name));
    text_col.push_back(kBlack);
    line_col.push_back(colors[i]);
    line_sty.push_back(s.dashed ? 2 : 1);
    line_w.push_back(s.dashed ? 1.5 : 2.0);
    sym_col.push_back(s.value.empty() ? colors[i] : kMidMap);
    sym_scale.push_back(1.0);
    sym_num.push_back(1);
    sym_p.push_back("●");
    box_col.push_back(0); box_pat.push_back(0); box_scale.push_back(0); box_w.push_back(0);
  }
  if (opt.empty()) return;
  for (const std::string& t : text) text_p.push_back(t.c_str());
  PLFLT lw, lh;
  pllsty(1);
  plwidth(1);
  pllegend(&lw, &lh, PL_LEGEND_BACKGROUND | PL_LEGEND_BOUNDING_BOX,
           PL_POSITION_INSIDE | PL_POSITION_TOP | PL_POSITION_RIGHT | PL_POSITION_VIEWPORT, 0.02, 0.03, 0.045, kWhite,
           kFrame, 1, 0, 0, PLINT(opt.size()), opt.data(), 0.6, 0.9, 2.0, 0.0, text_col.data(), text_p.data(),
           box_col.data(), box_pat.data(), box_scale.data(), box_w.data(), line_col.data(), line_sty.data(),
           line_w.data(), sym_col.data(), sym_scale.data(), sym_num.data(), sym_p.data());
}

void PlotRenderer::colorbar() {
  std::string label = literal(p_.clabel_);
  const char* labels[1] = {label.c_str()};
  PLINT label_opts[1] = {PL_COLORBAR_LABEL_RIGHT};
  const char* axis_opts[1] = {p_.clog_ ? "bcvtml" : "bcvtm"};
  PLFLT ticks[1] = {0};
  PLINT sub_ticks[1] = {0}, n_values[1] = {2};
  PLFLT values[2] = {clo_, chi_};
  const PLFLT* values_p[1] = {values};
  PLFLT cw, ch;
  plcol0(kBlack);
  plwidth(1);
  plcolorbar(&cw, &ch, PL_COLORBAR_GRADIENT, PL_POSITION_RIGHT | PL_POSITION_OUTSIDE | PL_POSITION_VIEWPORT, 0.03, 0,
             0.035, 1.0, kWhite, kBlack, 1, 0, 0, 0, 0, label.empty() ? 0 : 1, label_opts, labels, 1, axis_opts,
             ticks, sub_ticks, n_values, values_p);
}

void PlotRenderer::draw() {
  ranges();
  // Margins as fractions of the page: room for tick labels and axis labels at the left and bottom, the
  // title on top, the colour bar with its numbers and label on the right.
  vx0_ = 0.11; vx1_ = colored_ ? 0.80 : 0.965;
  vy0_ = 0.13; vy1_ = p_.title_.empty() ? 0.95 : 0.90;
  pladv(0);
  plvpor(vx0_, vx1_, vy0_, vy1_);
  plwind(xlo_, xhi_, ylo_, yhi_);
  std::string xl = p_.xlog_ ? "l" : "", yl = p_.ylog_ ? "l" : "";
  plcol0(kGrid);
  plwidth(1);
  plbox(("g" + xl).c_str(), xstep_, 0, ("g" + yl).c_str(), ystep_, 0);

  std::vector<PLINT> colors(p_.series_.size());
  int auto_color = 0;
  for (size_t i = 0; i < p_.series_.size(); ++i) {
    const PlotSeries& s = p_.series_[i];
    uint32_t c = s.color ? s.color : p_.hline_[i] ? 0x555555 : kPalette[auto_color++ % 10];
    colors[i] = kFirstSeries + PLINT(i);
    set_color(colors[i], c);
  }
  for (size_t i = 0; i < p_.series_.size(); ++i) series(i, colors[i]);

  plcol0(kBlack);
  plwidth(1);
  pllsty(1);
  plbox(("bcnst" + xl).c_str(), xstep_, 0, ("bcnstv" + yl).c_str(), ystep_, 0);
  plmtex("b", 3.0, 0.5, 0.5, literal(p_.xlabel_).c_str());
  plmtex("l", 4.6, 0.5, 0.5, literal(p_.ylabel_).c_str());
  if (!p_.title_.empty()) {
    plschr(0, 1.25);
    plmtex("t", 1.2, 0.5, 0.5, literal(p_.title_).c_str());
    plschr(0, 1.0);
  }
  legend(colors);
  if (colored_) colorbar();
}

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

namespace {
void check_limits(double lo, double hi, const char* axis) {
  CUGMM_REQUIRE(std::isfinite(lo) && std::isfinite(hi) && hi > lo, std::string("plot: ") + axis +
                    " limits must be finite with lo < hi, not " + std::to_string(lo) + ", " + std::to_string(hi));
}
}  // namespace

Plot& Plot::xlim(double lo, double hi) {
  check_limits(lo, hi, "x");
  xlo_ = lo; xhi_ = hi; xfixed_ = true;
  return *this;
}

Plot& Plot::ylim(double lo, double hi) {
  check_limits(lo, hi, "y");
  ylo_ = lo; yhi_ = hi; yfixed_ = true;
  return *this;
}

Plot& Plot::clim(double lo, double hi) {
  check_limits(lo, hi, "colour");
  clo_ = lo; chi_ = hi; cfixed_ = true;
  return *this;
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
  hline_.back() = 1;
  return s;
}

PlotSeries& Plot::add_colored_scatter(const std::string& name, const std::vector<double>& x,
                                      const std::vector<double>& y, const std::vector<double>& value) {
  CUGMM_REQUIRE(value.size() == x.size(), "plot: series '" + name + "' has " + std::to_string(x.size()) +
                                              " points and " + std::to_string(value.size()) + " colour values");
  PlotSeries& s = add_scatter(name, x, y);
  s.value = value;
  return s;
}

PlotSeries& Plot::add_density_scatter(const std::string& name, const std::vector<double>& x,
                                      const std::vector<double>& y) {
  CUGMM_REQUIRE(x.size() == y.size(), "plot: series '" + name + "' has " + std::to_string(x.size()) +
                                          " x values and " + std::to_string(y.size()) + " y values");
  if (clabel_.empty()) clabel_ = "relative density";
  if (!cfixed_) clim(0, 1);
  return add_colored_scatter(name, x, y, point_density(x, y));
}

void Plot::add_clusters(const std::vector<double>& x, const std::vector<double>& y, const std::vector<int>& labels,
                        const std::string& prefix) {
  CUGMM_REQUIRE(x.size() == y.size() && labels.size() == x.size(),
                "plot: clusters need as many labels as points (" + std::to_string(x.size()) + " x, " +
                    std::to_string(y.size()) + " y, " + std::to_string(labels.size()) + " labels)");
  std::map<int, std::vector<size_t>> members;
  for (size_t i = 0; i < labels.size(); ++i) members[labels[i]].push_back(i);
  for (const auto& [label, idx] : members) {
    std::vector<double> cx, cy;
    for (size_t i : idx) { cx.push_back(x[i]); cy.push_back(y[i]); }
    add_scatter(prefix + std::to_string(label), cx, cy);
  }
}

PlotFormat Plot::format_of(const std::string& path) {
  std::string e = lower_extension(path);
  if (e == "png") return PlotFormat::Png;
  if (e == "svg") return PlotFormat::Svg;
  if (e == "pdf") return PlotFormat::Pdf;
  throw Error("cannot write the plot " + path + ": the extension names no plot format (.png, .svg or .pdf)");
}

void Plot::write(const std::string& path, int width, int height) const {
  write(path, format_of(path), width, height);
}
void Plot::write_png(const std::string& path, int width, int height) const {
  write(path, PlotFormat::Png, width, height);
}
void Plot::write_svg(const std::string& path, int width, int height) const {
  write(path, PlotFormat::Svg, width, height);
}
void Plot::write_pdf(const std::string& path, int width, int height) const {
  write(path, PlotFormat::Pdf, width, height);
}

void Plot::write(const std::string& path, PlotFormat format, int width, int height) const {
  // 10,000^2 pixels is a 400 MB cairo surface: beyond that a size is a mistake.
  if (width < 100 || height < 100 || width > 10000 || height > 10000)
    throw Error("cannot write the plot " + path + ": its size " + std::to_string(width) + " x " +
                std::to_string(height) + " is outside 100..10000");
  std::string bytes;
  {
    std::lock_guard<std::mutex> lock(plplot_mutex());
    g_path = path;
    g_abort.clear();
    plsexit(on_plplot_exit);
    plsabort(on_plplot_abort);
    const char* dev = device_of(format);
    require_device(dev, path);
    MemFile out;
    {
      Stream stream;
      plsdev(dev);
      plsfile(out.hand_to_plplot());
      plspage(0, 0, width, height, 0, 0);
      plscolbg(255, 255, 255);  // the page colour (cmap0 index 0) is read by plinit
      plinit();
      plscmap0n(kFirstSeries + PLINT(series_.size()));
      set_color(kBlack, 0x000000);
      set_color(kGrid, 0xdddddd);
      set_color(kFrame, 0x999999);
      set_color(kMidMap, 0x21918c);
      set_viridis();
      PlotRenderer(*this, width, height).draw();
    }
    if (!g_abort.empty()) throw Error("cannot draw the plot " + path + ": PLplot: " + g_abort);
    bytes = out.bytes();
  }
  CUGMM_REQUIRE(!bytes.empty(), "cannot draw the plot " + path + ": PLplot wrote nothing");
  write_file_atomic(path, bytes);
}

}  // namespace cugmm::io
