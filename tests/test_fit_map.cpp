// fit-map (issue 11): the Fourier loss and its gradient, the progressive fit on maps rendered from atoms
// (noise-free and with noisy half-maps), --init from a PDB, the mask, and each bad input.
#include <chrono>
#include <cmath>
#include <filesystem>
#include <random>

#include "engine/atom_map.h"
#include "engine/example_atoms.h"
#include "engine/fft.h"
#include "engine/fit_map.h"
#include "engine/gaussian_fourier3d.h"
#include "engine/render.h"
#include "io/mrc.h"
#include "support.h"

using namespace cugmm;

namespace {

constexpr int kBox = 48;
constexpr double kPixel = 2.5;

io::Image example_map() {
  ExampleAtoms ex = make_example_atoms();
  return render_atom_map(ex.model, nullptr, kBox, kPixel, centring_shift(ex.model, kBox, kPixel));
}

io::GaussianModel small_model(int g, int box, double pixel, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(-1, 1);
  io::GaussianModel m;
  m.box_size = box;
  m.pixel_size = pixel;
  m.resize(g);
  for (int j = 0; j < g; ++j) {
    m.x[j] = float(u(rng) * box * pixel / 5); m.y[j] = float(u(rng) * box * pixel / 5);
    m.z[j] = float(u(rng) * box * pixel / 5);
    m.amplitude[j] = float(1 + 0.5 * u(rng));
    m.width[j] = float(pixel * (1.6 + 0.4 * u(rng)));
  }
  return m;
}

void target_of(const std::vector<float>& map, const Band3d& b, std::vector<float>& tr, std::vector<float>& ti) {
  const int n = b.box;
  std::vector<cfloat> half(size_t(n) * n * (n / 2 + 1));
  fft3_r2c(n, n, n, map.data(), half.data());
  band3d_gather(b, half.data(), tr, ti);
}

}  // namespace

TEST_CASE("fit-map: the analytic transform of a Gaussian model equals the DFT of its rendered map") {
  const int n = 32;
  const double pixel = 2.0;
  io::GaussianModel m = small_model(5, n, pixel, 3);
  io::Image v = render_volume(m, n, pixel);
  Band3d b = make_band3d(n, pixel, 3 * pixel);
  std::vector<float> tr, ti;
  target_of(v.data, b, tr, ti);
  std::vector<float> fr(b.size), fi(b.size);
  GaussSoA<float> p{m.x.data(), m.y.data(), m.z.data(), m.amplitude.data(), m.width.data(), m.size()};
  gf3_forward_cpu<float>(b, p, fr.data(), fi.data());
  double err = 0, pw = 0;
  for (size_t i = 0; i < b.size; ++i) {
    err += std::norm(std::complex<double>(fr[i] - tr[i], fi[i] - ti[i]));
    pw += std::norm(std::complex<double>(tr[i], ti[i]));
  }
  // Point sampling aliases a Gaussian of >= 1.2 px by ~1e-4 of its power within 1/3 of Nyquist.
  CHECK(std::sqrt(err / pw) < 2e-3);
  // Scale: F(0) is the total mass.
  double mass = 0;
  for (float a : m.amplitude) mass += a;
  CHECK(fr[b.start[b.ky.size() / 2]] == doctest::Approx(mass).epsilon(1e-4));
}

