// One training step's chain on ONE CUDA Context, with no host synchronisation inside it:
//   decoder forward (residual: neutral Gaussian parameters + Δ(z), one row of 5G per particle)
//   -> Projector::run on those device rows (scores, per-particle d score / d params)
//   -> negation (loss = -score) -> decoder backward -> Adam step,
// compared with the same chain on the CPU backend (the oracle), then run twice on the GPU.
//
// What it guards: every layer queues on the context's one stream, so the projector reads the decoder's
// output only after the GEMM that writes it, and the decoder's backward reads the projector's gradient
// only after the projector wrote it. The old bug (projector on a stream of its own) let the projector
// read the decoder's output buffer before the GEMM finished. To make that visible, the decoder's output
// buffer is first filled with something else (a forward at z = 0, output = the neutral model exactly),
// and the chain's z moves the model far enough that neutral-model scores differ from the chain's by much
// more than the CPU-vs-GPU tolerance (checked below): a read of the stale buffer fails the comparison.
//
// Tolerances: each is max(a fixed one, 5x what float rounding alone moves that output by on the CPU, measured
// by running the CPU chain again on a neutral model jittered by 1e-6: tests/gpu/float_sensitivity.h). The
// fixed ones: projector scores 1e-4 absolute and gradients 1e-3 of their largest magnitude; the decoder's
// parameter gradient (a batch sum) 2e-3 of its largest. The rounding term dominates the gradients: at the
// rings where the model is far below its peak the FRC's gradient is rounding noise, and the jitter alone
// moves this chain's parameter gradient by 4-6% of its largest entry and the Adam step by 0.2-0.3 lr
// (measured on the CPU; the H200 differed from the CPU by 9-10% and 0.64 lr). Adam's first step is
// lr g / (|g| + eps) (m^ = g, v^ = g^2): with the default eps it is lr sign(g), which a sign flip of a
// near-zero gradient entry moves by 2 lr; eps is therefore set to a tenth of the largest CPU gradient
// entry so that the step is a smooth function of g (Lipschitz constant lr / eps), and the updated weights
// are compared as steps scaled by lr at 2e-2 (= the gradient tolerance x max|g| / eps, doubled).
//
// Determinism (GPU run twice): the projector's forward splat adds into each image with float atomics,
// whose order varies, so the image, hence scores, gradients, the decoder's gradient and the updated
// weights agree run to run to rounding only (the same rounding-based tolerances, with fixed ones 100x
// tighter than CPU vs GPU). What
// must be bit-identical: the decoder forward (the projector's input; cuBLAS GEMMs on one stream with a
// fixed algorithm, no atomics), and everything the chain computes from bit-identical inputs downstream
// of the splat (fixed-order reductions): checked by feeding the backward half of the chain (negation,
// decoder backward, Adam) the SAME projector gradient twice.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "core/buffer.h"
#include "core/context.h"
#include "engine/projector.h"
#include "kernels/philox.h"
#include "nn/adam.h"
#include "nn/ops.h"
#include "nn/sequential.h"
#include "tests/gpu/float_sensitivity.h"

using namespace cugmm;
using namespace cugmm::nn;

namespace {

constexpr int kG = 96;           // Gaussians
constexpr int kCount = 40;       // particles (several projector chunks, below)
constexpr int kBox = 48;
constexpr double kPixel = 1.6;   // Å
constexpr int kLatent = 4;
constexpr float kLr = 1e-3f;

std::vector<float> rand_vec(size_t n, uint64_t stream) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = 2 * philox_uniform(17, stream, i) - 1;
  return v;
}

double max_abs(const std::vector<float>& v) {
  double m = 0;
  for (float x : v) m = std::max(m, double(std::fabs(x)));
  return m;
}

