// Training's faults and guarantees (issue 13 §1, §6): bit-identical resume (after an epoch and after
// Ctrl-C), frozen Gaussians and columns exactly neutral, bad inputs refused before any work.
#include <array>
#include <cstdio>
#include <string>
#include <utility>

#include "engine/trainer.h"
#include "train_data.h"

using namespace cugmm;
using namespace cugmm::train_test;

namespace {

// `opts` trained 2 epochs straight into `a`, and 1 epoch then `--epochs 2 --resume` into `b`: the outputs of
// the straight run and of the resume.
std::pair<std::string, std::string> straight_and_resumed(const DataSet& d, const std::string& opts,
                                                         const std::string& a, const std::string& b) {
  test::RunResult r = test::run(train_cmd(d, a, opts + " --epochs 2"));
  REQUIRE_MESSAGE(r.status == 0, r.out);
  const std::string straight = r.out;
  r = test::run(train_cmd(d, b, opts + " --epochs 1"));
  REQUIRE_MESSAGE(r.status == 0, r.out);
  r = test::run(train_cmd(d, b, opts + " --epochs 2 --resume"));
  REQUIRE_MESSAGE(r.status == 0, r.out);
  return {straight, r.out};
}

}  // namespace

TEST_CASE("resume: 2 epochs straight == 1 epoch + resume + 1 epoch, bit for bit") {
  DataSet d = make_data("train_resume", "linear", 160, 2.0);
  const std::string a = d.dir + "/straight", b = d.dir + "/resumed";
  const std::string opts = "--batch 16 --lr 1e-3 --latent 2 --hidden 64 --val-fraction 0.1";
  CHECK(test::contains(straight_and_resumed(d, opts, a, b).second, "resuming at epoch 2"));
  CHECK(file_bytes(a + "/latent.txt") == file_bytes(b + "/latent.txt"));
  // The per-particle FRC column depends on the decoder too.
  CHECK(file_bytes(a + "/particles.star") == file_bytes(b + "/particles.star"));
  // Different settings are refused.
  const test::RunResult r = test::run(train_cmd(d, b, "--batch 8 --lr 1e-3 --latent 2 --hidden 64 --val-fraction 0.1 --epochs 3 --resume"));
  CHECK(r.status != 0);
  CHECK(test::contains(r.out, "settings differ"));
}