TEST_CASE("fit-map: loss gradient matches finite differences (double)") {
  const int n = 16;
  const double pixel = 2.0;
  io::GaussianModel m = small_model(3, n, pixel, 5), t = small_model(4, n, pixel, 9);
  io::Image v = render_volume(t, n, pixel);
  Band3d b = make_band3d(n, pixel, 2.6 * pixel);
  std::vector<float> trf, tif;
  target_of(v.data, b, trf, tif);
  std::vector<double> tr(trf.begin(), trf.end()), ti(tif.begin(), tif.end());
  const size_t g = m.size();
  std::vector<double> prm[5];
  const std::vector<float>* src[5] = {&m.x, &m.y, &m.z, &m.amplitude, &m.width};
  for (int c = 0; c < 5; ++c) prm[c].assign(src[c]->begin(), src[c]->end());
  auto loss = [&](std::vector<double>* gr) {
    std::vector<double> dummy[5];
    for (auto& d : dummy) d.assign(g, 0);
    std::vector<double>* out = gr ? gr : dummy;
    GaussSoA<double> p{prm[0].data(), prm[1].data(), prm[2].data(), prm[3].data(), prm[4].data(), g};
    return gf3_loss_grad_cpu<double>(b, p, tr.data(), ti.data(),
                                     {out[0].data(), out[1].data(), out[2].data(), out[3].data(), out[4].data()});
  };
  std::vector<double> grad[5];
  for (auto& gv : grad) gv.assign(g, 0);
  loss(grad);
  for (int c = 0; c < 5; ++c)
    for (size_t j = 0; j < g; ++j) {
      const double h = 1e-5 * (c == 3 ? 1.0 : pixel), keep = prm[c][j];
      prm[c][j] = keep + h;
      const double lp = loss(nullptr);
      prm[c][j] = keep - h;
      const double lm = loss(nullptr);
      prm[c][j] = keep;
      const double fd = (lp - lm) / (2 * h);
      CAPTURE(c);
      CAPTURE(j);
      CHECK(grad[c][j] == doctest::Approx(fd).epsilon(1e-6).scale(1e-6));
    }
}

TEST_CASE("fit-map: the CPU backend's GEMM form equals the row loops (double reference)") {
  const int n = 32;
  const double pixel = 2.0;
  io::GaussianModel m = small_model(40, n, pixel, 7), t = small_model(30, n, pixel, 8);
  io::Image v = render_volume(t, n, pixel);
  Band3d b = make_band3d(n, pixel, 3 * pixel);
  std::vector<float> tr, ti;
  target_of(v.data, b, tr, ti);
  const size_t g = m.size();
  std::vector<double> pd[5], gd[5];
  const std::vector<float>* src[5] = {&m.x, &m.y, &m.z, &m.amplitude, &m.width};
  for (int c = 0; c < 5; ++c) { pd[c].assign(src[c]->begin(), src[c]->end()); gd[c].assign(g, 0); }
  std::vector<double> trd(tr.begin(), tr.end()), tid(ti.begin(), ti.end());
  const double ref = gf3_loss_grad_cpu<double>(b, {pd[0].data(), pd[1].data(), pd[2].data(), pd[3].data(), pd[4].data(), g},
                                               trd.data(), tid.data(),
                                               {gd[0].data(), gd[1].data(), gd[2].data(), gd[3].data(), gd[4].data()});
  std::vector<float> gf(5 * g);
  auto lf = Fourier3dLoss::create(cpu_context(), b, tr, ti);
  const double got = lf->loss_grad({m.x.data(), m.y.data(), m.z.data(), m.amplitude.data(), m.width.data(), g},
                                   {gf.data(), gf.data() + g, gf.data() + 2 * g, gf.data() + 3 * g, gf.data() + 4 * g});
  CHECK(got == doctest::Approx(ref).epsilon(1e-4));
  for (int c = 0; c < 5; ++c) {
    double mx = 0, d = 0;
    for (size_t j = 0; j < g; ++j) {
      mx = std::max(mx, std::fabs(gd[c][j]));
      d = std::max(d, std::fabs(gd[c][j] - gf[c * g + j]));
    }
    CAPTURE(c);
    CHECK(d <= 1e-3 * mx);
  }
}

TEST_CASE("fit-map: a noise-free map rendered from atoms reaches the stop rule") {
  FitMapInputs in;
  in.map = example_map();
  FitMapOptions opt;
  opt.seed = 3;
  const auto t0 = std::chrono::steady_clock::now();
  FitMapResult r = fit_map(in, opt, cpu_context());
  MESSAGE("G " << r.model.size() << ", " << r.rounds.size() << " rounds, " << r.seconds << " s: " << r.verdict);
  CHECK(r.options.res == doctest::Approx(3 * kPixel));
  CHECK(r.reached);
  CHECK(r.model.size() == size_t(r.options.ngauss));
  CHECK(r.res_fsc05 <= 3 * kPixel);
  CHECK(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() < 120);
  // Outputs.
  const std::string dir = test::scratch_dir("fit_map_out");
  write_fit_map_outputs(dir, in, r);
  for (const char* f : {"model.txt", "model.cif", "model.cmm", "model.mrc", "fsc.txt", "fsc.png", "fit.json"})
    CHECK(std::filesystem::exists(dir + "/" + f));
  io::Image back = io::read_mrc(dir + "/model.mrc");
  CHECK(back.nx == kBox);
  CHECK(back.pixel_size == doctest::Approx(kPixel));
  CHECK(test::contains(test::read_text(dir + "/fit.json"), "\"rounds\""));
}

