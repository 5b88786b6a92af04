# Finds what cugmm links against and names it with imported targets. Used by the build and, installed,
# by cugmmConfig.cmake, so a project that calls find_package(cugmm) gets the same targets.
include(CMakeFindDependencyMacro)
find_dependency(Threads)
find_dependency(OpenMP)
find_dependency(TIFF)
find_dependency(PNG)
set(BLA_VENDOR OpenBLAS)
find_dependency(BLAS)
if(NOT TARGET cugmm_fftw)
  find_path(FFTW3_INCLUDE_DIR fftw3.h REQUIRED)
  find_library(FFTW3F_LIBRARY fftw3f REQUIRED)
  add_library(cugmm_fftw INTERFACE IMPORTED)
  target_include_directories(cugmm_fftw INTERFACE ${FFTW3_INCLUDE_DIR})
  target_link_libraries(cugmm_fftw INTERFACE ${FFTW3F_LIBRARY})
endif()
# gemmi (Debian gemmi-dev 0.5) is header-only; only io/ uses it, privately.
find_path(GEMMI_INCLUDE_DIR gemmi/model.hpp)
if(CUGMM_HAVE_CUDA)
  find_dependency(CUDAToolkit)
endif()
find_dependency(nlohmann_json)
# Eigen (header-only) is linked privately by engine/ (latent metrics); a static library still names it in
# its link interface, so the installed package must find it too.
find_dependency(Eigen3 3.3 NO_MODULE)
