// The library API (include/cugmm/, issue 20): the same results as the program for the same seed (latent.txt
// bit for bit on the CPU), two engines training at once on two threads giving what each gives alone,
// progress and cancellation through the callback (a cancelled run resumes to the same result), errors
// with the program's messages, arrays imported exactly, decode / decode_map / analyze (the same directory as
// `cugmm analyze`, and the same numbers in memory), and TrainSettings carrying exactly TrainConfig's settings
// and defaults.
#include <doctest/doctest.h>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "cugmm/cugmm.h"
#include "engine/api/convert.h"
#include "engine/render.h"
#include "io/mrc.h"
#include "io/particles.h"
#include "support.h"

namespace fs = std::filesystem;
using namespace cugmm;

namespace {

std::string bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

EngineOptions cpu(int threads = 2) {
  EngineOptions o;
  o.device = "cpu";
  o.threads = threads;
  o.log = [](bool, const std::string&) {};  // quiet
  return o;
}

// A tiny example set (the built-in molecule on a 32-pixel grid) imported once, and the settings every
// run here uses: a few seconds of training on 2 cores. Every run uses 2 threads: the CPU backend is
// bit-reproducible for a given OpenMP thread count (BLAS and the reductions split work by it).
struct Fixture {
  std::string dir, star;
  ExampleData ex;
  TrainSettings settings;
  Fixture() {
    dir = test::scratch_dir("api");
    ExampleSettings es;
    es.count = 120;
    es.box = 32;
    es.pixel_size = 6.0;
    Engine e(cpu());
    ex = e.make_example(es);
    settings.latent = 2;
    settings.hidden = 32;
    settings.depth = 2;
    settings.epochs = 2;
    settings.batch = 16;
    settings.lr = 1e-3f;
    star = e.import_particles(ex.arrays(), dir + "/imported").star();
    e.save_model(dir + "/neutral.txt", ex.neutral);
  }
  // The reference run (API, one engine, nothing else running), made by the first test case that needs it.
  std::string sequential_run() {
    if (!fs::exists(dir + "/api_seq/latent.txt")) {
      Engine e(cpu());
      e.train(e.load_particles(star), ex.neutral, settings, dir + "/api_seq");
    }
    return dir + "/api_seq";
  }
  // A run with symmetry expansion (C2) and the newer settings, trained through the API by the first test case
  // that needs it (`cugmm train ... --sym C2 --loss frc --no-align-shifts --coarse-epochs 1`).
  TrainSettings sym_settings() const {
    TrainSettings s = settings;
    s.epochs = 1;
    s.symmetry = "c2";  // normalised as --sym normalises it
    s.snr_weighted = false;
    s.pooled = false;        // --loss frc
    s.align_shifts = false;  // --no-align-shifts
    s.coarse_epochs = 1;
    return s;
  }
  std::string sym_run() {
    if (!fs::exists(dir + "/api_sym/latent.txt")) {
      Engine e(cpu());
      e.train(e.load_particles(star), ex.neutral, sym_settings(), dir + "/api_sym");
    }
    return dir + "/api_sym";
  }
};

Fixture& fixture() {
  static Fixture f;
  return f;
}

}  // namespace

TEST_CASE("TrainSettings: TrainConfig's settings and defaults, field for field") {
  const TrainConfig c;
  const TrainSettings s;
  const nlohmann::json want = c.to_json(), got = settings_json(s);
  std::set<std::string> kw, kg;
  for (auto it = want.begin(); it != want.end(); ++it) kw.insert(it.key());
  for (auto it = got.begin(); it != got.end(); ++it) kg.insert(it.key());
  CHECK(kw == kg);  // a setting TrainConfig gains must reach TrainSettings (engine/api/convert.cpp)
  CHECK(to_config(s, 10).to_json() == want);
  TrainSettings t;
  t.movable_gaussians = {1, 3};
  t.lr = 2e-3f;
  const TrainConfig tc = to_config(t, 5);
  CHECK(tc.movable == std::vector<char>{0, 1, 0, 1, 0});
  CHECK(from_config(tc).movable_gaussians == std::vector<int>{1, 3});
  CHECK(from_config(tc).lr == 2e-3f);
  t.batch = 1;
  CHECK_THROWS_WITH_AS(to_config(t, 5), doctest::Contains("TrainSettings::batch"), Error);
  t.batch = 16;
  t.movable_gaussians = {7};
  CHECK_THROWS_WITH_AS(to_config(t, 5), doctest::Contains("not a Gaussian of the model"), Error);
}