TEST_CASE("fit-map: with noisy half-maps it reaches 0.95 C_ref") {
  FitMapInputs in;
  io::Image clean = example_map();
  double mx = 0;
  for (float v : clean.data) mx = std::max(mx, double(v));
  std::mt19937 rng(11);
  std::normal_distribution<float> noise(0, float(0.15 * mx));
  in.half1 = clean;
  in.half2 = clean;
  for (float& v : in.half1->data) v += noise(rng);
  for (float& v : in.half2->data) v += noise(rng);
  in.map = clean;
  for (size_t i = 0; i < clean.data.size(); ++i) in.map.data[i] = 0.5f * (in.half1->data[i] + in.half2->data[i]);
  in.mask = soft_sphere_mask(kBox, kBox / 2 - 4, 3);
  FitMapOptions opt;
  opt.seed = 4;
  FitMapResult r = fit_map(in, opt, cpu_context());
  MESSAGE("res " << r.options.res << " Å, G " << r.model.size() << ", " << r.seconds << " s: " << r.verdict);
  CHECK(!r.c_ref.empty());
  CHECK(r.reached);
}

TEST_CASE("fit-map: --init from a PDB keeps relative masses; the mask drops what lies outside") {
  const std::string dir = test::scratch_dir("fit_map_init");
  const double c = kBox / 2 * kPixel;  // the box centre in the map frame
  char line[128];
  std::string pdb;
  // Residue 1: two carbons (12 e); residue 2: one oxygen and one nitrogen (15 e); residue 3 far off-centre.
  struct A { const char* name; const char* el; int res; double x, y, z; };
  const A atoms[] = {{"CA", "C", 1, c - 5, c, c}, {"CB", "C", 1, c - 4, c + 1, c}, {"O", "O", 2, c + 5, c, c},
                     {"N", "N", 2, c + 5, c + 1, c}, {"CA", "C", 3, c + 45, c, c}};
  int serial = 1;
  for (const A& a : atoms) {
    std::snprintf(line, sizeof line, "ATOM  %5d  %-3s ALA A%4d    %8.3f%8.3f%8.3f  1.00 20.00          %2s\n", serial++,
                  a.name, a.res, a.x, a.y, a.z, a.el);
    pdb += line;
  }
  test::write_text(dir + "/init.pdb", pdb + "END\n");
  // A map with density where residues 1 and 2 are.
  io::GaussianModel truth;
  truth.box_size = kBox; truth.pixel_size = kPixel; truth.resize(2);
  truth.x = {-4.5f, 5.f}; truth.y = {0.5f, 0.5f}; truth.z = {0, 0}; truth.amplitude = {12, 15}; truth.width = {3, 3};
  io::write_mrc(dir + "/map.mrc", render_volume(truth, kBox, kPixel), false);
  std::vector<float> mask = soft_sphere_mask(kBox, 14, 2);  // 35 Å: residue 3 (45 Å out) is outside
  io::write_mrc(dir + "/mask.mrc", mask.data(), kBox, kBox, kBox, float(kPixel), false);
  FitMapOptions opt;
  opt.map_path = dir + "/map.mrc";
  opt.init_path = dir + "/init.pdb";
  opt.mask_path = dir + "/mask.mrc";
  opt.ngauss = 2;
  opt.min_rounds = 1;
  opt.final_iterations = 0;
  FitMapInputs in = load_fit_map_inputs(opt);
  REQUIRE(in.init);
  REQUIRE(in.init->size() == 3);
  CHECK(in.init->amplitude[1] / in.init->amplitude[0] == doctest::Approx(15.0 / 12.0));
  CHECK(in.init->x[0] == doctest::Approx(-4.5).epsilon(1e-4));
  FitMapResult r = fit_map(in, opt, cpu_context());
  REQUIRE(r.model.size() == 2);  // residue 3 dropped by the mask
  CHECK(r.dropped_by_mask == 1);
  CHECK(r.model.amplitude[1] / r.model.amplitude[0] == doctest::Approx(15.0 / 12.0));
}

