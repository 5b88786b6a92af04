// core/buffer.h on the CPU backend: the copies in every direction and the staging buffer keep the data,
// buffers grow only, and a CUDA context refuses to exist where no GPU is (tests/gpu/test_buffer_cuda.cpp
// covers the device side).
#include <doctest/doctest.h>

#include <numeric>
#include <vector>

#include "core/buffer.h"
#include "core/context.h"
#include "core/device.h"

using namespace cugmm;

TEST_CASE("Buffer and PinnedBuffer round trips on the CPU") {
  Context& cx = cpu_context();
  std::vector<float> v(1000);
  std::iota(v.begin(), v.end(), 0.5f);
  Buffer<float> b(cx);
  b.upload(v);
  CHECK(b.size() == v.size());
  CHECK(b.to_host() == v);
  PinnedBuffer<float> stage(cx, v.size());
  std::copy(v.begin(), v.end(), stage.data());
  Buffer<float> c(cx);
  c.upload_async(stage, v.size());
  PinnedBuffer<float> back(cx, v.size());
  c.download_async(back, v.size());
  cx.synchronize();
  CHECK(std::vector<float>(back.data(), back.data() + back.size()) == v);
  // Grows only: a smaller size keeps the allocation (workspaces settle at their peak).
  const float* p = c.data();
  c.resize(10);
  CHECK(c.data() == p);
  CHECK(c.size() == 10);
  CHECK_THROWS_AS(c.download_async(back, 11), Error);
}

TEST_CASE("a CUDA context without a usable GPU is an error, not a crash") {
  if (cuda_available()) return;
  CHECK_THROWS_AS(Context(Device::cuda), Error);
}
