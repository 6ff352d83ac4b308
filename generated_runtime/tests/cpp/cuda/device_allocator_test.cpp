// Tests of CachingDeviceAllocator: the core vbt::Allocator interface served by the caching allocator
// (host backend): device tag, stream choice, and the DataPtr deleter freeing into the cache.
#include <gtest/gtest.h>

#include "vbt/cuda/device_allocator.h"
#include "vbt/cuda/host_backend.h"

namespace vbt::cuda {
namespace {

TEST(CachingDeviceAllocator, DataPtrFreesIntoTheCacheOnItsStream) {
  HostBackend backend(64 << 20);
  auto cache = std::make_shared<CachingAllocator>(backend, AllocatorConfig{}, 1);
  StreamId current = 3;
  CachingDeviceAllocator allocator(cache, 1, [&current] { return current; });
  vbt::Allocator& generic = allocator;
  void* first = nullptr;
  {
    DataPtr d = generic.allocate(1000);
    first = d.data;
    EXPECT_EQ(d.device, (Device{DeviceType::CUDA, 1}));
    EXPECT_EQ(cache->stats().allocated_bytes.current, 1024);
  }
  EXPECT_EQ(cache->stats().allocated_bytes.current, 0);
  EXPECT_EQ(cache->stats().reserved_bytes.current, 2 << 20);  // cached, not returned
  current = 4;
  DataPtr other_stream = generic.allocate(1000);
  EXPECT_NE(other_stream.data, first);  // the cached block belongs to stream 3
  current = 3;
  DataPtr same_stream = generic.allocate(1000);
  EXPECT_EQ(same_stream.data, first);
  DataPtr empty = generic.allocate(0);
  EXPECT_EQ(empty.data, nullptr);
}

}  // namespace
}  // namespace vbt::cuda
