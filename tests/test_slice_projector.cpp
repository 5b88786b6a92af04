// The simulator's independent image path (issue 12 item 1): atoms -> voxel map -> Fourier-slice projector
// -> CTF, against relion_project of the same map and poses: FRC >= 0.99 and per-ring power within 2% (of
// amplitude) up to 0.8 Nyquist, with and without the CTF, with sub-pixel and large shifts. And the rigid-body
// algebra: a body moved in Fourier space matches the same body moved in real space and re-rendered.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "engine/atom_map.h"
#include "engine/example_atoms.h"
#include "engine/slice_projector.h"
#include "io/mrc.h"
#include "support.h"
#include "support_rings.h"

using namespace cugmm;

namespace {

constexpr int kBox = 64;
constexpr double kPixel = 2.5;

struct Pose {
  double rot, tilt, psi, ox, oy, du, dv, angle;
};
const Pose kPoses[] = {{0, 0, 0, 0, 0, 12000, 11000, 20},         {30, 60, -20, 3.5, -2.25, 15000, 14500, 60},
                       {100, 20, 70, -4, 1, 9000, 9000, 0},        {-45, 135, 10, 0.5, 6, 20000, 18000, -40},
                       {200, 90, -150, -7, -3, 13000, 12500, 110}, {75, 170, 35, 5.3, 4.1, 17000, 16000, 5}};

void compare_with_relion(bool ctf) {
  const std::string dir = test::scratch_dir(ctf ? "slice_relion_ctf" : "slice_relion");
  ExampleAtoms ex = make_example_atoms();
  io::Image map = render_atom_map(ex.model, nullptr, kBox, kPixel, centring_shift(ex.model, kBox, kPixel));
  io::write_mrc(dir + "/map.mrc", map, false);
  std::string star =
      "\n# version 30001\n\ndata_optics\n\nloop_\n_rlnOpticsGroup #1\n_rlnOpticsGroupName #2\n_rlnImagePixelSize #3\n"
      "_rlnImageSize #4\n_rlnImageDimensionality #5\n_rlnVoltage #6\n_rlnSphericalAberration #7\n"
      "_rlnAmplitudeContrast #8\n1 opticsGroup1 2.5 64 2 300 2.7 0.1\n\n\n# version 30001\n\ndata_particles\n\n"
      "loop_\n_rlnImageName #1\n_rlnAngleRot #2\n_rlnAngleTilt #3\n_rlnAnglePsi #4\n_rlnOriginXAngst #5\n"
      "_rlnOriginYAngst #6\n_rlnDefocusU #7\n_rlnDefocusV #8\n_rlnDefocusAngle #9\n_rlnOpticsGroup #10\n";
  int i = 0;
  for (const Pose& p : kPoses)
    star += std::to_string(++i) + "@none.mrcs " + std::to_string(p.rot) + " " + std::to_string(p.tilt) + " " +
            std::to_string(p.psi) + " " + std::to_string(p.ox) + " " + std::to_string(p.oy) + " " +
            std::to_string(p.du) + " " + std::to_string(p.dv) + " " + std::to_string(p.angle) + " 1\n";
  test::write_text(dir + "/parts.star", star);
  auto r = test::run(std::string("relion_project --i map.mrc --o proj --ang parts.star") + (ctf ? " --ctf" : ""), dir);
  REQUIRE_MESSAGE(r.status == 0, r.out);
  io::Image rel = io::read_mrc(dir + "/proj.mrcs");
  REQUIRE(rel.nx == kBox);

  SliceProjector sp({map}, {Vec3<double>{0, 0, 0}});
  std::vector<float> ours(size_t(kBox) * kBox);
  const int ring_limit = int(0.8 * kBox / 2);
  int v = 0;
  for (const Pose& p : kPoses) {
    CtfParams c;
    c.defocus_u = p.du; c.defocus_v = p.dv; c.defocus_angle = p.angle;
    sp.project(euler_to_matrix(p.rot, p.tilt, p.psi), p.ox, p.oy, {BodyMotion{}}, c,
               ctf ? CtfMode::full : CtfMode::none, ours.data());
    const float* theirs = rel.data.data() + size_t(v) * kBox * kBox;
    test::RingCompare rc = test::compare_rings(ours.data(), theirs, kBox);
    double worst_frc = 1, worst_amp = 0;
    for (int ring = 1; ring <= ring_limit; ++ring) {
      // Rings where the CTF crosses zero hold almost no power on either side: compare amplitude where the
      // ring carries signal (FRC is still checked on every ring).
      worst_frc = std::min(worst_frc, rc.frc[ring]);
      worst_amp = std::max(worst_amp, std::abs(std::sqrt(rc.power_ratio[ring]) - 1));
    }
    const std::string what = "view " + std::to_string(v) + (ctf ? " (CTF)" : "");
    INFO(what << ": lowest FRC " << worst_frc << ", largest amplitude error " << worst_amp);
    CHECK(worst_frc >= 0.99);
    CHECK(worst_amp <= 0.02);
    ++v;
  }
}

}  // namespace

