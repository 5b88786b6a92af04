// `cugmm train --sym` and `--focus-mask` through the program (issue 18): the run directory says which copy
// is which (latent.txt and particles.star one row per copy, poses A R_k, rlnCugmmSymmetryCopy, run.json), only
// the first asymmetric unit moves, embed reproduces the run's latent (replaying the expansion and the
// subtraction), analyze folds the copies back, evenodd keeps a particle's copies in its half, and the
// combinations that make no sense are refused. --focus-mask with --sym subtracts each copy in its own frame;
// --subtract decoded RUN subtracts each particle's decoded outside and refuses a RUN of other particles.
#include <nlohmann/json.hpp>

#include "core/context.h"
#include "core/threads.h"
#include "engine/gaussian_mask.h"
#include "nn/blas.h"
#include "engine/particle_cache.h"
#include "engine/signal_subtraction.h"
#include "engine/symmetry.h"
#include "engine/train_outputs.h"
#include "engine/trainer.h"
#include "io/particles.h"
#include "io/star.h"
#include "band_render.h"
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
// embed runs with train_cmd's one thread: it aligns the shifts again (TrainConfig::align_shifts), an ascent
// whose steps are kept by comparing scores, so another thread count (another rounding) can keep other steps
// and move the latent far more than rounding (0.46 measured with --threads 2 on the --subtract decoded run).
void check_same_latent(const std::string& a, const std::string& b) {
  const Matrix x = read_latent(a), y = read_latent(b);
  REQUIRE(x.rows == y.rows);
  REQUIRE(x.cols == y.cols);
  double d = 0;
  for (size_t i = 0; i < x.values.size(); ++i) d = std::max(d, std::fabs(x.values[i] - y.values[i]));
  CHECK(d < 1e-4);
}

// A mask with one voxel at each Gaussian of `model` whose flag is set (gaussians_in_mask then selects them).
size_t write_gaussian_mask(const io::GaussianModel& model, const std::vector<char>& flags, const std::string& path) {
  io::Image mask;
  mask.nx = mask.ny = mask.nz = model.box_size;
  mask.pixel_size = float(model.pixel_size);
  mask.data.assign(mask.voxels(), 0.f);
  size_t n = 0;
  for (size_t j = 0; j < model.size(); ++j) {
    if (!flags[j]) continue;
    ++n;
    mask.at(int(std::lround(model.x[j] / model.pixel_size)) + model.box_size / 2,
            int(std::lround(model.y[j] / model.pixel_size)) + model.box_size / 2,
            int(std::lround(model.z[j] / model.pixel_size)) + model.box_size / 2) = 1.f;
  }
  io::write_mrc(path, mask, false);
  return n;
}

std::vector<char> chain_flags(const DataSet& d, const std::string& chain) {
  std::vector<char> f(d.chains.size());
  for (size_t j = 0; j < f.size(); ++j) f[j] = d.chains[j] == chain;
  return f;
}

// Re<a, b> / (|a| |b|) over one particle's coefficients.
double correlation(const cfloat* a, const cfloat* b, size_t n) {
  double ab = 0, aa = 0, bb = 0;
  for (size_t k = 0; k < n; ++k) {
    ab += double(a[k].real()) * b[k].real() + double(a[k].imag()) * b[k].imag();
    aa += std::norm(a[k]);
    bb += std::norm(b[k]);
  }
  return ab / std::sqrt(aa * bb);
}

