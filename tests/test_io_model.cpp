// Model files: the native format round-trips bit for bit; PDB/mmCIF pseudo-atoms are checked by the oracle
// python3-gemmi (coordinates in the map frame, occupancy, B); ChimeraX .cmm and .bild by parsing them back.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <tuple>

#include "core/error.h"
#include "io/atoms.h"
#include "io/model.h"
#include "support.h"

using namespace cugmm;
using namespace cugmm::io;

namespace {

using test::input_error;
using test::contains;

GaussianModel random_model(size_t g, unsigned seed, double s_lo, double s_hi, int box = 65, double pixel = 1.3) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> pos(-30, 30), amp(0.05f, 2.f), wid{float(s_lo), float(s_hi)};
  GaussianModel m;
  m.box_size = box, m.pixel_size = pixel;
  m.resize(g);
  for (size_t j = 0; j < g; ++j)
    m.x[j] = pos(rng), m.y[j] = pos(rng), m.z[j] = pos(rng), m.amplitude[j] = amp(rng), m.width[j] = wid(rng);
  return m;
}

// The model as the oracle should see it: map-frame coordinates, occupancy and B, one Gaussian per line.
void write_expected(const std::string& path, const GaussianModel& m) {
  double off = (m.box_size / 2) * m.pixel_size, amax = 0;
  for (float a : m.amplitude) amax = std::max(amax, double(a));
  std::ofstream f(path);
  f.precision(10);
  for (size_t j = 0; j < m.size(); ++j)
    f << m.x[j] + off << ' ' << m.y[j] + off << ' ' << m.z[j] + off << ' ' << m.amplitude[j] / amax << ' '
      << 8 * M_PI * M_PI * m.width[j] * m.width[j] << '\n';
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * 4) == 0;
}

// Compares the first model of a PDB/mmCIF with expected.txt: coordinates, occupancy and B within tolerances.
const char* kCompare = R"(
import gemmi, numpy as np, sys
path, xyz_tol, occ_tol, b_tol, nmodels = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
st = gemmi.read_structure(path)
assert len(st) == nmodels, (len(st), nmodels)
e = np.loadtxt('expected.txt', ndmin=2)
got = np.array([[a.pos.x, a.pos.y, a.pos.z, a.occ, a.b_iso] for ch in st[0] for r in ch for a in r])
assert got.shape == e.shape, (got.shape, e.shape)
assert np.abs(got[:, :3] - e[:, :3]).max() <= xyz_tol, np.abs(got[:, :3] - e[:, :3]).max()
assert np.abs(got[:, 3] - e[:, 3]).max() <= occ_tol, np.abs(got[:, 3] - e[:, 3]).max()
assert np.abs(got[:, 4] - np.minimum(e[:, 4], 999.99 if path.endswith('.pdb') else 1e30)).max() <= b_tol
)";

}  // namespace

TEST_CASE("the native model file round-trips bit for bit and tolerates comments and blank lines") {
  std::string dir = test::scratch_dir("io_model_native");
  GaussianModel m = random_model(200, 1, 0.5, 9);
  m.pixel_size = 1.0600000000000001;  // needs all 17 digits
  m.x[0] = 0.1f, m.y[0] = -1e-30f, m.z[0] = 3.4e38f, m.amplitude[0] = -2.5f;
  write_model(dir + "/m.txt", m);
  GaussianModel r = read_model(dir + "/m.txt");
  CHECK(r.box_size == 65);
  CHECK(r.pixel_size == m.pixel_size);
  CHECK(same_bits(r.x, m.x));
  CHECK(same_bits(r.y, m.y));
  CHECK(same_bits(r.z, m.z));
  CHECK(same_bits(r.amplitude, m.amplitude));
  CHECK(same_bits(r.width, m.width));

  test::write_text(dir + "/hand.gmm", "# made by hand\n\n  64 2.5  \n# x y z a s\n1 2 3 4 5\n\n-1 -2 -3 0.5 1.5e0 # trailing\n");
  GaussianModel h = load_any_model(dir + "/hand.gmm");
  CHECK(h.box_size == 64);
  CHECK(h.pixel_size == 2.5);
  REQUIRE(h.size() == 2);
  CHECK(h.z[1] == -3.f);
  CHECK(h.width[1] == 1.5f);
}

