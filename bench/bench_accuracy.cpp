// Accuracy of the trained latent (issue 14 §1): the simulator's systems -> consensus -> fit-map -> train with
// each configuration (the defaults, --preset paper, and any --config given) -> the latent scored exactly as the
// demo scores it (engine/oracle_reference.h score_latent_file) beside the oracle reference (true-pose and
// pose-marginalised) the simulator computed on the same particles. Median over seeds (each seed a new data
// set, new networks); every per-seed figure with its bootstrap interval is in the JSON.
//
// It drives the cugmm binary (the commands a user types, each logged to DIR/.../NAME.log), so what it
// measures is the product. Sizes:
//   --quick (default)  2,000 particles, box 64, 3 Å/px (the demo's size), SNR 0.1; systems (a)-(d) and
//                      small-part (the small moving part at box 64)
//   --full             20,000 particles, box 128, 1.5 Å/px, SNR 0.05 and 0.1 (the size; hours on a GPU);
//                      systems (a)-(d)
// Anything can be overridden (--count, --box, --angpix, --snr, --epochs, --seeds, --systems).
//
//   bench_accuracy [--quick|--full] [--systems linear,rotation,composition,two-motions,small-part,FILE.json]
//                  [--config NAME="train flags"]... [--no-defaults] [--no-paper] [--seeds 3] [--first-seed 1]
//                  [--epochs 20] [--threads N] [--fit-flags "..."] [--work DIR] [--keep] [--reuse-runs]
//                  [--out bench_accuracy.json] [--cugmm PATH] [--score-only]
// Data sets and neutral models are reused when DIR already holds them for the same options (so configurations
// can be added to an earlier run); each training is run again, unless --reuse-runs: then a kept training whose
// record (run_NAME/bench_run.json: flags, epochs, seed, threads) matches is scored again with its recorded time,
// so seeds run as separate invocations (--first-seed 2 --seeds 2, in parallel or later) are put together by
// one more (--seeds 3 --reuse-runs) that trains nothing. --score-only runs no cugmm command at all: it scores
// the kept data sets and trainings, leaves out (and names) a configuration with no kept training, and stops at
// a data set not prepared, so a partial run (hours at --full) is reported as it stands. --threads N is passed
// to every cugmm command.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "bench/common.h"
#include "core/error.h"
#include "engine/hetero_system.h"
#include "engine/oracle_reference.h"

using namespace cugmm;
namespace fs = std::filesystem;

namespace {

struct Options {
  std::vector<std::string> systems = {"linear", "rotation", "composition", "two-motions", "small-part"};
  std::vector<double> snrs = {0.1};
  int count = 2000, box = 64, epochs = 20, seeds = 3, first_seed = 1, ref_particles = 300, ref_poses = 8;
  int threads = 0;  // 0: each cugmm command's own default (all cores)
  double angpix = 3.0;
  std::vector<std::pair<std::string, std::string>> configs;  // name, train flags
  std::string fit_flags, work = "bench_accuracy_work", out = "bench_accuracy.json", cugmm;
  std::string size = "quick";
  bool score_only = false;  // run nothing: score what DIR holds
};

std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// CPU seconds (user + system) of the children this process has waited for, grandchildren included.
double children_cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_CHILDREN, &u);
  return double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + 1e-6 * double(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

struct Timing {
  double wall = NAN, cpu = NAN;  // seconds
};

// Runs `cugmm ARGS` with its output in `log`; throws naming the log when it fails.
Timing run_cugmm(const Options& o, const std::string& args, const std::string& log) {
  const auto t0 = std::chrono::steady_clock::now();
  const double cpu0 = children_cpu_seconds();
  const std::string all = o.threads > 0 ? args + " --threads " + std::to_string(o.threads) : args;
  std::ofstream(log) << "$ cugmm " << all << "\n";
  const std::string cmd = quote(o.cugmm) + " " + all + " >> " + quote(log) + " 2>&1";
  if (std::system(cmd.c_str()) != 0) throw Error("bench_accuracy: failed (see " + log + "): cugmm " + all);
  return {std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), children_cpu_seconds() - cpu0};
}

nlohmann::json read_json(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw Error("bench_accuracy: " + path + " was not written");
  return nlohmann::json::parse(f);
}

HeteroSystem load_system(const std::string& s) {
  return s.size() > 5 && s.substr(s.size() - 5) == ".json" ? system_from_json(s) : builtin_system(s);
}

