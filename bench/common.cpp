#include "common.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <thread>
#include <vector>

#include "core/device.h"
#include "engine/simulate.h"
#include "core/threads.h"
#include "io/atomic_file.h"
#include "kernels/philox.h"
#include "nn/blas.h"

namespace cugmm::bench {

double time_per_call(const std::function<void()>& fn, int warmup, double min_seconds, int min_reps) {
  for (int i = 0; i < warmup; ++i) fn();
  std::vector<double> t;
  auto start = std::chrono::steady_clock::now();
  while (true) {
    auto a = std::chrono::steady_clock::now();
    fn();
    auto b = std::chrono::steady_clock::now();
    t.push_back(std::chrono::duration<double>(b - a).count());
    if (static_cast<int>(t.size()) >= min_reps && std::chrono::duration<double>(b - start).count() >= min_seconds) break;
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

nlohmann::json machine() {
  nlohmann::json m;
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("model name", 0) == 0) { m["cpu"] = line.substr(line.find(':') + 2); break; }
  m["cpu_threads"] = num_threads();
  m["blas"] = nn::blas_info();
  const CudaInfo& c = cuda_info();
  if (c.available) {
    m["gpu"] = c.name;
    m["gpu_peak_fp32_tflops"] = c.peak_fp32_tflops;
    m["gpu_peak_source"] = c.peak_source;
    m["gpu_memory_gib"] = c.memory_bytes / double(1ull << 30);
  } else {
    m["gpu"] = nullptr;
    m["gpu_absent_reason"] = c.reason;
  }
  return m;
}

void write_json(const std::string& path, const nlohmann::json& doc) {
  io::write_file_atomic(path, doc.dump(2) + "\n");  // a run stopped mid-write leaves the previous JSON
  std::printf("wrote %s\n", path.c_str());
}

size_t peak_rss_bytes() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  return 0;
}

RandomSet random_set(int G, int box, int particles, const std::string& dir) {
  io::GaussianModel model = random_model(G, box, 2.0);
  SimulationOptions so;
  so.count = particles;
  so.snr = 0.1;
  so.device = Device::cpu;
  const auto t0 = std::chrono::steady_clock::now();
  SimulatedParticles sim = simulate_particles({model}, so, dir);
  CacheOptions co;
  co.particles = sim.star;
  ParticleCache cache = open_particle_cache(co, dir + "/particles.cugmm-cache", true);
  return {std::move(model), std::move(cache),
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()};
}

io::GaussianModel random_model(int G, int box, double pixel) {
  io::GaussianModel m;
  m.box_size = box;
  m.pixel_size = pixel;
  m.resize(size_t(G));
  const double r = box * pixel / 5;
  for (int j = 0; j < G; ++j) {
    m.x[j] = float(r * (2 * philox_uniform(3, 0, 3 * j) - 1));
    m.y[j] = float(r * (2 * philox_uniform(3, 0, 3 * j + 1) - 1));
    m.z[j] = float(r * (2 * philox_uniform(3, 0, 3 * j + 2) - 1));
    m.amplitude[j] = 1.f;
    m.width[j] = float(1.5 * pixel);
  }
  return m;
}

}  // namespace cugmm::bench
