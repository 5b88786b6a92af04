// `cugmm analyze` (issue 15): the pieces on latents and decoders with a known answer (clusters of
// simulated blobs, a localised direction of a linear decoder whose domain and rest move along different
// latent directions), then the command end to end on a small trained run of the built-in "linear" system:
// maps mrcfile validates, subsets relion_star_handler reads back, and the localised direction of the arm
// moving the arm several times more than the rest.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "engine/hetero_system.h"
#include "engine/latent_analysis.h"
#include "engine/local_motion.h"
#include "engine/simulate_system.h"
#include "engine/system_imager.h"
#include "io/model.h"
#include "support.h"
#include "train_data.h"

using namespace cugmm;
namespace fs = std::filesystem;

TEST_CASE("clusters of three simulated blobs are recovered, centres are member particles near the means") {
  std::mt19937 rng(4);
  std::normal_distribution<double> n01;
  const double centre[3][3] = {{0, 0, 0}, {4, 0, 1}, {0, 5, -2}};
  const size_t sizes[3] = {150, 100, 60};
  std::vector<double> v;
  std::vector<int> truth;
  for (int c = 0; c < 3; ++c)
    for (size_t i = 0; i < sizes[c]; ++i) {
      for (int k = 0; k < 3; ++k) v.push_back(centre[c][k] + 0.7 * n01(rng));
      truth.push_back(c);
    }
  Matrix z(truth.size(), 3, v);
  LatentClusters cl = cluster_latent(z, 3, 1);
  const double acc = matched_accuracy(cl.labels, truth, 3);
  MESSAGE("matched accuracy " << acc);
  CHECK(acc > 0.97);
  // Numbered by size, so cluster 1 is the 150-particle blob.
  CHECK(cl.size[0] >= cl.size[1]);
  CHECK(cl.size[1] >= cl.size[2]);
  for (size_t r = 0; r < 3; ++r) {
    CHECK(cl.labels[cl.centre[r]] == int(r));
    double e = 0;
    for (size_t c = 0; c < 3; ++c) e += std::pow(z(cl.centre[r], c) - cl.means(r, c), 2);
    CHECK(std::sqrt(e) < 0.5);  // the blobs' sd is 0.7 per axis: the nearest of >= 60 members is closer
  }
}

TEST_CASE("a path spans the 5th to 95th percentile along a unit direction; selections") {
  std::vector<double> v;
  for (int i = 0; i <= 100; ++i) { v.push_back(i); v.push_back(0); }
  Matrix z(101, 2, v);
  LatentPath p = latent_path("pc1", z, {50, 0}, {2, 0}, 5);
  REQUIRE(p.t.size() == 5);
  CHECK(p.direction[0] == doctest::Approx(1));
  CHECK(p.t.front() == doctest::Approx(-45));
  CHECK(p.t.back() == doctest::Approx(45));
  CHECK(p.points(4, 0) == doctest::Approx(95));
  CHECK(rows_within(z, {10, 0}, 2.5) == std::vector<size_t>{8, 9, 10, 11, 12});
  CHECK(rows_nearest(z, {10.2, 0}, 3) == std::vector<size_t>{10, 11, 9});
  CHECK(rows_in_range(p.coordinate, -1, 1) == std::vector<size_t>{49, 50, 51});
}

