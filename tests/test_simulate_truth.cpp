// Issue 12 items 2, 3 and 7: the heterogeneity generator. Its images show the states its truth table
// records (compared with the moved atoms rendered again as one map, not with its own body algebra), the
// pose errors have the asked geodesic RMS, the noise has the asked SNR, the files are what RELION reads (and
// relion_project of the true map at the true poses is the noise-free image), and bad options get clear errors.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "engine/atom_map.h"
#include "engine/example_atoms.h"
#include "engine/fsc.h"
#include "engine/particle_poses.h"
#include "engine/simulate_system.h"
#include "engine/system_imager.h"
#include "io/mrc.h"
#include "io/particles.h"
#include "support.h"
#include "support_rings.h"

using namespace cugmm;

namespace {

std::vector<std::vector<std::string>> read_csv(const std::string& path) {
  std::ifstream f(path);
  std::vector<std::vector<std::string>> rows;
  std::string line;
  while (std::getline(f, line)) {
    std::vector<std::string> cells;
    std::stringstream ss(line);
    std::string c;
    while (std::getline(ss, c, ',')) cells.push_back(c);
    rows.push_back(cells);
  }
  return rows;
}

TruthSimOptions small(int count) {
  TruthSimOptions o;
  o.count = count;
  o.box = 48;
  o.pixel = 3.5;
  o.snr = 0;
  o.pose_error_deg = 0;
  o.shift_error_px = 0;
  o.scale_sd = 0;
  return o;
}

}  // namespace

TEST_CASE("every built-in system's images show the state in its truth table") {
  for (const std::string& name : builtin_system_names()) {
    HeteroSystem sys = builtin_system(name);
    TruthSimOptions o = small(6);
    o.consensus = false;
    const std::string dir = test::scratch_dir("simulate_truth_" + name);
    std::vector<float> images;
    SimulatedTruth res = simulate_system(sys, o, dir, &images);
    auto csv = read_csv(res.truth_csv);
    REQUIRE(csv.size() == 7);
    REQUIRE(csv[0][1] == sys.motions[0].name);
    SystemImager imager(sys, o.box, o.pixel, o.oversample);
    const size_t plane = size_t(o.box) * o.box;
    std::vector<float> ref(plane);
    for (int i = 0; i < o.count; ++i) {
      std::vector<double> state;
      for (size_t k = 0; k < sys.motions.size(); ++k) state.push_back(std::stod(csv[size_t(i) + 1][k + 1]));
      for (size_t k = 0; k < state.size(); ++k) CHECK(state[k] == doctest::Approx(res.state[size_t(i)][k]).epsilon(1e-5));
      // The state's atoms, moved on the atoms and rendered as one map, through a one-body projector.
      SliceProjector whole({render_atom_map(atoms_at_state(sys, state), nullptr, o.box, o.pixel, imager.atom_shift())},
                           {Vec3<double>{0, 0, 0}});
      ParticleTruth t = draw_particle(sys, o, size_t(i));
      whole.project(t.view, t.origin_x, t.origin_y, {BodyMotion{}}, t.ctf, CtfMode::full, ref.data());
      test::RingCompare rc = test::compare_rings(images.data() + plane * size_t(i), ref.data(), o.box);
      double worst = 1;
      for (int r = 1; r <= int(0.8 * o.box / 2); ++r)
        if (rc.power_ratio[r] > 1e-6) worst = std::min(worst, rc.frc[r]);  // skip rings at CTF zeros
      INFO(name << " particle " << i << ": lowest FRC " << worst);
      CHECK(worst >= 0.99);
    }
  }
}