TEST_CASE("the learning rate's decay: halves every --lr-half-life epochs; an extended run steps as a longer one") {
  TrainConfig c;
  CHECK(c.lr_half_life == 10);  // the default (docs/accuracy.md round 13)
  CHECK(paper_recipe().lr_half_life == 0);  // the published recipe: constant
  c.lr = 1e-3f;
  c.lr_half_life = 0;
  CHECK(scheduled_lr(c, 7.5) == c.lr);
  c.lr_half_life = 5;
  CHECK(scheduled_lr(c, 0) == c.lr);
  CHECK(scheduled_lr(c, 5) == doctest::Approx(5e-4).epsilon(1e-6));
  CHECK(scheduled_lr(c, 12.5) == doctest::Approx(1e-3 * std::exp2(-2.5)).epsilon(1e-6));
  // Through the program: 2 epochs straight == 1 epoch + `--epochs 2 --resume`, bit for bit (the rate follows
  // the absolute epoch, not the run's length), and the decay changes the result.
  DataSet d = make_data("train_lr_decay", "linear", 160, 2.0);
  const std::string a = d.dir + "/straight", b = d.dir + "/resumed", k = d.dir + "/constant";
  const std::string opts = "--batch 16 --lr 1e-3 --latent 2 --hidden 64 --val-fraction 0.1";
  straight_and_resumed(d, opts + " --lr-half-life 0.5", a, b);
  CHECK(file_bytes(a + "/latent.txt") == file_bytes(b + "/latent.txt"));
  test::RunResult r = test::run(train_cmd(d, k, opts + " --lr-half-life 0 --epochs 2"));
  REQUIRE_MESSAGE(r.status == 0, r.out);
  CHECK(file_bytes(a + "/latent.txt") != file_bytes(k + "/latent.txt"));
  std::ifstream in(a + "/run.json");
  CHECK(nlohmann::json::parse(in).at("config").at("lr_half_life") == 0.5);
  // Resuming with another half-life is refused (a setting of the run).
  r = test::run(train_cmd(d, b, opts + " --lr-half-life 1 --epochs 3 --resume"));
  CHECK(r.status != 0);
  CHECK(test::contains(r.out, "settings differ"));

  // The weights' L2 from the set's size (`--l2 auto`, the default; docs/accuracy.md round 14): run `a` used
  // 2 / (training particles), and the same number given by hand trains bit for bit the same networks.
  TrainConfig auto_l2;
  CHECK(auto_l2.l2_auto);
  CHECK_FALSE(paper_recipe().l2_auto);  // the published 1e-3 whatever the size
  resolve_l2(auto_l2, 800);
  CHECK(auto_l2.l2 == float(1e-3));  // the paper's up to 6,000 training particles
  resolve_l2(auto_l2, 6000);
  CHECK(auto_l2.l2 == float(1e-3));
  resolve_l2(auto_l2, 20000);
  CHECK(auto_l2.l2 == float(3e-4));
  std::ifstream ra(a + "/run.json");
  const nlohmann::json run = nlohmann::json::parse(ra);
  const size_t n_train = run.at("train_count");
  CHECK(run.at("config").at("l2_auto") == true);
  const float l2 = run.at("config").at("l2").get<float>();
  CHECK(l2 == float(std::min(kL2Max, kL2Particles / double(n_train))));
  char given[32];
  std::snprintf(given, sizeof given, "%.9g", double(l2));
  const std::string g = d.dir + "/given_l2";
  r = test::run(train_cmd(d, g, opts + " --lr-half-life 0.5 --epochs 2 --l2 " + given));
  REQUIRE_MESSAGE(r.status == 0, r.out);
  CHECK(file_bytes(a + "/latent.txt") == file_bytes(g + "/latent.txt"));
  std::ifstream rg(g + "/run.json");
  CHECK(nlohmann::json::parse(rg).at("config").at("l2_auto") == false);
  // Another L2 trains another network; a word that is neither auto nor a number is refused.
  r = test::run(train_cmd(d, d.dir + "/other_l2", opts + " --lr-half-life 0.5 --epochs 2 --l2 0.05"));
  REQUIRE_MESSAGE(r.status == 0, r.out);
  CHECK(file_bytes(a + "/latent.txt") != file_bytes(d.dir + "/other_l2/latent.txt"));
  r = test::run(train_cmd(d, d.dir + "/bad_l2", opts + " --l2 automatic"));
  CHECK(r.status != 0);
  CHECK(test::contains(r.out, "--l2"));
}

namespace {

// `opts` trained 2 epochs straight and 1 + resume + 1: the latents bit-identical; embed (another batching, so
// BLAS rounds differently) reproduces the straight run's latent through the stored input transform (without
// it the encoder could not even take the 5G-wide rows). Returns the straight run's run.json.
nlohmann::json resume_and_embed(const DataSet& d, const std::string& opts, const std::string& expect_log) {
  const std::string a = d.dir + "/straight", b = d.dir + "/resumed";
  CHECK(test::contains(straight_and_resumed(d, opts, a, b).first, expect_log));
  CHECK(file_bytes(a + "/latent.txt") == file_bytes(b + "/latent.txt"));
  const test::RunResult r = test::run(test::cugmm_exe() + " embed " + a + " --particles " + d.star + " --out " +
                                      d.dir + "/embedded --device cpu --threads 1");
  REQUIRE_MESSAGE(r.status == 0, r.out);
  const Matrix x = read_latent(a + "/latent.txt"), y = read_latent(d.dir + "/embedded/latent.txt");
  REQUIRE(x.values.size() == y.values.size());
  double diff = 0;
  for (size_t i = 0; i < x.values.size(); ++i) diff = std::max(diff, std::abs(x.values[i] - y.values[i]));
  CHECK(diff < 1e-4);
  std::ifstream in(a + "/run.json");
  return nlohmann::json::parse(in);
}

// A one-epoch run with `opts` refused, saying `message`.
void check_refused(const DataSet& d, const std::string& opts, const std::string& message) {
  const test::RunResult r = test::run(train_cmd(d, d.dir + "/refused", "--batch 16 --epochs 1 " + opts));
  CHECK(r.status != 0);
  CHECK_MESSAGE(test::contains(r.out, message), r.out);
}

}  // namespace