TEST_CASE("fit-map: bad input names the file and says what is wrong") {
  const std::string dir = test::scratch_dir("fit_map_bad");
  io::Image map = example_map();
  io::write_mrc(dir + "/map.mrc", map, false);
  auto fails = [&](FitMapOptions o, const std::string& file, const std::string& what) {
    if (o.map_path.empty()) o.map_path = dir + "/map.mrc";
    std::string e = test::input_error([&] { fit_map(load_fit_map_inputs(o), o, cpu_context()); });
    CAPTURE(e);
    CHECK(test::contains(e, file));
    CHECK(test::contains(e, what));
  };
  std::vector<float> zero(map.voxels(), 0.f);
  io::write_mrc(dir + "/constant.mrc", zero.data(), kBox, kBox, kBox, float(kPixel), false);
  io::write_mrc(dir + "/noncubic.mrc", zero.data(), kBox, kBox / 2, 2 * kBox, float(kPixel), false);
  io::write_mrc(dir + "/small.mrc", zero.data(), kBox / 2, kBox / 2, kBox / 2, float(kPixel), false);
  io::write_mrc(dir + "/otherpix.mrc", map.data.data(), kBox, kBox, kBox, float(2 * kPixel), false);
  FitMapOptions o;
  o.map_path = dir + "/constant.mrc";
  fails(o, "constant.mrc", "constant");
  o.map_path = dir + "/noncubic.mrc";
  fails(o, "noncubic.mrc", "not cubic");
  o = {};
  o.threshold = 1e9;
  fails(o, "map.mrc", "no voxel above the threshold");
  o = {};
  o.mask_path = dir + "/small.mrc";
  fails(o, "small.mrc", "differs");
  o = {};
  o.half1_path = dir + "/map.mrc";
  o.half2_path = dir + "/otherpix.mrc";
  fails(o, "otherpix.mrc", "pixel size");
  o = {};
  o.half1_path = dir + "/map.mrc";
  o.half2_path = dir + "/small.mrc";
  fails(o, "small.mrc", "grid");
  io::GaussianModel out;
  out.box_size = kBox; out.pixel_size = kPixel; out.resize(1);
  out.x = {float(kBox * kPixel)}; out.y = {0}; out.z = {0}; out.amplitude = {1}; out.width = {3};
  io::write_model(dir + "/outside.txt", out);
  o = {};
  o.init_path = dir + "/outside.txt";
  fails(o, "outside.txt", "outside");
  // An empty map (in memory: files cannot hold one).
  FitMapInputs empty;
  FitMapOptions eo;
  eo.map_path = "empty.mrc";
  CHECK(test::contains(test::input_error([&] { fit_map(empty, eo, cpu_context()); }), "empty"));
}

TEST_CASE("fit-map: warns on a sharpened map and on --res finer than the half-maps' signal") {
  FitMapOptions opt;
  opt.min_rounds = 1;
  opt.final_iterations = 1;
  opt.ngauss = 64;
  // Sharpened: every shell's amplitude multiplied by exp(+B k^2 / 4), B = 400 Å^2.
  FitMapInputs in;
  in.map = example_map();
  {
    const int n = kBox;
    std::vector<cfloat> half(size_t(n) * n * (n / 2 + 1));
    fft3_r2c(n, n, n, in.map.data.data(), half.data());
    for (int z = 0; z < n; ++z)
      for (int y = 0; y < n; ++y)
        for (int x = 0; x <= n / 2; ++x) {
          const int ky = y > n / 2 ? y - n : y, kz = z > n / 2 ? z - n : z;
          const double k2 = (x * x + ky * ky + kz * kz) / std::pow(n * kPixel, 2);
          half[(size_t(z) * n + y) * (n / 2 + 1) + x] *= float(std::exp(400 * k2 / 4) / (double(n) * n * n));
        }
    fft3_c2r(n, n, n, half.data(), in.map.data.data());
  }
  FitMapResult r = fit_map(in, opt, cpu_context());
  bool sharpened = false;
  for (const std::string& w : r.warnings) sharpened |= test::contains(w, "sharpened");
  CHECK(sharpened);
  // Half-maps with noise: asking for 2.5 px is finer than their FSC 0.143.
  FitMapInputs noisy;
  noisy.map = example_map();
  std::mt19937 rng(1);
  double mx = 0;
  for (float v : noisy.map.data) mx = std::max(mx, double(v));
  std::normal_distribution<float> nd(0, float(0.3 * mx));
  noisy.half1 = noisy.map;
  noisy.half2 = noisy.map;
  for (float& v : noisy.half1->data) v += nd(rng);
  for (float& v : noisy.half2->data) v += nd(rng);
  opt.res = 2.5 * kPixel;
  FitMapResult rn = fit_map(noisy, opt, cpu_context());
  bool finer = false;
  for (const std::string& w : rn.warnings) finer |= test::contains(w, "finer than the half-maps");
  CHECK(finer);
  CHECK(!rn.reached);
  CHECK(!rn.failing_shells.empty());
  CHECK(test::contains(rn.verdict, "not reached"));
}