// max |a - b| / max |b|
double scaled_diff(const std::vector<float>& a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  double d = 0;
  for (size_t i = 0; i < a.size(); ++i) d = std::max(d, std::fabs(double(a[i]) - b[i]));
  return d / std::max(max_abs(b), 1e-30);
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  double d = 0;
  for (size_t i = 0; i < a.size(); ++i) d = std::max(d, std::fabs(double(a[i]) - b[i]));
  return d;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

std::vector<float> steps(const std::vector<float>& after, const std::vector<float>& before) {
  std::vector<float> d(after.size());
  for (size_t i = 0; i < d.size(); ++i) d[i] = (after[i] - before[i]) / kLr;
  return d;
}

// Host copy of n floats at p on cx's device (waits for the stream: use only after the chain is queued).
std::vector<float> host(Context& cx, const float* p, size_t n) {
  std::vector<float> v(n);
  mem_copy(Device::cpu, v.data(), cx.device(), p, n * sizeof(float), cx.stream());
  return v;
}

FourierBand band() { return make_fourier_band(kBox, kPixel, 60, 0); }

// The neutral model: [x(G) y(G) z(G) a(G) s(G)], widths 1.5-2.5 px.
std::vector<float> neutral_model() {
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> pos(-float(kBox * kPixel / 4), float(kBox * kPixel / 4));
  std::uniform_real_distribution<float> amp(0.5f, 2.f), wid(1.5f, 2.5f);
  std::vector<float> p;
  for (int c = 0; c < 5; ++c)
    for (int j = 0; j < kG; ++j) p.push_back(c < 3 ? pos(rng) : c == 3 ? amp(rng) : wid(rng) * float(kPixel));
  return p;
}

Arch decoder_arch() {
  Arch a;
  a.in = kLatent;
  a.residual = true;
  a.layers = {dense(64, false), tanh_act(), dense(64, false), leaky_relu(0.05f), dense(5 * kG, false)};
  return a;
}

// The decoder's weights: the constructor's (identical on both backends) with the last layer, which starts
// at zero, set to small random values: Δ(z) then changes the scores by ~2e-2 (the test checks > 1e-2).
std::vector<float> decoder_weights(const Sequential& net) {
  std::vector<float> p = net.params_to_host();
  const ParamTensor& last = net.tensors().back();
  std::vector<float> r = rand_vec(last.size, 40);
  for (size_t i = 0; i < last.size; ++i) p[last.offset + i] = 0.1f * r[i];
  return p;
}

struct Problem {
  std::vector<float> neutral, z;
  std::vector<ParticleView> views;
  std::vector<cfloat> data;
};

// Particles: the CPU projection of the decoded model of each particle plus noise, with a different z,
// so the scores are far from 1 and their gradients are not small.
Problem make_problem() {
  Problem pb;
  pb.neutral = neutral_model();
  pb.z = rand_vec(size_t(kCount) * kLatent, 41);
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> ang(-180, 180), tilt(0, 180), sh(-4, 4), df(8000, 25000);
  const CtfMode modes[] = {CtfMode::none, CtfMode::full, CtfMode::phase_flipped};
  for (int i = 0; i < kCount; ++i) {
    CtfParams c;
    c.defocus_u = df(rng); c.defocus_v = c.defocus_u - 400; c.defocus_angle = ang(rng);
    pb.views.push_back(make_particle_view(ang(rng), tilt(rng), ang(rng), sh(rng), sh(rng), c, modes[i % 3]));
  }
  Sequential dec(decoder_arch(), cpu_context(), 9);
  dec.set_base(pb.neutral);
  dec.params_from_host(decoder_weights(dec));
  std::vector<float> zt = rand_vec(size_t(kCount) * kLatent, 42);
  const float* rows = dec.forward(zt.data(), kCount, Mode::infer);
  FourierBand b = band();
  auto cpu = make_projector(cpu_context(), b, kG, {ProjectionStrategy::splat_fft});
  const size_t plane = size_t(kBox) * (kBox / 2 + 1);
  std::vector<cfloat> half(kCount * plane);
  cpu->render_host({kCount, rows, size_t(5) * kG, pb.views.data(), nullptr}, half.data());
  std::normal_distribution<float> n01;
  for (int i = 0; i < kCount; ++i)
    for (size_t k = 0; k < b.size(); ++k)
      pb.data.push_back(half[i * plane + b.fft_index[k]] * 0.9f + cfloat(n01(rng), n01(rng)) * 0.3f);
  return pb;
}

// Everything the chain produces, on the host.
struct ChainResult {
  std::vector<float> rows, score, grad_params, decoder_grads, weights;
};

AdamConfig adam_config(float eps) {
  AdamConfig cfg;
  cfg.lr = kLr;
  cfg.eps = eps;
  cfg.clip_norm = 0;  // clipping reads the gradient norm on the host: a sync the chain must not have
  return cfg;
}

// The CPU chain (the oracle).
ChainResult cpu_chain(const Problem& pb, const std::vector<float>& w0, float eps) {
  Sequential dec(decoder_arch(), cpu_context(), 9);
  dec.set_base(pb.neutral);
  dec.params_from_host(w0);
  Adam opt(dec, adam_config(eps));
  auto proj = make_projector(cpu_context(), band(), kG, {ProjectionStrategy::splat_fft, 1e-20f, 16});
  const size_t row = size_t(5) * kG;
  ChainResult r;
  const float* rows = dec.forward(pb.z.data(), kCount, Mode::train, 0);
  r.rows.assign(rows, rows + kCount * row);
  r.score.resize(kCount);
  r.grad_params.resize(kCount * row);
  ProjectionOutputs out;
  out.score = r.score.data();
  out.grad_params = r.grad_params.data();
  proj->run({kCount, rows, row, pb.views.data(), pb.data.data()}, out);
  std::vector<float> v(r.grad_params.size());
  for (size_t i = 0; i < v.size(); ++i) v[i] = -r.grad_params[i];
  dec.backward(v.data(), false);
  r.decoder_grads.assign(dec.grads(), dec.grads() + dec.num_params());
  opt.step();
  r.weights = dec.params_to_host();
  return r;
}

// The GPU chain on one Context. The inputs are uploaded, the decoder's output buffer is filled with the
// neutral model (a forward at z = 0) and the stream drained; then the whole chain is queued with no host
// synchronisation, and only then are results read back. With `fixed_grad`, the projector's gradient is
// replaced by that array (uploaded before the chain) for the backward half: the bit-identity check.
ChainResult gpu_chain(const Problem& pb, const std::vector<float>& w0, float eps,
                      const std::vector<float>* fixed_grad = nullptr) {
  Context cx(Device::cuda);
  Sequential dec(decoder_arch(), cx, 9);
  dec.set_base(pb.neutral);
  dec.params_from_host(w0);
  Adam opt(dec, adam_config(eps));
  auto proj = make_projector(cx, band(), kG, {ProjectionStrategy::splat_fft, 1e-20f, 16});
  const size_t row = size_t(5) * kG;
  Buffer<float> z(cx), zero(cx), score(cx, kCount), grad(cx, kCount * row), v(cx, kCount * row), one(cx), fixed(cx);
  Buffer<ParticleView> views(cx);
  Buffer<cfloat> data(cx);
  z.upload(pb.z);
  zero.upload(std::vector<float>(pb.z.size(), 0.f));
  one.upload(std::vector<float>{1.f});
  views.upload(pb.views);
  data.upload(pb.data);
  if (fixed_grad) fixed.upload(*fixed_grad);
  dec.forward(zero.data(), kCount, Mode::train, 0);  // stale contents: the neutral model, exactly
  cx.synchronize();

  // ---- the chain: queued on cx.stream(), no host synchronisation until the reads below ----
  const float* rows = dec.forward(z.data(), kCount, Mode::train, 0);
  ProjectionOutputs out;
  out.score = score.data();
  out.grad_params = grad.data();
  proj->run({kCount, rows, row, views.data(), data.data()}, out);
  const float* g = fixed_grad ? fixed.data() : grad.data();
  // v = -g (loss = -score), as a k = 1 GEMM on the same stream: v (1 x n) = -1 * [1] (1 x 1) * g (1 x n).
  const int n = static_cast<int>(kCount * row);
  ops::gemm(cx, false, false, 1, n, 1, -1.f, one.data(), 1, g, n, 0.f, v.data(), n);
  dec.backward(v.data(), false);
  opt.step();
  // ---- end of the chain ----

  cx.synchronize();  // throws if the projector's device-side input checks flagged the decoded rows
  ChainResult r;
  r.rows = host(cx, rows, kCount * row);
  r.score = score.to_host();
  r.grad_params = grad.to_host();
  r.decoder_grads = host(cx, dec.grads(), dec.num_params());
  r.weights = dec.params_to_host();
  return r;
}

// max(fixed x scale, what rounding alone moves each output by): the CPU chain again on a jittered neutral
// model (tests/gpu/float_sensitivity.h). scale 1: CPU vs GPU; 1e-2: GPU run to run.
struct Tolerances {
  double score, grad_params, decoder_grads, steps;
};

Tolerances chain_tolerances(const Problem& pb, const std::vector<float>& w0, float eps, const ChainResult& c,
                            double scale) {
  Problem pbj = pb;
  pbj.neutral = test::jittered(pb.neutral);
  const ChainResult j = cpu_chain(pbj, w0, eps);
  Tolerances t;
  t.score = std::max(1e-4 * scale, test::kFactor * max_abs_diff(j.score, c.score));
  t.grad_params = std::max(1e-3 * scale, test::kFactor * scaled_diff(j.grad_params, c.grad_params));
  t.decoder_grads = std::max(2e-3 * scale, test::kFactor * scaled_diff(j.decoder_grads, c.decoder_grads));
  t.steps = std::max(2e-2 * scale, test::kFactor * max_abs_diff(steps(j.weights, w0), steps(c.weights, w0)));
  return t;
}

}  // namespace