TEST_CASE("version: the macros and the library agree") {
  CHECK(std::string(version()) == CUGMM_VERSION_STRING);
  CHECK(std::string(CUGMM_VERSION_STRING) == std::to_string(CUGMM_VERSION_MAJOR) + "." +
                                                 std::to_string(CUGMM_VERSION_MINOR) + "." +
                                                 std::to_string(CUGMM_VERSION_PATCH));
}

TEST_CASE("import_particles: the arrays as a stack and a STAR file, exactly") {
  Fixture& f = fixture();
  Engine e(cpu());
  const Particles p = e.import_particles(f.ex.arrays(), f.dir + "/imported_again");
  CHECK(p.count() == f.ex.poses.size());
  CHECK(p.box() == 32);
  CHECK(p.pixel_size() == 6.0);
  const io::ParticleSet set = io::read_particles(p.star());
  REQUIRE(set.particles.size() == f.ex.poses.size());
  for (size_t i = 0; i < set.particles.size(); ++i) {
    const io::Particle& q = set.particles[i];
    const ParticlePose& w = f.ex.poses[i];
    CHECK(q.rot == w.rot);
    CHECK(q.tilt == w.tilt);
    CHECK(q.origin_y == w.origin_y);
    CHECK(q.ctf.defocus_u == f.ex.ctf[i].defocus_u);
    CHECK(q.ctf.defocus_angle == f.ex.ctf[i].defocus_angle);
  }
  io::MrcStack stack(set.particles[0].image_file);
  std::vector<float> im(32 * 32);
  stack.read_section(7, im.data());
  CHECK(std::equal(im.begin(), im.end(), f.ex.images.begin() + 7 * 32 * 32));
  // Bad arrays are refused, naming what is wrong.
  ParticleArrays bad = f.ex.arrays();
  bad.fourier = bad.images;
  CHECK_THROWS_WITH_AS(e.import_particles(bad, f.dir + "/bad"), doctest::Contains("images or fourier"), Error);
  bad = f.ex.arrays();
  std::vector<ParticlePose> poses = f.ex.poses;
  poses[4].tilt = NAN;
  bad.poses = poses.data();
  CHECK_THROWS_WITH_AS(e.import_particles(bad, f.dir + "/bad"), doctest::Contains("particle 5: an Euler angle"), Error);
}

