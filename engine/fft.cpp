#include "engine/fft.h"

#include <fftw3.h>

#include <map>
#include <mutex>
#include <tuple>
#include <vector>

#include "core/error.h"

namespace cugmm {

namespace {

// FFTW's planner is not thread-safe; plans are kept for the life of the process (a handful of shapes).
std::mutex g_plan_mutex;

enum Kind { r2c, c2r };
using Key = std::tuple<int, int, int, int>;  // kind, nz (1 for 2-D), ny, nx

fftwf_plan get_plan(Kind kind, int nz, int ny, int nx) {
  static std::map<Key, fftwf_plan> plans;
  std::lock_guard<std::mutex> lock(g_plan_mutex);
  Key key{kind, nz, ny, nx};
  auto it = plans.find(key);
  if (it != plans.end()) return it->second;
  size_t nreal = size_t(nz) * ny * nx, ncplx = size_t(nz) * ny * (nx / 2 + 1);
  std::vector<float> r(nreal);
  std::vector<fftwf_complex> c(ncplx);
  // UNALIGNED: callers pass arrays of any alignment to the new-array execute functions.
  unsigned flags = FFTW_ESTIMATE | FFTW_UNALIGNED;
  fftwf_plan p;
  if (nz == 1) {
    p = kind == r2c ? fftwf_plan_dft_r2c_2d(ny, nx, r.data(), c.data(), flags)
                    : fftwf_plan_dft_c2r_2d(ny, nx, c.data(), r.data(), flags);
  } else {
    p = kind == r2c ? fftwf_plan_dft_r2c_3d(nz, ny, nx, r.data(), c.data(), flags)
                    : fftwf_plan_dft_c2r_3d(nz, ny, nx, c.data(), r.data(), flags);
  }
  CUGMM_REQUIRE(p, "FFTW could not plan a transform of " + std::to_string(nz) + "x" + std::to_string(ny) + "x" +
                       std::to_string(nx));
  plans[key] = p;
  return p;
}

}  // namespace

void fft2_r2c(int ny, int nx, const float* in, cfloat* out) {
  fftwf_execute_dft_r2c(get_plan(r2c, 1, ny, nx), const_cast<float*>(in), reinterpret_cast<fftwf_complex*>(out));
}

// FFTW's multi-dimensional c2r transforms overwrite their input: they work on a per-thread copy.
static fftwf_complex* scratch_copy(const cfloat* in, size_t n) {
  thread_local std::vector<cfloat> tmp;
  tmp.assign(in, in + n);
  return reinterpret_cast<fftwf_complex*>(tmp.data());
}

void fft2_c2r(int ny, int nx, const cfloat* in, float* out) {
  fftwf_execute_dft_c2r(get_plan(c2r, 1, ny, nx), scratch_copy(in, size_t(ny) * (nx / 2 + 1)), out);
}

void fft3_r2c(int nz, int ny, int nx, const float* in, cfloat* out) {
  fftwf_execute_dft_r2c(get_plan(r2c, nz, ny, nx), const_cast<float*>(in), reinterpret_cast<fftwf_complex*>(out));
}

void fft3_c2r(int nz, int ny, int nx, const cfloat* in, float* out) {
  fftwf_execute_dft_c2r(get_plan(c2r, nz, ny, nx), scratch_copy(in, size_t(nz) * ny * (nx / 2 + 1)), out);
}

}  // namespace cugmm
