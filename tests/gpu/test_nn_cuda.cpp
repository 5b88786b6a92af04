// The CUDA backend of nn/ against the CPU backend (the oracle), on a CUDA Context (one stream): the same
// seed gives the same Philox numbers, the same initial weights, the same forward and backward up to
// float rounding, the same Adam step; the raw device-pointer entry points (column sums, batch-norm,
// sum of squares) agree with the CPU on awkward shapes; two GPU runs of a training step are
// bit-identical (fixed-order reductions, no atomics); checkpoints move between devices and a GPU
// resume is bit-identical.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "kernels/philox.h"
#include "nn/adam.h"
#include "nn/checkpoint.h"
#include "nn/ops.h"
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

using test::scaled_diff;

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// A host copy of n values at p on cx's device (waits for cx's stream).
std::vector<float> host(Context& cx, const float* p, size_t n) {
  std::vector<float> v(n);
  mem_copy(Device::cpu, v.data(), cx.device(), p, n * sizeof(float), cx.stream());
  return v;
}

void to_device(Context& cx, float* dst, const std::vector<float>& v) {
  mem_copy(Device::cuda, dst, Device::cpu, v.data(), v.size() * sizeof(float), cx.stream());
}

Arch mixed() {
  Arch a;
  a.in = 300;
  a.layers = {dense(128), batchnorm(), leaky_relu(0.05f), dropout(0.3f), dense(64), tanh_act(), dense(7)};
  return a;
}

bool cublas_mapped() {
  std::ifstream f("/proc/self/maps");
  std::string line;
  while (std::getline(f, line))
    if (line.find("libcublas") != std::string::npos) return true;
  return false;
}

}  // namespace

TEST_CASE("Philox: dropout masks identical, normals equal to the last bit or within an ulp") {
  Context cx(Device::cuda);
  const size_t n = 1 << 20;
  std::vector<float> ones(n, 1.f);
  Buffer<float> gx(cx), gy(cx, n);
  gx.upload(ones);
  ops::dropout(cx, 0.3f, 5, 9, gx.data(), gy.data(), n);
  std::vector<float> cy(n);
  ops::dropout(cpu_context(), 0.3f, 5, 9, ones.data(), cy.data(), n);
  CHECK(gy.to_host() == cy);

  Buffer<float> gz(cx, n);
  gz.zero();
  ops::add_normal(cx, gz.data(), n, 1.f, 11, 12);
  std::vector<float> cz(n, 0.f);
  ops::add_normal(cpu_context(), cz.data(), n, 1.f, 11, 12);
  std::vector<float> g = gz.to_host();
  size_t same = 0;
  for (size_t i = 0; i < n; ++i) same += g[i] == cz[i];
  CHECK(rel_diff(g, cz, 1e-6) < 1e-6);
  CHECK(double(same) / n > 0.999);
}