TEST_CASE("states cover the asked ranges; presence is drawn at the asked fraction") {
  HeteroSystem sys = builtin_system("composition");
  TruthSimOptions o = small(4000);
  double lo = 1e9, hi = -1e9, present = 0;
  for (size_t i = 0; i < 4000; ++i) {
    ParticleTruth t = draw_particle(sys, o, i);
    lo = std::min(lo, t.state[0]);
    hi = std::max(hi, t.state[0]);
    present += t.state[1];
  }
  CHECK(lo == doctest::Approx(-12).epsilon(0.01));
  CHECK(hi == doctest::Approx(12).epsilon(0.01));
  CHECK(present / 4000 == doctest::Approx(0.5).epsilon(0.06));
}

// The atoms of `sel` move by exactly d along the system's one translation at each state d; the others stay.
static void check_slides(const HeteroSystem& sys, const std::string& sel, const std::vector<double>& states) {
  const std::vector<char> part = io::select_atoms(sys.atoms, sel);
  auto centroid = [&](const io::AtomicModel& m, bool moving) {
    double w = 0, x = 0, y = 0, z = 0;
    for (size_t i = 0; i < m.atoms.size(); ++i)
      if (bool(part[i]) == moving) {
        w += m.atoms[i].electrons; x += m.atoms[i].electrons * m.atoms[i].x;
        y += m.atoms[i].electrons * m.atoms[i].y; z += m.atoms[i].electrons * m.atoms[i].z;
      }
    return Vec3<double>{x / w, y / w, z / w};
  };
  const Vec3<double> part0 = centroid(sys.atoms, true), rest0 = centroid(sys.atoms, false);
  const Vec3<double> dir = sys.motions[0].axis;
  for (double d : states) {
    INFO(sys.name << " at " << d << " Å");
    const io::AtomicModel m = atoms_at_state(sys, {d});
    REQUIRE(m.atoms.size() == sys.atoms.atoms.size());  // every atom present, in the file's order
    const Vec3<double> a = centroid(m, true), c = centroid(m, false);
    CHECK(a.x - part0.x == doctest::Approx(d * dir.x).epsilon(1e-4));
    CHECK(a.y - part0.y == doctest::Approx(d * dir.y).epsilon(1e-4));
    CHECK(a.z - part0.z == doctest::Approx(d * dir.z).epsilon(1e-4));
    CHECK(c.x == doctest::Approx(rest0.x));
    CHECK(c.y == doctest::Approx(rest0.y));
    CHECK(c.z == doctest::Approx(rest0.z));
  }
}

TEST_CASE("the moved part's centroid follows the truth; the rest stays") {
  check_slides(builtin_system("linear"), "B", {-12.0, -3.5, 0.0, 7.25, 12.0});
}

TEST_CASE("small-part: a few percent of the mass slides several Å, in contact with the rest") {
  const HeteroSystem sys = builtin_system("small-part");
  REQUIRE(sys.motions.size() == 1);
  const Motion& m = sys.motions[0];
  CHECK(m.kind == Motion::Kind::translate);
  CHECK(m.name == "displacement_A");
  CHECK(m.lo == -5);
  CHECK(m.hi == 5);
  // Issue 14: "a small moving part (a few percent of the mass)": counted in electrons, what scatters.
  double moving = 0, total = 0;
  for (size_t i = 0; i < sys.atoms.atoms.size(); ++i) {
    total += sys.atoms.atoms[i].electrons;
    if (m.atoms[i]) moving += sys.atoms.atoms[i].electrons;
  }
  CHECK(moving / total == doctest::Approx(14.0 / 386).epsilon(1e-3));  // the lid's upper helix, 14 residues
  CHECK(moving / total > 0.03);
  CHECK(moving / total < 0.05);
  check_slides(sys, "C:15-28", {-5.0, -1.25, 0.0, 2.5, 5.0});
  // At either end of the range the helix still touches the molecule as it does at rest (closest backbone
  // atoms of the rest 6.5 Å away): neither leaves it (> 8 Å) nor runs into it (< 5 Å).
  for (double d : {-5.0, 5.0}) {
    const io::AtomicModel at = atoms_at_state(sys, {d});
    double closest = 1e9;
    for (size_t i = 0; i < at.atoms.size(); ++i)
      for (size_t j = 0; j < at.atoms.size(); ++j)
        if (m.atoms[i] && !m.atoms[j]) {
          const double dx = at.atoms[i].x - at.atoms[j].x, dy = at.atoms[i].y - at.atoms[j].y,
                       dz = at.atoms[i].z - at.atoms[j].z;
          closest = std::min(closest, std::sqrt(dx * dx + dy * dy + dz * dz));
        }
    INFO("at " << d << " Å the closest atom of the rest is " << closest << " Å away");
    CHECK(closest < 8);
    CHECK(closest > 5);
  }
}

