// Projector throughput (issue 4, item 8): particles/s for forward and forward+backward, and peak memory,
// over G x box on every device present and both strategies (DESIGN §2). Full band, s = 1.5 px, a batch
// of 64+. Prints a table and writes JSON, with the process CPU time (all threads) per particle forward+backward,
// which the other processes of a shared machine move far less than the wall clock.
//
//   bench_projector [--quick] [--device cpu|cuda|all] [--strategy splat|separable|both] [--batch N]
//                   [--g N] [--box N] [--maxres A] [--widths LO,HI] [--out bench_projector.json]
//   (--g, --box: one size instead of the grid; --maxres: a band up to that resolution instead of Nyquist;
//   --widths: each Gaussian's width drawn uniformly in [LO, HI] px instead of 1.5 px. Training's decoded
//   widths are such a spread, e.g. 0.8,1.75: below 1.5 px the splat widens every Gaussian of the batch,
//   which makes its footprints larger than at 1.5 px.)
// On CUDA the timed call is run() on device buffers plus the context's synchronize() (inputs uploaded
// once, as in training); on the CPU, run() on host memory.
//
// Targets (issue 4): forward+backward of G = 3,200 at 128 px >= 500,000 particles/s on an H100 and
// >= 3,000 particles/s on a 2-core AVX-512 CPU.
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "common.h"
#include "core/buffer.h"
#include "core/context.h"
#include "core/device.h"
#include "core/error.h"
#include "core/threads.h"
#include "engine/projector.h"

using namespace cugmm;

namespace {

struct Case {
  Device device;
  ProjectionStrategy strategy;
  int g, box;
};

// A neutral-model-like cloud: centres within a sphere of a third of the box, s = 1.5 px (or uniform in
// [w_lo, w_hi] px).
std::vector<float> make_params(int g, int box, double pixel, double w_lo, double w_hi, std::mt19937& rng) {
  std::uniform_real_distribution<float> u(-1, 1), amp(0.5f, 1.5f), width{float(w_lo), float(w_hi)};
  std::vector<float> p(size_t(5) * g);
  const float r = float(box * pixel / 3);
  for (int j = 0; j < g; ++j) {
    float x, y, z;
    do { x = u(rng); y = u(rng); z = u(rng); } while (x * x + y * y + z * z > 1);
    p[j] = r * x; p[g + j] = r * y; p[2 * g + j] = r * z;
    p[3 * g + j] = amp(rng);
    p[4 * g + j] = w_lo == w_hi ? float(w_lo * pixel) : width(rng) * float(pixel);
  }
  return p;
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  std::string device_arg = "all", strategy_arg = "both", out_path = "bench_projector.json";
  int batch = 64, only_g = 0, only_box = 0;
  double maxres = 0, w_lo = 1.5, w_hi = 1.5;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--quick") quick = true;
    else if (a == "--device" && i + 1 < argc) device_arg = argv[++i];
    else if (a == "--strategy" && i + 1 < argc) strategy_arg = argv[++i];
    else if (a == "--batch" && i + 1 < argc) batch = std::stoi(argv[++i]);
    else if (a == "--g" && i + 1 < argc) only_g = std::stoi(argv[++i]);
    else if (a == "--box" && i + 1 < argc) only_box = std::stoi(argv[++i]);
    else if (a == "--maxres" && i + 1 < argc) maxres = std::stod(argv[++i]);
    else if (a == "--widths" && i + 1 < argc) {
      const std::string w = argv[++i];
      const size_t comma = w.find(',');
      w_lo = std::stod(w.substr(0, comma));
      w_hi = comma == std::string::npos ? w_lo : std::stod(w.substr(comma + 1));
      if (!(w_lo > 0 && w_hi >= w_lo)) { std::fprintf(stderr, "bench_projector: --widths wants 0 < LO <= HI\n"); return 2; }
    }
    else if (a == "--out" && i + 1 < argc) out_path = argv[++i];
    else { std::fprintf(stderr, "usage: bench_projector [--quick] [--device cpu|cuda|all] [--strategy splat|separable|both] [--batch N] [--g N] [--box N] [--maxres A] [--widths LO,HI] [--out FILE]\n"); return 2; }
  }
  std::vector<Device> devices;
  if (device_arg == "cpu" || device_arg == "all") devices.push_back(Device::cpu);
  if ((device_arg == "cuda" || device_arg == "all") && cuda_available()) devices.push_back(Device::cuda);

  std::vector<ProjectionStrategy> strategies;
  if (strategy_arg == "splat" || strategy_arg == "both") strategies.push_back(ProjectionStrategy::splat_fft);
  if (strategy_arg == "separable" || strategy_arg == "both") strategies.push_back(ProjectionStrategy::separable_fourier);
  const std::vector<int> gs = only_g ? std::vector<int>{only_g}
                              : quick ? std::vector<int>{1000, 3200}
                                      : std::vector<int>{1000, 3200, 10000, 32000, 100000};
  const std::vector<int> boxes = only_box ? std::vector<int>{only_box}
                                 : quick  ? std::vector<int>{64, 128}
                                          : std::vector<int>{64, 128, 256};
  const double pixel = 1.5;
  const double min_seconds = quick ? 0.3 : 1.0;

