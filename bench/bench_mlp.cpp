// The e2gmm MLP shapes (issue 5, item 7): encoder 5G -> 512 -> 512 -> 512 -> 4 and residual decoder
// 4 -> 512 -> 512 -> 512 -> 5G, batch 256, one training step = encoder and decoder forward, decoder
// backward (with its input gradient), encoder backward (without: the 5G input needs none), and an
// Adam step on each. Reported as GFLOP/s (GEMM flops) and as a fraction of the device's peak: the
// GPU's from cudaDeviceProp, the CPU's measured by a plain SGEMM of the largest shape in the step.
// Also the memory of weights, gradients and optimizer state, fp32 and bf16 moments, at G = 100,000.
//
//   bench_mlp [--quick] [--device cpu|cuda|auto] [--G 3200,100000] [--batch 256] [--out bench_mlp.json]
//
// --quick: G = 3,200 only, shorter timing. A G whose step would exceed --max-step-s seconds (estimated
// from the measured peak) is timed once after one warm-up.
#include <chrono>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "common.h"
#include "core/device.h"
#include "core/error.h"
#include "kernels/philox.h"
#include "nn/adam.h"
#include "nn/blas.h"
#include "nn/sequential.h"

using namespace cugmm;
using namespace cugmm::nn;

namespace {

constexpr int kHidden = 512, kLatent = 4;

Arch encoder(int g) {
  Arch a;
  a.in = 5 * g;
  a.layers = {dense(kHidden), relu(), dense(kHidden), relu(), dense(kHidden), relu(), dense(kLatent)};
  return a;
}

Arch decoder(int g) {
  Arch a;
  a.in = kLatent;
  a.residual = true;
  a.layers = {dense(kHidden, false), relu(), dense(kHidden, false), relu(), dense(kHidden, false), relu(),
              dense(5 * g, false)};
  return a;
}

// GEMM flops of one step: forward 2 B in out per dense layer, backward 2 B in out for the weight
// gradient and again for the input gradient, except the encoder's first layer.
double step_flops(int g, int batch) {
  double f = 0;
  for (const Arch& a : {encoder(g), decoder(g)}) {
    int in = a.in;
    bool first = true;
    for (const LayerSpec& s : a.layers) {
      if (s.kind != LayerKind::dense) continue;
      double mac = double(batch) * in * s.out;
      f += 2 * mac * ((first && !a.residual) ? 2 : 3);
      in = s.out;
      first = false;
    }
  }
  return f;
}

size_t count_params(const Arch& a) {
  size_t n = 0;
  int in = a.in;
  for (const LayerSpec& s : a.layers)
    if (s.kind == LayerKind::dense) {
      n += size_t(in) * s.out + (s.bias ? s.out : 0);
      in = s.out;
    }
  return n;
}

nlohmann::json memory_at(int g) {
  size_t p = count_params(encoder(g)) + count_params(decoder(g));
  double gib = double(1ull << 30);
  nlohmann::json j;
  j["G"] = g;
  j["parameters"] = p;
  j["weights_gib"] = 4.0 * p / gib;
  j["gradients_gib"] = 4.0 * p / gib;
  j["adam_f32_gib"] = 8.0 * p / gib;
  j["adam_bf16_gib"] = 4.0 * p / gib;
  j["total_f32_gib"] = 16.0 * p / gib;
  j["total_bf16_gib"] = 12.0 * p / gib;
  return j;
}

std::vector<float> rand_vec(size_t n, uint64_t stream) {
  std::vector<float> v(n);
#pragma omp parallel for schedule(static)
  for (size_t i = 0; i < n; ++i) v[i] = 2 * philox_uniform(1, stream, i) - 1;
  return v;
}

// The CPU's reference peak: a plain SGEMM of the step's largest product (B x 512 x 5G).
double cpu_sgemm_gflops(int g, int batch, double min_s) {
  int k = 5 * g;
  std::vector<float> a = rand_vec(size_t(batch) * k, 1), b = rand_vec(size_t(kHidden) * k, 2), c(size_t(batch) * kHidden);
  double t = bench::time_per_call(
      [&] { sgemm(false, true, batch, kHidden, k, 1.f, a.data(), k, b.data(), k, 0.f, c.data(), kHidden); }, 2, min_s, 3);
  return 2.0 * batch * kHidden * k / t / 1e9;
}

// The peak the step is compared with. On the CPU it is re-measured just before each case, so a
// machine shared with other work compares the two under the same load.
double peak_gflops_for(Device dev, int g, int batch, bool quick, nlohmann::json& note) {
  if (dev == Device::cuda) {
    note = "cudaDeviceProp: SMs x 128 FP32 lanes x 2 x clock";
    return cuda_info().peak_fp32_tflops * 1e3;
  }
  int gref = std::min(g, 20000);  // the same shape as the widest product, capped so it stays quick
  note = "measured: sgemm " + std::to_string(batch) + " x " + std::to_string(kHidden) + " x " +
         std::to_string(5 * gref) + " through nn::sgemm (OpenBLAS)";
  return cpu_sgemm_gflops(gref, batch, quick ? 0.5 : 2.0);
}

nlohmann::json run_case(Device dev, int g, int batch, Moments moments, double min_s, bool quick,
                        double max_step_s) {
  nlohmann::json note;
  double peak_gflops = peak_gflops_for(dev, g, batch, quick, note);
  Sequential enc(encoder(g), dev, 1), dec(decoder(g), dev, 2);
  dec.set_base(rand_vec(size_t(5) * g, 3));
  AdamConfig cfg;
  cfg.moments = moments;
  Adam oe(enc, cfg), od(dec, cfg);
  Buffer<float> x(dev), v(dev);
  x.upload(rand_vec(size_t(batch) * 5 * g, 4));
  v.upload(rand_vec(size_t(batch) * 5 * g, 5));
  uint64_t step = 0;
  auto train_step = [&] {
    const float* z = enc.forward(x.data(), batch, Mode::train, step);
    dec.forward(z, batch, Mode::train, step);
    const float* vz = dec.backward(v.data(), true);
    enc.backward(vz, false);
    oe.step();
    od.step();
    ++step;
    device_sync(dev);
  };
  auto adam_only = [&] {
    oe.step();
    od.step();
    device_sync(dev);
  };
  double flops = step_flops(g, batch);
  bool long_step = flops / (peak_gflops * 1e9) > max_step_s;
  double t = long_step ? bench::time_per_call(train_step, 1, 0, 1) : bench::time_per_call(train_step, 2, min_s, 3);
  double ta = long_step ? bench::time_per_call(adam_only, 0, 0, 1) : bench::time_per_call(adam_only, 1, min_s / 2, 3);
  nlohmann::json j;
  j["device"] = device_name(dev);
  j["G"] = g;
  j["batch"] = batch;
  j["moments"] = moments == Moments::f32 ? "f32" : "bf16";
  j["step_s"] = t;
  j["adam_s"] = ta;
  j["gemm_gflop_per_step"] = flops / 1e9;
  j["gflops"] = flops / t / 1e9;
  j["peak_gflops"] = peak_gflops;
  j["peak_source"] = note;
  j["fraction_of_peak"] = flops / t / 1e9 / peak_gflops;
  j["particles_per_s"] = batch / t;
  j["bytes_params_grads_state"] = enc.param_bytes() + dec.param_bytes() + oe.state_bytes() + od.state_bytes();
  j["bytes_workspace"] = enc.workspace_bytes() + dec.workspace_bytes();
  j["timed_once"] = long_step;
  std::printf("%-5s G=%-7d %-4s step %9.4f s (Adam %8.4f s)  %8.1f GFLOP/s = %5.1f%% of %.0f  %8.1f particles/s\n",
              device_name(dev), g, j["moments"].get<std::string>().c_str(), t, ta, flops / t / 1e9,
              100 * flops / t / 1e9 / peak_gflops, peak_gflops, batch / t);
  std::fflush(stdout);
  return j;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    bool quick = false;
    std::string device_arg = "auto", out = "bench_mlp.json", gs = "3200,100000";
    int batch = 256;
    double max_step_s = 2.0;
    for (int i = 1; i < argc; ++i) {
      std::string a = argv[i];
      if (a == "--quick") quick = true;
      else if (a == "--device" && i + 1 < argc) device_arg = argv[++i];
      else if (a == "--G" && i + 1 < argc) gs = argv[++i];
      else if (a == "--batch" && i + 1 < argc) batch = std::stoi(argv[++i]);
      else if (a == "--max-step-s" && i + 1 < argc) max_step_s = std::stod(argv[++i]);
      else if (a == "--out" && i + 1 < argc) out = argv[++i];
      else {
        std::fprintf(stderr, "usage: bench_mlp [--quick] [--device cpu|cuda|auto] [--G 3200,100000] [--batch N] "
                             "[--max-step-s S] [--out FILE]\n");
        return 2;
      }
    }
    std::vector<int> g_list;
    if (quick) g_list = {3200};
    else {
      std::stringstream ss(gs);
      for (std::string t; std::getline(ss, t, ',');) g_list.push_back(std::stoi(t));
    }
    Device dev = pick_device(device_arg);
    double min_s = quick ? 0.3 : 2.0;
    nlohmann::json doc;
    doc["machine"] = bench::machine();
    doc["benchmark"] = "mlp";
    doc["runs"] = nlohmann::json::array();
    for (int g : g_list)
      for (Moments m : {Moments::f32, Moments::bf16}) {
        if (quick && m == Moments::bf16) continue;
        doc["runs"].push_back(run_case(dev, g, batch, m, min_s, quick, max_step_s));
      }
    doc["memory"] = nlohmann::json::array();
    for (int g : {3200, 100000}) {
      nlohmann::json mj = memory_at(g);
      std::printf("memory at G=%d: %zu parameters; weights %.2f GiB, gradients %.2f GiB, Adam %.2f GiB (fp32) / "
                  "%.2f GiB (bf16); total %.2f / %.2f GiB\n",
                  g, mj["parameters"].get<size_t>(), mj["weights_gib"].get<double>(), mj["gradients_gib"].get<double>(),
                  mj["adam_f32_gib"].get<double>(), mj["adam_bf16_gib"].get<double>(),
                  mj["total_f32_gib"].get<double>(), mj["total_bf16_gib"].get<double>());
      doc["memory"].push_back(mj);
    }
    doc["peak_rss_bytes"] = bench::peak_rss_bytes();
    bench::write_json(out, doc);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_mlp: %s\n", e.what());
    return 1;
  }
}