TEST_CASE("the localised direction of a linear decoder moves the domain and not the rest") {
  // G = 30, domain = the first 10. Domain Gaussians move along (z1 + z2) u, the rest along (z1 - z2) w and
  // z3 w': the only direction that moves the domain alone is (1, 1, 0)/sqrt 2. The latent is widest along
  // z1, so PC1 (about e1) moves both.
  const size_t G = 30, d = 3;
  std::vector<char> inside(G, 0);
  std::fill(inside.begin(), inside.begin() + 10, 1);
  auto decode = [&](const std::vector<float>& z, int n) {
    std::vector<float> out(size_t(n) * 5 * G, 1.f);
    for (int i = 0; i < n; ++i) {
      const float* zi = z.data() + size_t(i) * d;
      float* p = out.data() + size_t(i) * 5 * G;
      for (size_t j = 0; j < G; ++j) {
        const float s = inside[j] ? zi[0] + zi[1] : zi[0] - zi[1];
        p[j] = float(j) + (inside[j] ? 2 * s : s);
        p[G + j] = inside[j] ? 0.f : 0.5f * zi[2];
        p[2 * G + j] = inside[j] ? s : 0.f;
      }
    }
    return out;
  };
  std::mt19937 rng(2);
  std::normal_distribution<double> n01;
  std::vector<double> v;
  for (int i = 0; i < 400; ++i) { v.push_back(3 * n01(rng)); v.push_back(n01(rng)); v.push_back(n01(rng)); }
  Matrix z(400, d, v);
  LocalMotions lm = local_motions(z, inside, decode);
  MESSAGE("eigenvalues " << lm.eigenvalues[0] << " " << lm.eigenvalues[1] << " " << lm.eigenvalues[2]);
  CHECK(std::abs(lm.directions(0, 0)) == doctest::Approx(std::sqrt(0.5)).epsilon(1e-3));
  CHECK(std::abs(lm.directions(0, 1)) == doctest::Approx(std::sqrt(0.5)).epsilon(1e-3));
  CHECK(std::abs(lm.directions(0, 2)) < 1e-3);
  CHECK(lm.eigenvalues[0] > 100 * lm.eigenvalues[1]);
  const std::vector<double> mean = latent_mean(z);
  auto ratio = [&](const std::vector<double>& dir) {
    LatentPath p = latent_path("x", z, mean, dir, 2);
    std::vector<float> pts(p.points.values.begin(), p.points.values.end());
    std::vector<float> params = decode(pts, 2);
    Displacement dsp = mean_displacement(std::vector<float>(params.begin(), params.begin() + 5 * G),
                                         std::vector<float>(params.begin() + 5 * G, params.end()), inside);
    return dsp.inside / std::max(dsp.outside, 1e-12);
  };
  const Pca pc = pca(z);
  const double r_local = ratio({lm.directions(0, 0), lm.directions(0, 1), lm.directions(0, 2)});
  const double r_pc1 = ratio({pc.components(0, 0), pc.components(0, 1), pc.components(0, 2)});
  MESSAGE("domain / rest displacement: local1 " << r_local << ", PC1 " << r_pc1);
  CHECK(r_local > 100);
  CHECK(r_pc1 < 5);
}

namespace {

// analyze.cxc line by line: a comment, or a command as ChimeraX's documentation gives it (commands/open.html:
// `open FILE [vseries true|false] [coordsets true|false]`, a `*` in FILE matching files; commands/view.html:
// `view`), and every file it opens present, relative to the script (ChimeraX runs a .cxc from its folder).
// Returns the number of files opened.
size_t check_cxc(const std::string& dir) {
  std::istringstream in(test::read_text(dir + "/analyze.cxc"));
  size_t opened = 0, views = 0;
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream f(line);
    std::vector<std::string> w;
    for (std::string t; f >> t;) w.push_back(t);
    if (w[0] == "view") {
      CHECK_MESSAGE(w.size() == 1, line);
      ++views;
      continue;
    }
    REQUIRE_MESSAGE(w[0] == "open", line);
    REQUIRE_MESSAGE(w.size() >= 2, line);
    for (size_t k = 2; k < w.size(); k += 2) {
      CHECK_MESSAGE((w[k] == "vseries" || w[k] == "coordsets"), line);
      CHECK_MESSAGE((k + 1 < w.size() && (w[k + 1] == "true" || w[k + 1] == "false")), line);
    }
    const std::string& name = w[1];
    const size_t star = name.find('*');
    if (star == std::string::npos) {
      CHECK_MESSAGE(fs::is_regular_file(dir + "/" + name), name);
    } else {
      const fs::path pattern(name);
      const std::string stem = pattern.filename().string(), pre = stem.substr(0, stem.find('*')),
                        post = stem.substr(stem.find('*') + 1);
      size_t matches = 0;
      for (const auto& e : fs::directory_iterator(fs::path(dir) / pattern.parent_path())) {
        const std::string n = e.path().filename().string();
        matches += n.size() >= pre.size() + post.size() && n.rfind(pre, 0) == 0 &&
                   n.compare(n.size() - post.size(), post.size(), post) == 0;
      }
      CHECK_MESSAGE(matches >= 2, name);  // a series: every frame
      CHECK_MESSAGE(test::contains(line, "vseries true"), line);
    }
    ++opened;
  }
  CHECK(views == 1);
  return opened;
}

}  // namespace