std::string system_label(const std::string& s) { return fs::path(s).stem().string(); }

double median(std::vector<double> v) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, sep))
    if (!item.empty()) out.push_back(item);
  return out;
}

// The data set of (system, snr, seed): simulated with the oracle reference, cached, and a neutral model
// fitted to its consensus map. Reused when its record matches these options.
std::string prepare_data(const Options& o, const std::string& system, double snr, int seed) {
  char name[160];
  std::snprintf(name, sizeof name, "%s_snr%g_seed%d", system_label(system).c_str(), snr, seed);
  const std::string dir = (fs::path(o.work) / name).string();
  const nlohmann::json want = {{"system", system}, {"snr", snr}, {"seed", seed}, {"count", o.count}, {"box", o.box},
                               {"angpix", o.angpix}, {"ref_particles", o.ref_particles}, {"ref_poses", o.ref_poses},
                               {"fit_flags", o.fit_flags}};
  const std::string record = dir + "/data_record.json";
  if (fs::exists(record) && read_json(record) == want) return dir;
  if (o.score_only) throw Error("--score-only: " + dir + " holds no data set prepared with these options");
  fs::remove_all(dir);
  fs::create_directories(dir);
  char args[1024];
  std::snprintf(args, sizeof args,
                "simulate --system %s --out %s/data --count %d --box %d --angpix %g --snr %g --seed %d --reference "
                "--reference-particles %d --reference-poses %d",
                quote(system).c_str(), dir.c_str(), o.count, o.box, o.angpix, snr, seed, o.ref_particles, o.ref_poses);
  std::printf("  simulating %s (%.0f s)\n", name, run_cugmm(o, args, dir + "/simulate.log").wall);
  run_cugmm(o, "preprocess --particles " + dir + "/data/particles.star --out " + dir + "/particles.cugmm-cache",
            dir + "/preprocess.log");
  const double t = run_cugmm(o, "fit-map " + dir + "/data/consensus.mrc --half-maps " + dir +
                                    "/data/consensus_half1.mrc " + dir + "/data/consensus_half2.mrc --out " + dir +
                                    "/neutral " + o.fit_flags,
                             dir + "/fit_map.log").wall;
  std::printf("  neutral model of %s: %d Gaussians (%.0f s)\n", name,
              read_json(dir + "/neutral/fit.json").at("gaussians").get<int>(), t);
  std::ofstream(record) << want.dump(2) << "\n";
  return dir;
}

nlohmann::json interval_json(const Interval& i) { return {{"value", i.value}, {"lo95", i.lo}, {"hi95", i.hi}}; }

}  // namespace