// `run` (--focus-mask with --subtract decoded `whole`) holds exactly the data minus (ring scale x) the
// projection of the outside of whole's decoder at each image's latent point in whole/latent.txt (rows in
// output order: particle x copies + copy, as the expanded cache's), at the image's pose (A R_k for copy k).
// Decoded with train_cmd's one thread: BLAS rounds by its thread count.
void check_decoded_subtraction(const std::string& run, const std::string& whole, const io::GaussianModel& n,
                               const std::vector<char>& inside, size_t copies) {
  set_threads(1);
  nn::set_blas_threads(1);
  Context cx;
  const TrainedModel tm = load_trained(whole + "/model.ckpt", cx);
  const std::vector<float> z = read_latent_txt(whole + "/latent.txt", tm.config.latent);
  const int count = int(z.size() / size_t(tm.config.latent));
  const std::vector<float> rows = decode_points(tm, cx, z, count);
  std::vector<char> outside(n.size());
  for (size_t j = 0; j < n.size(); ++j) outside[j] = !inside[j];
  const size_t G = n.size(), Go = size_t(std::count(outside.begin(), outside.end(), 1));
  std::vector<float> out_rows(size_t(count) * 5 * Go);
  for (size_t i = 0; i < size_t(count); ++i)
    for (size_t f = 0, o = 0; f < 5; ++f)
      for (size_t j = 0; j < G; ++j)
        if (outside[j]) out_rows[i * 5 * Go + o++] = rows[i * 5 * G + f * G + j];
  ParticleCache plain(run + "/particles.cugmm-cache"), sub(run + "/particles.subtracted.cugmm-cache");
  if (copies > 1) {
    const SymmetryGroup g = make_symmetry_group("C" + std::to_string(copies));
    plain.expand(g.name, g.operators);
  }
  REQUIRE(sub.count() == size_t(count));
  REQUIRE(plain.count() == size_t(count));
  const std::vector<cfloat> proj = test::render_band_rows(cx, plain, out_rows.data(), int(Go), 5 * Go);
  const std::vector<double> scale = read_json(run + "/run.json")["focus"]["ring_scale"].get<std::vector<double>>();
  const FourierBand& band = plain.band();
  const std::vector<int64_t> order = output_rows(plain);
  double e = 0, s = 0;
  for (size_t i = 0; i < size_t(count); ++i) {
    REQUIRE(order[i] == int64_t(i));
    for (size_t k = 0; k < band.size(); ++k) {
      const cfloat want = plain.coefficients(i)[k] - float(scale[band.ring[k]]) * proj[i * band.size() + k];
      e += std::norm(sub.coefficients(i)[k] - want);
      s += std::norm(want);
    }
  }
  CHECK(std::sqrt(e / s) < 1e-4);
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
                "/emb --device cpu --threads 1");
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
  // The mask: a voxel at each of chain B's Gaussians (the arm).
  const size_t arm = write_gaussian_mask(n, chain_flags(d, "B"), d.dir + "/arm.mrc");
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
                  "_emb --device cpu --threads 1");
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
  refused(" --recentre", "--recentre needs --focus-mask");
  refused(" --focus-mask " + d.dir + "/arm.mrc --subtract all", "--subtract must be neutral, decoded RUN or none");
  refused(" --focus-mask " + d.dir + "/arm.mrc --gaussians 0-3", "without --mask or --gaussians");
}

TEST_CASE("train --sym C3 --focus-mask: copy k subtracted at its own pose A R_k (per-copy cache); embed replays it") {
  DataSet d = make_data("train_sym_focus", "c3-trimer", 64, 2.0);
  const io::GaussianModel n = io::read_model(d.model);
  const SymmetryGroup g = make_symmetry_group("C3");
  // The mask: the subunit in the first asymmetric unit (the model's frame).
  std::vector<Vec3<double>> centres;
  for (size_t j = 0; j < n.size(); ++j) centres.push_back({n.x[j], n.y[j], n.z[j]});
  const std::vector<int> unit = asymmetric_units(g, centres);
  std::vector<char> unit0(n.size());
  for (size_t j = 0; j < n.size(); ++j) unit0[j] = unit[j] == 0;
  write_gaussian_mask(n, unit0, d.dir + "/unit.mrc");
  // What the mask holds (a voxel may also hold a neighbour of the next unit): that subunit.
  const std::vector<char> inside = gaussians_in_mask(d.dir + "/unit.mrc", n);
  const size_t region = size_t(std::count(inside.begin(), inside.end(), 1)), in_unit0 = size_t(std::count(unit0.begin(), unit0.end(), 1));
  size_t both = 0;
  for (size_t j = 0; j < n.size(); ++j) both += inside[j] && unit0[j];
  REQUIRE(both == in_unit0);
  REQUIRE(region < in_unit0 + in_unit0 / 10);
  const std::string run = d.dir + "/run";
  test::RunResult r = test::run(train_cmd(d, run, std::string(kOpts) + " --sym C3 --focus-mask " + d.dir + "/unit.mrc"));
  REQUIRE_MESSAGE(r.status == 0, r.out);
  const nlohmann::json rj = read_json(run + "/run.json");
  CHECK(rj["symmetry"]["copies"] == 3);
  CHECK(rj["symmetry"]["movable"] == "--focus-mask");
  CHECK(rj["focus"]["region_gaussians"] == region);
  CHECK(io::read_model(run + "/neutral.txt").size() == region);
  CHECK(data_lines(run + "/latent.txt") == 3 * 64);
  // The per-copy cache: one image per copy, each the data minus the outside at that copy's pose, so what is
  // left is the region as copy k sees it (plus noise): it correlates with the region projected at its own
  // pose A R_k and not with the region at another copy's pose.
  ParticleCache sub(run + "/particles.subtracted.cugmm-cache");
  REQUIRE(sub.per_copy());
  REQUIRE(sub.count() == 3 * 64);
  ParticleCache plain(run + "/particles.cugmm-cache");
  plain.expand(g.name, g.operators);
  Context cx;
  const std::vector<cfloat> proj = test::render_band(cx, plain, model_subset(n, inside));
  const size_t nb = sub.band().size();
  double own = 0, other = 0;
  for (size_t i = 0; i < sub.count(); ++i) {
    const size_t j = 3 * (i / 3) + (i + 1) % 3;  // the same particle, the next copy's pose
    own += correlation(sub.coefficients(i), proj.data() + i * nb, nb) / double(sub.count());
    other += correlation(sub.coefficients(i), proj.data() + j * nb, nb) / double(sub.count());
  }
  MESSAGE("correlation with the region at the copy's own pose " << own << ", at another copy's " << other);
  CHECK(own > 0.3);
  CHECK(own > other + 0.2);
  // embed replays the expansion and each copy's subtraction: the same latent, row for row.
  r = test::run(test::cugmm_exe() + " embed " + run + " --particles " + d.star + " --out " + d.dir +
                "/emb --device cpu --threads 1");
  REQUIRE_MESSAGE(r.status == 0, r.out);
  check_same_latent(d.dir + "/emb/latent.txt", run + "/latent.txt");
  // --subtract decoded with --sym: RUN trained with --sym C3 gives each copy its own decoded model.
  const std::string whole = d.dir + "/whole", dec = d.dir + "/run_decoded";
  r = test::run(train_cmd(d, whole, std::string(kOpts) + " --sym C3"));
  REQUIRE_MESSAGE(r.status == 0, r.out);
  r = test::run(train_cmd(d, dec, std::string(kOpts) + " --sym C3 --focus-mask " + d.dir + "/unit.mrc --subtract decoded " + whole));
  REQUIRE_MESSAGE(r.status == 0, r.out);
  check_decoded_subtraction(dec, whole, n, inside, 3);
}

