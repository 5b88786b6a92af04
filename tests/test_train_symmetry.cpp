// `cugmm train --sym` and `--focus-mask` through the program (issue 18): the run directory says which copy
// is which (latent.txt and particles.star one row per copy, poses A R_k, rlnCugmmSymmetryCopy, run.json), only
// the first asymmetric unit moves, embed reproduces the run's latent (replaying the expansion and the
// subtraction), analyze folds the copies back, evenodd keeps a particle's copies in its half, and the
// combinations that make no sense are refused.
#include <nlohmann/json.hpp>

#include "engine/symmetry.h"
#include "io/particles.h"
#include "io/star.h"
#include "train_data.h"

using namespace cugmm;
using namespace cugmm::train_test;

namespace {

const char* kOpts = " --epochs 1 --batch 16 --lr 1e-3 --latent 2 --hidden 32 --val-fraction 0.1";

nlohmann::json read_json(const std::string& path) {
  std::ifstream f(path);
  return nlohmann::json::parse(f);
}

size_t data_lines(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  size_t n = 0;
  while (std::getline(in, line)) n += !line.empty() && line[0] != '#';
  return n;
}

// The same latent rows to rounding (embed batches differently from the trainer, so BLAS rounds differently).
void check_same_latent(const std::string& a, const std::string& b) {
  const Matrix x = read_latent(a), y = read_latent(b);
  REQUIRE(x.rows == y.rows);
  REQUIRE(x.cols == y.cols);
  double d = 0;
  for (size_t i = 0; i < x.values.size(); ++i) d = std::max(d, std::fabs(x.values[i] - y.values[i]));
  CHECK(d < 1e-4);
}

}  // namespace

TEST_CASE("train --sym C3: one latent row and one STAR row per copy, first unit moves, embed and analyze --fold") {
  DataSet d = make_data("train_sym", "c3-trimer", 64, 2.0);
  const std::string run = d.dir + "/run";
  test::RunResult r = test::run(train_cmd(d, run, std::string(kOpts) + " --sym c3"));
  REQUIRE_MESSAGE(r.status == 0, r.out);
  const SymmetryGroup g = make_symmetry_group("C3");
  CHECK(data_lines(run + "/latent.txt") == 3 * 64);
  CHECK(test::contains(test::read_text(run + "/latent.txt"), "3 consecutive rows per particle"));
  const nlohmann::json rj = read_json(run + "/run.json");
  CHECK(rj["symmetry"]["group"] == "C3");
  CHECK(rj["symmetry"]["copies"] == 3);
  CHECK(rj["config"]["symmetry"] == "C3");
  // particles.star: the input's rows, each three times, with the expanded poses and the copy number.
  io::ParticleReadOptions o;
  o.check_images = false;
  const io::ParticleSet in = io::read_particles(d.star, o), out = io::read_particles(run + "/particles.star", o);
  REQUIRE(out.particles.size() == 3 * in.particles.size());
  io::StarFile star = io::read_star(run + "/particles.star");
  const io::StarBlock* b = star.find("particles");
  const int copy = b->column("rlnCugmmSymmetryCopy");
  REQUIRE(copy >= 0);
  for (size_t i = 0; i < out.particles.size(); ++i) {
    CHECK(b->rows[i][size_t(copy)] == std::to_string(i % 3 + 1));
    CHECK(out.particles[i].index == in.particles[i / 3].index);
    const io::Particle& p = in.particles[i / 3];
    const Mat3<double> want = mul(euler_to_matrix(p.rot, p.tilt, p.psi), g.operators[i % 3]);
    const Mat3<double> got = euler_to_matrix(out.particles[i].rot, out.particles[i].tilt, out.particles[i].psi);
    for (int k = 0; k < 9; ++k) CHECK(std::fabs(want.m[k] - got.m[k]) < 1e-5);
  }
  // Only the first asymmetric unit's Gaussians are movable.
  const io::GaussianModel n = io::read_model(d.model);
  std::vector<Vec3<double>> centres;
  for (size_t j = 0; j < n.size(); ++j) centres.push_back({n.x[j], n.y[j], n.z[j]});
  const std::vector<int> unit = asymmetric_units(g, centres);
  const std::vector<int> movable = rj["movable_gaussians"].get<std::vector<int>>();
  size_t in_unit0 = 0;
  for (size_t j = 0; j < n.size(); ++j) in_unit0 += unit[j] == 0;
  CHECK(movable.size() == in_unit0);
  CHECK(in_unit0 * 3 == n.size());  // three identical chains: a third each
  for (int j : movable) CHECK(unit[size_t(j)] == 0);
  // embed replays the expansion: the same latent, row for row.
  r = test::run(test::cugmm_exe() + " embed " + run + " --particles " + d.star + " --out " + d.dir +
                "/emb --device cpu --threads 2");
  REQUIRE_MESSAGE(r.status == 0, r.out);
  check_same_latent(d.dir + "/emb/latent.txt", run + "/latent.txt");
  // analyze folds the copies back: one line per particle naming its copies and the chosen one.
  r = test::run(test::cugmm_exe() + " analyze " + run + " --out " + d.dir + "/an --k 2 --pcs 1 --frames 2 "
                "--no-reconstruct --fold mean --device cpu");
  REQUIRE_MESSAGE(r.status == 0, r.out);
  CHECK(data_lines(d.dir + "/an/fold.txt") == 64);
  const nlohmann::json aj = read_json(d.dir + "/an/analyze.json");
  CHECK(aj["symmetry"]["rule"] == "mean");
  double total = 0;
  for (double c : aj["symmetry"]["largest_motion_copy_counts"].get<std::vector<double>>()) total += c;
  CHECK(total == 64);
  // evenodd --sym: each half's run is expanded, a particle's copies stay in its half.
  r = test::run(test::cugmm_exe() + " evenodd " + d.star + " " + d.model + " --out " + d.dir + "/eo --sym C3 --epochs 1 "
                "--batch 16 --latent 2 --hidden 32 --k 2 --device cpu --threads 2");
  REQUIRE_MESSAGE(r.status == 0, r.out);
  const nlohmann::json ej = read_json(d.dir + "/eo/evenodd.json");
  CHECK(ej["symmetry"]["copies"] == 3);
  CHECK(ej["symmetry"]["latent_rows"] == 3 * 64);
  CHECK(data_lines(d.dir + "/eo/half1/latent.txt") + data_lines(d.dir + "/eo/half2/latent.txt") == 3 * 64);
  CHECK(data_lines(d.dir + "/eo/half1/latent.txt") == 3 * io::read_particles(d.dir + "/eo/half1.star", o).particles.size());
  r = test::run(test::cugmm_exe() + " analyze " + run + " --out " + d.dir + "/an2 --fold median --device cpu");
  CHECK(r.status != 0);
  CHECK(test::contains(r.out, "--fold must be copy-with-largest-motion or mean"));
}

