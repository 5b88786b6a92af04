# Data-parallel training over MPI ranks, NCCL between GPUs (core/dist/, issue 19). Both optional: without MPI
# the program is the single-process one it always was. CMake's CUDA toolkit module does not provide NCCL
# (it ships separately), so it is looked for on its own: nccl.h and libnccl under NCCL_ROOT, CUDA's
# prefix or the system paths; it is used with the CUDA backend and MPI (its bootstrap).
set(CUGMM_MPI "AUTO" CACHE STRING "Data-parallel training over MPI: AUTO (when found), ON or OFF")
set_property(CACHE CUGMM_MPI PROPERTY STRINGS AUTO ON OFF)
set(CUGMM_HAVE_MPI OFF)
set(CUGMM_HAVE_NCCL OFF)
if(NOT CUGMM_MPI STREQUAL "OFF")
  if(CUGMM_MPI STREQUAL "ON")
    find_package(MPI COMPONENTS CXX REQUIRED)
  else()
    find_package(MPI COMPONENTS CXX QUIET)
  endif()
  if(MPI_CXX_FOUND)
    set(CUGMM_HAVE_MPI ON)
  endif()
endif()
if(CUGMM_HAVE_MPI AND CUGMM_HAVE_CUDA)
  find_path(NCCL_INCLUDE_DIR nccl.h HINTS ${NCCL_ROOT} $ENV{NCCL_ROOT} ${CUDAToolkit_INCLUDE_DIRS}
            PATH_SUFFIXES include)
  find_library(NCCL_LIBRARY nccl HINTS ${NCCL_ROOT} $ENV{NCCL_ROOT} ${CUDAToolkit_LIBRARY_DIR}
               PATH_SUFFIXES lib lib64)
  if(NCCL_INCLUDE_DIR AND NCCL_LIBRARY)
    set(CUGMM_HAVE_NCCL ON)
  endif()
endif()
message(STATUS "cugmm: MPI ${CUGMM_HAVE_MPI}, NCCL ${CUGMM_HAVE_NCCL}")

set(CUGMM_DIST_SRC core/dist/launch.cpp)
set(CUGMM_DIST_DEPS cugmm_base)
if(CUGMM_HAVE_MPI)
  list(APPEND CUGMM_DIST_SRC core/dist/comm_mpi.cpp)
  list(APPEND CUGMM_DIST_DEPS MPI::MPI_CXX)
endif()
if(CUGMM_HAVE_NCCL)
  list(APPEND CUGMM_DIST_SRC core/dist/comm_nccl.cpp)
  list(APPEND CUGMM_DIST_DEPS ${NCCL_LIBRARY})
endif()
cugmm_layer(cugmm_dist SOURCES ${CUGMM_DIST_SRC} DEPS ${CUGMM_DIST_DEPS})
# The C API only: the deprecated MPI C++ bindings stay out (and their warnings with them).
target_compile_definitions(cugmm_dist PRIVATE $<$<BOOL:${CUGMM_HAVE_MPI}>:CUGMM_HAVE_MPI=1>
                                              $<$<BOOL:${CUGMM_HAVE_NCCL}>:CUGMM_HAVE_NCCL=1>
                                              OMPI_SKIP_MPICXX=1 MPICH_SKIP_MPICXX=1)
if(CUGMM_HAVE_NCCL)
  target_include_directories(cugmm_dist PRIVATE ${NCCL_INCLUDE_DIR})
endif()
if(CUGMM_HAVE_CUDA)
  target_link_libraries(cugmm_dist PRIVATE CUDA::cudart)
endif()
