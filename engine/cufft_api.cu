#include "engine/cufft_api.h"

#include <string>

#include "core/dynlib.h"
#include "core/error.h"

namespace cugmm::detail {

const CufftApi& cufft() {
  // Magic static: loaded once, thread-safe; a failure throws now and is retried on the next call.
  static const CufftApi api = [] {
    static const DynLib lib({CUGMM_SONAME(libcufft, CUFFT_VER_MAJOR), "libcufft.so"}, "cuFFT");
    CufftApi a;
    a.create = lib.get<decltype(&cufftCreate)>("cufftCreate");
    a.destroy = lib.get<decltype(&cufftDestroy)>("cufftDestroy");
    a.make_plan_many = lib.get<decltype(&cufftMakePlanMany)>("cufftMakePlanMany");
    a.set_stream = lib.get<decltype(&cufftSetStream)>("cufftSetStream");
    a.get_size = lib.get<decltype(&cufftGetSize)>("cufftGetSize");
    a.exec_r2c = lib.get<decltype(&cufftExecR2C)>("cufftExecR2C");
    a.exec_c2r = lib.get<decltype(&cufftExecC2R)>("cufftExecC2R");
    return a;
  }();
  return api;
}

CufftPlan::CufftPlan(int n, int count, cufftType type, cudaStream_t stream) : type_(type), count_(count) {
  CUGMM_REQUIRE(n > 0 && count > 0, "cuFFT plan: empty transform");
  CUGMM_REQUIRE(type == CUFFT_R2C || type == CUFFT_C2R, "cuFFT plan: only R2C and C2R are used");
  const CufftApi& api = cufft();
  CUGMM_CHECK(api.create(&h_));
  try {
    int dims[2] = {n, n};
    size_t made_work = 0;
    CUGMM_CHECK(api.make_plan_many(h_, 2, dims, nullptr, 1, 0, nullptr, 1, 0, type, count, &made_work));
    CUGMM_CHECK(api.set_stream(h_, stream));
    CUGMM_CHECK(api.get_size(h_, &work_));
  } catch (...) {
    api.destroy(h_);  // the destructor does not run for an object whose constructor threw
    throw;
  }
  made_ = true;
}

CufftPlan::~CufftPlan() {
  if (made_) cufft().destroy(h_);
}

void CufftPlan::r2c(float* in, float2* out) const {
  CUGMM_REQUIRE(type_ == CUFFT_R2C, "cuFFT plan: not an R2C plan");
  CUGMM_CHECK(cufft().exec_r2c(h_, in, reinterpret_cast<cufftComplex*>(out)));
}

void CufftPlan::c2r(float2* in, float* out) const {
  CUGMM_REQUIRE(type_ == CUFFT_C2R, "cuFFT plan: not a C2R plan");
  CUGMM_CHECK(cufft().exec_c2r(h_, reinterpret_cast<cufftComplex*>(in), out));
}

}  // namespace cugmm::detail
