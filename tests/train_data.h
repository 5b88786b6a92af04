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
#include "engine/residue_model.h"
#include "engine/simulate_system.h"
#include "engine/system_imager.h"
#include "io/model.h"
#include "io/mrc.h"
#include "support.h"

namespace cugmm::train_test {
using namespace cugmm;
namespace fs = std::filesystem;

// The neutral model of a simulated system (engine/residue_model.h), as the brief allows until fit-map lands.
inline io::GaussianModel coarse_grain(const HeteroSystem& sys, int box, double pixel,
                                      std::vector<std::string>* chains = nullptr) {
  return residue_model(sys, box, pixel, chains);
}

// What the pose-refinement tests refine: a rigid particle (the linear system's arm held at 0, so the
// neutral model is every particle's model) at box 40, 4 Å, SNR 4, its STAR poses off by 3 degrees geodesic
// RMS and 1 px per axis.
inline HeteroSystem rigid_system() {
  HeteroSystem sys = builtin_system("linear");
  sys.motions[0].lo = sys.motions[0].hi = 0;
  return sys;
}
inline TruthSimOptions perturbed_poses(int count) {
  TruthSimOptions o;
  o.count = count;
  o.box = 40;
  o.pixel = 4.0;
  o.snr = 4.0;
  o.pose_error_deg = 3;
  o.shift_error_px = 1.0;
  o.consensus = false;
  o.seed = 11;
  return o;
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