TEST_CASE("bad native model files are InputErrors naming the file, line and field") {
  std::string dir = test::scratch_dir("io_model_bad");
  auto err = [&](const std::string& text) {
    test::write_text(dir + "/m.txt", text);
    std::string e = input_error([&] { read_model(dir + "/m.txt"); });
    CHECK(contains(e, dir + "/m.txt"));
    return e;
  };
  const std::string head = "box_size 32 pixel_size 1.5\n";
  CHECK(contains(err(head + "1 2 3 4\n"), "line 2: 4 fields, expected 5"));
  CHECK(contains(err(head + "1 2 3 4 5 6\n"), "6 fields"));
  CHECK(contains(err(head + "1 2 x 4 5\n"), "line 2, z: 'x' is not a number"));
  CHECK(contains(err(head + "1 2 3 4 0\n"), "width"));
  CHECK(contains(err(head + "1 2 3 4 -1\n"), "not positive"));
  CHECK(contains(err(head + "1 nan 3 4 1\n"), "line 2, y"));
  CHECK(contains(err(head + "1 2 3 inf 1\n"), "amplitude"));
  CHECK(contains(err(head + "1 2 3 4 1e39\n"), "width"));
  CHECK(contains(err("1 2 3 4 5\n"), "header"));
  CHECK(contains(err("box_size -4 pixel_size 1\n1 2 3 4 5\n"), "box size"));
  CHECK(contains(err("box_size 32 pixel_size 0\n1 2 3 4 5\n"), "pixel size"));
  CHECK(contains(err(""), "empty"));
  CHECK(contains(err(head), "no Gaussians"));
  CHECK(contains(input_error([&] { read_model(dir + "/none.txt"); }), "not found"));
  CHECK(contains(input_error([&] { load_any_model(dir + "/m.xyz"); }), "unknown model format"));
  CHECK(contains(input_error([&] { load_any_model(dir + "/m.pdb"); }), "box size and pixel size"));
  // Writing refuses what it could not read back.
  GaussianModel m = random_model(3, 2, 1, 2);
  m.width[1] = 0;
  CHECK_THROWS_AS(write_model(dir + "/w.txt", m), Error);
  m.width[1] = 1;
  m.y.pop_back();
  CHECK_THROWS_AS(write_model(dir + "/w.txt", m), Error);
}

