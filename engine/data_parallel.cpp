#include "engine/data_parallel.h"

#include <cstdint>
#include <cstring>

#include "core/error.h"

namespace cugmm::data_parallel {

void exchange_gradients(Comm& comm, nn::Sequential& net) {
  if (comm.size() > 1) comm.allreduce_sum(net.context(), net.grads(), net.num_params());
}

bool any(Comm& comm, bool flag) {
  if (comm.size() == 1) return flag;
  double f = flag ? 1 : 0;
  comm.allreduce_sum(&f, 1);
  return f > 0;
}

void gather_rows(Comm& comm, std::vector<float>& rows) {
  if (comm.size() > 1) comm.allreduce_sum(cpu_context(), rows.data(), rows.size());
}

void same_everywhere(Comm& comm, const std::vector<float>& values, const std::string& what) {
  if (comm.size() == 1) return;
  uint64_t h = 1469598103934665603ull;  // FNV-1a over the bytes
  const unsigned char* b = reinterpret_cast<const unsigned char*>(values.data());
  for (size_t i = 0; i < values.size() * sizeof(float); ++i) h = (h ^ b[i]) * 1099511628211ull;
  uint64_t root = h;
  comm.broadcast(&root, sizeof root, 0);
  if (root != h)
    throw Error("rank " + std::to_string(comm.rank()) + "'s " + what + " differ from rank 0's: the ranks no "
                "longer train one model (a reduction that gave ranks different sums?)");
}

}  // namespace cugmm::data_parallel
