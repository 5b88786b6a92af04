// Memory that lives on either backend: the layers hold their parameters, gradients, optimizer state and
// activations in Buffer<T>, and the same code runs whichever device the buffer is on. Raw pointers
// from data() are host pointers on Device::cpu and device pointers on Device::cuda.
#pragma once
#include <cstddef>
#include <vector>

#include "engine/device.h"

namespace cugmm::nn {

void* mem_alloc(Device d, size_t bytes);
void mem_free(Device d, void* p) noexcept;
void mem_zero(Device d, void* p, size_t bytes);
// Any direction: host <-> host, host <-> device, device <-> device. Synchronous.
void mem_copy(Device dst_dev, void* dst, Device src_dev, const void* src, size_t bytes);
// Waits for the device's queued work (timing; everything else synchronises where it must).
void device_sync(Device d);

template <class T>
class Buffer {
 public:
  Buffer() = default;
  explicit Buffer(Device d, size_t n = 0) : dev_(d) { resize(n); }
  ~Buffer() { release(); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  Buffer(Buffer&& o) noexcept : dev_(o.dev_), p_(o.p_), n_(o.n_), cap_(o.cap_) { o.p_ = nullptr; o.n_ = o.cap_ = 0; }
  Buffer& operator=(Buffer&& o) noexcept {
    if (this != &o) {
      release();
      dev_ = o.dev_; p_ = o.p_; n_ = o.n_; cap_ = o.cap_;
      o.p_ = nullptr; o.n_ = o.cap_ = 0;
    }
    return *this;
  }

  // Grows only (contents are not kept when it grows), so workspaces settle at their peak size.
  void resize(size_t n) {
    if (n > cap_) {
      release();
      p_ = static_cast<T*>(mem_alloc(dev_, n * sizeof(T)));
      cap_ = n;
    }
    n_ = n;
  }
  void zero() { if (n_) mem_zero(dev_, p_, n_ * sizeof(T)); }
  void upload(const T* host, size_t n) { resize(n); if (n) mem_copy(dev_, p_, Device::cpu, host, n * sizeof(T)); }
  void upload(const std::vector<T>& v) { upload(v.data(), v.size()); }
  std::vector<T> to_host() const {
    std::vector<T> v(n_);
    if (n_) mem_copy(Device::cpu, v.data(), dev_, p_, n_ * sizeof(T));
    return v;
  }

  Device device() const { return dev_; }
  T* data() { return p_; }
  const T* data() const { return p_; }
  size_t size() const { return n_; }
  size_t bytes() const { return n_ * sizeof(T); }

 private:
  void release() {
    if (p_) mem_free(dev_, p_);
    p_ = nullptr; n_ = cap_ = 0;
  }
  Device dev_ = Device::cpu;
  T* p_ = nullptr;
  size_t n_ = 0, cap_ = 0;
};

}  // namespace cugmm::nn