TEST_CASE("pose errors have the asked geodesic RMS, shifts the asked spread") {
  HeteroSystem sys = builtin_system("linear");
  TruthSimOptions o = small(3000);
  o.pose_error_deg = 3;
  o.shift_error_px = 1.5;
  double e2 = 0, s2 = 0;
  for (size_t i = 0; i < 3000; ++i) {
    ParticleTruth t = draw_particle(sys, o, i);
    const Mat3<double> r = mul(transpose(t.view), t.star_view);
    const double a = std::acos(std::clamp((r(0, 0) + r(1, 1) + r(2, 2) - 1) / 2, -1.0, 1.0));
    e2 += a * a;
    s2 += (std::pow(t.star_origin_x - t.origin_x, 2) + std::pow(t.star_origin_y - t.origin_y, 2)) / 2;
  }
  CHECK(rad2deg(std::sqrt(e2 / 3000)) == doctest::Approx(3).epsilon(0.05));
  CHECK(std::sqrt(s2 / 3000) / o.pixel == doctest::Approx(1.5).epsilon(0.05));
}

TEST_CASE("a noisy set: SNR as asked, RELION reads the STAR file, the consensus map is the molecule") {
  HeteroSystem sys = builtin_system("linear");
  TruthSimOptions o = small(400);
  o.snr = 0.1;
  o.pose_error_deg = 2;
  o.shift_error_px = 0.5;
  o.noise_bfactor = 100;
  o.optics_groups = 2;
  o.true_maps = 3;
  const std::string dir = test::scratch_dir("simulate_truth_noisy");
  std::vector<float> images;
  SimulatedTruth res = simulate_system(sys, o, dir, &images);
  CHECK(res.pose_error_rms_deg == doctest::Approx(2).epsilon(0.25));
  // The images are signal + noise: total variance = signal variance (1 + 1/SNR) on average.
  const size_t plane = size_t(o.box) * o.box;
  double tot = 0;
  for (int i = 0; i < o.count; ++i) {
    double s = 0, s2 = 0;
    for (size_t p = 0; p < plane; ++p) { s += images[plane * i + p]; s2 += double(images[plane * i + p]) * images[plane * i + p]; }
    tot += s2 / plane - std::pow(s / plane, 2);
  }
  const double noise_var = res.noise_sigma * res.noise_sigma, signal_var = noise_var * o.snr;
  CHECK(tot / o.count == doctest::Approx(signal_var + noise_var).epsilon(0.05));
  io::ParticleSet set = io::read_particles(res.star);
  CHECK(set.particles.size() == 400);
  CHECK(set.optics.size() == 2);
  if (test::oracle("relion_star_handler")) {
    auto r = test::run("relion_star_handler --i particles.star --o checked.star --select rlnRandomSubset --minval 2 --maxval 2", dir);
    REQUIRE_MESSAGE(r.status == 0, r.out);
    // Particle i (from 1) is in half 2 - i % 2.
    CHECK(test::contains(test::read_text(dir + "/checked.star"), "399@particles.mrcs") == false);
    CHECK(test::contains(test::read_text(dir + "/checked.star"), "400@particles.mrcs"));
  }
  // The consensus map is the molecule: FSC with the true map of the middle state >= 0.5 to 25 Å.
  io::Image cons = io::read_mrc(dir + "/consensus.mrc"), mid = io::read_mrc(dir + "/true_state_002.mrc");
  REQUIRE(cons.data.size() == mid.data.size());
  FscCurve c = fsc(cons.data.data(), mid.data.data(), o.box, o.pixel);
  for (int sh = 1; c.resolution(sh) >= 25; ++sh) {
    INFO("shell " << sh << " (" << c.resolution(sh) << " Å): FSC " << c.value[size_t(sh)]);
    CHECK(c.value[size_t(sh)] >= 0.5);
  }
  CHECK(test::contains(test::read_text(dir + "/simulation.json"), "\"pose_error_rms_deg\""));
}