TEST_CASE("PDB and mmCIF pseudo-atoms: gemmi sees map-frame coordinates, occupancy = a / max a, B = 8 pi^2 s^2") {
  std::string dir = test::scratch_dir("io_model_pdb");
  GaussianModel m = random_model(300, 3, 0.8, 3.5);  // B up to 967: fits PDB
  write_expected(dir + "/expected.txt", m);
  write_pseudo_atoms(dir + "/m.pdb", m);
  write_pseudo_atoms(dir + "/m.cif", m);
  test::write_text(dir + "/compare.py", kCompare);
  for (auto [file, tol] : {std::pair{"m.pdb", "0.0006 0.0051 0.0051"}, std::pair{"m.cif", "1e-4 2e-6 2e-3"}}) {
    auto r = test::run(std::string(test::kPython) + " compare.py " + file + " " + tol + " 1", dir);
    INFO(r.out);
    CHECK(r.status == 0);
  }
  // And back through our reader: mmCIF keeps float precision, PDB its 3 and 2 decimals.
  double amax = 0;
  for (float a : m.amplitude) amax = std::max(amax, double(a));
  for (auto [file, xyz_tol, rel_tol] : {std::tuple{"m.cif", 1e-4, 1e-5}, std::tuple{"m.pdb", 6e-4, 3e-3}}) {
    CAPTURE(file);
    GaussianModel r = load_any_model(dir + "/" + file, 65, 1.3);
    REQUIRE(r.size() == m.size());
    double dx = 0, da = 0, ds = 0;
    for (size_t j = 0; j < m.size(); ++j) {
      dx = std::max({dx, std::abs(double(r.x[j]) - m.x[j]), std::abs(double(r.y[j]) - m.y[j]), std::abs(double(r.z[j]) - m.z[j])});
      da = std::max(da, std::abs(r.amplitude[j] * amax - m.amplitude[j]) / amax);
      ds = std::max(ds, std::abs(double(r.width[j]) - m.width[j]) / m.width[j]);
    }
    CHECK(dx <= xyz_tol);
    CHECK(da <= (std::string(file) == "m.pdb" ? 0.0051 : rel_tol));
    CHECK(ds <= rel_tol);
  }
  GaussianModel scaled = read_pseudo_atoms(dir + "/m.cif", 65, 1.3, 10.0);
  CHECK(scaled.amplitude[0] == doctest::Approx(10 * m.amplitude[0] / amax).epsilon(1e-5));
}

TEST_CASE("PDB limits: B past 999.99 is clamped (mmCIF keeps it), serials past 99,999 still read back") {
  std::string dir = test::scratch_dir("io_model_limits");
  GaussianModel wide = random_model(50, 4, 2, 8);  // widths past 3.56 A
  int over = 0;
  for (float s : wide.width) over += 8 * M_PI * M_PI * s * s > 999.99;
  REQUIRE(over > 5);
  write_expected(dir + "/expected.txt", wide);
  write_pseudo_atoms(dir + "/w.pdb", wide);
  write_pseudo_atoms(dir + "/w.cif", wide);
  test::write_text(dir + "/compare.py", kCompare);
  // compare.py caps the expected B at 999.99 for .pdb and not for .cif.
  CHECK(test::run(std::string(test::kPython) + " compare.py w.pdb 0.0006 0.0051 0.0051 1", dir).status == 0);
  CHECK(test::run(std::string(test::kPython) + " compare.py w.cif 1e-4 2e-6 1e-2 1", dir).status == 0);

  GaussianModel big = random_model(100050, 5, 1, 2, 256, 1.0);
  big.x.back() = 11.5f;
  write_pseudo_atoms(dir + "/big.pdb", big);
  auto r = test::run(std::string(test::kPython) +
                         " -c \"import gemmi; st = gemmi.read_structure('big.pdb'); a = [a for c in st[0] for r in c for a in r];"
                         " print(len(a), a[-1].serial, round(a[-1].pos.x, 3), len(st[0]))\"",
                     dir);
  INFO(r.out);
  // 100,050 atoms in 11 chains (9,999 residues each); the last serial counts the TER records too.
  CHECK(contains(r.out, "100050 "));
  CHECK(contains(r.out, " 139.5 11"));
  GaussianModel back = read_pseudo_atoms(dir + "/big.pdb", 256, 1.0);
  CHECK(back.size() == 100050);
  CHECK(back.x.back() == doctest::Approx(11.5));
}

