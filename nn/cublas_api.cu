#include "nn/cublas_api.h"

#include <memory>

#include "core/dynlib.h"
#include "nn/cublas_check.h"

namespace cugmm::nn {

const CublasApi& cublas() {
  // A magic static: resolved once, thread-safely; a failed load throws and is retried by the next call.
  static const CublasApi api = [] {
    static const DynLib lib({CUGMM_SONAME(libcublas, CUBLAS_VER_MAJOR), "libcublas.so"}, "cuBLAS");
    CublasApi a;
    a.create = lib.get<decltype(a.create)>("cublasCreate_v2");
    a.destroy = lib.get<decltype(a.destroy)>("cublasDestroy_v2");
    a.set_stream = lib.get<decltype(a.set_stream)>("cublasSetStream_v2");
    a.sgemm = lib.get<decltype(a.sgemm)>("cublasSgemm_v2");
    a.status_string = lib.get<decltype(a.status_string)>("cublasGetStatusString");
    a.library = lib.name();
    return a;
  }();
  return api;
}

namespace {
// FP32 maths (the default; TF32 only where an accuracy benchmark allows it), host-side alpha/beta.
struct CublasHandle {
  cublasHandle_t h = nullptr;
  explicit CublasHandle(void* stream) {
    CUGMM_CHECK(cublas().create(&h));
    if (cublasStatus_t s = cublas().set_stream(h, static_cast<cudaStream_t>(stream)); s != CUBLAS_STATUS_SUCCESS) {
      cublas().destroy(h);
      CUGMM_CHECK(s);
    }
  }
  ~CublasHandle() { cublas().destroy(h); }
  CublasHandle(const CublasHandle&) = delete;
  CublasHandle& operator=(const CublasHandle&) = delete;
};
}  // namespace

cublasHandle_t cublas_handle(Context& cx) {
  return cx.resource<CublasHandle>([&] { return std::make_unique<CublasHandle>(cx.stream()); }).h;
}

}  // namespace cugmm::nn
