#include "engine/fft.h"

#include <fftw3.h>

#include <cstdlib>
#include <map>
#include <mutex>
#include <tuple>

#include "core/error.h"

namespace cugmm {

void* fft_alloc(size_t bytes) {
  void* p = fftwf_malloc(bytes ? bytes : 1);
  if (!p) throw std::bad_alloc();
  return p;
}
void fft_free(void* p) noexcept { fftwf_free(p); }

namespace {

enum Kind { r2c, c2r };
using Key = std::tuple<int, int, int, int, bool>;  // kind, nz (1 for 2-D), ny, nx, aligned

// FFTW's planner is not thread-safe; plans are kept for the life of the process (a handful of shapes) and
// destroyed, with FFTW's own caches, at exit.
std::mutex g_plan_mutex;
std::map<Key, fftwf_plan>* g_plans = nullptr;

void release_fftw() {
  std::lock_guard<std::mutex> lock(g_plan_mutex);
  if (g_plans)
    for (auto& kv : *g_plans) fftwf_destroy_plan(kv.second);
  delete g_plans;
  g_plans = nullptr;
  fftwf_cleanup();
}

fftwf_plan get_plan(Kind kind, int nz, int ny, int nx, bool aligned) {
  std::lock_guard<std::mutex> lock(g_plan_mutex);
  if (!g_plans) {
    g_plans = new std::map<Key, fftwf_plan>;
    static const bool registered = std::atexit(release_fftw) == 0;  // once
    (void)registered;
  }
  Key key{kind, nz, ny, nx, aligned};
  auto it = g_plans->find(key);
  if (it != g_plans->end()) return it->second;
  size_t nreal = size_t(nz) * ny * nx, ncplx = size_t(nz) * ny * (nx / 2 + 1);
  // Planned on FFTW-allocated (SIMD-aligned) arrays: executed on arrays of the same alignment, or,
  // for the unaligned variant, on any.
  FftVector<float> r(nreal);
  FftVector<cfloat> c(ncplx);
  auto* cp = reinterpret_cast<fftwf_complex*>(c.data());
  const unsigned flags = FFTW_ESTIMATE | (aligned ? 0u : unsigned(FFTW_UNALIGNED));
  fftwf_plan p;
  if (nz == 1) {
    p = kind == r2c ? fftwf_plan_dft_r2c_2d(ny, nx, r.data(), cp, flags) : fftwf_plan_dft_c2r_2d(ny, nx, cp, r.data(), flags);
  } else {
    p = kind == r2c ? fftwf_plan_dft_r2c_3d(nz, ny, nx, r.data(), cp, flags)
                    : fftwf_plan_dft_c2r_3d(nz, ny, nx, cp, r.data(), flags);
  }
  CUGMM_REQUIRE(p, "FFTW could not plan a transform of " + std::to_string(nz) + "x" + std::to_string(ny) + "x" +
                       std::to_string(nx));
  (*g_plans)[key] = p;
  return p;
}

bool simd_aligned(const void* a, const void* b) {
  return fftwf_alignment_of(reinterpret_cast<float*>(const_cast<void*>(a))) == 0 &&
         fftwf_alignment_of(reinterpret_cast<float*>(const_cast<void*>(b))) == 0;
}

void r2c_any(int nz, int ny, int nx, const float* in, cfloat* out) {
  fftwf_execute_dft_r2c(get_plan(r2c, nz, ny, nx, simd_aligned(in, out)), const_cast<float*>(in),
                        reinterpret_cast<fftwf_complex*>(out));
}

// FFTW's multi-dimensional c2r transforms overwrite their input: they work on a per-thread (aligned) copy.
void c2r_any(int nz, int ny, int nx, const cfloat* in, float* out) {
  thread_local FftVector<cfloat> tmp;
  tmp.assign(in, in + size_t(nz) * ny * (nx / 2 + 1));
  fftwf_execute_dft_c2r(get_plan(c2r, nz, ny, nx, simd_aligned(tmp.data(), out)),
                        reinterpret_cast<fftwf_complex*>(tmp.data()), out);
}

}  // namespace

void fft2_r2c(int ny, int nx, const float* in, cfloat* out) { r2c_any(1, ny, nx, in, out); }
void fft2_c2r(int ny, int nx, const cfloat* in, float* out) { c2r_any(1, ny, nx, in, out); }
void fft3_r2c(int nz, int ny, int nx, const float* in, cfloat* out) { r2c_any(nz, ny, nx, in, out); }
void fft3_c2r(int nz, int ny, int nx, const cfloat* in, float* out) { c2r_any(nz, ny, nx, in, out); }

}  // namespace cugmm