TEST_CASE("--feature-pca: resume is bit-identical, run.json records it, embed applies the same projection") {
  DataSet d = make_data("train_feature_pca", "linear", 160, 2.0);
  const std::string opts = "--batch 16 --lr 1e-3 --latent 2 --hidden 64 --val-fraction 0.1 --feature-pca 12 "
                           "--feature-pca-whiten --feature-row-rms --input-dropout 0.1";
  const nlohmann::json run = resume_and_embed(d, opts, "feature PCA: 12 components");
  CHECK(run.at("feature_pca").at("components") == 12);
  CHECK(run.at("config").at("feature_pca") == 12);
  CHECK(run.at("config").at("feature_pca_whiten") == true);
  CHECK(run.at("config").at("feature_row_rms") == true);
  CHECK(run.at("config").at("input_dropout").get<double>() == doctest::Approx(0.1));
  // More components than the feature width or the training particles: refused before any work.
  check_refused(d, "--feature-pca 150", "--feature-pca 150 must be below");
  check_refused(d, "--feature-pca 0 --feature-pca-whiten", "needs --feature-pca");
}

TEST_CASE("--feature-whiten noise and noise+view: resume is bit-identical, run.json records it, embed applies the same basis") {
  for (const bool view : {false, true}) {
    DataSet d = make_data(view ? "train_feature_view" : "train_feature_noise", "linear", 160, 2.0);
    // noise with the streamed solver, noise+view with the dense one (both share the rest of the path).
    const std::string opts = std::string("--batch 16 --lr 1e-3 --latent 2 --hidden 64 --val-fraction 0.1 ") +
                             "--feature-pca 8 --feature-whiten " + (view ? "noise+view" : "noise") +
                             " --feature-whiten-solver " + (view ? "dense" : "streamed");
    // The fit's log line: "noise-whitened feature PCA: 8 components of 5G (dense|streamed solver); ...".
    const nlohmann::json run = resume_and_embed(d, opts, view ? "(dense solver)" : "(streamed solver)");
    CHECK(run.at("config").at("feature_noise_whiten") == true);
    CHECK(run.at("config").at("feature_view_nuisance") == view);
    CHECK(run.at("config").at("feature_noise_solver") == (view ? "dense" : "streamed"));
    CHECK(test::contains(run.at("feature_pca").at("ranked_by").get<std::string>(),
                         view ? "view-dependent mean" : "signal-to-noise"));
    CHECK(run.at("timings_s").at("input_transform").get<double>() >= run.at("timings_s").at("noise_images").get<double>());
    if (view) continue;
    check_refused(d, "--feature-pca 0 --feature-whiten noise", "--feature-whiten noise needs --feature-pca");
    check_refused(d, "--feature-pca 8 --feature-whiten pink", "--feature-whiten must be noise, noise+view or none");
    check_refused(d, "--feature-pca 8 --feature-whiten noise --feature-whiten-solver sparse",
                  "--feature-whiten-solver must be auto, dense or streamed");
    check_refused(d, "--feature-pca 8 --feature-whiten none --feature-whiten-solver dense",
                  "--feature-whiten-solver needs --feature-whiten noise or noise+view");
  }
}

// The run.json of a one-epoch run with `opts`.
nlohmann::json one_epoch_run(const DataSet& d, const std::string& name, const std::string& opts) {
  const test::RunResult r = test::run(train_cmd(d, d.dir + "/" + name, "--batch 16 --epochs 1 " + opts));
  REQUIRE_MESSAGE(r.status == 0, r.out);
  std::ifstream in(d.dir + "/" + name + "/run.json");
  return nlohmann::json::parse(in);
}