// The whole chain relion_refine is given in bench_refine_pose (the STAR file's CTF, astigmatism, B-factor and
// origins, the true map's grey scale, pixel size and centre) checked in one go: relion_project of the true
// map at the true poses, with --ctf, is each noise-free image divided by its particle's scale. At the STAR
// poses (3 degrees, 1.5 px off) it is not, so the check can tell a pose from another.
TEST_CASE("relion_project of the true map at the true poses is the simulated image (CTF, origins, grey scale)") {
  if (!test::oracle("relion_project")) return;
  const HeteroSystem sys = rigid_particle(make_example_atoms(1).model);
  TruthSimOptions o = small(12);
  o.scale_sd = 0.1;
  o.pose_error_deg = 3;
  o.shift_error_px = 1.5;
  o.true_maps = 1;
  o.consensus = false;
  const std::string dir = test::scratch_dir("simulate_truth_relion_project");
  std::vector<float> images;
  const SimulatedTruth res = simulate_system(sys, o, dir, &images);
  io::ParticleSet set = io::read_particles(res.star);
  std::vector<ParticlePose> truth;
  for (int i = 0; i < o.count; ++i) {
    const ParticleTruth t = draw_particle(sys, o, size_t(i));
    ParticlePose p{0, 0, 0, t.origin_x, t.origin_y};
    matrix_to_euler(t.view, p.rot, p.tilt, p.psi);
    truth.push_back(p);
  }
  apply_poses(set, truth);
  io::write_star(dir + "/true.star", set.star);
  for (const char* poses : {"true", "particles"}) {
    const std::string name = std::string("proj_") + poses;
    auto r = test::run("relion_project --i true_state_001.mrc --o " + name + " --ang " + poses + ".star --ctf", dir);
    REQUIRE_MESSAGE(r.status == 0, r.out);
  }
  const io::Image at_truth = io::read_mrc(dir + "/proj_true.mrcs"), at_star = io::read_mrc(dir + "/proj_particles.mrcs");
  REQUIRE(at_truth.nz == o.count);
  REQUIRE(at_star.nz == o.count);
  const size_t plane = size_t(o.box) * o.box;
  // Correlation of image i with projection p, and the least-squares slope of the image on it.
  auto fit = [&](const io::Image& proj, int i, double& slope) {
    const float* a = images.data() + plane * size_t(i);
    const float* b = proj.data.data() + plane * size_t(i);
    double ma = 0, mb = 0;
    for (size_t k = 0; k < plane; ++k) { ma += a[k]; mb += b[k]; }
    ma /= double(plane);
    mb /= double(plane);
    double ab = 0, aa = 0, bb = 0;
    for (size_t k = 0; k < plane; ++k) {
      ab += (a[k] - ma) * (b[k] - mb);
      aa += (a[k] - ma) * (a[k] - ma);
      bb += (b[k] - mb) * (b[k] - mb);
    }
    slope = ab / bb;
    return ab / std::sqrt(aa * bb);
  };
  double star_cc = 0;
  for (int i = 0; i < o.count; ++i) {
    double slope = 0, unused = 0;
    const double cc = fit(at_truth, i, slope);
    INFO("particle " << i + 1 << ": correlation " << cc << ", slope " << slope << ", scale " << res.scale[size_t(i)]);
    CHECK(cc >= 0.999);  // 0.9999 measured
    CHECK(slope == doctest::Approx(res.scale[size_t(i)]).epsilon(0.01));
    star_cc += fit(at_star, i, unused) / o.count;
  }
  CHECK(star_cc < 0.9);
}