TEST_CASE("device-pointer entry points: column sums, batch-norm and sum of squares match the CPU") {
  Context cx(Device::cuda);
  // Shapes around the reduction's tiles (32 columns, 32-row chunks, at most 128 chunks).
  const int shapes[][2] = {{1, 1}, {3, 513}, {33, 31}, {256, 512}, {1000, 37}, {9000, 65}};
  for (const auto& sh : shapes) {
    const int rows = sh[0], cols = sh[1];
    CAPTURE(rows);
    CAPTURE(cols);
    const size_t n = size_t(rows) * cols;
    std::vector<float> x = rand_vec(n, 20), vy = rand_vec(n, 21), gamma = rand_vec(cols, 22), beta = rand_vec(cols, 23);
    for (float& v : x) v = 3.f + 2.f * v;  // a mean well away from 0: the two-pass variance matters
    Buffer<float> gx(cx), gvy(cx), ggamma(cx), gbeta(cx), out(cx, cols);
    gx.upload(x);
    gvy.upload(vy);
    ggamma.upload(gamma);
    gbeta.upload(beta);

    std::vector<float> cs(cols);
    ops::col_sums(cpu_context(), x.data(), cs.data(), rows, cols);
    ops::col_sums(cx, gx.data(), out.data(), rows, cols);
    CHECK(scaled_diff(out.to_host(), cs) < 1e-4);

    // Training forward then backward, both backends from the same running statistics.
    std::vector<float> cmean(cols), crstd(cols), crm(cols, 0.f), crv(cols, 1.f), cy(n), cvx(n), cvg(cols), cvb(cols);
    ops::bn_fwd_train(cpu_context(), x.data(), cy.data(), gamma.data(), beta.data(), cmean.data(), crstd.data(),
                      crm.data(), crv.data(), 0.1f, 1e-5f, rows, cols);
    ops::bn_bwd(cpu_context(), true, x.data(), vy.data(), gamma.data(), cmean.data(), crstd.data(), cvx.data(),
                cvg.data(), cvb.data(), rows, cols);
    Buffer<float> gmean(cx, cols), grstd(cx, cols), grm(cx), grv(cx), gy(cx, n), gvx(cx, n), gvg(cx, cols), gvb(cx, cols);
    grm.upload(std::vector<float>(cols, 0.f));
    grv.upload(std::vector<float>(cols, 1.f));
    ops::bn_fwd_train(cx, gx.data(), gy.data(), ggamma.data(), gbeta.data(), gmean.data(), grstd.data(), grm.data(),
                      grv.data(), 0.1f, 1e-5f, rows, cols);
    ops::bn_bwd(cx, true, gx.data(), gvy.data(), ggamma.data(), gmean.data(), grstd.data(), gvx.data(), gvg.data(),
                gvb.data(), rows, cols);
    // The two backends sum in different orders: float rounding apart, the same numbers.
    CHECK(scaled_diff(gmean.to_host(), cmean) < 1e-4);
    CHECK(rel_diff(grstd.to_host(), crstd, 1e-4) < 1e-4);
    CHECK(rel_diff(grv.to_host(), crv, 1e-4) < 1e-4);
    CHECK(scaled_diff(gy.to_host(), cy) < 1e-4);
    CHECK(scaled_diff(gvb.to_host(), cvb) < 1e-4);
    CHECK(scaled_diff(gvg.to_host(), cvg) < 1e-4);
    CHECK(scaled_diff(gvx.to_host(), cvx) < 1e-4);

    const double cpu_sq = ops::sum_squares(cpu_context(), x.data(), n);
    const double gpu_sq = ops::sum_squares(cx, gx.data(), n);
    CHECK(gpu_sq == doctest::Approx(cpu_sq).epsilon(1e-12));
    CHECK(ops::sum_squares(cx, gx.data(), n) == gpu_sq);  // bit for bit on a repeat
  }
}

TEST_CASE("forward and backward: CUDA matches the CPU (training and inference)") {
  Context cx(Device::cuda);
  Sequential cpu(mixed(), cpu_context(), 21), gpu(mixed(), cx, 21);
  CHECK(gpu.params_to_host() == cpu.params_to_host());  // initialised on the host from the same Philox
  const int B = 64;
  std::vector<float> x = rand_vec(size_t(B) * 300, 1), r = rand_vec(size_t(B) * 7, 2);
  Buffer<float> gx(cx), gr(cx);
  gx.upload(x);
  gr.upload(r);
  for (Mode mode : {Mode::train, Mode::infer}) {
    const float* cy = cpu.forward(x.data(), B, mode, 4);
    const float* gy = gpu.forward(gx.data(), B, mode, 4);
    // Scaled by the largest entry, not entry by entry: on an H200 (2026-11-30) entries near zero, where the
    // sums cancel, differed by 1.5e-4 (output) and 1.3e-2 (weight gradient) of their own size, with cuBLAS
    // summing in another order than OpenBLAS.
    CHECK(scaled_diff(host(cx, gy, size_t(B) * 7), std::vector<float>(cy, cy + size_t(B) * 7)) < 1e-4);
    const float* cv = cpu.backward(r.data(), true);
    const float* gv = gpu.backward(gr.data(), true);
    CHECK(rel_diff(host(cx, gv, x.size()), std::vector<float>(cv, cv + x.size()), 1e-4) < 1e-3);
    CHECK(scaled_diff(host(cx, gpu.grads(), gpu.num_params()),
                      std::vector<float>(cpu.grads(), cpu.grads() + cpu.num_params())) < 1e-3);
    CHECK(gpu.backward(gr.data(), false) == nullptr);
  }
  CHECK(scaled_diff(gpu.state_to_host(), cpu.state_to_host()) < 1e-4);  // running statistics (6.9e-5 entry by entry)
  CHECK(cublas_mapped());  // loaded on first use (the CPU tests check it is not loaded without a GPU)
}

