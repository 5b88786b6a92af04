#include "core/dist/launch.h"

#include <cstdlib>
#include <string>

#include "core/error.h"

#ifdef CUGMM_HAVE_MPI
#include "core/dist/comm_mpi.h"
#endif
#ifdef CUGMM_HAVE_NCCL
#include "core/dist/comm_nccl.h"
#endif
#ifdef CUGMM_HAVE_CUDA
#include <cuda_runtime.h>
#endif

namespace cugmm::dist {

namespace {

// The job's size as the launcher announces it (0: not started by a launcher).
int launcher_size() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "PMI_SIZE", "MV2_COMM_WORLD_SIZE"})
    if (const char* s = std::getenv(v)) return std::atoi(s);
  return 0;
}

int launcher_local_rank() {
  for (const char* v : {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "MV2_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID"})
    if (const char* s = std::getenv(v)) return std::atoi(s);
  return -1;
}

}  // namespace

bool Launch::built_with_mpi() {
#ifdef CUGMM_HAVE_MPI
  return true;
#else
  return false;
#endif
}

bool Launch::built_with_nccl() {
#ifdef CUGMM_HAVE_NCCL
  return true;
#else
  return false;
#endif
}

Launch::Launch(int& argc, char**& argv) {
  const int announced = launcher_size();
#ifdef CUGMM_HAVE_MPI
  if (announced > 0) {
    MPI_Init(&argc, &argv);
    mpi_ = true;
    MPI_Comm node;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
    MPI_Comm_rank(node, &local_rank_);
    MPI_Comm_free(&node);
    int size = 1;
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (size > 1) {
#ifdef CUGMM_HAVE_CUDA
      // One GPU per rank: the node's ranks take its GPUs in turn (before any CUDA work makes a context).
      int gpus = 0;
      if (cudaGetDeviceCount(&gpus) == cudaSuccess && gpus > 0) cudaSetDevice(local_rank_ % gpus);
      else cudaGetLastError();  // no GPU: the CPU backend, nothing to pick
#endif
#ifdef CUGMM_HAVE_NCCL
      comm_ = std::make_unique<NcclComm>();
#else
      comm_ = std::make_unique<MpiComm>();
#endif
      return;
    }
  }
#else
  (void)argc;
  (void)argv;
  if (announced > 1)
    throw Error("started by mpirun with " + std::to_string(announced) +
                " ranks, but this cugmm was built without MPI (configure with -DCUGMM_MPI=ON and "
                "Debian's libopenmpi-dev installed)");
#endif
  const int lr = launcher_local_rank();
  local_rank_ = lr < 0 ? 0 : lr;
  comm_ = std::make_unique<SingleComm>();
}

Launch::~Launch() {
  comm_.reset();  // MPI objects before MPI_Finalize
#ifdef CUGMM_HAVE_MPI
  if (mpi_) MPI_Finalize();
#endif
}

}  // namespace cugmm::dist
