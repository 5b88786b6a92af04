# Finds what cugmm links against and names it with imported targets. Used by the build and, installed,
# by cugmmConfig.cmake, so a project that calls find_package(cugmm) gets the same targets.
include(CMakeFindDependencyMacro)
find_dependency(Threads)
find_dependency(OpenMP)
find_dependency(TIFF)
# BLAS: Debian's OpenMP build of OpenBLAS (libopenblas-openmp-dev) where installed, so BLAS and cugmm's
# OpenMP loops share libgomp's one thread pool. With the pthread build, OpenBLAS's own threads compete
# with libgomp's workers spinning after each parallel region (the MLP step ran 1.6x slower). Linked by
# path: the default libopenblas.so.0 (Debian alternatives) may be another build, so the directory goes
# into the RPATH (CMake adds it for a library outside the implicit link directories). bench_mlp reports
# which build and which kernel (core type) ran. CUGMM_OPENBLAS=system takes whatever FindBLAS finds.
set(CUGMM_OPENBLAS "openmp" CACHE STRING "OpenBLAS build to link: openmp (Debian's, when installed) or system")
if(NOT TARGET BLAS::BLAS)
  if(CUGMM_OPENBLAS STREQUAL "openmp")
    # Under each CMAKE_PREFIX_PATH entry first (Debian packages unpacked into a prefix: scripts/gpu_all.sh),
    # then /usr.
    set(_cugmm_ob_lib "")
    set(_cugmm_ob_inc "")
    string(REPLACE ":" ";" _cugmm_env_prefixes "$ENV{CMAKE_PREFIX_PATH}")
    foreach(_p IN LISTS CMAKE_PREFIX_PATH _cugmm_env_prefixes)
      list(APPEND _cugmm_ob_lib ${_p}/lib/${CMAKE_LIBRARY_ARCHITECTURE}/openblas-openmp)
      list(APPEND _cugmm_ob_inc ${_p}/include/${CMAKE_LIBRARY_ARCHITECTURE}/openblas-openmp)
    endforeach()
    find_library(CUGMM_OPENBLAS_OPENMP_LIB openblas
                 PATHS ${_cugmm_ob_lib} /usr/lib/${CMAKE_LIBRARY_ARCHITECTURE}/openblas-openmp NO_DEFAULT_PATH)
    find_path(CUGMM_OPENBLAS_OPENMP_INCLUDE cblas.h
              PATHS ${_cugmm_ob_inc} /usr/include/${CMAKE_LIBRARY_ARCHITECTURE}/openblas-openmp NO_DEFAULT_PATH)
  endif()
  if(CUGMM_OPENBLAS_OPENMP_LIB AND CUGMM_OPENBLAS_OPENMP_INCLUDE)
    add_library(BLAS::BLAS INTERFACE IMPORTED)
    set_target_properties(BLAS::BLAS PROPERTIES INTERFACE_LINK_LIBRARIES "${CUGMM_OPENBLAS_OPENMP_LIB}"
                                                INTERFACE_INCLUDE_DIRECTORIES "${CUGMM_OPENBLAS_OPENMP_INCLUDE}")
    get_filename_component(CUGMM_OPENBLAS_RPATH "${CUGMM_OPENBLAS_OPENMP_LIB}" DIRECTORY)  # for the installed program
    if(NOT CMAKE_FIND_PACKAGE_NAME)  # the build itself, not a find_package(cugmm) consumer
      message(STATUS "cugmm: BLAS = OpenBLAS, OpenMP build (${CUGMM_OPENBLAS_OPENMP_LIB})")
    endif()
  else()
    if(CUGMM_OPENBLAS STREQUAL "openmp")
      message(WARNING "cugmm: Debian's OpenMP OpenBLAS (libopenblas-openmp-dev) not found; linking the system "
                      "BLAS, whose own threads may compete with OpenMP's (scripts/setup.sh installs it)")
    endif()
    set(BLA_VENDOR OpenBLAS)
    find_dependency(BLAS)
  endif()
endif()
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
# zlib: engine/ gzips the STAR rows the viewer page embeds (linked privately, named like Eigen above).
find_dependency(ZLIB)