TEST_CASE("slice projector matches relion_project of an atomic map (no CTF)") {
  if (!test::oracle("relion_project")) return;
  compare_with_relion(false);
}

TEST_CASE("slice projector matches relion_project --ctf of an atomic map") {
  if (!test::oracle("relion_project")) return;
  compare_with_relion(true);
}

TEST_CASE("a body moved in Fourier space matches the moved atoms rendered again") {
  ExampleAtoms ex = make_example_atoms();
  const Vec3<double> shift = centring_shift(ex.model, kBox, kPixel);
  const std::vector<char> arm = io::select_atoms(ex.model, "B");
  std::vector<char> rest(arm.size());
  for (size_t i = 0; i < arm.size(); ++i) rest[i] = !arm[i];
  // The hinge in the map frame's box-centred coordinates.
  const double c = kBox / 2 * kPixel;
  const Vec3<double> pivot{ex.hinge_point.x + shift.x - c, ex.hinge_point.y + shift.y - c, ex.hinge_point.z + shift.z - c};
  SliceProjector sp({render_atom_map(ex.model, &rest, kBox, kPixel, shift), render_atom_map(ex.model, &arm, kBox, kPixel, shift)},
                    {Vec3<double>{0, 0, 0}, pivot});
  // Swing the arm by 20 degrees about the hinge axis and slide it 4 Å, on the atoms themselves.
  BodyMotion m;
  const double deg = 20.0, tr = 4.0;
  m.rotation = axis_angle_to_matrix(ex.hinge_axis.x * deg2rad(deg), ex.hinge_axis.y * deg2rad(deg),
                                    ex.hinge_axis.z * deg2rad(deg));
  m.translation = {tr * ex.slide_direction.x, tr * ex.slide_direction.y, tr * ex.slide_direction.z};
  io::AtomicModel moved = ex.model;
  for (size_t i = 0; i < moved.atoms.size(); ++i) {
    if (!arm[i]) continue;
    io::Atom& a = moved.atoms[i];
    const Vec3<double> d{a.x - ex.hinge_point.x, a.y - ex.hinge_point.y, a.z - ex.hinge_point.z};
    const Vec3<double> r = mul(m.rotation, d);
    a.x = float(ex.hinge_point.x + r.x + m.translation.x);
    a.y = float(ex.hinge_point.y + r.y + m.translation.y);
    a.z = float(ex.hinge_point.z + r.z + m.translation.z);
  }
  SliceProjector whole({render_atom_map(moved, nullptr, kBox, kPixel, shift)}, {Vec3<double>{0, 0, 0}});
  std::vector<float> a(size_t(kBox) * kBox), b(a.size());
  for (const Pose& p : kPoses) {
    const Mat3<double> view = euler_to_matrix(p.rot, p.tilt, p.psi);
    sp.project(view, p.ox, p.oy, {BodyMotion{}, m}, CtfParams{}, CtfMode::none, a.data());
    whole.project(view, p.ox, p.oy, {BodyMotion{}}, CtfParams{}, CtfMode::none, b.data());
    test::RingCompare rc = test::compare_rings(a.data(), b.data(), kBox);
    double worst = 1;
    for (int ring = 1; ring <= int(0.8 * kBox / 2); ++ring) worst = std::min(worst, rc.frc[ring]);
    INFO("view rot " << p.rot << ": lowest FRC " << worst);
    CHECK(worst >= 0.99);
    // Without the arm (weight 0) the image is the core's alone: it differs from the whole.
    BodyMotion gone = m;
    gone.weight = 0;
    sp.project(view, p.ox, p.oy, {BodyMotion{}, gone}, CtfParams{}, CtfMode::none, b.data());
    double diff = 0, norm = 0;
    for (size_t i = 0; i < a.size(); ++i) { diff += std::pow(a[i] - b[i], 2); norm += double(a[i]) * a[i]; }
    CHECK(diff > 0.02 * norm);
  }
}
