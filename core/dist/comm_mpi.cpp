#include "core/dist/comm_mpi.h"

#include <chrono>
#include <climits>
#include <cstdio>

#include "core/buffer.h"
#include "core/error.h"

namespace cugmm::dist {

namespace {

void check(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, text, &len);
  throw Error(std::string(what) + " failed: " + std::string(text, size_t(len)));
}

// MPI counts are ints: large arrays go in pieces.
constexpr size_t kMaxCount = size_t(INT_MAX) / 2;

}  // namespace

MpiComm::MpiComm() {
  check(MPI_Comm_dup(MPI_COMM_WORLD, &comm_), "MPI_Comm_dup");
  // Errors come back as codes (and become exceptions, then an abort in main) instead of MPI's default
  // handler ending the process without saying where.
  MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
  MPI_Comm_rank(comm_, &rank_);
  MPI_Comm_size(comm_, &size_);
}

MpiComm::~MpiComm() {
  if (comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
}

std::string MpiComm::describe() const {
  char v[MPI_MAX_LIBRARY_VERSION_STRING];
  int len = 0;
  MPI_Get_library_version(v, &len);
  std::string s(v, size_t(len));
  const size_t cut = s.find_first_of(",\n");
  return "MPI, " + std::to_string(size_) + " ranks (" + s.substr(0, cut) + ")";
}

void MpiComm::host_sum(float* data, size_t n) {
  for (size_t at = 0; at < n; at += kMaxCount)
    check(MPI_Allreduce(MPI_IN_PLACE, data + at, int(std::min(kMaxCount, n - at)), MPI_FLOAT, MPI_SUM, comm_),
          "MPI_Allreduce");
}

void MpiComm::allreduce_sum(Context& cx, float* data, size_t n) {
  const auto t0 = std::chrono::steady_clock::now();
  if (cx.cuda()) {
    staging_.resize(n);
    mem_copy(Device::cpu, staging_.data(), Device::cuda, data, n * sizeof(float), cx.stream());  // waits
    host_sum(staging_.data(), n);
    mem_copy(Device::cuda, data, Device::cpu, staging_.data(), n * sizeof(float), cx.stream());
  } else {
    host_sum(data, n);
  }
  exchange_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  exchange_bytes += n * sizeof(float);
}

void MpiComm::allreduce_sum(double* data, size_t n) {
  for (size_t at = 0; at < n; at += kMaxCount)
    check(MPI_Allreduce(MPI_IN_PLACE, data + at, int(std::min(kMaxCount, n - at)), MPI_DOUBLE, MPI_SUM, comm_),
          "MPI_Allreduce");
}

void MpiComm::broadcast(void* data, size_t bytes, int root) {
  char* p = static_cast<char*>(data);
  for (size_t at = 0; at < bytes; at += kMaxCount)
    check(MPI_Bcast(p + at, int(std::min(kMaxCount, bytes - at)), MPI_BYTE, root, comm_), "MPI_Bcast");
}

void MpiComm::barrier() { check(MPI_Barrier(comm_), "MPI_Barrier"); }

void MpiComm::abort(int code) {
  std::fflush(nullptr);
  MPI_Abort(comm_, code);
  std::_Exit(code);  // MPI_Abort does not return; should it, end this rank anyway
}

}  // namespace cugmm::dist