TEST_CASE("bad options and bad system files are refused with clear errors") {
  HeteroSystem sys = builtin_system("linear");
  const std::string dir = test::scratch_dir("simulate_truth_bad");
  auto message = [&](auto change) {
    TruthSimOptions o = small(10);
    change(o);
    try {
      simulate_system(sys, o, dir);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  CHECK(test::contains(message([](TruthSimOptions& o) { o.box = 47; }), "--box"));
  CHECK(test::contains(message([](TruthSimOptions& o) { o.snr = std::nan(""); }), "--snr"));
  CHECK(test::contains(message([](TruthSimOptions& o) { o.defocus_max = 5000; }), "--defocus"));
  CHECK(test::contains(message([](TruthSimOptions& o) { o.junk_fraction = 1; }), "--junk"));
  CHECK(test::contains(message([](TruthSimOptions& o) { o.name = "../escaped"; }), "--name"));
  CHECK(test::contains(message([](TruthSimOptions& o) { o.pose_error_deg = -1; }), "--pose-error"));
  CHECK_THROWS_WITH_AS(builtin_system("nope"), doctest::Contains("linear, rotation"), Error);
  test::write_text(dir + "/bad.json", R"({"atoms": "x.cif", "motions": []})");
  CHECK(test::input_error([&] { system_from_json(dir + "/bad.json"); }).find("x.cif") != std::string::npos);
}

TEST_CASE("cugmm simulate --system: any PDB through a JSON description, two motions, the oracle reference") {
  const std::string dir = test::scratch_dir("simulate_truth_cli");
  // The built-in atoms written as a PDB file (columns as the PDB format fixes them), read back through gemmi.
  ExampleAtoms ex = make_example_atoms();
  std::string pdb;
  char line[128];
  for (size_t i = 0; i < ex.model.atoms.size(); ++i) {
    const io::Atom& a = ex.model.atoms[i];
    const char* el = a.electrons == 7 ? "N" : a.electrons == 8 ? "O" : "C";
    std::snprintf(line, sizeof line, "ATOM  %5zu  %-3s ALA %s%4d    %8.3f%8.3f%8.3f  1.00%6.2f          %2s\n",
                  (i % 99999) + 1, el, a.chain.c_str(), a.residue, a.x, a.y, a.z, a.b, el);
    pdb += line;
  }
  test::write_text(dir + "/mol.pdb", pdb + "END\n");
  test::write_text(dir + "/sys.json", R"({"atoms": "mol.pdb", "motions": [
      {"type": "rotate", "select": "B", "axis": [0, 1, 0], "point": [16, 0, -24], "range": [-25, 25], "name": "hinge"},
      {"type": "present", "select": "C:1-14", "fraction": 0.5}]})");
  auto r = test::run(test::cugmm_exe() + " simulate --system sys.json --out s --count 80 --box 32 --angpix 5 --snr 1 "
                                         "--reference --reference-particles 40 --reference-poses 4 --device cpu",
                     dir);
  REQUIRE_MESSAGE(r.status == 0, r.out);
  CHECK(test::contains(r.out, "oracle reference canonical_correlation_1 (hinge+present)"));
  CHECK(test::contains(r.out, "oracle reference composition (present)"));
  const std::string truth = test::read_text(dir + "/s/particles_truth.csv");
  CHECK(truth.rfind("index,hinge,present,junk,scale,", 0) == 0);
  CHECK(test::contains(test::read_text(dir + "/s/oracle.json"), "\"pose_marginalised\""));
  // A STAR file is not a system description: refused, naming the built-in systems.
  r = test::run(test::cugmm_exe() + " simulate --system s/particles.star --out s2 --count 4 --device cpu", dir);
  CHECK(r.status == 1);
  CHECK(test::contains(r.out, "linear, rotation, composition, two-motions"));
}
