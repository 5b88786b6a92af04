# Finds what cugmm links against and names it with imported targets. Used by the build and, installed,
# by cugmmConfig.cmake, so a project that calls find_package(cugmm) gets the same targets.
include(CMakeFindDependencyMacro)
find_dependency(Threads)
find_dependency(OpenMP)
find_dependency(TIFF)
set(BLA_VENDOR OpenBLAS)
find_dependency(BLAS)
if(NOT TARGET cugmm_fftw)
  find_path(FFTW3_INCLUDE_DIR fftw3.h REQUIRED)
  find_library(FFTW3F_LIBRARY fftw3f REQUIRED)
  add_library(cugmm_fftw INTERFACE IMPORTED)
  target_include_directories(cugmm_fftw INTERFACE ${FFTW3_INCLUDE_DIR})
  target_link_libraries(cugmm_fftw INTERFACE ${FFTW3F_LIBRARY})
endif()
# PLplot (Debian libplplot-dev; its cairo devices come with plplot-driver-cairo) draws io/plot's figures.
# Only io/ uses it, privately; a static cugmm_io still needs it at link time, hence here too.
if(NOT TARGET PkgConfig::PLPLOT)
  find_dependency(PkgConfig)
  pkg_check_modules(PLPLOT REQUIRED IMPORTED_TARGET plplot)
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