TEST_CASE("trajectories: one MODEL per frame in PDB, one model number per frame in mmCIF") {
  std::string dir = test::scratch_dir("io_model_traj");
  std::vector<GaussianModel> frames;
  for (int f = 0; f < 3; ++f) {
    frames.push_back(random_model(20, 6, 1, 2));
    for (float& x : frames.back().x) x += 2.f * f;
  }
  write_expected(dir + "/expected.txt", frames[0]);
  write_pseudo_atom_trajectory(dir + "/t.pdb", frames);
  write_pseudo_atom_trajectory(dir + "/t.cif", frames);
  test::write_text(dir + "/compare.py", kCompare);
  CHECK(test::run(std::string(test::kPython) + " compare.py t.pdb 0.0006 0.0051 0.0051 3", dir).status == 0);
  CHECK(test::run(std::string(test::kPython) + " compare.py t.cif 1e-4 2e-6 2e-3 3", dir).status == 0);
  auto r = test::run(std::string(test::kPython) + " -c \"import gemmi\nfor f in ('t.pdb', 't.cif'):\n"
                     "  st = gemmi.read_structure(f); print(round(st[2][0][0][0].pos.x - st[0][0][0][0].pos.x, 3))\"", dir);
  CHECK(r.out == "4.0\n4.0\n");
  frames[1].resize(19);
  CHECK_THROWS_AS(write_pseudo_atom_trajectory(dir + "/bad.pdb", frames), Error);
}

TEST_CASE("bad pseudo-atom files are InputErrors naming the file and atom") {
  std::string dir = test::scratch_dir("io_model_pdb_bad");
  test::write_text(dir + "/zero_b.pdb",
                   "HETATM    1  C   GAU A   1      10.000  11.000  12.000  1.00  5.00           C\n"
                   "HETATM    2  C   GAU A   2      10.000  11.000  12.000  1.00  0.00           C\n");
  std::string e = input_error([&] { read_pseudo_atoms(dir + "/zero_b.pdb", 32, 1.0); });
  CHECK(contains(e, "zero_b.pdb"));
  CHECK(contains(e, "atom 2"));
  CHECK(contains(e, "B-factor"));
  test::write_text(dir + "/junk.cif", "data_x\nloop_\n_atom_site.id\n'unterminated\n");
  CHECK(contains(input_error([&] { read_pseudo_atoms(dir + "/junk.cif", 32, 1.0); }), "junk.cif"));
  test::write_text(dir + "/empty.pdb", "REMARK nothing here\nEND\n");
  CHECK(contains(input_error([&] { read_pseudo_atoms(dir + "/empty.pdb", 32, 1.0); }), "no atoms"));
  CHECK(contains(input_error([&] { read_pseudo_atoms(dir + "/none.pdb", 32, 1.0); }), "cannot open"));
}

TEST_CASE("coordinate files: integers too large for gemmi are InputErrors; header records never reach it") {
  // Found by fuzzing: gemmi parses _atom_site.id and DBREF2's ten-digit fields with signed overflow.
  std::string dir = test::scratch_dir("io_model_overflow");
  const std::string site = "data_x\nloop_\n_atom_site.group_PDB\n_atom_site.id\n_atom_site.type_symbol\n"
                           "_atom_site.label_atom_id\n_atom_site.label_alt_id\n_atom_site.label_comp_id\n"
                           "_atom_site.label_asym_id\n_atom_site.label_seq_id\n_atom_site.auth_seq_id\n_atom_site.Cartn_x\n_atom_site.Cartn_y\n_atom_site.Cartn_z\n"
                           "_atom_site.occupancy\n_atom_site.B_iso_or_equiv\n";
  test::write_text(dir + "/ok.cif", site + "HETATM 1 C C . GAU A 1 1 10 11 12 1 5\nHETATM 2 C C . GAU A 2 2 13 11 12 1 5\n");
  CHECK(read_pseudo_atoms(dir + "/ok.cif", 32, 1.0).size() == 2);
  test::write_text(dir + "/big_id.cif", site + "HETATM 1 C C . GAU A 1 1 10 11 12 1 5\n"
                                               "HETATM 77777777777 C C . GAU A 2 2 13 11 12 1 5\n");
  std::string e = input_error([&] { read_pseudo_atoms(dir + "/big_id.cif", 32, 1.0); });
  CHECK(contains(e, "big_id.cif"));
  CHECK(contains(e, "_atom_site.id (row 2)"));
  CHECK(contains(e, "too large"));
  test::write_text(dir + "/big_seq.cif", site + "HETATM 1 C C . GAU A -3000000000 1 10 11 12 1 5\n");
  CHECK(contains(input_error([&] { read_atoms(dir + "/big_seq.cif"); }), "_atom_site.label_seq_id (row 1)"));
  // A DBREF2 record with an 11-digit sequence number is a header record: not read, the atoms are.
  test::write_text(dir + "/dbref.pdb",
                   "DBREF2 1ABC A     P12345                        99999999999  99999999999\n"
                   "HETATM    1  C   GAU A   1      10.000  11.000  12.000  1.00  5.00           C\n");
  CHECK(read_pseudo_atoms(dir + "/dbref.pdb", 32, 1.0).size() == 1);
  test::write_text(dir + "/binary.pdb", "\xff\xfe" "ATOM\n");
  CHECK(contains(input_error([&] { read_pseudo_atoms(dir + "/binary.pdb", 32, 1.0); }), "not plain text"));
  test::write_text(dir + "/model.xyz", "C 0 0 0\n");
  CHECK(contains(input_error([&] { read_atoms(dir + "/model.xyz"); }), "not a PDB"));
}