TEST_CASE("two GPU runs of forward + backward + Adam are bit-identical") {
  auto run = [](Moments m) {
    Context cx(Device::cuda);
    Arch a = mixed();
    a.layers[0].weight_decay = 1e-3f;
    Sequential net(a, cx, 5);
    AdamConfig cfg;
    cfg.lr = 1e-3f;
    cfg.clip_norm = 0.5f;
    cfg.moments = m;
    Adam opt(net, cfg);
    const int B = 256;
    Buffer<float> x(cx), r(cx);
    x.upload(rand_vec(size_t(B) * 300, 30));
    r.upload(rand_vec(size_t(B) * 7, 31));
    std::vector<float> out;
    for (int s = 0; s < 3; ++s) {
      const float* y = net.forward(x.data(), B, Mode::train, uint64_t(s));
      out = host(cx, y, size_t(B) * 7);
      net.backward(r.data(), false);
      opt.step();
    }
    std::vector<float> all = out, g = host(cx, net.grads(), net.num_params()), p = net.params_to_host(),
                       st = net.state_to_host();
    all.insert(all.end(), g.begin(), g.end());
    all.insert(all.end(), p.begin(), p.end());
    all.insert(all.end(), st.begin(), st.end());
    all.push_back(opt.last_grad_norm());
    return all;
  };
  for (Moments m : {Moments::f32, Moments::bf16}) CHECK(same_bits(run(m), run(m)));
}

TEST_CASE("residual output on the GPU: base exactly at z = 0") {
  Context cx(Device::cuda);
  Arch a;
  a.in = 4;
  a.residual = true;
  a.layers = {dense(64, false), tanh_act(), dense(64, false), relu(), dense(1000, false)};
  Sequential net(a, cx, 2);
  std::vector<float> base = rand_vec(1000, 3);
  net.set_base(base);
  net.params_from_host(rand_vec(net.num_params(), 4));
  std::vector<float> z(2 * 4, 0.f);
  z[0] = 0.5f;
  Buffer<float> gz(cx);
  gz.upload(z);
  std::vector<float> y = host(cx, net.forward(gz.data(), 2, Mode::infer), 2000);
  CHECK(std::vector<float>(y.begin() + 1000, y.end()) == base);
  CHECK(std::vector<float>(y.begin(), y.begin() + 1000) != base);
}

TEST_CASE("Adam on the GPU matches the CPU, fp32 and bf16 moments, with clipping and groups") {
  Context cx(Device::cuda);
  for (Moments m : {Moments::f32, Moments::bf16}) {
    Arch a = mixed();
    a.layers[4].lr_scale = 0.5f;
    a.layers[0].weight_decay = 1e-3f;
    Sequential cpu(a, cpu_context(), 8), gpu(a, cx, 8);
    AdamConfig cfg;
    cfg.lr = 1e-3f;
    cfg.clip_norm = 1.f;
    cfg.moments = m;
    Adam oc(cpu, cfg), og(gpu, cfg);
    for (int s = 0; s < 3; ++s) {
      std::vector<float> g = rand_vec(cpu.num_params(), 50 + s);
      std::copy(g.begin(), g.end(), cpu.grads());
      to_device(cx, gpu.grads(), g);
      oc.step();
      og.step();
      CHECK(og.last_grad_norm() == doctest::Approx(oc.last_grad_norm()).epsilon(1e-6));
    }
    // The same Philox words round the bf16 moments on both (kernels/nn_adam.h); only float rounding
    // of the update (FMA contraction on the GPU) differs.
    CHECK(rel_diff(gpu.params_to_host(), cpu.params_to_host(), 1e-3) < (m == Moments::f32 ? 1e-5 : 1e-3));
  }
}

