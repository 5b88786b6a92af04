#include "bench/step_gemms.h"

#include <algorithm>

#include "bench/common.h"
#include "core/buffer.h"
#include "core/threads.h"
#include "kernels/philox.h"
#include "nn/ops.h"

namespace cugmm::bench {

std::vector<GemmShape> step_gemms(const std::vector<nn::Arch>& nets, int batch) {
  std::vector<GemmShape> v;
  for (const nn::Arch& a : nets) {
    int in = a.in;
    bool first = true;
    for (const nn::LayerSpec& s : a.layers) {
      if (s.kind != nn::LayerKind::dense) continue;
      v.push_back({false, true, batch, s.out, in});
      v.push_back({true, false, s.out, in, batch});
      if (!(first && !a.residual)) v.push_back({false, false, batch, in, s.out});
      in = s.out;
      first = false;
    }
  }
  return v;
}

double gemm_flops(const std::vector<GemmShape>& shapes) {
  double f = 0;
  for (const GemmShape& s : shapes) f += 2.0 * s.m * s.n * s.k;
  return f;
}

double time_gemms(Context& cx, const std::vector<GemmShape>& shapes, int warmup, double min_seconds, int min_reps,
                  double* cpu_s) {
  size_t na = 0, nb = 0, nc = 0;
  for (const GemmShape& s : shapes) {
    na = std::max(na, size_t(s.m) * s.k);
    nb = std::max(nb, size_t(s.k) * s.n);
    nc = std::max(nc, size_t(s.m) * s.n);
  }
  std::vector<float> r(std::max(na, nb));
  for (size_t i = 0; i < r.size(); ++i) r[i] = 2 * philox_uniform(9, 0, i) - 1;
  Buffer<float> a(cx), b(cx), c(cx, nc);
  a.upload(r.data(), na);
  b.upload(r.data(), nb);
  int calls = 0;
  double cpu0 = 0;
  const double t = time_per_call(
      [&] {
        if (calls++ == warmup) cpu0 = process_cpu_seconds();  // the first timed pass
        for (const GemmShape& s : shapes)
          nn::ops::gemm(cx, s.ta, s.tb, s.m, s.n, s.k, 1.f, a.data(), s.ta ? s.m : s.k, b.data(), s.tb ? s.k : s.n,
                        0.f, c.data(), s.n);
        cx.synchronize();
      },
      warmup, min_seconds, min_reps);
  if (cpu_s) *cpu_s = (process_cpu_seconds() - cpu0) / std::max(1, calls - warmup);
  return t;
}

}  // namespace cugmm::bench