  nlohmann::json doc;
  doc["machine"] = bench::machine();
  doc["settings"] = {{"batch", batch}, {"pixel_size", pixel}, {"width_px", {w_lo, w_hi}}, {"band", maxres > 0 ? "to " + std::to_string(maxres) + " A" : "full (Nyquist)"},
                     {"quick", quick}};
  nlohmann::json rows = nlohmann::json::array();
  std::printf("%-5s %-18s %7s %5s %14s %14s %14s %12s\n", "dev", "strategy", "G", "box", "fwd part/s", "fwd+bwd part/s",
              "fwd+bwd CPU us", "work MiB");
  std::mt19937 rng(42);
  for (Device dev : devices)
    for (auto strategy : strategies)
      for (int box : boxes)
        for (int g : gs) {
          FourierBand band = make_fourier_band(box, pixel, 0, maxres);
          nlohmann::json row = {{"device", device_name(dev)}, {"strategy", strategy_name(strategy)}, {"G", g},
                                {"box", box}, {"batch", batch}, {"ring_max", band.ring_max}};
          // The exact sum costs G x band complex multiply-adds per particle, three times that backward:
          // past ~2e10 per batch on a CPU one timing would take minutes.
          double work = double(g) * band.size() * batch * 4;
          if (strategy == ProjectionStrategy::separable_fourier && dev == Device::cuda) {  // the oracle: CPU only
            row["skipped"] = "the exact sum is implemented on the CPU backend only";
            rows.push_back(row);
            continue;
          }
          if (strategy == ProjectionStrategy::separable_fourier && work > 2e10) {
            row["skipped"] = "the exact sum is too slow at this size";
            rows.push_back(row);
            continue;
          }
          ProjectorOptions opt;
          opt.strategy = strategy;
          opt.max_batch = batch;
          Context cx(dev);
          auto proj = make_projector(cx, band, g, opt);
          std::vector<float> params = make_params(g, box, pixel, w_lo, w_hi, rng);
          std::vector<ParticleView> views;
          std::uniform_real_distribution<double> ang(-180, 180), tilt(0, 180), sh(-5, 5), df(8000, 30000);
          for (int i = 0; i < batch; ++i) {
            CtfParams c;
            c.defocus_u = df(rng); c.defocus_v = c.defocus_u - 500; c.defocus_angle = ang(rng);
            views.push_back(make_particle_view(ang(rng), tilt(rng), ang(rng), sh(rng), sh(rng), c, CtfMode::full));
          }
          std::normal_distribution<float> n01;
          std::vector<cfloat> data(size_t(batch) * band.size());
          for (auto& d : data) d = {n01(rng), n01(rng)};
          std::vector<float> score(batch), grad(size_t(5) * g), pose(size_t(5) * batch);
          ProjectionBatch in{batch, params.data(), 0, views.data(), data.data()};
          ProjectionOutputs fwd;
          fwd.score = score.data();
          ProjectionOutputs both = fwd;
          both.grad_params = grad.data();
          both.grad_reduce = GradReduce::sum;  // fitting a neutral model; per-particle rows cost the same work
          both.grad_pose = pose.data();
          // Device copies of everything on CUDA (the CPU's "device" is the host: the same pointers).
          Buffer<float> d_params(cx), d_score(cx), d_grad(cx), d_pose(cx);
          Buffer<ParticleView> d_views(cx);
          Buffer<cfloat> d_data(cx);
          if (dev == Device::cuda) {
            d_params.upload(params); d_views.upload(views); d_data.upload(data);
            d_score.resize(score.size()); d_grad.resize(grad.size()); d_pose.resize(pose.size());
            in = {batch, d_params.data(), 0, d_views.data(), d_data.data()};
            fwd.score = both.score = d_score.data();
            both.grad_params = d_grad.data();
            both.grad_pose = d_pose.data();
          }
          auto call = [&](const ProjectionOutputs& o) {
            proj->run(in, o);
            cx.synchronize();
          };
          double t_fwd = bench::time_per_call([&] { call(fwd); }, 1, min_seconds, 3);
          int calls = 0;
          double cpu0 = 0;
          double t_both = bench::time_per_call(
              [&] {
                if (calls++ == 1) cpu0 = process_cpu_seconds();  // after the warm-up call
                call(both);
              },
              1, min_seconds, 3);
          const double cpu_us = 1e6 * (process_cpu_seconds() - cpu0) / double(calls - 1) / batch;
          row["forward_particles_per_s"] = batch / t_fwd;
          row["forward_backward_particles_per_s"] = batch / t_both;
          row["forward_backward_cpu_us_per_particle"] = cpu_us;
          row["workspace_bytes"] = proj->workspace_bytes();
          row["peak_rss_bytes"] = bench::peak_rss_bytes();
          rows.push_back(row);
          std::printf("%-5s %-18s %7d %5d %14.0f %14.0f %14.1f %12.1f\n", device_name(dev), strategy_name(strategy), g,
                      box, batch / t_fwd, batch / t_both, cpu_us, proj->workspace_bytes() / 1048576.0);
          std::fflush(stdout);
        }
  doc["results"] = rows;
  bench::write_json(out_path, doc);
  return 0;
}