TEST_CASE("train: the API and `cugmm train` write the same latent.txt for the same seed; two engines at once "
          "give what each gives alone") {
  Fixture& f = fixture();
  const std::string& star = f.star;
  Engine e(cpu());
  const Particles p = e.load_particles(star);
  const TrainSettings& s = f.settings;
  const Run a = e.open_run(f.sequential_run());
  CHECK(a.latent().size() == p.count() * 2);
  CHECK(a.history().size() == 2);

  const test::RunResult r = test::run(test::cugmm_exe() + " train --particles " + star + " --model " + f.dir +
                                      "/neutral.txt --out " + f.dir + "/cli --device cpu --threads 2 --latent 2 "
                                      "--hidden 32 --depth 2 --epochs 2 --batch 16 --lr 1e-3");
  REQUIRE_MESSAGE(r.status == 0, r.out);
  CHECK(bytes(f.dir + "/cli/latent.txt") == bytes(f.dir + "/api_seq/latent.txt"));
  CHECK(bytes(f.dir + "/cli/particles.star") == bytes(f.dir + "/api_seq/particles.star"));

  // Two engines, two threads, at once: another seed on the second, each compared with its own run alone.
  TrainSettings s2 = s;
  s2.seed = 7;
  const Run b_seq = e.train(p, f.ex.neutral, s2, f.dir + "/api_seq7");
  std::string err1, err2;
  std::thread t1([&] {
    try {
      Engine e1(cpu());
      e1.train(e1.load_particles(star), f.ex.neutral, s, f.dir + "/api_par1");
    } catch (const std::exception& x) { err1 = x.what(); }
  });
  std::thread t2([&] {
    try {
      Engine e2(cpu());
      e2.train(e2.load_particles(star), f.ex.neutral, s2, f.dir + "/api_par7");
    } catch (const std::exception& x) { err2 = x.what(); }
  });
  t1.join();
  t2.join();
  REQUIRE_MESSAGE(err1.empty(), err1);
  REQUIRE_MESSAGE(err2.empty(), err2);
  CHECK(bytes(f.dir + "/api_par1/latent.txt") == bytes(f.dir + "/api_seq/latent.txt"));
  CHECK(bytes(f.dir + "/api_par7/latent.txt") == bytes(f.dir + "/api_seq7/latent.txt"));
  CHECK(bytes(f.dir + "/api_seq7/latent.txt") != bytes(f.dir + "/api_seq/latent.txt"));  // the seed mattered
}

TEST_CASE("progress and cancellation through the callback; the cancelled run resumes to the same result") {
  Fixture& f = fixture();
  const std::string& star = f.star;
  const std::string seq = f.sequential_run();
  std::set<std::string> stages;
  size_t train_reports = 0;
  EngineOptions o = cpu();
  o.progress = [&](const ProgressInfo& i) {
    stages.insert(i.stage);
    if (i.stage == "train" && ++train_reports == 3) return false;  // stop after the third batch
    return true;
  };
  Engine e(o);
  const Particles p = e.load_particles(star);
  CHECK_THROWS_AS(e.train(p, f.ex.neutral, f.settings, f.dir + "/api_cancel"), Cancelled);
  CHECK(stages.count("preprocessing") == 1);
  CHECK(stages.count("features") == 1);
  CHECK(fs::exists(f.dir + "/api_cancel/model.ckpt"));  // resumable
  CHECK(!fs::exists(f.dir + "/api_cancel/latent.txt"));
  TrainSettings resume = f.settings;
  resume.resume = true;
  Engine e2(cpu());
  e2.train(e2.load_particles(star), f.ex.neutral, resume, f.dir + "/api_cancel");
  CHECK(bytes(f.dir + "/api_cancel/latent.txt") == bytes(seq + "/latent.txt"));
  // Other calls stop at their next progress step: embed, cancelled by Engine::cancel from the callback (as
  // another thread would). The flag belongs to one call: the next one runs.
  Engine* self = nullptr;
  EngineOptions stop = cpu();
  stop.progress = [&](const ProgressInfo& i) {
    if (i.stage == "features") self->cancel();
    return true;
  };
  Engine e3(stop);
  self = &e3;
  const Run run = e3.open_run(seq);
  CHECK_THROWS_AS(e3.embed(run, e3.load_particles(star), f.dir + "/embed_cancel"), Cancelled);
  CHECK(!fs::exists(f.dir + "/embed_cancel/latent.txt"));
  CHECK(e3.decode(run, {0.f, 0.f}).size() == 1);
}

