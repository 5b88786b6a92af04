// cuBLAS through a table of function pointers resolved on first use (core/dynlib.h), so the library is
// not a link dependency: commands that never touch a GPU never load it. cublas_v2.h maps the public names
// to their _v2 symbols (cublasCreate -> cublasCreate_v2, ...), which is what the table resolves. The
// handle is a resource of the run's Context, made once and bound to its stream. Include only from .cu
// files (it needs the CUDA headers).
#pragma once
#include <cublas_v2.h>

#include <string>

#include "core/context.h"

namespace cugmm::nn {

struct CublasApi {
  decltype(&cublasCreate_v2) create;
  decltype(&cublasDestroy_v2) destroy;
  decltype(&cublasSetStream_v2) set_stream;
  decltype(&cublasSgemm_v2) sgemm;
  decltype(&cublasGetStatusString) status_string;
  std::string library;  // the soname that loaded
};

// Loads cuBLAS on the first call (libcublas.so.<CUBLAS_VER_MAJOR>, then libcublas.so); throws
// cugmm::Error naming every name tried when none loads or a symbol is missing.
const CublasApi& cublas();

// The context's handle, created on first use and bound to cx.stream() (never the legacy default stream).
cublasHandle_t cublas_handle(Context& cx);

}  // namespace cugmm::nn
