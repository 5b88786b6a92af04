// RELION's conventions as tested code (DESIGN §3, issue 2): our Euler matrix, origin sign and CTF against
// what relion_project itself produces.
#include <doctest/doctest.h>

#include <cmath>
#include <complex>
#include <string>
#include <vector>

#include "engine/fft.h"
#include "io/mrc.h"
#include "kernels/ctf.h"
#include "kernels/geometry.h"
#include "support.h"

using namespace cugmm;

namespace {

std::string star_header(double pixel, int box, const std::string& extra_columns) {
  return "\n# version 30001\n\ndata_optics\n\nloop_\n_rlnOpticsGroup #1\n_rlnImagePixelSize #2\n"
         "_rlnImageSize #3\n_rlnImageDimensionality #4\n_rlnVoltage #5\n_rlnSphericalAberration #6\n"
         "_rlnAmplitudeContrast #7\n1 " + std::to_string(pixel) + " " + std::to_string(box) +
         " 2 300 2.7 0.1\n\n\n# version 30001\n\ndata_particles\n\nloop_\n" + extra_columns;
}

// Mean-shift to the centroid of the blob nearest `start` (pixels): converges on the blob that is really
// there, so a wrong prediction shows up as a large error rather than being confirmed by the window.
void blob_centroid(const io::Image& im, int section, double& x, double& y, double radius) {
  for (int it = 0; it < 50; ++it) {
    double sw = 0, sx = 0, sy = 0;
    for (int j = 0; j < im.ny; ++j)
      for (int i = 0; i < im.nx; ++i) {
        double dx = i - x, dy = j - y;
        if (dx * dx + dy * dy > radius * radius) continue;
        double w = std::max(0.f, im.at(i, j, section));
        sw += w; sx += w * i; sy += w * j;
      }
    REQUIRE(sw > 0);
    double nx = sx / sw, ny = sy / sw;
    bool converged = std::hypot(nx - x, ny - y) < 1e-6;
    x = nx; y = ny;
    if (converged) break;
  }
}

}  // namespace

TEST_CASE("relion_project puts volume point r at (A r)_xy - origin (Euler matrix and origin sign)") {
  if (!test::oracle("relion_project")) return;
  const int n = 64;
  const double px = 2.0, sigma = 3.0;  // Å
  const Vec3<double> centres[2] = {{10, -6, 4}, {-8, 12, -14}};
  std::string dir = test::scratch_dir("conventions_geometry");

  io::Image vol;
  vol.nx = vol.ny = vol.nz = n;
  vol.pixel_size = float(px);
  vol.data.assign(vol.voxels(), 0.f);
  for (int k = 0; k < n; ++k)
    for (int j = 0; j < n; ++j)
      for (int i = 0; i < n; ++i)
        for (int b = 0; b < 2; ++b) {
          double dx = (i - n / 2) * px - centres[b].x, dy = (j - n / 2) * px - centres[b].y,
                 dz = (k - n / 2) * px - centres[b].z;
          vol.at(i, j, k) += float((2 - b) * std::exp(-(dx * dx + dy * dy + dz * dz) / (2 * sigma * sigma)));
        }
  io::write_mrc(dir + "/blobs.mrc", vol, false);

  // rot, tilt, psi (degrees), origin x, y (Å): sub-pixel, negative and large shifts, every angle used.
  const double poses[][5] = {{0, 0, 0, 0, 0},        {30, 60, -20, 3.5, -2.25}, {100, 20, 70, -4, 1},
                             {-45, 135, 10, 0.5, 6}, {200, 90, -150, -7, -3},   {75, 170, 35, 5.3, 4.1}};
  std::string star = star_header(px, n,
                                 "_rlnAngleRot #1\n_rlnAngleTilt #2\n_rlnAnglePsi #3\n_rlnOriginXAngst #4\n"
                                 "_rlnOriginYAngst #5\n_rlnOpticsGroup #6\n_rlnImageName #7\n");
  for (auto& p : poses)
    star += std::to_string(p[0]) + " " + std::to_string(p[1]) + " " + std::to_string(p[2]) + " " +
            std::to_string(p[3]) + " " + std::to_string(p[4]) + " 1 1@none.mrcs\n";
  test::write_text(dir + "/poses.star", star);
  auto r = test::run("relion_project --i blobs.mrc --o proj --ang poses.star", dir);
  REQUIRE_MESSAGE(r.status == 0, r.out);

  io::Image proj = io::read_mrc(dir + "/proj.mrcs");
  REQUIRE(proj.nz == 6);
  double worst = 0;
  for (int s = 0; s < 6; ++s) {
    Mat3<double> a = euler_to_matrix(poses[s][0], poses[s][1], poses[s][2]);
    Vec3<double> q[2] = {mul(a, centres[0]), mul(a, centres[1])};
    REQUIRE(std::hypot(q[0].x - q[1].x, q[0].y - q[1].y) > 6 * sigma);  // the blobs stay apart in this view
    for (int b = 0; b < 2; ++b) {
      double ex = (q[b].x - poses[s][3]) / px + n / 2, ey = (q[b].y - poses[s][4]) / px + n / 2;
      double x = ex, y = ey;
      blob_centroid(proj, s, x, y, 3 * sigma / px);
      double err = std::hypot(x - ex, y - ey);
      worst = std::max(worst, err);
      CHECK_MESSAGE(err <= 0.05, "view " << s << " blob " << b << ": expected (" << ex << ", " << ey
                                         << ") px, relion has (" << x << ", " << y << ")");
    }
  }
  MESSAGE("largest centroid error: " << worst << " px");
}