TEST_CASE("decode, decode_map, embed and analyze on a trained run; errors as the program words them") {
  Fixture& f = fixture();
  Engine e(cpu());
  const Run run = e.open_run(f.sequential_run());
  CHECK(run.latent_dim() == 2);
  CHECK(run.history().size() == 2);
  // z = 0 decodes to the neutral model exactly (the decoder is residual).
  const std::vector<Gaussians> g = e.decode(run, {0.f, 0.f, 1.f, -1.f});
  REQUIRE(g.size() == 2);
  CHECK(g[0].x == f.ex.neutral.x);
  CHECK(g[0].width == f.ex.neutral.width);
  CHECK(g[1].x != f.ex.neutral.x);
  const Volume v = e.decode_map(run, {1.f, -1.f});
  CHECK(v.box == 32);
  CHECK(v.data.size() == size_t(32) * 32 * 32);
  double mass = 0;
  for (float x : v.data) mass += x;
  CHECK(mass > 0);
  // The program's message for the same mistake.
  std::string api_msg;
  try {
    e.decode(run, {1.f, 2.f, 3.f});
  } catch (const Error& x) {
    api_msg = x.what();
  }
  CHECK(test::contains(api_msg, "give a multiple of 2"));
  const test::RunResult r = test::run(test::cugmm_exe() + " decode " + f.dir + "/api_seq --z \"1 2 3\" --out " +
                                      f.dir + "/dec --device cpu");
  CHECK(r.status != 0);
  CHECK_MESSAGE(test::contains(r.out, "cugmm decode: error: " + api_msg), r.out);
  // A run belongs to its engine.
  Engine other(cpu());
  CHECK_THROWS_WITH_AS(other.decode(run, {0.f, 0.f}), doctest::Contains("another Engine"), Error);
  // Embedding the training particles through the run gives its own latent points (inference mode both).
  const Embedding em = e.embed(run, e.load_particles(f.star), f.dir + "/embed");
  REQUIRE(em.latent.size() == run.latent().size());
  double maxdiff = 0;  // batches of another size: BLAS may sum in another order (as tests/test_train_linear.cpp)
  for (size_t i = 0; i < em.latent.size(); ++i) maxdiff = std::max(maxdiff, double(std::abs(em.latent[i] - run.latent()[i])));
  CHECK(maxdiff < 1e-4);
  CHECK(em.score.size() == f.ex.poses.size());
  AnalysisSettings as;
  as.clusters = 2;
  as.frames = 4;
  const Analysis a = e.analyze(run, as);
  REQUIRE(a.explained.size() == 2);
  CHECK(std::abs(a.explained[0] + a.explained[1] - 1) < 1e-9);
  CHECK(a.labels.size() == f.ex.poses.size());
  CHECK(a.centre_models.size() == 2);
  REQUIRE(a.trajectories.size() == 2);
  CHECK(a.trajectories[0].frames.size() == 4);
  // Devices: a clear refusal.
  EngineOptions bad = cpu();
  bad.device = "gpu";
  CHECK_THROWS_WITH_AS(Engine{bad}, doctest::Contains("must be auto, cpu or cuda"), Error);
  bad.device = "cuda:x";
  CHECK_THROWS_WITH_AS(Engine{bad}, doctest::Contains("expected cuda:N"), Error);
}

