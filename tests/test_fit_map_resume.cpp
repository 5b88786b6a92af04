// fit-map's checkpoint (issue 17): a fit stopped after a checkpoint (the hook throws where a kill would
// land) and resumed gives the uninterrupted fit's model byte for byte; a checkpoint of other inputs or
// options, or a damaged one, is not used, with a message saying why, and the fit is redone cleanly.
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <stdexcept>

#include "engine/fit_map.h"
#include "engine/render.h"
#include "io/model.h"
#include "support.h"

using namespace cugmm;
namespace fs = std::filesystem;

namespace {

constexpr int kBox = 24;
constexpr double kPixel = 3.0;

// A small map (24 Gaussians) and tuning that makes a fit of 4 rounds take about a second of CPU.
FitMapInputs small_inputs() {
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> u(-1, 1);
  io::GaussianModel m;
  m.box_size = kBox;
  m.pixel_size = kPixel;
  m.resize(24);
  for (size_t j = 0; j < m.size(); ++j) {
    m.x[j] = float(u(rng) * 18); m.y[j] = float(u(rng) * 18); m.z[j] = float(u(rng) * 18);
    m.amplitude[j] = float(1 + 0.5 * u(rng));
    m.width[j] = float(4 + u(rng));
  }
  FitMapInputs in;
  in.map = render_volume(m, kBox, kPixel);
  return in;
}

FitMapOptions small_options() {
  FitMapOptions o;
  o.ngauss = 64;
  o.start_gaussians = 8;
  o.start_res = 30;
  o.round_iterations = 60;
  o.final_iterations = 240;
  o.check_every = 40;
  o.converge_tol = 1e-7;  // the rounds run their budget, so the checkpoints below exist
  o.stop_fsc = 1.5;       // (and the last round is not stopped by the rule)
  return o;
}

// A kill at the checkpoint (round, step): the hook throws once that checkpoint is on disk.
struct Killed : std::runtime_error {
  Killed() : std::runtime_error("killed") {}
};
void kill_at(FitMapOptions& o, int round, int step) {
  o.on_checkpoint = [round, step](int r, int s) {
    if (r == round && s == step) throw Killed();
  };
}

// stderr while f runs (the fit's log lines).
template <class F>
std::string stderr_of(const std::string& file, F&& f) {
  std::fflush(stderr);
  const int saved = ::dup(2), fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  REQUIRE(saved >= 0);
  REQUIRE(fd >= 0);
  ::dup2(fd, 2);
  ::close(fd);
  try {
    f();
  } catch (...) {
    std::fflush(stderr);
    ::dup2(saved, 2);
    ::close(saved);
    throw;
  }
  std::fflush(stderr);
  ::dup2(saved, 2);
  ::close(saved);
  return test::read_text(file);
}

std::vector<std::string> temps_in(const std::string& dir) {
  std::vector<std::string> t;
  for (const auto& e : fs::directory_iterator(dir))
    if (test::contains(e.path().filename().string(), ".cugmm-tmp-")) t.push_back(e.path().string());
  return t;
}

}  // namespace

TEST_CASE("fit-map resume: stopped after a round or mid-round, the resumed fit writes the same model.txt") {
  const FitMapInputs in = small_inputs();
  const std::string dir = test::scratch_dir("fit_map_resume");
  FitMapResult ref = fit_map(in, small_options(), cpu_context());
  REQUIRE(ref.rounds.size() == 4);
  write_fit_map_outputs(dir + "/ref", in, ref);
  const std::string ref_model = test::read_text(dir + "/ref/model.txt");

  // (round, step): after round 1, mid round 2, after round 3, mid the last round (twice, at two points).
  const int stops[][2] = {{1, 0}, {1, 40}, {3, 0}, {3, 80}, {3, 200}};
  for (const auto& stop : stops) {
    CAPTURE(stop[0]);
    CAPTURE(stop[1]);
    const std::string out = dir + "/run_" + std::to_string(stop[0]) + "_" + std::to_string(stop[1]);
    fs::create_directories(out);
    FitMapOptions o = small_options();
    o.checkpoint = out + "/fit-map.ckpt";
    kill_at(o, stop[0], stop[1]);
    CHECK_THROWS_AS(fit_map(in, o, cpu_context()), Killed);
    REQUIRE(fs::exists(o.checkpoint));
    o.on_checkpoint = nullptr;
    FitMapResult r;
    const std::string log = stderr_of(out + "/log.txt", [&] { r = fit_map(in, o, cpu_context()); });
    const std::string says = "resuming from round " + std::to_string(stop[0] + 1) + " of 4" +
                             (stop[1] ? ", step " + std::to_string(stop[1]) : "");
    CHECK_MESSAGE(test::contains(log, says), log);
    CHECK(r.model.x == ref.model.x);
    CHECK(r.model.width == ref.model.width);
    CHECK(r.rounds.size() == ref.rounds.size());
    CHECK(r.rounds.back().iterations == ref.rounds.back().iterations);
    CHECK(r.verdict == ref.verdict);
    write_fit_map_outputs(out, in, r);
    CHECK(test::read_text(out + "/model.txt") == ref_model);
    CHECK(test::read_text(out + "/fsc.txt") == test::read_text(dir + "/ref/fsc.txt"));
    // The outputs are whole: the checkpoint and any temporary of it are gone.
    CHECK_FALSE(fs::exists(o.checkpoint));
    CHECK(temps_in(out).empty());
  }
}

