// How the trainer shares its work among the ranks of a data-parallel run (issue 19; core/comm.h). Each
// global batch of R x B particles (the epoch's Philox permutation, the same on every rank) is cut into R
// slices of B in rank order; every rank runs the step on its slice, the networks synchronise batch-norm
// (nn::Sequential::set_comm), and the parameter gradients are added over the ranks before Adam, which
// scales them by 1 / R (nn::AdamConfig::grad_scale): the step of one process on the whole batch, up to the
// order of the sums. Every rank then applies the same update to the same weights, so they stay identical
// (checked each epoch: same_everywhere).
#pragma once
#include <cstddef>
#include <string>
#include <vector>

#include "core/comm.h"
#include "nn/sequential.h"

namespace cugmm::data_parallel {

// The dense exchange: the network's whole gradient array added over the ranks, in place (cost 4 bytes
// per parameter per step per rank and direction; DESIGN and README "Clusters" work out its scaling).
void exchange_gradients(Comm& comm, nn::Sequential& net);

// Whether any rank's flag is set (Ctrl-C reaches ranks at different batches; they stop at the same one).
bool any(Comm& comm, bool flag);

// `rows` (n x width floats, host memory) where each rank filled its rank_share of the n rows and left the
// rest 0: afterwards every rank holds all of them (a sum with zeros is exact).
void gather_rows(Comm& comm, std::vector<float>& rows);

// Throws naming `what` when this rank's values differ from rank 0's (a checksum broadcast from rank 0):
// ranks whose weights drifted apart would no longer compute one model.
void same_everywhere(Comm& comm, const std::vector<float>& values, const std::string& what);

}  // namespace cugmm::data_parallel
