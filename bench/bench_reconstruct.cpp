// Back-projection throughput (particles/s) of `cugmm reconstruct` at 128 and 256 px, padding 2, with CTF,
// on the CPU and (when present) the GPU; plus the time of one solve (Wiener division + padded inverse
// FFT + gridding correction). Usage: bench_reconstruct [--quick] [out.json]
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "common.h"
#include "core/device.h"
#include "engine/reconstruct.h"

using namespace cugmm;

int main(int argc, char** argv) {
  bool quick = false;
  std::string out = "bench_reconstruct.json";
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quick") == 0) quick = true;
    else out = argv[i];
  }
  nlohmann::json doc;
  doc["machine"] = bench::machine();
  doc["padding"] = 2;
  doc["quick"] = quick;
  std::vector<Device> devices = {Device::cpu};
  if (cuda_available()) devices.push_back(Device::cuda);
  std::vector<int> boxes = quick ? std::vector<int>{64, 128} : std::vector<int>{128, 256};
  nlohmann::json rows = nlohmann::json::array();
  for (int n : boxes) {
    const size_t count = n >= 256 ? 64 : 256;
    std::mt19937 rng(1);
    std::normal_distribution<float> g(0, 1);
    std::uniform_real_distribution<double> u(0, 1);
    std::vector<float> ims(count * n * n);
    for (float& v : ims) v = g(rng);
    std::vector<ImagePose> poses(count);
    for (auto& p : poses) {
      p.rot = 360 * u(rng); p.tilt = 180 * u(rng); p.psi = 360 * u(rng);
      p.origin_x = 4 * u(rng); p.origin_y = 4 * u(rng);
      p.ctf.defocus_u = 10000 + 10000 * u(rng); p.ctf.defocus_v = p.ctf.defocus_u - 300;
    }
    for (Device d : devices) {
      ReconstructOptions opt;
      Context cx(d);
      auto bp = Backprojector::create(cx, n, 1.0, opt);
      double per_batch = bench::time_per_call([&] { bp->insert(ims.data(), poses.data(), count); }, 1,
                                              quick ? 0.5 : 2.0, 2);
      double rate = count / per_batch;
      FourierGrid grid = bp->grid();
      // Runs once: the grid is moved in, as reconstruct_halves does.
      double solve_s = bench::time_per_call([&] { solve(std::move(grid), opt.wiener_tau); }, 0, 0, 1);
      std::printf("back-projection %s %4d px: %9.1f particles/s   (solve %.2f s)\n", device_name(d), n, rate, solve_s);
      rows.push_back({{"device", device_name(d)}, {"box", n}, {"batch", count}, {"particles_per_s", rate},
                      {"solve_s", solve_s}});
    }
  }
  doc["backprojection"] = rows;
  doc["peak_rss_bytes"] = bench::peak_rss_bytes();
  bench::write_json(out, doc);
  return 0;
}
