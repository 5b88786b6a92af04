// core/buffer.h on a GPU: page-locked staging copies queued on the context's stream keep the data, and a
// host pointer given where device memory is expected is a clear error.
#include <doctest/doctest.h>

#include <numeric>
#include <vector>

#include "core/buffer.h"
#include "core/context.h"

using namespace cugmm;

TEST_CASE("pinned staging: upload_async / download_async on the stream") {
  Context cx(Device::cuda);
  std::vector<float> v(1 << 20);
  std::iota(v.begin(), v.end(), 1.f);
  PinnedBuffer<float> stage(cx, v.size()), back(cx, v.size());
  std::copy(v.begin(), v.end(), stage.data());
  Buffer<float> b(cx);
  b.upload_async(stage, v.size());
  b.download_async(back, v.size());
  cx.synchronize();
  CHECK(std::equal(v.begin(), v.end(), back.data()));
  CHECK(b.to_host() == v);
}

TEST_CASE("check_pointer tells host from device memory") {
  Context cx(Device::cuda);
  Buffer<float> b(cx, 16);
  std::vector<float> h(16);
  CHECK_NOTHROW(check_pointer(Device::cuda, b.data(), "device buffer"));
  CHECK_THROWS_AS(check_pointer(Device::cuda, h.data(), "host vector"), Error);
  CHECK_THROWS_AS(check_pointer(Device::cpu, b.data(), "device buffer"), Error);
}
