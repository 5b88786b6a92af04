// The CUDA backend of nn/ against the CPU backend (the oracle): the same seed gives the same Philox
// numbers, the same initial weights, the same forward and backward up to float rounding, the same
// Adam step; checkpoints move between devices; a resume on the GPU is bit-identical.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "kernels/philox.h"
#include "nn/adam.h"
#include "nn/checkpoint.h"
#include "nn/sequential.h"
#include "../support.h"

using namespace cugmm;
using namespace cugmm::nn;

namespace {

std::vector<float> rand_vec(size_t n, uint64_t stream) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = 2 * philox_uniform(6, stream, i) - 1;
  return v;
}

// max |a - b| / (atol + |b|)
double rel_diff(const std::vector<float>& a, const std::vector<float>& b, double atol) {
  REQUIRE(a.size() == b.size());
  double w = 0;
  for (size_t i = 0; i < a.size(); ++i) w = std::max(w, std::abs(double(a[i]) - b[i]) / (atol + std::abs(double(b[i]))));
  return w;
}

std::vector<float> host(const float* p, size_t n, Device d) {
  std::vector<float> v(n);
  mem_copy(Device::cpu, v.data(), d, p, n * sizeof(float));
  return v;
}

Arch mixed() {
  Arch a;
  a.in = 300;
  a.layers = {dense(128), batchnorm(), leaky_relu(0.05f), dropout(0.3f), dense(64), tanh_act(), dense(7)};
  return a;
}

}  // namespace

TEST_CASE("Philox: dropout masks identical, normals equal to the last bit or within an ulp") {
  const size_t n = 1 << 20;
  std::vector<float> ones(n, 1.f);
  Buffer<float> gx(Device::cuda), gy(Device::cuda, n);
  gx.upload(ones);
  ops::dropout(Device::cuda, 0.3f, 5, 9, gx.data(), gy.data(), n);
  std::vector<float> cy(n);
  ops::dropout(Device::cpu, 0.3f, 5, 9, ones.data(), cy.data(), n);
  CHECK(gy.to_host() == cy);

  Buffer<float> gz(Device::cuda, n);
  gz.zero();
  ops::add_normal(Device::cuda, gz.data(), n, 1.f, 11, 12);
  std::vector<float> cz(n, 0.f);
  ops::add_normal(Device::cpu, cz.data(), n, 1.f, 11, 12);
  std::vector<float> g = gz.to_host();
  size_t same = 0;
  for (size_t i = 0; i < n; ++i) same += g[i] == cz[i];
  CHECK(rel_diff(g, cz, 1e-6) < 1e-6);
  CHECK(double(same) / n > 0.999);
}

TEST_CASE("forward and backward: CUDA matches the CPU (training and inference)") {
  Sequential cpu(mixed(), Device::cpu, 21), gpu(mixed(), Device::cuda, 21);
  CHECK(gpu.params_to_host() == cpu.params_to_host());  // initialised on the host from the same Philox
  const int B = 64;
  std::vector<float> x = rand_vec(size_t(B) * 300, 1), r = rand_vec(size_t(B) * 7, 2);
  Buffer<float> gx(Device::cuda), gr(Device::cuda);
  gx.upload(x);
  gr.upload(r);
  for (Mode mode : {Mode::train, Mode::infer}) {
    const float* cy = cpu.forward(x.data(), B, mode, 4);
    const float* gy = gpu.forward(gx.data(), B, mode, 4);
    CHECK(rel_diff(host(gy, size_t(B) * 7, Device::cuda), host(cy, size_t(B) * 7, Device::cpu), 1e-4) < 1e-4);
    const float* cv = cpu.backward(r.data(), true);
    const float* gv = gpu.backward(gr.data(), true);
    CHECK(rel_diff(host(gv, x.size(), Device::cuda), host(cv, x.size(), Device::cpu), 1e-4) < 1e-3);
    CHECK(rel_diff(host(gpu.grads(), gpu.num_params(), Device::cuda),
                   host(cpu.grads(), cpu.num_params(), Device::cpu), 1e-4) < 1e-3);
    CHECK(gpu.backward(gr.data(), false) == nullptr);
  }
  CHECK(rel_diff(gpu.state_to_host(), cpu.state_to_host(), 1e-6) < 1e-5);  // running statistics
}

