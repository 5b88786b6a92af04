// A data-parallel job inside one process, for tests of nn's split-batch paths without MPI: `size` threads,
// each a rank with a ThreadComm of one shared ThreadGroup. A sum over the ranks adds every rank's values
// in rank order (the same bits on every rank), on host or device memory of the caller's context; a gather
// concatenates them in rank order. Every call completes at once (Comm's default non-blocking forms).
#pragma once
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "core/buffer.h"
#include "core/comm.h"

namespace cugmm::test {

class ThreadGroup {
 public:
  explicit ThreadGroup(int size) : size_(size), slots_(static_cast<size_t>(size)) {}
  int size() const { return size_; }
  void barrier() {
    std::unique_lock<std::mutex> lock(m_);
    const long gen = generation_;
    if (++waiting_ == size_) {
      waiting_ = 0;
      ++generation_;
      cv_.notify_all();
    } else {
      cv_.wait(lock, [&] { return generation_ != gen; });
    }
  }
  std::vector<std::vector<double>>& slots() { return slots_; }
  std::vector<std::vector<float>>& float_slots() { return float_slots_; }
  std::vector<char>& bytes() { return bytes_; }

  // Runs f(rank) on `size` threads and joins them.
  void run(const std::function<void(int)>& f) {
    std::vector<std::thread> t;
    for (int r = 0; r < size_; ++r) t.emplace_back(f, r);
    for (auto& x : t) x.join();
  }

 private:
  int size_;
  std::mutex m_;
  std::condition_variable cv_;
  int waiting_ = 0;
  long generation_ = 0;
  std::vector<std::vector<double>> slots_;
  std::vector<std::vector<float>> float_slots_ = std::vector<std::vector<float>>(static_cast<size_t>(size_));
  std::vector<char> bytes_;
};

class ThreadComm final : public Comm {
 public:
  ThreadComm(ThreadGroup& g, int rank) : g_(g), rank_(rank) {}
  int rank() const override { return rank_; }
  int size() const override { return g_.size(); }
  std::string describe() const override { return "threads (test)"; }
  void allreduce_sum(Context& cx, float* data, size_t n) override {
    std::vector<float> h(n);
    mem_copy(Device::cpu, h.data(), cx.device(), data, n * sizeof(float), cx.stream());
    std::vector<double> d(h.begin(), h.end());
    sum(d);
    for (size_t i = 0; i < n; ++i) h[i] = float(d[i]);
    mem_copy(cx.device(), data, Device::cpu, h.data(), n * sizeof(float), cx.stream());
  }
  void allreduce_sum(double* data, size_t n) override {
    std::vector<double> d(data, data + n);
    sum(d);
    std::copy(d.begin(), d.end(), data);
  }
  // recv = every rank's rows in rank order.
  void allgather(Context& cx, const float* send, float* recv, size_t n) override {
    std::vector<float>& mine = g_.float_slots()[size_t(rank_)];
    mine.resize(n);
    mem_copy(Device::cpu, mine.data(), cx.device(), send, n * sizeof(float), cx.stream());
    g_.barrier();
    for (int r = 0; r < g_.size(); ++r)
      mem_copy(cx.device(), recv + size_t(r) * n, Device::cpu, g_.float_slots()[size_t(r)].data(), n * sizeof(float),
               cx.stream());
    g_.barrier();
  }
  void broadcast(void* data, size_t bytes, int root) override {
    if (rank_ == root) g_.bytes().assign(static_cast<char*>(data), static_cast<char*>(data) + bytes);
    g_.barrier();
    if (rank_ != root) std::copy(g_.bytes().begin(), g_.bytes().end(), static_cast<char*>(data));
    g_.barrier();
  }
  void barrier() override { g_.barrier(); }
  [[noreturn]] void abort(int) override { throw Error("ThreadComm::abort"); }

 private:
  // Each rank posts its values; after the barrier every rank adds all posts in rank order.
  void sum(std::vector<double>& d) {
    g_.slots()[size_t(rank_)] = d;
    g_.barrier();
    for (size_t i = 0; i < d.size(); ++i) {
      double s = 0;
      for (int r = 0; r < g_.size(); ++r) s += g_.slots()[size_t(r)][i];
      d[i] = s;
    }
    g_.barrier();  // every rank has read the posts before any posts again
  }

  ThreadGroup& g_;
  int rank_;
};

}  // namespace cugmm::test
