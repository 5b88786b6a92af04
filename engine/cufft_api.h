// cuFFT reached through a table of function pointers resolved on first use (core/dynlib.h), so that
// commands which never run a GPU transform never load libcufft (and the engine does not link it), and
// an owning plan type. Include only from .cu files.
#pragma once
#include <cuda_runtime.h>
#include <cufft.h>

#include <cstddef>

#include "engine/cufft_check.h"

namespace cugmm::detail {

struct CufftApi {
  decltype(&cufftCreate) create;
  decltype(&cufftDestroy) destroy;
  decltype(&cufftMakePlanMany) make_plan_many;
  decltype(&cufftSetStream) set_stream;
  decltype(&cufftGetSize) get_size;
  decltype(&cufftExecR2C) exec_r2c;
  decltype(&cufftExecC2R) exec_c2r;
};
// Loads libcufft.so.<CUFFT_VER_MAJOR> (then libcufft.so) once; throws cugmm::Error saying what failed.
const CufftApi& cufft();

// A batched 2-D n x n real transform (R2C or C2R) of `count` contiguous images, bound to `stream`.
// Owns its handle: destroyed with the object, and nothing leaks when the constructor throws.
class CufftPlan {
 public:
  CufftPlan(int n, int count, cufftType type, cudaStream_t stream);
  ~CufftPlan();
  CufftPlan(const CufftPlan&) = delete;
  CufftPlan& operator=(const CufftPlan&) = delete;

  void r2c(float* in, float2* out) const;    // type CUFFT_R2C
  void c2r(float2* in, float* out) const;    // type CUFFT_C2R (overwrites `in`)
  size_t work_bytes() const { return work_; }
  int count() const { return count_; }

 private:
  cufftHandle h_ = 0;
  bool made_ = false;
  cufftType type_;
  int count_;
  size_t work_ = 0;
};

}  // namespace cugmm::detail