TEST_CASE("decoder -> projector -> decoder backward -> Adam on one CUDA stream matches the CPU chain") {
  const Problem pb = make_problem();
  Sequential init(decoder_arch(), cpu_context(), 9);
  const std::vector<float> w0 = decoder_weights(init);

  // Adam's eps from the CPU gradient (see the header comment): a first, throwaway CPU chain.
  const ChainResult probe = cpu_chain(pb, w0, 1e-8f);
  const float eps = static_cast<float>(0.1 * max_abs(probe.decoder_grads));
  REQUIRE(eps > 0);
  const ChainResult c = cpu_chain(pb, w0, eps);
  const ChainResult g = gpu_chain(pb, w0, eps);
  const Tolerances tol = chain_tolerances(pb, w0, eps, c, 1);

  // The test has teeth: the neutral model's scores (what a projector reading the stale buffer sees) are
  // far from the chain's, compared with the 1e-4 tolerance below.
  {
    auto proj = make_projector(cpu_context(), band(), kG, {ProjectionStrategy::splat_fft});
    std::vector<float> s0(kCount);
    ProjectionOutputs out;
    out.score = s0.data();
    proj->run({kCount, pb.neutral.data(), 0, pb.views.data(), pb.data.data()}, out);
    CHECK(max_abs_diff(s0, c.score) > 2 * tol.score);  // measured 0.023 against a tolerance of ~0.006
  }
  CHECK(max_abs(c.score) > 0.1);

  CHECK(scaled_diff(g.rows, c.rows) < 1e-5);                   // decoder forward (GEMM rounding: ~1e-6)
  CHECK(max_abs_diff(g.score, c.score) <= tol.score);          // projector scores
  CHECK(scaled_diff(g.grad_params, c.grad_params) <= tol.grad_params);    // per-particle parameter gradients
  CHECK(scaled_diff(g.decoder_grads, c.decoder_grads) <= tol.decoder_grads);  // decoder gradient (batch sum)
  const std::vector<float> sc = steps(c.weights, w0), sg = steps(g.weights, w0);
  CHECK(max_abs(sc) > 0.1);                                    // the step moved the weights
  CHECK(max_abs_diff(sg, sc) <= tol.steps);                    // Adam step, in units of lr
  // Adam's first step moves no weight by more than lr (|m^ / (sqrt(v^) + eps)| <= 1).
  CHECK(max_abs_diff(g.weights, w0) <= kLr * 1.0001);
}