int main(int argc, char** argv) {
  try {
    Options o;
    bool defaults = true, paper = true, keep = false, reuse_runs = false, systems_set = false;
    std::vector<std::pair<std::string, std::string>> extra;
    bool count_set = false, box_set = false, snr_set = false, angpix_set = false;
    for (int i = 1; i < argc; ++i) {
      const std::string a = argv[i];
      auto next = [&]() -> std::string {
        if (i + 1 >= argc) throw Error(a + " needs a value");
        return argv[++i];
      };
      if (a == "--quick") o.size = "quick";
      else if (a == "--full") o.size = "full";
      else if (a == "--systems") { o.systems = split(next(), ','); systems_set = true; }
      else if (a == "--snr") { o.snrs.clear(); for (auto& s : split(next(), ',')) o.snrs.push_back(std::stod(s)); snr_set = true; }
      else if (a == "--count") { o.count = std::stoi(next()); count_set = true; }
      else if (a == "--box") { o.box = std::stoi(next()); box_set = true; }
      else if (a == "--angpix") { o.angpix = std::stod(next()); angpix_set = true; }
      else if (a == "--epochs") o.epochs = std::stoi(next());
      else if (a == "--seeds") o.seeds = std::stoi(next());
      else if (a == "--first-seed") o.first_seed = std::stoi(next());
      else if (a == "--threads") o.threads = std::stoi(next());
      else if (a == "--reuse-runs") reuse_runs = true;
      else if (a == "--score-only") o.score_only = reuse_runs = true;
      else if (a == "--reference-particles") o.ref_particles = std::stoi(next());
      else if (a == "--config") {
        const std::string c = next();
        const size_t eq = c.find('=');
        if (eq == std::string::npos || eq == 0) throw Error("--config NAME=\"train flags\", not '" + c + "'");
        extra.push_back({c.substr(0, eq), c.substr(eq + 1)});
      } else if (a == "--no-defaults") defaults = false;
      else if (a == "--no-paper") paper = false;
      else if (a == "--fit-flags") o.fit_flags = next();
      else if (a == "--work") o.work = next();
      else if (a == "--keep") keep = true;
      else if (a == "--out") o.out = next();
      else if (a == "--cugmm") o.cugmm = next();
      else throw Error("unknown option " + a + " (see the header of bench/bench_accuracy.cpp)");
    }
    if (o.size == "full") {
      if (!count_set) o.count = 20000;
      if (!box_set) o.box = 128;
      if (!angpix_set) o.angpix = 1.5;
      if (!snr_set) o.snrs = {0.05, 0.1};
      o.ref_particles = std::max(o.ref_particles, 1000);
      if (!systems_set) o.systems.pop_back();  // small-part is defined at box 64: the quick size
    }
    if (o.seeds < 1 || o.first_seed < 1 || o.threads < 0) throw Error("--seeds and --first-seed >= 1, --threads >= 0");
    if (o.cugmm.empty()) {  // the program built beside this benchmark (build/bench/.. = build/)
      const fs::path self = fs::canonical("/proc/self/exe");
      o.cugmm = (self.parent_path().parent_path() / "cugmm").string();
    }
    if (!fs::exists(o.cugmm)) throw Error("no cugmm program at " + o.cugmm + " (give --cugmm PATH)");
    if (defaults) o.configs.push_back({"defaults", ""});
    if (paper) o.configs.push_back({"paper", "--preset paper"});
    o.configs.insert(o.configs.end(), extra.begin(), extra.end());
    if (o.configs.empty()) throw Error("no configuration to train");
    fs::create_directories(o.work);

    nlohmann::json doc;
    doc["benchmark"] = "accuracy";
    doc["machine"] = bench::machine();
    doc["size"] = o.size;
    doc["options"] = {{"count", o.count}, {"box", o.box}, {"angpix", o.angpix}, {"snr", o.snrs}, {"epochs", o.epochs},
                      {"seeds", o.seeds}, {"first_seed", o.first_seed}, {"threads", o.threads}, {"reference_particles", o.ref_particles},
                      {"reference_pose_samples", o.ref_poses}, {"fit_flags", o.fit_flags},
                      {"simulation", "CTF, pose error 2 degrees geodesic RMS, 0.5 px (simulate's defaults)"}};
    nlohmann::json cfgs = nlohmann::json::array();
    for (auto& c : o.configs) cfgs.push_back({{"name", c.first}, {"train_flags", c.second}});
    doc["configs"] = cfgs;
    doc["results"] = nlohmann::json::array();
    BootstrapOptions bo;
    bo.resamples = 100;

    std::vector<std::string> table;
    for (const std::string& system : o.systems) {
      const HeteroSystem sys = load_system(system);
      for (double snr : o.snrs) {
        nlohmann::json res = {{"system", system}, {"snr", snr}, {"seeds", nlohmann::json::array()}};
        // figure key -> config (or oracle_true / oracle_marginal) -> values over seeds
        std::map<std::string, std::map<std::string, std::vector<double>>> vals;
        std::vector<std::string> keys;
        std::map<std::string, std::vector<double>> seconds, cpu_seconds;
        for (int seed = o.first_seed; seed < o.first_seed + o.seeds; ++seed) {
          std::printf("%s, SNR %g, seed %d\n", system_label(system).c_str(), snr, seed);
          std::fflush(stdout);
          const std::string dir = prepare_data(o, system, snr, seed);
          nlohmann::json sj = {{"seed", seed}, {"data", dir}};
          const nlohmann::json oracle = read_json(dir + "/data/oracle.json");
          sj["oracle"] = oracle["figures"];
          for (const auto& f : oracle["figures"]) {
            const std::string key = f["metric"].get<std::string>() + " (" + f["truth"].get<std::string>() + ")";
            if (std::find(keys.begin(), keys.end(), key) == keys.end()) keys.push_back(key);
            vals[key]["oracle true pose"].push_back(f["true_pose"]["value"]);
            vals[key]["oracle marginal"].push_back(f["pose_marginalised"]["value"]);
          }
          sj["trained"] = nlohmann::json::object();
          for (const auto& [name, flags] : o.configs) {
            const std::string run = dir + "/run_" + name;
            const nlohmann::json run_want = {{"train_flags", flags}, {"epochs", o.epochs}, {"seed", seed},
                                             {"threads", o.threads}};
            Timing t;
            if (reuse_runs && fs::exists(run + "/bench_run.json") && fs::exists(run + "/latent.txt")) {
              const nlohmann::json had = read_json(run + "/bench_run.json");
              if (had.at("record") == run_want) t = {had.at("seconds").get<double>(), had.at("cpu_seconds").get<double>()};
            }
            if (std::isnan(t.wall) && o.score_only) {
              std::printf("  %-12s not run (no kept training matching this configuration)\n", name.c_str());
              continue;
            }
            if (std::isnan(t.wall)) {
              fs::remove_all(run);
              t = run_cugmm(o,
                            "train --particles " + dir + "/data/particles.star --model " + dir + "/neutral/model.txt --cache " +
                                dir + "/particles.cugmm-cache --out " + run + " --epochs " + std::to_string(o.epochs) +
                                " --seed " + std::to_string(seed) + " " + flags,
                            dir + "/train_" + name + ".log");
              bench::write_json(run + "/bench_run.json", {{"record", run_want}, {"seconds", t.wall}, {"cpu_seconds", t.cpu}});
            }
            seconds[name].push_back(t.wall);
            cpu_seconds[name].push_back(t.cpu);
            const int d = read_json(run + "/run.json").at("config").at("latent");
            nlohmann::json figs = nlohmann::json::array();
            std::string line;
            for (const MetricFigure& m : score_latent_file(sys, run + "/latent.txt", d, dir + "/data/particles_truth.csv", bo)) {
              const std::string key = m.metric + " (" + m.motion + ")";
              vals[key][name].push_back(m.value.value);
              figs.push_back({{"metric", m.metric}, {"truth", m.motion}, {"value", interval_json(m.value)}});
              char b[128];
              std::snprintf(b, sizeof b, " %s %.3f", m.metric.c_str(), m.value.value);
              line += b;
            }
            sj["trained"][name] = {{"figures", figs}, {"train_seconds", t.wall}, {"train_cpu_seconds", t.cpu},
                                   {"train_flags", flags}};
            std::printf("  %-12s%s (%.0f s, %.0f CPU-s)\n", name.c_str(), line.c_str(), t.wall, t.cpu);
            std::fflush(stdout);
            if (!keep) fs::remove(run + "/features.cugmm-features");
          }
          res["seeds"].push_back(sj);
        }
        nlohmann::json med = nlohmann::json::object();
        for (const std::string& key : keys) {
          for (auto& [who, v] : vals[key]) med[key][who] = median(v);
          std::string row;
          char b[96];
          std::snprintf(b, sizeof b, "%-12s %-5g %-48s", system_label(system).c_str(), snr, key.c_str());
          row = b;
          for (const char* who : {"oracle true pose", "oracle marginal"}) {
            std::snprintf(b, sizeof b, " %8.3f", med[key][who].get<double>());
            row += b;
          }
          for (auto& c : o.configs) {
            const auto it = vals[key].find(c.first);
            std::snprintf(b, sizeof b, " %10.3f", it == vals[key].end() ? NAN : median(it->second));
            row += b;
          }
          table.push_back(row);
        }
        res["median"] = med;
        nlohmann::json secs = nlohmann::json::object();
        for (auto& [name, v] : seconds) secs[name] = median(v);
        res["median_train_seconds"] = secs;
        nlohmann::json cpu = nlohmann::json::object();
        for (auto& [name, v] : cpu_seconds) cpu[name] = median(v);
        res["median_train_cpu_seconds"] = cpu;
        doc["results"].push_back(res);
        bench::write_json(o.out, doc);  // after each system: a long run keeps what it has
      }
    }
    std::printf("\nmedian over seeds %d-%d, %d particles, box %d, %g Å/px, %d epochs:\n", o.first_seed, o.first_seed + o.seeds - 1, o.count, o.box,
                o.angpix, o.epochs);
    std::string head = "system       snr   figure                                           oracle:true marginal";
    for (auto& c : o.configs) {
      char b[32];
      std::snprintf(b, sizeof b, " %10s", c.first.substr(0, 10).c_str());
      head += b;
    }
    std::printf("%s\n", head.c_str());
    for (const std::string& r : table) std::printf("%s\n", r.c_str());
    bench::write_json(o.out, doc);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_accuracy: %s\n", e.what());
    return 1;
  }
}
