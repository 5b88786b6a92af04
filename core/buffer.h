// The one RAII buffer type: memory on the CPU or on the GPU, owned, move-only, and tied to a Context so
// that on CUDA every allocation, fill and copy is queued on the run's stream (no default-stream work to
// race with it). Raw pointers from data() are host pointers on the CPU and device pointers on CUDA; the
// names of the copies say the direction (upload: from host memory, download: to host memory), so a
// host/device mix-up is a compile error where types differ and a clear exception where they cannot
// (check_device_pointer below).
#pragma once
#include <cstddef>
#include <vector>

#include "core/context.h"
#include "core/error.h"

namespace cugmm {

void* mem_alloc(Device d, size_t bytes, void* stream);
void mem_free(Device d, void* p, void* stream) noexcept;
void mem_zero(Device d, void* p, size_t bytes, void* stream);
// Any direction on the stream's order; copies to host memory wait for the stream (the data is there on
// return), copies from pageable host memory return once the source may be reused.
void mem_copy(Device dst_dev, void* dst, Device src_dev, const void* src, size_t bytes, void* stream);
// Queued on the stream without waiting (page-locked host memory: see PinnedBuffer); on the CPU a memcpy.
void mem_copy_async(Device dst_dev, void* dst, Device src_dev, const void* src, size_t bytes, void* stream);
// Throws cugmm::Error naming `what` when `p` is not memory of `d` (a host pointer given to a CUDA entry
// point or the reverse). No synchronisation.
void check_pointer(Device d, const void* p, const char* what);

// Page-locked host memory where the Context is CUDA (ordinary aligned memory on the CPU): copies between it
// and a Buffer are truly asynchronous on the stream (cudaMemcpyAsync from pageable memory is staged and
// synchronous), so per-batch inputs and outputs overlap with the GPU's work.
void* pinned_alloc(Device d, size_t bytes);
void pinned_free(Device d, void* p) noexcept;
// GPU memory the stream-ordered allocator has handed out: the most at any time since the process began
// (or since reset_device_peak), and what cudaMemGetInfo says is in use on the card now (this process's
// cuBLAS and cuFFT workspaces and the CUDA context included, and any other process's). Both 0 without the CUDA backend or a GPU.
size_t device_peak_bytes();
size_t device_in_use_bytes();
void reset_device_peak();

template <class T>
class PinnedBuffer {
 public:
  PinnedBuffer() = default;
  explicit PinnedBuffer(const Context& cx, size_t n = 0) : dev_(cx.device()) { resize(n); }
  ~PinnedBuffer() { pinned_free(dev_, p_); }
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;
  PinnedBuffer(PinnedBuffer&& o) noexcept : dev_(o.dev_), p_(o.p_), n_(o.n_), cap_(o.cap_) { o.p_ = nullptr; o.n_ = o.cap_ = 0; }
  PinnedBuffer& operator=(PinnedBuffer&& o) noexcept {
    if (this != &o) {
      pinned_free(dev_, p_);
      dev_ = o.dev_; p_ = o.p_; n_ = o.n_; cap_ = o.cap_;
      o.p_ = nullptr; o.n_ = o.cap_ = 0;
    }
    return *this;
  }
  // Grows only; contents are not kept when it grows.
  void resize(size_t n) {
    if (n > cap_) {
      pinned_free(dev_, p_);
      p_ = nullptr;
      cap_ = 0;
      p_ = static_cast<T*>(pinned_alloc(dev_, n * sizeof(T)));
      cap_ = n;
    }
    n_ = n;
  }
  T* data() { return p_; }
  const T* data() const { return p_; }
  size_t size() const { return n_; }
  T& operator[](size_t i) { return p_[i]; }
  const T& operator[](size_t i) const { return p_[i]; }

 private:
  Device dev_ = Device::cpu;
  T* p_ = nullptr;
  size_t n_ = 0, cap_ = 0;
};

template <class T>
class Buffer {
 public:
  Buffer() = default;
  explicit Buffer(const Context& cx, size_t n = 0) : dev_(cx.device()), stream_(cx.stream()) { resize(n); }
  ~Buffer() { release(); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  Buffer(Buffer&& o) noexcept : dev_(o.dev_), stream_(o.stream_), p_(o.p_), n_(o.n_), cap_(o.cap_) {
    o.p_ = nullptr;
    o.n_ = o.cap_ = 0;
  }
  Buffer& operator=(Buffer&& o) noexcept {
    if (this != &o) {
      release();
      dev_ = o.dev_; stream_ = o.stream_; p_ = o.p_; n_ = o.n_; cap_ = o.cap_;
      o.p_ = nullptr;
      o.n_ = o.cap_ = 0;
    }
    return *this;
  }

  // Grows only (contents are not kept when it grows), so workspaces settle at their peak size.
  void resize(size_t n) {
    if (n > cap_) {
      release();
      p_ = static_cast<T*>(mem_alloc(dev_, n * sizeof(T), stream_));
      cap_ = n;
    }
    n_ = n;
  }
  void zero() { if (n_) mem_zero(dev_, p_, n_ * sizeof(T), stream_); }
  void upload(const T* host, size_t n) {
    resize(n);
    if (n) mem_copy(dev_, p_, Device::cpu, host, n * sizeof(T), stream_);
  }
  void upload(const std::vector<T>& v) { upload(v.data(), v.size()); }
  void download(T* host, size_t n) const {
    CUGMM_REQUIRE(n <= n_, "Buffer::download past the end");
    if (n) mem_copy(Device::cpu, host, dev_, p_, n * sizeof(T), stream_);
  }
  // From / to page-locked memory without waiting: the copy is queued on the stream, so the staging
  // buffer must not be reused (upload) or read (download) until the stream has passed it (a later
  // download, or the Context's synchronize()).
  void upload_async(const PinnedBuffer<T>& host, size_t n) {
    CUGMM_REQUIRE(n <= host.size(), "Buffer::upload_async past the end of the staging buffer");
    resize(n);
    if (n) mem_copy_async(dev_, p_, Device::cpu, host.data(), n * sizeof(T), stream_);
  }
  void download_async(PinnedBuffer<T>& host, size_t n) const {
    CUGMM_REQUIRE(n <= n_ && n <= host.size(), "Buffer::download_async past the end");
    if (n) mem_copy_async(Device::cpu, host.data(), dev_, p_, n * sizeof(T), stream_);
  }
  std::vector<T> to_host() const {
    std::vector<T> v(n_);
    download(v.data(), n_);
    return v;
  }

  Device device() const { return dev_; }
  void* stream() const { return stream_; }
  T* data() { return p_; }
  const T* data() const { return p_; }
  size_t size() const { return n_; }
  size_t bytes() const { return n_ * sizeof(T); }
  size_t capacity_bytes() const { return cap_ * sizeof(T); }

 private:
  void release() {
    if (p_) mem_free(dev_, p_, stream_);
    p_ = nullptr;
    n_ = cap_ = 0;
  }
  Device dev_ = Device::cpu;
  void* stream_ = nullptr;
  T* p_ = nullptr;
  size_t n_ = 0, cap_ = 0;
};

}  // namespace cugmm

namespace cugmm::nn {
using cugmm::Buffer;  // nn/ names the same type
}  // namespace cugmm::nn
