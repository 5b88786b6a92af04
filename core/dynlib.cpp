#include "core/dynlib.h"

#include <dlfcn.h>

#include "core/error.h"

namespace cugmm {

DynLib::DynLib(std::initializer_list<const char*> names, const char* what) {
  std::string tried;
  for (const char* n : names) {
    handle_ = dlopen(n, RTLD_NOW | RTLD_LOCAL);
    if (handle_) { name_ = n; return; }
    const char* why = dlerror();
    tried += std::string(tried.empty() ? "" : "; ") + n + ": " + (why ? why : "not found");
  }
  throw Error(std::string("cannot load ") + what + " (" + tried + ")");
}

DynLib::~DynLib() {
  // Left loaded on purpose: CUDA libraries register exit handlers that must outlive their callers.
}

void* DynLib::symbol(const char* sym) const {
  dlerror();
  void* p = dlsym(handle_, sym);
  if (!p) throw Error("symbol " + std::string(sym) + " missing from " + name_);
  return p;
}

}  // namespace cugmm