TEST_CASE("the default encoder input: 25 components by signal-to-noise with the view's mean as noise; the 5G features with --feature-pca 0 and --preset paper") {
  DataSet d = make_data("train_feature_default", "linear", 160, 2.0);
  const nlohmann::json def = one_epoch_run(d, "default", "--hidden 64");
  CHECK(def.at("config").at("feature_pca") == 25);
  CHECK(def.at("config").at("feature_noise_whiten") == true);
  const nlohmann::json noise = one_epoch_run(d, "noise", "--hidden 64 --feature-whiten noise");  // round 7c's
  CHECK(noise.at("config").at("feature_pca") == 25);
  CHECK(noise.at("config").at("feature_view_nuisance") == false);
  CHECK(def.at("config").at("feature_view_nuisance") == true);
  CHECK(test::contains(def.at("feature_pca").at("ranked_by").get<std::string>(), "view-dependent mean"));
  CHECK(def.at("feature_pca").at("components") == 25);
  CHECK(!def.contains("feature_fallback"));
  for (const char* opts : {"--feature-pca 0 --hidden 64", "--preset paper"}) {
    const nlohmann::json plain = one_epoch_run(d, "plain", opts);
    CHECK(plain.at("config").at("feature_pca") == 0);
    CHECK(plain.at("config").at("feature_noise_whiten") == false);
    CHECK(plain.at("config").at("feature_view_nuisance") == false);
    CHECK(!plain.contains("feature_pca"));
  }
  // Components by variance, as --feature-pca K meant before the default changed.
  const nlohmann::json variance = one_epoch_run(d, "variance", "--hidden 64 --feature-pca 8 --feature-whiten none");
  CHECK(variance.at("config").at("feature_noise_whiten") == false);
  CHECK(!variance.at("feature_pca").contains("ranked_by"));
}

TEST_CASE("the default input falls back to the 5G features where it does not fit; an asked-for one does not") {
  TrainConfig c;  // the defaults
  CHECK(default_input_fallback(c, 20000, 1000).empty());  // any width: the streamed solver above 5G = 1,000
  CHECK(c.feature_pca == 25);
  TrainConfig split;
  split.feature_split = true;
  std::string why = default_input_fallback(split, 400, 1000);  // (a): an option on the 5G columns themselves
  CHECK(test::contains(why, "--feature-split works on the 5G feature columns"));
  CHECK(split.feature_pca == 0);
  CHECK(!split.feature_noise_whiten);
  TrainConfig reads;
  reads.encoder_reads_positions = false;
  CHECK(test::contains(default_input_fallback(reads, 400, 1000), "--encoder-reads"));
  CHECK(reads.feature_pca == 0);
  TrainConfig tiny;
  why = default_input_fallback(tiny, 4, 1000);  // (b): 20 features for 25 components
  CHECK(test::contains(why, "25 components need more features (5G = 20)"));
  CHECK(tiny.feature_pca == 0);
  TrainConfig few;
  CHECK(!default_input_fallback(few, 400, 20).empty());  // 20 training particles
  TrainConfig asked;
  asked.feature_input_asked = true;  // --feature-pca or --feature-whiten given: refused later, not changed
  asked.feature_split = true;
  CHECK(default_input_fallback(asked, 400, 1000).empty());
  CHECK(asked.feature_pca == 25);
  TrainConfig plain = paper_recipe();
  CHECK(default_input_fallback(plain, 4, 1000).empty());
}

TEST_CASE("frozen Gaussians and frozen columns stay exactly neutral") {
  DataSet d = make_data("train_frozen", "linear", 160, 2.0);
  const std::string out = d.dir + "/run";
  test::RunResult r = test::run(train_cmd(d, out, "--epochs 2 --batch 16 --lr 1e-2 --latent 2 --hidden 64 --gaussians 0-19 --move positions,widths"));
  REQUIRE_MESSAGE(r.status == 0, r.out);
  r = test::run(test::cugmm_exe() + " decode " + out + " --z \"3 -2 -4 5\" --out " + d.dir + "/dec --device cpu");
  REQUIRE_MESSAGE(r.status == 0, r.out);
  const io::GaussianModel n = io::read_model(d.model);
  for (const char* f : {"/dec/point_001.txt", "/dec/point_002.txt"}) {
    const io::GaussianModel m = io::read_model(d.dir + f);
    REQUIRE(m.size() == n.size());
    int moved = 0;
    for (size_t j = 0; j < n.size(); ++j) {
      CHECK(m.amplitude[j] == n.amplitude[j]);  // amplitudes frozen for every Gaussian
      if (j >= 20) {
        CHECK(m.x[j] == n.x[j]);
        CHECK(m.y[j] == n.y[j]);
        CHECK(m.z[j] == n.z[j]);
        CHECK(m.width[j] == n.width[j]);
      } else {
        moved += m.x[j] != n.x[j];
      }
    }
    CHECK(moved > 0);  // the selected ones did train
  }
}

