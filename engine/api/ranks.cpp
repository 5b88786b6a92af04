#include "engine/api/ranks.h"

#include <filesystem>

#include "core/error.h"

namespace cugmm {

ParticleCache open_cache_on_ranks(Comm& comm, const CacheOptions& options, const std::string& path) {
  if (comm.size() == 1) return open_particle_cache(options, path, true);
  if (comm.rank() == 0) {
    ParticleCache cache = open_particle_cache(options, path, true);
    comm.barrier();
    return cache;
  }
  comm.barrier();  // rank 0 has written it
  if (!std::filesystem::exists(path))
    throw Error("rank " + std::to_string(comm.rank()) + " cannot see the particle cache " + path +
                " that rank 0 wrote: the run directory must be on a file system every rank shares");
  return open_particle_cache(options, path, false);
}

}  // namespace cugmm