TEST_CASE("refine_poses: the API and `cugmm refine-pose` write the same STAR file, against a run and one model") {
  Fixture& f = fixture();
  Engine e(cpu());
  const Run run = e.open_run(f.sequential_run());
  const Particles p = e.load_particles(f.star);
  PoseSettings ps;
  ps.bands = {24, 16};  // coarser than the run's band (Nyquist, 12 Å), which its encoder reads
  ps.iterations = 4;
  ps.batch = 32;
  const PoseRefinement a = e.refine_poses(run, p, ps, f.dir + "/pose_api/refined.star");
  const std::string opts = " --particles " + f.star + " --bands 24,16 --iterations 4 --batch 32 --device cpu --threads 2";
  test::RunResult r = test::run(test::cugmm_exe() + " refine-pose " + f.dir + "/api_seq --out " + f.dir +
                                "/pose_cli/refined.star" + opts);
  REQUIRE_MESSAGE(r.status == 0, r.out);
  CHECK(bytes(f.dir + "/pose_api/refined.star") == bytes(f.dir + "/pose_cli/refined.star"));
  CHECK(fs::exists(f.dir + "/pose_api/refined.png"));
  // The result in particle-file order, as the file holds it; the refined file loads with its images.
  REQUIRE(a.after.size() == p.count());
  REQUIRE(a.angle_change.size() == p.count());
  CHECK(a.particles.count() == p.count());
  const io::ParticleSet refined = io::read_particles(f.dir + "/pose_api/refined.star", f.dir + "/imported", true);
  for (size_t i : {size_t(0), size_t(57), p.count() - 1}) CHECK(std::abs(refined.particles[i].rot - a.after[i].rot) < 1e-3);
  bool moved = false, held = true;
  double gain = 0;
  for (size_t i = 0; i < p.count(); ++i) {
    moved = moved || a.angle_change[i] > 0;
    held = held && a.angle_change[i] <= ps.max_change_deg + 1e-6 && a.shift_change[i] <= ps.max_change_px * 6.0 + 1e-6;
    gain += double(a.score_after[i]) - a.score_before[i];
  }
  CHECK(moved);
  CHECK(held);  // no pose runs away (max_change_px in pixels of 6 Å)
  CHECK(gain > 0);  // the particles fit their models better on the whole
  // One model for every particle (`--model`).
  const PoseRefinement b = e.refine_poses(f.ex.neutral, p, ps, f.dir + "/pose_api/model.star");
  r = test::run(test::cugmm_exe() + " refine-pose --model " + f.dir + "/neutral.txt --out " + f.dir +
                "/pose_cli/model.star" + opts);
  REQUIRE_MESSAGE(r.status == 0, r.out);
  CHECK(bytes(f.dir + "/pose_api/model.star") == bytes(f.dir + "/pose_cli/model.star"));
  CHECK(b.after.size() == p.count());
  // The SNR-weighted score against a run (its own is the pooled one: plain FRC by default) and the shifts alone.
  PoseSettings snr = ps;
  snr.loss = "snr";
  snr.shifts_only = true;
  const PoseRefinement c = e.refine_poses(run, p, snr, f.dir + "/pose_api/snr.star");
  r = test::run(test::cugmm_exe() + " refine-pose " + f.dir + "/api_seq --out " + f.dir + "/pose_cli/snr.star" + opts +
                " --loss snr --shifts-only");
  REQUIRE_MESSAGE(r.status == 0, r.out);
  CHECK(test::contains(r.out, "SNR-weighted score"));
  CHECK(bytes(f.dir + "/pose_api/snr.star") == bytes(f.dir + "/pose_cli/snr.star"));
  for (size_t i = 0; i < p.count(); ++i) REQUIRE(c.angle_change[i] < 1e-3);  // the angles kept
  CHECK(PoseSettings{}.bands == std::vector<double>{20, 12, 8, 6, 4, 3});  // the command's default --bands
  // Settings checked as the command checks its options.
  PoseSettings bad = ps;
  bad.loss = "white";
  CHECK_THROWS_WITH_AS(e.refine_poses(run, p, bad, f.dir + "/pose_api/bad.star"), doctest::Contains("PoseSettings::loss"),
                       Error);
  bad = ps;
  bad.bands = {16, 24};
  CHECK_THROWS_WITH_AS(e.refine_poses(run, p, bad, f.dir + "/pose_api/bad.star"), doctest::Contains("coarse to fine"), Error);
  bad = ps;
  bad.ctf = "none";
  CHECK_THROWS_WITH_AS(e.refine_poses(run, p, bad, f.dir + "/pose_api/bad.star"), doctest::Contains("a run uses its own"), Error);
  bad = ps;
  bad.latent = {0.f, 0.f};
  CHECK_THROWS_WITH_AS(e.refine_poses(run, p, bad, f.dir + "/pose_api/bad.star"), doctest::Contains("holds 1 latent points"),
                       InputError);
}