TEST_CASE("--positions-first: amplitudes and widths stay neutral through its epochs, move after; resume across it is bit-identical") {
  DataSet d = make_data("train_positions_first", "linear", 160, 2.0);
  const io::GaussianModel n = io::read_model(d.model);
  // What moved in a decoded model against the neutral one: positions, amplitudes, widths (counts of Gaussians).
  auto moved = [&](const std::string& run) {
    const std::string dec = run + "_dec";
    const test::RunResult r = test::run(test::cugmm_exe() + " decode " + run + " --z \"3 -2\" --out " + dec + " --device cpu");
    REQUIRE_MESSAGE(r.status == 0, r.out);
    const io::GaussianModel m = io::read_model(dec + "/point_001.txt");
    REQUIRE(m.size() == n.size());
    std::array<int, 3> c = {0, 0, 0};
    for (size_t j = 0; j < n.size(); ++j) {
      c[0] += m.x[j] != n.x[j] || m.y[j] != n.y[j] || m.z[j] != n.z[j];
      c[1] += m.amplitude[j] != n.amplitude[j];
      c[2] += m.width[j] != n.width[j];
    }
    return c;
  };
  const std::string opts = "--batch 16 --lr 1e-3 --latent 2 --hidden 64 --val-fraction 0.1 --positions-first 1";
  // Inside its epochs only positions train: the decoder's amplitude and width outputs start at zero and get no
  // gradient, so the decoded amplitudes and widths are the neutral ones exactly, at any latent point.
  const std::string first = d.dir + "/first";
  test::RunResult r = test::run(train_cmd(d, first, opts + " --epochs 1"));
  REQUIRE_MESSAGE(r.status == 0, r.out);
  const std::array<int, 3> c1 = moved(first);
  CHECK(c1[0] > 0);
  CHECK(c1[1] == 0);
  CHECK(c1[2] == 0);
  std::ifstream in(first + "/run.json");
  CHECK(nlohmann::json::parse(in).at("config").at("positions_first") == 1);
  // After it every kind trains, and a run resumed across the switch equals a straight one.
  const std::string a = d.dir + "/straight", b = d.dir + "/resumed";
  straight_and_resumed(d, opts, a, b);
  const std::array<int, 3> c2 = moved(a);
  CHECK(c2[0] > 0);
  CHECK(c2[1] > 0);
  CHECK(c2[2] > 0);
  CHECK(file_bytes(a + "/latent.txt") == file_bytes(b + "/latent.txt"));
  CHECK(file_bytes(a + "/particles.star") == file_bytes(b + "/particles.star"));
  // And it differs from a run that moves everything from the start.
  const std::string all = d.dir + "/all";
  r = test::run(train_cmd(d, all, "--batch 16 --lr 1e-3 --latent 2 --hidden 64 --val-fraction 0.1 --epochs 2"));
  REQUIRE_MESSAGE(r.status == 0, r.out);
  CHECK(file_bytes(a + "/latent.txt") != file_bytes(all + "/latent.txt"));
}

