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

double since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// A gather's pieces would interleave the ranks' rows: one piece per rank, or a clear refusal.
int gather_count(size_t n) {
  if (n > kMaxCount)
    throw Error("an all-gather of " + std::to_string(n) + " floats per rank is more than one MPI call carries");
  return int(n);
}

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
  exchange_seconds += since(t0);
  exchange_bytes += n * sizeof(float);
}

void MpiComm::allgather(Context& cx, const float* send, float* recv, size_t n) {
  const auto t0 = std::chrono::steady_clock::now();
  const int count = gather_count(n);
  const size_t all = n * size_t(size_);
  if (cx.cuda()) {
    staging_in_.resize(n);
    staging_.resize(all);
    mem_copy(Device::cpu, staging_in_.data(), Device::cuda, send, n * sizeof(float), cx.stream());  // waits
    check(MPI_Allgather(staging_in_.data(), count, MPI_FLOAT, staging_.data(), count, MPI_FLOAT, comm_),
          "MPI_Allgather");
    mem_copy(Device::cuda, recv, Device::cpu, staging_.data(), all * sizeof(float), cx.stream());
  } else {
    check(MPI_Allgather(send, count, MPI_FLOAT, recv, count, MPI_FLOAT, comm_), "MPI_Allgather");
  }
  exchange_seconds += since(t0);
  exchange_bytes += all * sizeof(float);
}

void MpiComm::start_allreduce_sum(Context& cx, float* data, size_t n) {
  if (cx.cuda()) return allreduce_sum(cx, data, n);
  const auto t0 = std::chrono::steady_clock::now();
  for (size_t at = 0; at < n; at += kMaxCount) {
    pending_.push_back(MPI_REQUEST_NULL);
    check(MPI_Iallreduce(MPI_IN_PLACE, data + at, int(std::min(kMaxCount, n - at)), MPI_FLOAT, MPI_SUM, comm_,
                         &pending_.back()),
          "MPI_Iallreduce");
  }
  exchange_seconds += since(t0);
  exchange_bytes += n * sizeof(float);
}

void MpiComm::start_allgather(Context& cx, const float* send, float* recv, size_t n) {
  if (cx.cuda()) return allgather(cx, send, recv, n);
  const auto t0 = std::chrono::steady_clock::now();
  const int count = gather_count(n);
  pending_.push_back(MPI_REQUEST_NULL);
  check(MPI_Iallgather(send, count, MPI_FLOAT, recv, count, MPI_FLOAT, comm_, &pending_.back()), "MPI_Iallgather");
  exchange_seconds += since(t0);
  exchange_bytes += n * size_t(size_) * sizeof(float);
}

void MpiComm::progress() {
  if (pending_.empty()) return;
  int done = 0;
  check(MPI_Testall(int(pending_.size()), pending_.data(), &done, MPI_STATUSES_IGNORE), "MPI_Testall");
  if (done) pending_.clear();
}

void MpiComm::wait_all(Context&) {
  if (pending_.empty()) return;
  const auto t0 = std::chrono::steady_clock::now();
  check(MPI_Waitall(int(pending_.size()), pending_.data(), MPI_STATUSES_IGNORE), "MPI_Waitall");
  pending_.clear();
  exchange_seconds += since(t0);
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