TEST_CASE("train --focus-mask: the region's model on subtracted particles; embed replays the subtraction") {
  DataSet d = make_data("train_focus", "linear", 64, 2.0);
  const io::GaussianModel n = io::read_model(d.model);
  // The mask: chain B's Gaussians (the arm) and a voxel around each.
  io::Image mask;
  mask.nx = mask.ny = mask.nz = n.box_size;
  mask.pixel_size = float(n.pixel_size);
  mask.data.assign(mask.voxels(), 0.f);
  size_t arm = 0;
  for (size_t j = 0; j < n.size(); ++j) {
    if (d.chains[j] != "B") continue;
    ++arm;
    const int c[3] = {int(std::lround(n.x[j] / n.pixel_size)) + n.box_size / 2,
                      int(std::lround(n.y[j] / n.pixel_size)) + n.box_size / 2,
                      int(std::lround(n.z[j] / n.pixel_size)) + n.box_size / 2};
    mask.at(c[0], c[1], c[2]) = 1.f;
  }
  io::write_mrc(d.dir + "/arm.mrc", mask, false);
  for (const char* extra : {"", " --recentre"}) {
    CAPTURE(extra);
    const std::string run = d.dir + (*extra ? "/run_recentre" : "/run");
    test::RunResult r = test::run(train_cmd(d, run, std::string(kOpts) + " --focus-mask " + d.dir + "/arm.mrc" + extra));
    REQUIRE_MESSAGE(r.status == 0, r.out);
    const io::GaussianModel region = io::read_model(run + "/neutral.txt");
    CHECK(region.size() == arm);
    const nlohmann::json rj = read_json(run + "/run.json");
    CHECK(rj["focus"]["subtract"] == "neutral");
    CHECK(rj["focus"]["region_gaussians"] == arm);
    CHECK(rj["focus"]["subtracted_gaussians"] == n.size() - arm);
    CHECK(fs::exists(run + "/particles.subtracted.cugmm-cache"));
    if (*extra) {  // the region's centre is the box centre
      double cx = 0;
      for (float x : region.x) cx += x;
      CHECK(std::fabs(cx / double(region.size())) < 2 * n.pixel_size);
    }
    r = test::run(test::cugmm_exe() + " embed " + run + " --particles " + d.star + " --out " + run +
                  "_emb --device cpu --threads 2");
    REQUIRE_MESSAGE(r.status == 0, r.out);
    check_same_latent(run + "_emb/latent.txt", run + "/latent.txt");
  }
  // --subtract none: the whole model, only the region moves.
  const std::string run = d.dir + "/run_none";
  test::RunResult r = test::run(train_cmd(d, run, std::string(kOpts) + " --focus-mask " + d.dir + "/arm.mrc --subtract none"));
  REQUIRE_MESSAGE(r.status == 0, r.out);
  CHECK(io::read_model(run + "/neutral.txt").size() == n.size());
  CHECK(read_json(run + "/run.json")["movable_gaussians"].size() == arm);
  // Refused before any work.
  auto refused = [&](const std::string& extra, const std::string& what) {
    test::RunResult rr = test::run(train_cmd(d, d.dir + "/refused", std::string(kOpts) + extra));
    CHECK(rr.status != 0);
    CHECK_MESSAGE(test::contains(rr.out, what), rr.out);
    CHECK(!fs::exists(d.dir + "/refused"));
  };
  refused(" --sym X9", "not a point group");
  refused(" --sym C3 --focus-mask " + d.dir + "/arm.mrc", "--focus-mask with --sym");
  refused(" --recentre", "--recentre needs --focus-mask");
  refused(" --focus-mask " + d.dir + "/arm.mrc --subtract all", "--subtract must be neutral or none");
  refused(" --focus-mask " + d.dir + "/arm.mrc --gaussians 0-3", "without --mask or --gaussians");
}