TEST_CASE("train with the newer settings (symmetry, loss, coarse band, posterior latent) as `cugmm train`") {
  Fixture& f = fixture();
  Engine e(cpu());
  TrainSettings s = f.sym_settings();
  const std::string cli = test::cugmm_exe() + " train --particles " + f.star + " --model " + f.dir +
                          "/neutral.txt --device cpu --threads 2 --latent 2 --hidden 32 --depth 2 --epochs 1 "
                          "--batch 16 --lr 1e-3 --sym C2 --loss frc --no-align-shifts --coarse-epochs 1";
  const Run run = e.open_run(f.sym_run());
  CHECK(run.latent().size() == 2 * 2 * f.ex.poses.size());  // a row per particle and copy
  test::RunResult r = test::run(cli + " --out " + f.dir + "/cli_sym");
  REQUIRE_MESSAGE(r.status == 0, r.out);
  for (const char* file : {"/latent.txt", "/particles.star"})
    CHECK_MESSAGE(bytes(f.dir + "/cli_sym" + file) == bytes(f.dir + "/api_sym" + file), file);
  std::ifstream rj(f.dir + "/api_sym/run.json");
  const nlohmann::json j = nlohmann::json::parse(rj);
  CHECK(j["symmetry"]["movable"] == "first asymmetric unit");
  CHECK(j["config"]["symmetry"] == "C2");
  CHECK(j["config"]["snr_weighted"] == false);
  CHECK(j["config"]["pooled"] == false);
  CHECK(j["config"]["align_shifts"] == false);
  // The posterior latent runs on both paths: on a run this short both refuse it with the same words.
  s.latent_estimate = "posterior";
  s.posterior_pairs = 2;
  std::string api_msg;
  try {
    e.train(e.load_particles(f.star), f.ex.neutral, s, f.dir + "/api_post");
  } catch (const Error& x) {
    api_msg = x.what();
  }
  CHECK(test::contains(api_msg, "the posterior latent needs the score to peak"));
  r = test::run(cli + " --latent-estimate posterior --posterior-pairs 2 --out " + f.dir + "/cli_post");
  CHECK(r.status != 0);
  CHECK_MESSAGE(test::contains(r.out, "cugmm train: error: " + api_msg), r.out);
  // The preset and the refusals in the program's words.
  CHECK(TrainSettings::paper().lr == 1e-4f);
  CHECK_FALSE(TrainSettings::paper().snr_weighted);
  CHECK_FALSE(TrainSettings::paper().pooled);
  CHECK_FALSE(TrainSettings::paper().align_shifts);
  TrainSettings bad = f.settings;
  bad.focus_mask = f.dir + "/mask.mrc";
  bad.movable_gaussians = {0};
  CHECK_THROWS_WITH_AS(e.train(e.load_particles(f.star), f.ex.neutral, bad, f.dir + "/api_bad"),
                       doctest::Contains("--focus-mask chooses the Gaussians that move"), Error);
  bad = f.settings;
  bad.latent_estimate = "median";
  CHECK_THROWS_WITH_AS(e.train(e.load_particles(f.star), f.ex.neutral, bad, f.dir + "/api_bad"),
                       doctest::Contains("is not encoder or posterior"), Error);
}

TEST_CASE("fit_map: the API and `cugmm fit-map` give the same model for the same seed") {
  Fixture& f = fixture();
  const io::Image map = render_volume(to_model(f.ex.neutral));
  io::write_mrc(f.dir + "/map.mrc", map, false);
  Engine e(cpu());
  FitSettings fs_;
  fs_.map = f.dir + "/map.mrc";
  fs_.ngauss = 64;
  fs_.seed = 2;
  const FitResult r = e.fit_map(fs_, f.dir + "/fit_api");
  CHECK(r.model.size() == 64);
  CHECK(r.res_fsc05 > 0);
  const test::RunResult c = test::run(test::cugmm_exe() + " fit-map " + f.dir + "/map.mrc --out " + f.dir +
                                      "/fit_cli --ngauss 64 --seed 2 --device cpu --threads 2");
  REQUIRE_MESSAGE(c.status == 0, c.out);
  CHECK(bytes(f.dir + "/fit_api/model.txt") == bytes(f.dir + "/fit_cli/model.txt"));
  FitSettings bad;
  CHECK_THROWS_WITH_AS(e.fit_map(bad), doctest::Contains("no map given"), Error);
}