TEST_CASE("fit-map: half-maps from a RELION postprocess STAR") {
  const std::string dir = test::scratch_dir("fit_map_star");
  io::Image map = example_map();
  io::write_mrc(dir + "/map.mrc", map, false);
  io::write_mrc(dir + "/run_half1_class001_unfil.mrc", map, false);
  io::write_mrc(dir + "/run_half2_class001_unfil.mrc", map, false);
  test::write_text(dir + "/postprocess.star",
                   "\ndata_general\n\n_rlnFinalResolution 7.5\n_rlnUnfilteredMapHalf1 run_half1_class001_unfil.mrc\n"
                   "_rlnUnfilteredMapHalf2 run_half2_class001_unfil.mrc\n\n");
  FitMapOptions opt;
  opt.map_path = dir + "/map.mrc";
  opt.half1_path = dir + "/postprocess.star";
  FitMapInputs in = load_fit_map_inputs(opt);
  CHECK(in.half1.has_value());
  CHECK(in.half2.has_value());
}

TEST_CASE("cugmm fit-map: the command writes every output, RELION and mrcfile read them; bad lines refused first") {
  const std::string dir = test::scratch_dir("fit_map_cli");
  io::Image map = example_map();
  map.origin[0] = 12.5f, map.origin[1] = -3.f, map.origin[2] = 40.f;
  map.start[0] = -24, map.start[1] = 0, map.start[2] = 7;
  io::write_mrc(dir + "/map.mrc", map, false);
  auto r = test::run(test::cugmm_exe() + " fit-map map.mrc --out fit --device cpu --threads 2", dir);
  REQUIRE_MESSAGE(r.status == 0, r.out);
  CHECK(test::contains(r.out, "stop rule reached"));
  for (const char* f : {"model.txt", "model.cif", "model.cmm", "model.mrc", "fsc.txt", "fsc.png", "fit.json"})
    CHECK_MESSAGE(std::filesystem::exists(dir + "/fit/" + f), f);
  // model.mrc is on the map's grid: origin and start kept, so it overlays the map.
  io::Image rendered = io::read_mrc(dir + "/fit/model.mrc");
  for (int a = 0; a < 3; ++a) {
    CHECK(rendered.origin[a] == map.origin[a]);
    CHECK(rendered.start[a] == map.start[a]);
  }
  io::GaussianModel m = io::read_model(dir + "/fit/model.txt");
  CHECK(m.box_size == kBox);
  CHECK(m.pixel_size == doctest::Approx(kPixel));
  if (test::oracle(test::kPython))
    test::python(dir, "import mrcfile, sys\nsys.exit(0 if mrcfile.validate('fit/model.mrc') else 1)\n");
  // Refused before any output exists: an input as the output directory, one half-map, both sources.
  for (const std::string& bad : {std::string(" fit-map map.mrc --out map.mrc"),
                                 std::string(" fit-map map.mrc --out f2 --half-maps map.mrc"),
                                 std::string(" fit-map map.mrc --out f2 --half-maps map.mrc map.mrc --postprocess p.star"),
                                 std::string(" fit-map nothing.mrc --out f2")}) {
    r = test::run(test::cugmm_exe() + bad + " --device cpu", dir);
    CAPTURE(bad);
    CAPTURE(r.out);
    CHECK(r.status != 0);
    CHECK_FALSE(std::filesystem::exists(dir + "/f2"));
  }
}