TEST_CASE("residual output on the GPU: base exactly at z = 0") {
  Arch a;
  a.in = 4;
  a.residual = true;
  a.layers = {dense(64, false), tanh_act(), dense(64, false), relu(), dense(1000, false)};
  Sequential net(a, Device::cuda, 2);
  std::vector<float> base = rand_vec(1000, 3);
  net.set_base(base);
  net.params_from_host(rand_vec(net.num_params(), 4));
  std::vector<float> z(2 * 4, 0.f);
  z[0] = 0.5f;
  Buffer<float> gz(Device::cuda);
  gz.upload(z);
  std::vector<float> y = host(net.forward(gz.data(), 2, Mode::infer), 2000, Device::cuda);
  CHECK(std::vector<float>(y.begin() + 1000, y.end()) == base);
  CHECK(std::vector<float>(y.begin(), y.begin() + 1000) != base);
}

TEST_CASE("Adam on the GPU matches the CPU, fp32 and bf16 moments, with clipping and groups") {
  for (Moments m : {Moments::f32, Moments::bf16}) {
    Arch a = mixed();
    a.layers[4].lr_scale = 0.5f;
    a.layers[0].weight_decay = 1e-3f;
    Sequential cpu(a, Device::cpu, 8), gpu(a, Device::cuda, 8);
    AdamConfig cfg;
    cfg.lr = 1e-3f;
    cfg.clip_norm = 1.f;
    cfg.moments = m;
    Adam oc(cpu, cfg), og(gpu, cfg);
    for (int s = 0; s < 3; ++s) {
      std::vector<float> g = rand_vec(cpu.num_params(), 50 + s);
      std::copy(g.begin(), g.end(), cpu.grads());
      mem_copy(Device::cuda, gpu.grads(), Device::cpu, g.data(), g.size() * sizeof(float));
      oc.step();
      og.step();
      CHECK(og.last_grad_norm() == doctest::Approx(oc.last_grad_norm()).epsilon(1e-6));
    }
    CHECK(rel_diff(gpu.params_to_host(), cpu.params_to_host(), 1e-3) < (m == Moments::f32 ? 1e-5 : 1e-3));
  }
}

TEST_CASE("checkpoints move between devices, and a GPU resume is bit-identical") {
  std::string dir = test::scratch_dir("nn_cuda_checkpoint");
  const int B = 32;
  std::vector<float> x = rand_vec(size_t(B) * 300, 7), r = rand_vec(size_t(B) * 7, 8);
  Buffer<float> gx(Device::cuda), gr(Device::cuda);
  gx.upload(x);
  gr.upload(r);
  AdamConfig cfg;
  cfg.lr = 1e-3f;
  Sequential gpu(mixed(), Device::cuda, 3);
  Adam og(gpu, cfg);
  auto step = [&](Sequential& n, Adam& o) {
    n.forward(gx.data(), B, Mode::train, static_cast<uint64_t>(o.steps()));
    n.backward(gr.data(), false);
    o.step();
  };
  for (int s = 0; s < 2; ++s) step(gpu, og);
  Checkpoint ck;
  gpu.save(ck, "enc.");
  og.save(ck, "enc.");
  ck.save(dir + "/gpu.ck");
  step(gpu, og);
  std::vector<float> want = gpu.params_to_host();

  Checkpoint back = Checkpoint::load(dir + "/gpu.ck");
  Sequential again(mixed(), Device::cuda, 999);
  Adam oa(again, cfg);
  again.load(back, "enc.");
  oa.load(back, "enc.");
  step(again, oa);
  CHECK(again.params_to_host() == want);

  // The same file on the CPU: inference agrees with the GPU network it came from.
  Sequential cpu(mixed(), Device::cpu, 1);
  cpu.load(back, "enc.");
  Sequential gpu2(mixed(), Device::cuda, 1);
  gpu2.load(back, "enc.");
  std::vector<float> cy = host(cpu.forward(x.data(), B, Mode::infer), size_t(B) * 7, Device::cpu);
  std::vector<float> gy = host(gpu2.forward(gx.data(), B, Mode::infer), size_t(B) * 7, Device::cuda);
  CHECK(rel_diff(gy, cy, 1e-4) < 1e-4);
}