TEST_CASE("bad inputs are refused before any work, with a message naming the problem") {
  DataSet d = make_data("train_bad", "linear", 40, 2.0);
  io::GaussianModel m = io::read_model(d.model);
  auto refused = [&](const std::string& extra, const std::string& model, const std::string& what) {
    const std::string out = d.dir + "/out_refused";
    fs::remove_all(out);
    test::RunResult r = test::run(test::cugmm_exe() + " train --particles " + d.star + " --model " + model + " --out " +
                                  out + " --device cpu " + extra);
    CHECK_MESSAGE(r.status != 0, r.out);
    CHECK_MESSAGE(test::contains(r.out, what), r.out);
    CHECK_MESSAGE(!fs::exists(out), "the output directory was created before the inputs were checked");
  };
  io::GaussianModel other_box = m;
  other_box.box_size = 48;
  io::write_model(d.dir + "/box48.txt", other_box);
  refused("--batch 8", d.dir + "/box48.txt", "box of 48 pixels");
  io::GaussianModel other_pixel = m;
  other_pixel.pixel_size = 3.0;
  io::write_model(d.dir + "/pix3.txt", other_pixel);
  refused("--batch 8", d.dir + "/pix3.txt", "pixels of 3");
  std::vector<float> mask(size_t(32) * 32 * 32, 1.f);
  io::write_mrc(d.dir + "/mask32.mrc", mask.data(), 32, 32, 32, 4.0f, false);
  refused("--batch 8 --mask " + d.dir + "/mask32.mrc", d.model, "the mask is on a 32x32x32 grid");
  refused("--batch 32 --val-fraction 0.1", d.model, "too few particles");
  refused("--batch 8 --val-fraction 0.01", d.model, "validation at least 4");
  refused("--batch 8 --move positions,colours", d.model, "unknown item 'colours'");
  refused("--batch 8 --move amplitudes --positions-first 3", d.model, "--positions-first 3 needs positions in --move");
  refused("--batch 8 --gaussians 5-100000", d.model, "--gaussians");
  refused("--batch 8 --resume", d.model, "does not exist");
  {  // CTF-premultiplied images (rlnCtfDataAreCtfPremultiplied = 1 in the optics table) need --ctf explicitly.
    std::string star = test::read_text(d.star);
    const size_t at = star.find("_rlnAmplitudeContrast #8\n");
    REQUIRE(at != std::string::npos);
    star.insert(at + 25, "_rlnCtfDataAreCtfPremultiplied #9\n");
    const size_t row = star.find("0.100000\n", at);
    REQUIRE(row != std::string::npos);
    star.insert(row + 8, "  1");
    test::write_text(d.dir + "/premultiplied.star", star);
    const std::string out = d.dir + "/out_premult";
    test::RunResult r = test::run(test::cugmm_exe() + " train --particles " + d.dir + "/premultiplied.star --model " +
                                  d.model + " --out " + out + " --device cpu --batch 8 --val-fraction 0");
    CHECK(r.status != 0);
    CHECK_MESSAGE(test::contains(r.out, "CTF-premultiplied"), r.out);
    CHECK(!fs::exists(out));
  }
  // --warm-start needs an end-to-end epoch after it, components to start from, and the latent points to itself.
  refused("--batch 8 --val-fraction 0 --epochs 2 --warm-start 2", d.model, "--warm-start 2 must be below --epochs 2");
  refused("--batch 8 --val-fraction 0 --epochs 2 --warm-start 1 --feature-pca 0", d.model, "needs an encoder input of components");
  refused("--batch 8 --val-fraction 0 --epochs 2 --warm-start 1 --latent 9 --feature-pca 8", d.model, "must not exceed --feature-pca 8");
  {
    std::ofstream points(d.dir + "/points.txt");
    for (int i = 0; i < 40; ++i) points << "0 0 0 0\n";
  }
  refused("--batch 8 --val-fraction 0 --epochs 2 --warm-start 1 --fixed-latent " + d.dir + "/points.txt", d.model,
          "both fix the latent points");
  // A plan that cannot fit (16 layers of 16,384: ~70 GB of weights and Adam state) is refused with suggestions.
  refused("--batch 8 --val-fraction 0 --hidden 16384 --depth 16", d.model, "Try a smaller --batch, --bf16-moments");
}

TEST_CASE("Ctrl-C stops at a batch boundary with a resumable checkpoint; the resumed run equals a straight one") {
  DataSet d = make_data("train_sigint", "linear", 160, 2.0);
  const std::string a = d.dir + "/straight", b = d.dir + "/interrupted";
  const std::string opts = "--batch 16 --lr 1e-3 --latent 2 --hidden 64 --epochs 60";
  // Interrupt once the first epoch's checkpoint exists (the run is then well inside its loop).
  test::RunResult r = test::run("(" + train_cmd(d, b, opts) + " > int.log 2>&1) & pid=$!; "
                                "while [ ! -f " + b + "/model.ckpt ]; do sleep 0.02; done; kill -INT $pid; wait $pid; "
                                "echo rc=$?; cat int.log", d.dir);
  REQUIRE_MESSAGE(test::contains(r.out, "rc=130"), r.out);
  CHECK(test::contains(r.out, "resumable checkpoint"));
  CHECK(!fs::exists(b + "/latent.txt"));
  r = test::run(train_cmd(d, b, opts + " --resume"));
  REQUIRE_MESSAGE(r.status == 0, r.out);
  r = test::run(train_cmd(d, a, opts));
  REQUIRE_MESSAGE(r.status == 0, r.out);
  CHECK(file_bytes(a + "/latent.txt") == file_bytes(b + "/latent.txt"));
  CHECK(file_bytes(a + "/particles.star") == file_bytes(b + "/particles.star"));
}