TEST_CASE("a non-finite gradient on the GPU: not applied, flagged, reported by the next synchronize") {
  // Issue 17 item 3: the kernel skips the element as the CPU loop does (which throws at once); no read-back
  // per step, the flag surfaces where the trainer synchronizes anyway (its loss check).
  Context cx(Device::cuda);
  for (Moments m : {Moments::f32, Moments::bf16}) {
    Sequential cpu(mixed(), cpu_context(), 8), gpu(mixed(), cx, 8);
    AdamConfig cfg;
    cfg.lr = 1e-3f;
    cfg.moments = m;
    Adam oc(cpu, cfg), og(gpu, cfg);
    std::vector<float> g = rand_vec(cpu.num_params(), 60), before = cpu.params_to_host();
    g[5] = std::nanf("");
    g[g.size() - 2] = INFINITY;
    std::copy(g.begin(), g.end(), cpu.grads());
    to_device(cx, gpu.grads(), g);
    CHECK_THROWS_WITH_AS(oc.step(), doctest::Contains("gradient is not finite (2 of"), Error);
    og.step();  // queued: nothing known on the host yet
    CHECK_THROWS_WITH_AS(cx.synchronize(), doctest::Contains("a gradient is not finite"), Error);
    cx.synchronize();  // the flag was taken: the next synchronize is clean
    const std::vector<float> pg = gpu.params_to_host(), pc = cpu.params_to_host();
    CHECK(pg[5] == before[5]);
    CHECK(pg[pg.size() - 2] == before[pg.size() - 2]);
    for (float v : pg) CHECK(std::isfinite(v));
    CHECK(rel_diff(pg, pc, 1e-3) < (m == Moments::f32 ? 1e-5 : 1e-3));  // the finite elements as on the CPU
  }
}

TEST_CASE("checkpoints move between devices, and a GPU resume is bit-identical") {
  Context cx(Device::cuda);
  std::string dir = test::scratch_dir("nn_cuda_checkpoint");
  const int B = 32;
  std::vector<float> x = rand_vec(size_t(B) * 300, 7), r = rand_vec(size_t(B) * 7, 8);
  Buffer<float> gx(cx), gr(cx);
  gx.upload(x);
  gr.upload(r);
  AdamConfig cfg;
  cfg.lr = 1e-3f;
  Sequential gpu(mixed(), cx, 3);
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
  Sequential again(mixed(), cx, 999);
  Adam oa(again, cfg);
  again.load(back, "enc.");
  oa.load(back, "enc.");
  step(again, oa);
  CHECK(again.params_to_host() == want);

  // The same file on the CPU: inference agrees with the GPU network it came from.
  Sequential cpu(mixed(), cpu_context(), 1);
  cpu.load(back, "enc.");
  Sequential gpu2(mixed(), cx, 1);
  gpu2.load(back, "enc.");
  const float* cyp = cpu.forward(x.data(), B, Mode::infer);
  std::vector<float> cy(cyp, cyp + size_t(B) * 7);
  std::vector<float> gy = host(cx, gpu2.forward(gx.data(), B, Mode::infer), size_t(B) * 7);
  CHECK(rel_diff(gy, cy, 1e-4) < 1e-4);
}

TEST_CASE("checkpoints stream device arrays through bounded staging: same bytes as the host copy, exact reload") {
  // 17M + 3 floats: more than one 64 MiB chunk of Checkpoint::read_f32's staging, and many of save's 1 MiB
  // chunks here, with a partial one at the end.
  Context cx(Device::cuda);
  std::string dir = test::scratch_dir("nn_cuda_checkpoint_stream");
  const size_t n = (size_t(17) << 20) + 3;
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = float(i % 1000003) * 0.5f - 7.f;
  Buffer<float> dv(cx);
  dv.upload(v);
  Checkpoint host_copy, streamed;
  host_copy.put_f32("w", v);
  streamed.put_f32("w", dv);
  host_copy.save(dir + "/host.ck");
  streamed.save(dir + "/device.ck", (size_t(1) << 20) + 4);
  auto bytes = [](const std::string& p) {
    std::ifstream f(p, std::ios::binary);
    return std::vector<char>((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  };
  CHECK(bytes(dir + "/device.ck") == bytes(dir + "/host.ck"));
  Buffer<float> back(cx, n);
  Checkpoint::load(dir + "/device.ck").read_f32("w", back);
  CHECK(back.to_host() == v);
}
