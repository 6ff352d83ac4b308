// Tests of PinnedHostAllocator's policy (Note [Pinned host memory]) on the host backend: size classes,
// reuse of freed blocks, no reuse while a recorded copy may still be pending, interior pointers, empty_cache
// and the out-of-memory retry.
#include <gtest/gtest.h>

#include "vbt/cuda/host_backend.h"
#include "vbt/cuda/pinned_allocator.h"

namespace vbt::cuda {
namespace {

TEST(PinnedHostAllocator, RoundsToPowersOfTwoFrom512) {
  EXPECT_EQ(PinnedHostAllocator::round_size(1), 512u);
  EXPECT_EQ(PinnedHostAllocator::round_size(512), 512u);
  EXPECT_EQ(PinnedHostAllocator::round_size(513), 1024u);
  EXPECT_EQ(PinnedHostAllocator::round_size((1u << 20) + 1), 2u << 20);
}

TEST(PinnedHostAllocator, ReusesAFreedBlockOfTheSameSizeClass) {
  HostBackend backend(64 << 20);
  PinnedHostAllocator alloc(backend);
  EXPECT_EQ(alloc.allocate(0), nullptr);
  void* a = alloc.allocate(1000);
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(alloc.block_size(a), 1024u);
  EXPECT_EQ(alloc.stats().allocated_bytes, 1024);
  alloc.free(a);
  EXPECT_EQ(alloc.stats().allocated_bytes, 0);
  EXPECT_EQ(alloc.stats().cached_bytes, 1024);
  EXPECT_EQ(backend.raw_bytes_in_use(), 1024u);  // cached, not returned
  void* other_class = alloc.allocate(2000);
  EXPECT_NE(other_class, a);
  void* same_class = alloc.allocate(600);  // 600 -> 1024 as well
  EXPECT_EQ(same_class, a);
  EXPECT_EQ(alloc.stats().num_raw_allocs, 2);
  EXPECT_EQ(alloc.stats().num_allocs, 3);
  alloc.free(same_class);
  alloc.free(other_class);
  alloc.empty_cache();
  EXPECT_EQ(backend.raw_bytes_in_use(), 0u);
  EXPECT_EQ(alloc.stats().cached_bytes, 0);
}

TEST(PinnedHostAllocator, ABlockWithAPendingCopyIsNotReusedUntilTheCopyCompletes) {
  HostBackend backend(64 << 20);
  PinnedHostAllocator alloc(backend);
  const StreamId copy_stream = 7;
  void* a = alloc.allocate(4096);
  // an async copy reads from the middle of the block (a tensor view); recorded on the copy's stream
  EXPECT_TRUE(alloc.record_use(static_cast<char*>(a) + 100, copy_stream));
  alloc.free(a);
  EXPECT_EQ(alloc.stats().pending_blocks, 1);
  void* b = alloc.allocate(4096);
  EXPECT_NE(b, a) << "a pinned block was reused while an asynchronous copy from it may still be running";
  alloc.empty_cache();  // pending blocks are not released either
  EXPECT_EQ(backend.raw_bytes_in_use(), 2u * 4096);
  backend.complete_stream(copy_stream);  // the copy has finished
  void* c = alloc.allocate(4096);
  EXPECT_EQ(c, a);
  EXPECT_EQ(alloc.stats().pending_blocks, 0);
  EXPECT_EQ(backend.live_events(), 0u);  // completed events are destroyed
  alloc.free(b);
  alloc.free(c);
}

TEST(PinnedHostAllocator, WaitsForEveryRecordedUse) {
  HostBackend backend(64 << 20);
  PinnedHostAllocator alloc(backend);
  void* a = alloc.allocate(512);
  EXPECT_TRUE(alloc.record_use(a, 1));
  EXPECT_TRUE(alloc.record_use(a, 2));
  EXPECT_EQ(alloc.stats().num_recorded_uses, 2);
  alloc.free(a);
  backend.complete_stream(1);
  EXPECT_NE(alloc.allocate(512), a);  // stream 2's copy is still pending
  backend.complete_stream(2);
  EXPECT_EQ(alloc.allocate(512), a);
}

TEST(PinnedHostAllocator, ContainsOnlyLiveBlocks) {
  HostBackend backend(64 << 20);
  PinnedHostAllocator alloc(backend);
  void* a = alloc.allocate(1000);
  EXPECT_TRUE(alloc.contains(a));
  EXPECT_TRUE(alloc.contains(static_cast<char*>(a) + 1023));
  EXPECT_FALSE(alloc.contains(static_cast<char*>(a) + 1024));
  int on_stack = 0;
  EXPECT_FALSE(alloc.contains(&on_stack));
  EXPECT_FALSE(alloc.record_use(&on_stack, 1));
  alloc.free(a);
  EXPECT_FALSE(alloc.contains(a));  // cached, not held
  EXPECT_FALSE(alloc.record_use(a, 1));
  EXPECT_THROW(alloc.free(a), vbt::Error);  // double free
}

TEST(PinnedHostAllocator, OutOfMemoryReleasesTheCacheThenThrows) {
  HostBackend backend(8192);
  PinnedHostAllocator alloc(backend);
  void* a = alloc.allocate(4096);
  alloc.free(a);  // cached: 4096 of 8192 bytes
  void* b = alloc.allocate(8192);  // needs the cached block's memory back
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(alloc.stats().num_raw_frees, 1);
  EXPECT_THROW(alloc.allocate(512), OutOfMemoryError);
  alloc.free(b);
  EXPECT_NE(alloc.allocate(512), nullptr);  // usable after the error
}

}  // namespace
}  // namespace vbt::cuda