TEST_CASE("the GPU chain run twice: bit-identical up to the splat, rounding after it") {
  const Problem pb = make_problem();
  Sequential init(decoder_arch(), cpu_context(), 9);
  const std::vector<float> w0 = decoder_weights(init);
  const float eps = static_cast<float>(0.1 * max_abs(cpu_chain(pb, w0, 1e-8f).decoder_grads));

  const ChainResult a = gpu_chain(pb, w0, eps), b = gpu_chain(pb, w0, eps);
  // Upstream of the splat: the decoder forward (GEMMs, element-wise kernels, no atomics).
  CHECK(same_bits(a.rows, b.rows));
  // Downstream of the splat's float atomics: rounding apart (fixed tolerances 100x tighter than CPU vs GPU).
  const Tolerances tol = chain_tolerances(pb, w0, eps, cpu_chain(pb, w0, eps), 1e-2);
  CHECK(max_abs_diff(a.score, b.score) <= tol.score);
  CHECK(scaled_diff(a.grad_params, b.grad_params) <= tol.grad_params);
  CHECK(scaled_diff(a.decoder_grads, b.decoder_grads) <= tol.decoder_grads);
  CHECK(max_abs_diff(steps(a.weights, w0), steps(b.weights, w0)) <= tol.steps);

  // From a bit-identical projector gradient, the rest of the chain (negation, decoder backward, Adam) is
  // bit-identical: fixed-order reductions only.
  const ChainResult fa = gpu_chain(pb, w0, eps, &a.grad_params), fb = gpu_chain(pb, w0, eps, &a.grad_params);
  CHECK(same_bits(fa.decoder_grads, fb.decoder_grads));
  CHECK(same_bits(fa.weights, fb.weights));
  // ... and it reproduces the chain that produced that gradient bit for bit (same forward, same gradient).
  CHECK(same_bits(fa.decoder_grads, a.decoder_grads));
  CHECK(same_bits(fa.weights, a.weights));
}
