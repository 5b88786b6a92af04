// The program's processes: MPI_Init/MPI_Finalize (the only process-wide MPI state, owned by main through
// this object) and the run's communicator. Under `mpirun` (Open MPI, or any launcher that sets PMI/PMIx
// variables) in a build with MPI, the job's ranks; otherwise a single process, exactly as before. A build
// without MPI started by mpirun with more than one rank refuses (each rank would run the whole job and
// write the same files).
#pragma once
#include <memory>

#include "core/comm.h"

namespace cugmm::dist {

class Launch {
 public:
  Launch(int& argc, char**& argv);  // throws cugmm::Error when the launch cannot work (see above)
  ~Launch();
  Launch(const Launch&) = delete;
  Launch& operator=(const Launch&) = delete;

  Comm& comm() { return *comm_; }
  int local_rank() const { return local_rank_; }  // rank among this node's ranks: its GPU under --device cuda
  static bool built_with_mpi();
  static bool built_with_nccl();

 private:
  bool mpi_ = false;
  int local_rank_ = 0;
  std::unique_ptr<Comm> comm_;
};

}  // namespace cugmm::dist
