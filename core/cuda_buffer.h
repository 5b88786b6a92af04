// TRANSITIONAL (removed once the projector and reconstruction use core/buffer.h): move-only device memory.
#pragma once
#include <cstddef>
#include <vector>

#include "core/cuda_check.h"

namespace cugmm {

template <class T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t n) { resize(n); }
  ~DeviceBuffer() { release(); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& o) noexcept : ptr_(o.ptr_), n_(o.n_), cap_(o.cap_) {
    o.ptr_ = nullptr; o.n_ = o.cap_ = 0;
  }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    if (this != &o) {
      release();
      ptr_ = o.ptr_; n_ = o.n_; cap_ = o.cap_;
      o.ptr_ = nullptr; o.n_ = o.cap_ = 0;
    }
    return *this;
  }

  // Reallocates only when growing, so buffers reused across batches settle at their peak size.
  void resize(size_t n) {
    if (n <= cap_) { n_ = n; return; }
    release();
    CUGMM_CHECK(cudaMalloc(&ptr_, n * sizeof(T)));
    n_ = cap_ = n;
  }
  void zero(cudaStream_t s = nullptr) {
    if (n_) CUGMM_CHECK(cudaMemsetAsync(ptr_, 0, n_ * sizeof(T), s));
  }
  void upload(const T* host, size_t n, cudaStream_t s = nullptr) {
    resize(n);
    if (n) CUGMM_CHECK(cudaMemcpyAsync(ptr_, host, n * sizeof(T), cudaMemcpyHostToDevice, s));
  }
  void upload(const std::vector<T>& v, cudaStream_t s = nullptr) { upload(v.data(), v.size(), s); }
  void download(T* host, size_t n, cudaStream_t s = nullptr) const {
    CUGMM_REQUIRE(n <= n_, "DeviceBuffer::download past the end");
    if (n) CUGMM_CHECK(cudaMemcpyAsync(host, ptr_, n * sizeof(T), cudaMemcpyDeviceToHost, s));
    if (n) CUGMM_CHECK(cudaStreamSynchronize(s));
  }
  std::vector<T> to_host() const { std::vector<T> v(n_); download(v.data(), n_); return v; }

  T* data() { return ptr_; }
  const T* data() const { return ptr_; }
  size_t size() const { return n_; }
  size_t bytes() const { return n_ * sizeof(T); }

 private:
  void release() {
    if (ptr_) cudaFree(ptr_);  // no throw from a destructor path
    ptr_ = nullptr; n_ = cap_ = 0;
  }
  T* ptr_ = nullptr;
  size_t n_ = 0, cap_ = 0;
};

}  // namespace cugmm