TEST_CASE("--warm-start: resumed inside the warm start (after Ctrl-C) and after it, the run equals a straight one") {
  DataSet d = make_data("train_warm_resume", "linear", 160, 2.0);
  const std::string a = d.dir + "/straight", b = d.dir + "/interrupted", c = d.dir + "/resumed";
  const std::string opts = "--batch 16 --lr 1e-3 --latent 2 --hidden 64 --feature-pca 8 --warm-start 30";
  test::RunResult r = test::run("(" + train_cmd(d, b, opts + " --epochs 60") + " > int.log 2>&1) & pid=$!; "
                                "while [ ! -f " + b + "/model.ckpt ]; do sleep 0.02; done; kill -INT $pid; wait $pid; "
                                "echo rc=$?; cat int.log", d.dir);
  REQUIRE_MESSAGE(test::contains(r.out, "rc=130"), r.out);
  r = test::run(train_cmd(d, b, opts + " --epochs 60 --resume"));
  REQUIRE_MESSAGE(r.status == 0, r.out);
  CHECK_MESSAGE(test::contains(r.out, "warm start: epochs"), r.out);  // it resumed inside the warm start
  r = test::run(train_cmd(d, c, opts + " --epochs 31"));
  REQUIRE_MESSAGE(r.status == 0, r.out);
  r = test::run(train_cmd(d, c, opts + " --epochs 60 --resume"));
  REQUIRE_MESSAGE(r.status == 0, r.out);
  CHECK(test::contains(r.out, "resuming at epoch 32"));
  CHECK(!test::contains(r.out, "warm start: epochs"));
  r = test::run(train_cmd(d, a, opts + " --epochs 60"));
  REQUIRE_MESSAGE(r.status == 0, r.out);
  CHECK(file_bytes(a + "/latent.txt") == file_bytes(b + "/latent.txt"));
  CHECK(file_bytes(a + "/latent.txt") == file_bytes(c + "/latent.txt"));
  CHECK(file_bytes(a + "/particles.star") == file_bytes(c + "/particles.star"));
  // Another warm start is other settings.
  r = test::run(train_cmd(d, c, "--batch 16 --lr 1e-3 --latent 2 --hidden 64 --feature-pca 8 --warm-start 20 "
                                "--epochs 61 --resume"));
  CHECK(r.status != 0);
  CHECK(test::contains(r.out, "settings differ"));
}

TEST_CASE("a diverging run stops with a diagnosis and keeps the last good checkpoint") {
  DataSet d = make_data("train_diverge", "linear", 160, 2.0);
  const std::string out = d.dir + "/run", opts = "--batch 16 --lr 1e-3 --latent 2 --hidden 64";
  test::RunResult r = test::run(train_cmd(d, out, opts + " --epochs 1"));
  REQUIRE_MESSAGE(r.status == 0, r.out);
  const std::string good = file_bytes(out + "/model.ckpt");
  // Every loss (about -0.5) is "exploding" when the limit is -0.99: the run must stop at its first check.
  r = test::run(train_cmd(d, out, opts + " --epochs 2 --resume --explode -0.99 --loss-every 2"));
  CHECK(r.status != 0);
  CHECK_MESSAGE(test::contains(r.out, "training diverged at epoch 2, batch 2"), r.out);
  CHECK(test::contains(r.out, "last good checkpoint is kept"));
  CHECK(test::contains(r.out, "(epoch 1)"));
  CHECK(file_bytes(out + "/model.ckpt") == good);
}