TEST_CASE("ChimeraX markers: map-frame centres, radius 2 s; arrows only past min_length, coloured by length") {
  std::string dir = test::scratch_dir("io_model_chimerax");
  GaussianModel a = random_model(4, 7, 1, 2, 65, 2.0);  // odd box: centre voxel 32, offset 64 A
  write_cmm(dir + "/a.cmm", a);
  auto r = test::run(std::string(test::kPython) + " -c \"import xml.etree.ElementTree as E\n"
                     "for m in E.parse('a.cmm').getroot(): print(m.get('x'), m.get('radius'))\"", dir);
  std::istringstream lines(r.out);
  for (size_t j = 0; j < 4; ++j) {
    double x = 0, radius = 0;
    lines >> x >> radius;
    CHECK(x == doctest::Approx(a.x[j] + 64.0).epsilon(1e-4));
    CHECK(radius == doctest::Approx(2 * a.width[j]).epsilon(1e-4));
  }

  GaussianModel b = a;
  b.x[0] += 0.5f;  // below min_length
  b.y[1] += 3.f;
  b.z[3] -= 6.f;   // the longest: red
  write_bild_arrows(dir + "/m.bild", a, b, 1.0);
  std::istringstream bild(test::read_text(dir + "/m.bild"));
  std::string line;
  std::vector<std::vector<double>> arrows, colours;
  while (std::getline(bild, line)) {
    std::istringstream f(line);
    std::string key;
    f >> key;
    std::vector<double> v;
    for (double d; f >> d;) v.push_back(d);
    if (key == ".arrow") arrows.push_back(v);
    if (key == ".color") colours.push_back(v);
    // Every line a directive of ChimeraX's BILD reader (docs/user/formats/bild.html), none plain text.
    CHECK_MESSAGE((key == ".arrow" || key == ".color" || key == ".comment"), line);
  }
  REQUIRE(arrows.size() == 2);
  REQUIRE(colours.size() == 2);
  CHECK(arrows[0].size() == 9);
  CHECK(arrows[0][1] == doctest::Approx(a.y[1] + 64.0).epsilon(1e-4));
  CHECK(arrows[0][4] == doctest::Approx(b.y[1] + 64.0).epsilon(1e-4));
  CHECK(arrows[1][5] == doctest::Approx(b.z[3] + 64.0).epsilon(1e-4));
  CHECK(colours[1][0] == 1.0);  // longest arrow: red
  CHECK(colours[1][2] == 0.0);
  CHECK(colours[0][2] > colours[1][2]);  // shorter: bluer
  b.resize(3);
  CHECK_THROWS_AS(write_bild_arrows(dir + "/x.bild", a, b, 1.0), Error);
}