TEST_CASE("train --subtract decoded RUN: each particle's decoded outside is subtracted; RUN must match the particles") {
  DataSet d = make_data("train_decoded", "linear", 64, 2.0);
  const io::GaussianModel n = io::read_model(d.model);
  const std::vector<char> arm = chain_flags(d, "B");
  write_gaussian_mask(n, arm, d.dir + "/arm.mrc");
  const std::string whole = d.dir + "/whole", run = d.dir + "/run";
  test::RunResult r = test::run(train_cmd(d, whole, kOpts));
  REQUIRE_MESSAGE(r.status == 0, r.out);
  r = test::run(train_cmd(d, run, std::string(kOpts) + " --focus-mask " + d.dir + "/arm.mrc --subtract decoded " + whole));
  REQUIRE_MESSAGE(r.status == 0, r.out);
  const nlohmann::json rj = read_json(run + "/run.json");
  CHECK(rj["focus"]["subtract"] == "decoded");
  CHECK(rj["focus"]["decoded_run"] == fs::absolute(whole).string());
  check_decoded_subtraction(run, whole, n, gaussians_in_mask(d.dir + "/arm.mrc", n), 1);
  // embed replays it (RUN's latent points hold these particles).
  r = test::run(test::cugmm_exe() + " embed " + run + " --particles " + d.star + " --out " + d.dir +
                "/emb --device cpu --threads 1");
  REQUIRE_MESSAGE(r.status == 0, r.out);
  check_same_latent(d.dir + "/emb/latent.txt", run + "/latent.txt");
  // Refused before any work: a RUN of other particles, a focused RUN, a RUN of another --sym, no RUN.
  io::ParticleReadOptions o;
  o.check_images = false;
  const io::ParticleSet set = io::read_particles(d.star, o);
  std::vector<size_t> half(48);
  for (size_t i = 0; i < half.size(); ++i) half[i] = i;
  io::write_particle_subset(d.dir + "/half.star", set, half);
  r = test::run(test::cugmm_exe() + " train --particles " + d.dir + "/half.star --model " + d.model + " --out " + d.dir +
                "/half_run --device cpu --threads 1" + kOpts);
  REQUIRE_MESSAGE(r.status == 0, r.out);
  auto refused = [&](const std::string& extra, const std::string& what) {
    test::RunResult rr = test::run(train_cmd(d, d.dir + "/refused", std::string(kOpts) + " --focus-mask " + d.dir + "/arm.mrc" + extra));
    CHECK(rr.status != 0);
    CHECK_MESSAGE(test::contains(rr.out, what), rr.out);
    CHECK(!fs::exists(d.dir + "/refused"));
  };
  refused(" --subtract decoded " + d.dir + "/half_run", "has no latent point");
  // A RUN whose latent.txt lost a row (count), and one trained on another working grid (--box 20).
  fs::create_directories(d.dir + "/short");
  for (const char* f : {"model.ckpt", "particles.star", "run.json"})
    fs::copy_file(whole + "/" + f, d.dir + "/short/" + f, fs::copy_options::overwrite_existing);
  {
    std::string text = test::read_text(whole + "/latent.txt");
    text.erase(text.rfind('\n', text.size() - 2) + 1);  // the last row
    std::ofstream(d.dir + "/short/latent.txt") << text;
  }
  refused(" --subtract decoded " + d.dir + "/short", "holds 63 latent points");
  r = test::run(train_cmd(d, d.dir + "/box20", std::string(kOpts) + " --box 20"));
  REQUIRE_MESSAGE(r.status == 0, r.out);
  refused(" --subtract decoded " + d.dir + "/box20", "trained on a grid of 20");
  refused(" --subtract decoded " + run, "a focused run");
  refused(" --sym C3 --subtract decoded " + whole, "trained with --sym C1");
  refused(" --subtract decoded", "--subtract decoded RUN");
  refused(" --subtract neutral " + whole, "takes no run directory");
  refused(" --subtract decoded " + d.dir + "/nowhere", "nowhere");
}
