// A shared library opened on first use (dlopen), so that commands which never touch a GPU do not pay
// for loading cuBLAS and cuFFT (hundreds of MB mapped, a noticeable start-up time). nn/ reaches cuBLAS
// and engine/ reaches cuFFT through tables of function pointers resolved from one of these.
#pragma once
#include <initializer_list>
#include <string>

// "libcufft.so.12" from the library's name and its major-version macro: CUGMM_SONAME(libcufft, CUFFT_VER_MAJOR).
#define CUGMM_SONAME_STR_(x) #x
#define CUGMM_SONAME(lib, major) #lib ".so." CUGMM_SONAME_STR_(major)

namespace cugmm {

class DynLib {
 public:
  // Opens the first name that loads (e.g. "libcufft.so.12", then "libcufft.so"); throws cugmm::Error
  // naming `what`, every name tried and the loader's reason when none does.
  DynLib(std::initializer_list<const char*> names, const char* what);
  ~DynLib();
  DynLib(const DynLib&) = delete;
  DynLib& operator=(const DynLib&) = delete;

  // The address of `name`; throws naming the library and the symbol when it is missing.
  void* symbol(const char* name) const;
  // Typed: fn = lib.get<decltype(&cufftExecR2C)>("cufftExecR2C").
  template <class Fn>
  Fn get(const char* name) const { return reinterpret_cast<Fn>(symbol(name)); }

  const std::string& name() const { return name_; }

 private:
  void* handle_ = nullptr;
  std::string name_;
};

}  // namespace cugmm
