// The e2gmm MLP shapes (issue 5, item 7): encoder 5G -> 512 -> 512 -> 512 -> 4 and residual decoder
// 4 -> 512 -> 512 -> 512 -> 5G, batch 256, one training step = encoder and decoder forward, decoder
// backward (with its input gradient), encoder backward (without: the 5G input needs none), and an
// Adam step on each. Reported as GFLOP/s (GEMM flops) and as a fraction of a reference: the step's own
// GEMMs (every layer's forward and both backward products, the same shapes) timed back to back through
// ops::gemm, so 100% means everything but the products is free. On the GPU also as a fraction of the
// peak from cudaDeviceProp (FP32 lanes per SM by compute capability). The JSON names the BLAS build and
// core type that ran (machine.blas).
// Also the memory of weights, gradients and optimizer state, fp32 and bf16 moments, at G = 100,000.
//
//   bench_mlp [--quick] [--device cpu|cuda|auto] [--G 3200,100000] [--batch 256] [--out bench_mlp.json]
//
// --quick: G = 3,200 only, shorter timing. A G whose reference GEMMs take over --max-step-s seconds is
// timed once after one warm-up.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "common.h"
#include "step_gemms.h"
#include "core/context.h"
#include "core/device.h"
#include "core/error.h"
#include "kernels/philox.h"
#include "nn/adam.h"
#include "nn/blas.h"
#include "nn/ops.h"
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

struct Reference {
  double seconds, gflops;
};

// The reference the step is compared with: the step's GEMMs alone, back to back through ops::gemm on
// the same context (OpenBLAS or cuBLAS), on random data. Re-measured just before each case, so a
// machine shared with other work compares the two under the same load.
Reference reference_gemms(Context& cx, int g, int batch, double min_s, bool once) {
  const std::vector<bench::GemmShape> shapes = bench::step_gemms({encoder(g), decoder(g)}, batch);
  const double flops = bench::gemm_flops(shapes);
  if (std::abs(flops - step_flops(g, batch)) > 1e-9 * flops) throw Error("bench_mlp: GEMM list and flop count differ");
  const double t = once ? bench::time_gemms(cx, shapes, 1, 0, 1) : bench::time_gemms(cx, shapes, 2, min_s, 3);
  return {t, flops / t / 1e9};
}

nlohmann::json run_case(Device dev, int g, int batch, Moments moments, double min_s, double max_step_s) {
  Context cx(dev);
  double flops = step_flops(g, batch);
  // Long steps (judged by one pass of the reference after a warm-up) are timed once.
  Reference ref = reference_gemms(cx, g, batch, min_s, true);
  const bool long_step = ref.seconds > max_step_s;
  if (!long_step) ref = reference_gemms(cx, g, batch, min_s, false);
  Sequential enc(encoder(g), cx, 1), dec(decoder(g), cx, 2);
  dec.set_base(rand_vec(size_t(5) * g, 3));
  AdamConfig cfg;
  cfg.moments = moments;
  Adam oe(enc, cfg), od(dec, cfg);
  Buffer<float> x(cx), v(cx);
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
    cx.synchronize();
  };
  auto adam_only = [&] {
    oe.step();
    od.step();
    cx.synchronize();
  };
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
  j["reference_gemms_s"] = ref.seconds;
  j["reference_gflops"] = ref.gflops;
  j["reference_source"] = std::string("the step's ") + std::to_string(bench::step_gemms({encoder(g), decoder(g)}, batch).size()) +
                          " GEMMs (each layer's forward and backward products) back to back through ops::gemm (" +
                          (dev == Device::cuda ? "cuBLAS" : "OpenBLAS") + ")";
  j["fraction_of_reference"] = ref.seconds / t;  // 1 = the step costs no more than its GEMMs
  if (dev == Device::cuda) {
    const CudaInfo& c = cuda_info();
    j["peak_gflops"] = c.peak_fp32_tflops * 1e3;
    j["peak_source"] = c.peak_source;
    j["fraction_of_peak"] = c.peak_fp32_tflops > 0 ? nlohmann::json(flops / t / 1e12 / c.peak_fp32_tflops) : nullptr;
  }
  j["particles_per_s"] = batch / t;
  j["bytes_params_grads_state"] = enc.param_bytes() + dec.param_bytes() + oe.state_bytes() + od.state_bytes();
  j["bytes_workspace"] = enc.workspace_bytes() + dec.workspace_bytes();
  j["timed_once"] = long_step;
  std::printf("%-5s G=%-7d %-4s step %9.4f s (Adam %8.4f s)  %8.1f GFLOP/s; its GEMMs alone %9.4f s (%8.1f GFLOP/s): "
              "step at %5.1f%% of them  %8.1f particles/s\n",
              device_name(dev), g, j["moments"].get<std::string>().c_str(), t, ta, flops / t / 1e9, ref.seconds,
              ref.gflops, 100 * ref.seconds / t, batch / t);
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
    std::printf("BLAS: %s\n", blas_info().c_str());
    double min_s = quick ? 0.3 : 2.0;
    nlohmann::json doc;
    doc["machine"] = bench::machine();
    doc["benchmark"] = "mlp";
    doc["runs"] = nlohmann::json::array();
    for (int g : g_list)
      for (Moments m : {Moments::f32, Moments::bf16}) {
        if (quick && m == Moments::bf16) continue;
        doc["runs"].push_back(run_case(dev, g, batch, m, min_s, max_step_s));
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