TEST_CASE("fit-map resume: a checkpoint of other inputs or options is not used, and says why") {
  const FitMapInputs in = small_inputs();
  const std::string dir = test::scratch_dir("fit_map_resume_other");
  const std::string ckpt = dir + "/fit-map.ckpt";
  auto checkpoint_of = [&](const FitMapInputs& i, FitMapOptions o) {
    o.checkpoint = ckpt;
    kill_at(o, 2, 0);
    CHECK_THROWS_AS(fit_map(i, o, cpu_context()), Killed);
    REQUIRE(fs::exists(ckpt));
  };
  FitMapOptions other_seed = small_options();
  other_seed.seed = 2;
  FitMapInputs other_map = small_inputs();
  other_map.map.data[100] += 1e-3f;
  FitMapInputs masked = small_inputs();
  masked.mask.assign(masked.map.data.size(), 1.f);
  struct Case {
    const char* what;
    const FitMapInputs& in;
    FitMapOptions opt;
    const char* says;
  } cases[] = {{"another seed", in, other_seed, "its options differ: seed 2 there, 1 here"},
               {"another map", other_map, small_options(), "the map differs from this run's"},
               {"a mask", masked, small_options(), "the mask differs from this run's"}};
  const FitMapResult fresh = fit_map(in, small_options(), cpu_context());
  for (const Case& c : cases) {
    CAPTURE(c.what);
    checkpoint_of(c.in, c.opt);
    FitMapOptions o = small_options();
    o.checkpoint = ckpt;
    FitMapResult r;
    const std::string log = stderr_of(dir + "/log.txt", [&] { r = fit_map(in, o, cpu_context()); });
    CHECK_MESSAGE(test::contains(log, ckpt + " is another fit's checkpoint (" + c.says + "); not resumed"), log);
    CHECK_FALSE(test::contains(log, "resuming"));
    CHECK(r.model.x == fresh.model.x);  // redone from the start
    CHECK(r.model.amplitude == fresh.model.amplitude);
  }
  // A checkpoint of another kind (a file that is not fit-map's) is refused the same way.
  {
    std::ofstream(ckpt, std::ios::binary | std::ios::trunc) << "not a checkpoint at all";
    FitMapOptions o = small_options();
    o.checkpoint = ckpt;
    FitMapResult r;
    const std::string log = stderr_of(dir + "/log.txt", [&] { r = fit_map(in, o, cpu_context()); });
    CHECK_MESSAGE(test::contains(log, "cannot resume: " + ckpt + ": "), log);
    CHECK(r.model.x == fresh.model.x);
  }
}

TEST_CASE("fit-map resume: a truncated or corrupt checkpoint is named, and the fit is redone cleanly") {
  const FitMapInputs in = small_inputs();
  const std::string dir = test::scratch_dir("fit_map_resume_damaged");
  const std::string ckpt = dir + "/fit-map.ckpt";
  const FitMapResult fresh = fit_map(in, small_options(), cpu_context());
  for (const char* damage : {"truncated", "bit flip"}) {
    CAPTURE(damage);
    FitMapOptions o = small_options();
    o.checkpoint = ckpt;
    kill_at(o, 3, 80);
    CHECK_THROWS_AS(fit_map(in, o, cpu_context()), Killed);
    o.on_checkpoint = nullptr;
    const auto size = fs::file_size(ckpt);
    if (std::string(damage) == "truncated") {
      fs::resize_file(ckpt, size - 100);
    } else {
      std::fstream f(ckpt, std::ios::in | std::ios::out | std::ios::binary);
      f.seekp(std::streamoff(size - 40));
      f.put('\x5a');
    }
    FitMapResult r;
    const std::string log = stderr_of(dir + "/log.txt", [&] { r = fit_map(in, o, cpu_context()); });
    CHECK_MESSAGE(test::contains(log, "cannot resume: " + ckpt + ": "), log);
    CHECK_MESSAGE(test::contains(log, std::string(damage) == "truncated" ? "truncated" : "checksum mismatch"), log);
    CHECK_MESSAGE(test::contains(log, "; not resumed: the fit starts afresh"), log);
    CHECK(r.model.x == fresh.model.x);
    CHECK(r.model.width == fresh.model.width);
    // The damaged file was replaced by the fit's own checkpoints, then removed with the outputs written.
    write_fit_map_outputs(dir + "/out", in, r);
    CHECK_FALSE(fs::exists(ckpt));
    CHECK(temps_in(dir).empty());
  }
}