TEST_CASE("cugmm analyze on a trained run: files, maps, subsets, the moving arm's localised direction") {
  // The arm (chain B) slides 24 Å; the core and the lid stay. 20 epochs (training is ~97% of this test's
  // time): measured (CPU) arm/rest displacement ratios local1 5.97, local2 2.83, pc1 4.61 (at 40 epochs 5.33,
  // 3.17, 4.69), so the assertions below hold with the same margins at half the training. The run is the
  // analysis's fixture, trained with the SNR-weighted FRC and the shifts as given (issue 13's recipe): with the
  // pooled score and aligned shifts (docs/accuracy.md round 5) local1 measured 2.87 (arm 5.39 A, rest 2.06 A).
  train_test::DataSet d = train_test::make_data("analyze_linear", "linear", 300, 2.0);
  const std::string run = d.dir + "/run", out = d.dir + "/analysis";
  test::RunResult r = test::run(test::cugmm_exe() + " train --particles " + d.star + " --model " + d.model + " --out " +
                                run + " --device cpu --threads 2 --epochs 20 --batch 32 --lr 1e-3 --latent 2 --noise 1 "
                                "--latent-reg 1e-4 --loss snr --no-align-shifts");
  REQUIRE_MESSAGE(r.status == 0, r.out);
  std::string arm;
  size_t n_arm = 0;
  for (size_t j = 0; j < d.chains.size(); ++j)
    if (d.chains[j] == "B") { arm += (arm.empty() ? "" : ",") + std::to_string(j); ++n_arm; }
  REQUIRE(n_arm > 0);
  r = test::run(test::cugmm_exe() + " analyze " + run + " --out " + out + " --k 2 --frames 5 --domain-gaussians " + arm +
                " --point \"0 0\" --nearest 50 --range pc1:-0.5:0.5 --device cpu --threads 2");
  MESSAGE(r.out);
  REQUIRE(r.status == 0);
  for (const char* f : {"report.md", "analyze.cxc", "analyze.json", "pca.txt", "clusters.txt", "latent_pc1_pc2_density.png",
                        "latent_pc1_pc2_clusters.png", "pc1.pdb", "pc1/vol_001.mrc", "pc1/vol_005.mrc", "pc1_arrows.bild",
                        "pc2.pdb", "local1.pdb", "local_sum.pdb", "local_diff/vol_003.mrc", "cluster_01/centre.mrc",
                        "cluster_01/centre.cif", "cluster_02/full.mrc", "cluster_02/half1.mrc", "cluster_01/fsc.txt",
                        "subsets/cluster_01.star", "subsets/cluster_02.star", "subsets/point.star", "subsets/range.star"})
    CHECK_MESSAGE(fs::exists(out + "/" + f), f);
  // pc1, pc2, local1, local2, local_sum, local_diff x (maps, trajectory, arrows) + 2 clusters x (markers, map,
  // reconstruction).
  CHECK(check_cxc(out) == 6 * 3 + 2 * 3);
  std::ifstream jf(out + "/analyze.json");
  const nlohmann::json j = nlohmann::json::parse(jf);
  // The arm's localised direction moves the arm, not the rest, and by more, relative to the rest, than any
  // other direction written (PC1 included: in this system it is the same motion, so only not much more).
  std::map<std::string, double> ratio;
  for (const auto& p : j["paths"]) {
    const double in = p["mean_displacement_inside_A"], outside = p["mean_displacement_outside_A"];
    MESSAGE(p["name"].get<std::string>() << ": arm " << in << " Å, rest " << outside << " Å");
    ratio[p["name"]] = in / outside;
    if (p["name"] == "local1") CHECK(in > 2.0);  // a real motion, not a direction that moves nothing
  }
  CHECK(ratio["local1"] > 3);
  CHECK(ratio["local1"] > ratio["local2"]);
  CHECK(ratio["local1"] > 0.9 * ratio["pc1"]);
  // Clusters: sizes add up; every particle in exactly one cluster's subset.
  size_t total = 0;
  for (const auto& c : j["clusters"]) total += c["particles"].get<size_t>();
  CHECK(total == 300);
  CHECK(j["subsets"]["point"]["particles"] == 50);

  if (test::oracle(test::kPython))
    test::python(out, R"(
import glob, mrcfile
names = glob.glob('*/vol_*.mrc') + glob.glob('cluster_*/*.mrc')
assert len(names) >= 4 * 5 + 2 * 4, names
for n in names:
    assert mrcfile.validate(n), n
)");
  if (test::oracle("relion_star_handler")) {
    for (const char* s : {"cluster_01", "cluster_02", "point", "range"}) {
      const std::string in = out + "/subsets/" + s + ".star", o = out + "/subsets/" + s + "_relion.star";
      r = test::run("relion_star_handler --i " + in + " --o " + o + " --select rlnAngleRot --minval -1000 --maxval 1000");
      CHECK_MESSAGE(r.status == 0, r.out);
      size_t rows_in = 0, rows_out = 0;
      for (auto [path, count] : {std::pair<std::string, size_t*>{in, &rows_in}, {o, &rows_out}}) {
        std::ifstream f(path);
        for (std::string line; std::getline(f, line);) *count += line.find("@") != std::string::npos;
      }
      CHECK(rows_in > 0);
      CHECK(rows_in == rows_out);
    }
  }
}