namespace {

// Two analysis directories hold the same files with the same bytes, apart from the time stamps: the MRC
// header's labels (bytes 224-1023: "cugmm <date and time>") and analyze.json's "seconds".
void check_same_analysis(const std::string& a, const std::string& b) {
  auto names = [](const std::string& dir) {
    std::set<std::string> n;
    for (const auto& e : fs::recursive_directory_iterator(dir))
      if (e.is_regular_file()) n.insert(fs::relative(e.path(), dir).generic_string());
    return n;
  };
  const std::set<std::string> na = names(a);
  REQUIRE(na == names(b));
  for (const std::string& n : na) {
    std::string x = bytes(a + "/" + n), y = bytes(b + "/" + n);
    if (fs::path(n).extension() == ".mrc") {
      REQUIRE(x.size() > 1024);
      x.replace(224, 800, 800, ' ');
      y.replace(224, 800, 800, ' ');
    }
    if (n == "analyze.json") {
      nlohmann::json jx = nlohmann::json::parse(x), jy = nlohmann::json::parse(y);
      jx.erase("seconds");
      jy.erase("seconds");
      x = jx.dump();
      y = jy.dump();
    }
    CHECK_MESSAGE(x == y, n);
  }
}

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

}  // namespace

TEST_CASE("analyze: the API and `cugmm analyze` write the same directory; the numbers in memory are the files'") {
  Fixture& f = fixture();
  Engine e(cpu());
  const std::string seq = f.sequential_run();
  const Run run = e.open_run(seq);
  // Every kind of output: clusters with reconstructions, both pictures, PC and localised trajectories, both
  // subsets.
  AnalysisSettings s;
  s.clusters = 2;
  s.frames = 4;
  s.seed = 3;
  s.axes = {2, 1};
  s.domain_gaussians = "0-20";
  s.point = {0, 0};
  s.nearest = 30;
  s.range_axis = "local1";
  s.range_lo = -0.5;
  s.range_hi = 0.5;
  const Analysis a = e.analyze(run, s, f.dir + "/an_api");
  test::RunResult r = test::run(test::cugmm_exe() + " analyze " + seq + " --out " + f.dir + "/an_cli --k 2 --frames 4 "
                                "--seed 3 --axes 2,1 --domain-gaussians 0-20 --point \"0 0\" --nearest 30 --range "
                                "local1:-0.5:0.5 --device cpu --threads 2");
  REQUIRE_MESSAGE(r.status == 0, r.out);
  check_same_analysis(f.dir + "/an_api", f.dir + "/an_cli");
  CHECK(fs::exists(f.dir + "/an_api/cluster_02/full.mrc"));
  CHECK(fs::exists(f.dir + "/an_api/latent_z2_z1_clusters.png"));
  CHECK(fs::exists(f.dir + "/an_api/local_diff.pdb"));

  // In memory: what the files say.
  const nlohmann::json j = read_json(f.dir + "/an_api/analyze.json");
  CHECK(a.explained == j["pca_explained"].get<std::vector<double>>());
  REQUIRE(a.trajectories.size() == j["paths"].size());
  REQUIRE(a.trajectories.size() == 6);  // pc1, pc2, local1, local2, local_sum, local_diff
  for (size_t i = 0; i < a.trajectories.size(); ++i) {
    const Trajectory& t = a.trajectories[i];
    CHECK(t.name == j["paths"][i]["name"]);
    CHECK(t.t == j["paths"][i]["t"].get<std::vector<double>>());
    CHECK(t.frames.size() == 4);
    CHECK(t.displacement_inside == j["paths"][i]["mean_displacement_inside_A"].get<double>());
  }
  CHECK(a.local.eigenvalues == j["local"]["eigenvalues"].get<std::vector<double>>());
  CHECK(a.local.gaussians.size() == 21);
  {
    std::ifstream cl(f.dir + "/an_api/clusters.txt");
    std::string line;
    std::getline(cl, line);  // the comment
    for (int l : a.labels) {
      REQUIRE(std::getline(cl, line));
      CHECK(std::stoi(line) == l + 1);
    }
  }
  REQUIRE(a.cluster_maps.size() == 2);
  for (size_t c = 0; c < 2; ++c) {
    const std::string name = f.dir + "/an_api/cluster_0" + std::to_string(c + 1);
    CHECK(a.cluster_maps[c].images == j["clusters"][c]["reconstructed_images"].get<size_t>());
    CHECK(a.cluster_maps[c].resolution == j["clusters"][c]["resolution_0143_A"].get<double>());
    CHECK(a.cluster_maps[c].full.data == io::read_mrc(name + "/full.mrc").data);
    // The centre model is the decoder at the centre particle's latent point.
    const std::vector<float> zc(run.latent().begin() + long(2 * a.centres[c]), run.latent().begin() + long(2 * a.centres[c] + 2));
    CHECK(a.centre_models[c].x == e.decode(run, zc).at(0).x);
  }
  CHECK(a.point_subset.size() == 30);
  CHECK(a.range_subset.size() == j["subsets"]["range"]["particles"].get<size_t>());
  // Without a directory: the same numbers, no files.
  const Analysis m = e.analyze(run, s);
  CHECK(m.labels == a.labels);
  CHECK(m.trajectories.back().frames.back().x == a.trajectories.back().frames.back().x);
  CHECK(m.cluster_maps[1].full.data == a.cluster_maps[1].full.data);
  CHECK(m.range_subset == a.range_subset);

  // A run with symmetry expansion: the copies folded back, the same on both paths.
  AnalysisSettings sf;
  sf.clusters = 2;
  sf.pcs = 1;
  sf.frames = 2;
  sf.fold = "mean";
  const std::string sym = f.sym_run();
  const Analysis af = e.analyze(e.open_run(sym), sf, f.dir + "/an_sym_api");
  r = test::run(test::cugmm_exe() + " analyze " + sym + " --out " + f.dir + "/an_sym_cli --k 2 --pcs 1 --frames 2 "
                "--fold mean --device cpu --threads 2");
  REQUIRE_MESSAGE(r.status == 0, r.out);
  check_same_analysis(f.dir + "/an_sym_api", f.dir + "/an_sym_cli");
  CHECK(af.fold.group == "C2");
  CHECK(af.fold.rule == "mean");
  REQUIRE(af.fold.chosen.size() == f.ex.poses.size());
  CHECK(af.fold.latent.size() == 2 * f.ex.poses.size());
  CHECK(af.fold.motion.size() == 2 * f.ex.poses.size());
  {
    std::ifstream fold(f.dir + "/an_sym_api/fold.txt");
    std::string line;
    std::getline(fold, line);
    for (int c : af.fold.chosen) {
      REQUIRE(std::getline(fold, line));
      std::istringstream w(line);
      int particle = 0, chosen = 0;
      w >> particle >> chosen;
      CHECK(chosen == c + 1);
    }
  }

  // Errors in the program's words; a cancelled analysis leaves no analyze.json.
  AnalysisSettings bad = s;
  bad.range_axis = "pc3";
  std::string api_msg;
  try {
    e.analyze(run, bad);
  } catch (const Error& x) {
    api_msg = x.what();
  }
  CHECK(test::contains(api_msg, "--range: the axis is pc1..pc2"));
  r = test::run(test::cugmm_exe() + " analyze " + seq + " --out " + f.dir + "/an_bad --domain-gaussians 0-20 --range "
                "pc3:-0.5:0.5 --device cpu");
  CHECK(r.status != 0);
  CHECK_MESSAGE(test::contains(r.out, "cugmm analyze: error: " + api_msg), r.out);
  EngineOptions o = cpu();
  o.progress = [](const ProgressInfo& i) { return i.stage != "analyze" || i.done < 2; };
  Engine stop(o);
  CHECK_THROWS_AS(stop.analyze(stop.open_run(seq), s, f.dir + "/an_cancel"), Cancelled);
  CHECK(!fs::exists(f.dir + "/an_cancel/analyze.json"));
}