namespace {

// Pearson correlation of relion's image spectrum (a projected delta: the CTF itself) with ours.
struct CtfComparison {
  double corr_same, corr_mirror, dc_over_scale;
};

CtfComparison compare_ctf(const std::string& dir, const CtfParams& p, int n, double px) {
  io::Image vol;
  vol.nx = vol.ny = vol.nz = n;
  vol.pixel_size = float(px);
  vol.data.assign(vol.voxels(), 0.f);
  vol.at(n / 2, n / 2, n / 2) = 1;
  io::write_mrc(dir + "/delta.mrc", vol, false);
  std::string star = star_header(px, n,
                                 "_rlnAngleRot #1\n_rlnAngleTilt #2\n_rlnAnglePsi #3\n_rlnDefocusU #4\n"
                                 "_rlnDefocusV #5\n_rlnDefocusAngle #6\n_rlnPhaseShift #7\n_rlnCtfBfactor #8\n"
                                 "_rlnOpticsGroup #9\n_rlnImageName #10\n");
  star += "0 0 0 " + std::to_string(p.defocus_u) + " " + std::to_string(p.defocus_v) + " " +
          std::to_string(p.defocus_angle) + " " + std::to_string(p.phase_shift) + " " + std::to_string(p.bfactor) +
          " 1 1@none.mrcs\n";
  test::write_text(dir + "/ctf.star", star);
  auto r = test::run("relion_project --i delta.mrc --o proj --ang ctf.star --ctf", dir);
  REQUIRE_MESSAGE(r.status == 0, r.out);
  io::Image im = io::read_mrc(dir + "/proj.mrcs");
  REQUIRE(im.nx == n);

  std::vector<cfloat> f(size_t(n) * (n / 2 + 1));
  fft2_r2c(n, n, im.data.data(), f.data());
  CtfParams mirror = p;
  mirror.defocus_angle = -p.defocus_angle;
  auto same = make_ctf_consts<double>(p), other = make_ctf_consts<double>(mirror);
  double s[3] = {0, 0, 0}, ss[3] = {0, 0, 0}, sxy[2] = {0, 0}, cnt = 0, dc = 0;
  for (int row = 0; row < n; ++row) {
    int ky = row > n / 2 ? row - n : row;
    for (int kx = 0; kx <= n / 2; ++kx) {
      if (kx * kx + ky * ky > (n / 2) * (n / 2)) continue;
      // The image centre is pixel N/2: undo the DFT's (-1)^(kx+ky) phase (DESIGN §2).
      double v = f[size_t(row) * (n / 2 + 1) + kx].real() * (((kx + ky) & 1) ? -1 : 1);
      double fx = kx / (n * px), fy = ky / (n * px);
      double c[2] = {ctf_value(same, fx, fy), ctf_value(other, fx, fy)};
      if (kx == 0 && ky == 0) dc = v;
      s[0] += v; ss[0] += v * v; cnt += 1;
      for (int q = 0; q < 2; ++q) { s[q + 1] += c[q]; ss[q + 1] += c[q] * c[q]; sxy[q] += v * c[q]; }
    }
  }
  auto corr = [&](int q) {
    double cov = sxy[q] - s[0] * s[q + 1] / cnt;
    return cov / std::sqrt((ss[0] - s[0] * s[0] / cnt) * (ss[q + 1] - s[q + 1] * s[q + 1] / cnt));
  };
  double scale = sxy[0] / ss[1];  // least-squares gain relion's image / our CTF
  return {corr(0), corr(1), dc / scale};
}

}  // namespace

TEST_CASE("our CTF equals relion_project --ctf: defocus, astigmatism handedness, phase shift, B-factor") {
  if (!test::oracle("relion_project")) return;
  const int n = 96;
  const double px = 1.5;
  std::string dir = test::scratch_dir("conventions_ctf");
  for (double angle : {30.0, -30.0})
    for (double phase : {0.0, 90.0})
      for (double bfac : {0.0, 150.0}) {
        CtfParams p;
        p.defocus_u = 15000;
        p.defocus_v = 14000;  // 1000 Å of astigmatism
        p.defocus_angle = angle;
        p.phase_shift = phase;
        p.bfactor = bfac;
        CtfComparison c = compare_ctf(dir, p, n, px);
        INFO("angle " << angle << " phase " << phase << " B " << bfac);
        CHECK(c.corr_same > 0.999);
        CHECK(c.corr_mirror < 0.9);  // the wrong handedness is told apart
        if (phase == 0) CHECK(c.dc_over_scale == doctest::Approx(p.amp_contrast).epsilon(0.01));  // CTF(0) = +Q0
      }
}
