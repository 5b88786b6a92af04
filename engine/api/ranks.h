// Jobs run by several ranks (the program under mpirun, core/dist/launch.h; the library runs one): rank 0 makes what is shared (the particle cache)
// before the others open it, from the same run directory, which must be on a file system they all see.
#pragma once
#include <string>

#include "core/comm.h"
#include "engine/particle_cache.h"

namespace cugmm {

// open_particle_cache (rebuilding a stale cache) on rank 0 first; the other ranks then open that file,
// and say so clearly when they cannot see it.
ParticleCache open_cache_on_ranks(Comm& comm, const CacheOptions& options, const std::string& path);

}  // namespace cugmm
