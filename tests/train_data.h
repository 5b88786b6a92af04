// What the training tests share: small simulated data sets with truth, a neutral model made from the atoms,
// the train command line, and readers for the outputs.
#pragma once
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>

#include "engine/hetero_system.h"
#include "engine/latent_metrics.h"
#include "engine/model_params.h"
#include "engine/simulate_system.h"
#include "engine/system_imager.h"
#include "io/model.h"
#include "io/mrc.h"
#include "support.h"

namespace cugmm::train_test {
using namespace cugmm;
namespace fs = std::filesystem;

// One Gaussian per residue of the neutral structure (every motion at 0, every atom present): mass = its
// electrons, centre = its mass-weighted centroid in Å from the box centre, width 2.5 Å. A neutral model
// made independently of the trainer (no fitting), as the brief allows until fit-map lands.
// chains (when given): each Gaussian's chain, so a test can name a domain.
inline io::GaussianModel coarse_grain(const HeteroSystem& sys, int box, double pixel,
                                      std::vector<std::string>* chains = nullptr) {
  SystemImager imager(sys, box, pixel, 1);
  const Vec3<double> shift = imager.atom_shift();
  std::map<std::pair<std::string, int>, std::array<double, 4>> res;
  std::vector<std::pair<std::string, int>> order;
  for (const io::Atom& a : sys.atoms.atoms) {
    auto key = std::make_pair(a.chain, a.residue);
    auto it = res.find(key);
    if (it == res.end()) {
      order.push_back(key);
      it = res.emplace(key, std::array<double, 4>{0, 0, 0, 0}).first;
    }
    it->second[0] += a.electrons * a.x;
    it->second[1] += a.electrons * a.y;
    it->second[2] += a.electrons * a.z;
    it->second[3] += a.electrons;
  }
  io::GaussianModel m;
  m.box_size = box;
  m.pixel_size = pixel;
  const double c = (box / 2) * pixel;
  for (const auto& k : order) {
    const auto& r = res[k];
    if (chains) chains->push_back(k.first);
    m.x.push_back(float(r[0] / r[3] + shift.x - c));
    m.y.push_back(float(r[1] / r[3] + shift.y - c));
    m.z.push_back(float(r[2] / r[3] + shift.z - c));
    m.amplitude.push_back(float(r[3]));
    m.width.push_back(2.5f);
  }
  return m;
}

struct DataSet {
  std::string dir, star, model;
  SimulatedTruth truth;
  int gaussians = 0;
  std::vector<std::string> chains;  // per Gaussian
};

inline DataSet make_data(const std::string& name, const HeteroSystem& sys, int count, double snr) {
  DataSet d;
  d.dir = test::scratch_dir(name);
  TruthSimOptions o;
  o.count = count;
  o.box = 40;
  o.pixel = 4.0;
  o.snr = snr;
  o.pose_error_deg = 0;
  o.shift_error_px = 0;
  o.consensus = false;
  o.seed = 7;
  d.truth = simulate_system(sys, o, d.dir);
  d.star = d.truth.star;
  io::GaussianModel m = coarse_grain(sys, o.box, o.pixel, &d.chains);
  d.gaussians = int(m.size());
  d.model = d.dir + "/neutral.txt";
  io::write_model(d.model, m);
  return d;
}

inline DataSet make_data(const std::string& name, const std::string& system, int count, double snr) {
  return make_data(name, builtin_system(system), count, snr);
}

inline Matrix read_latent(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::vector<double> v;
  size_t rows = 0, cols = 0;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream ss(line);
    double x;
    size_t c = 0;
    while (ss >> x) {
      v.push_back(x);
      ++c;
    }
    cols = c;
    ++rows;
  }
  return Matrix(rows, cols, v);
}

inline std::string train_cmd(const DataSet& d, const std::string& out, const std::string& extra) {
  return test::cugmm_exe() + " train --particles " + d.star + " --model " + d.model + " --out " + out +
         " --device cpu --threads 1 " + extra;  // ctest -j2 runs two at once on 2 cores: one thread each
                                                   // (OpenBLAS's threads oversubscribed ran 7x slower)
}

inline std::string file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}


}  // namespace cugmm::train_test
