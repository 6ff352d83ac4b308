// Tests of the caching allocator policy (Note [Caching allocator policy]) on the host backend:
// rounding and pools, splitting, merging, best fit, stream ownership and record_stream reuse rules,
// stats and peaks, the memory-fraction cap with OOM and the staged GC, graph-private pools and graph pools
// shared between graphs (Note [Shared graph pools]), poison.
#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <map>
#include <random>
#include <set>

#include "vbt/cuda/caching_allocator.h"
#include "vbt/cuda/host_backend.h"

namespace vbt::cuda {
namespace {

constexpr std::size_t KiB = 1024, MiB = 1024 * 1024;

std::uintptr_t addr(void* p) { return reinterpret_cast<std::uintptr_t>(p); }

struct AllocatorTest : ::testing::Test {
  HostBackend backend{256 * MiB};
  CachingAllocator alloc{backend};
  std::vector<AllocatorEvent> events;
  void observe() {
    alloc.set_observer([this](const AllocatorEvent& e) { events.push_back(e); });
  }
  int count(AllocatorEvent::Kind kind) const {
    int n = 0;
    for (auto& e : events) n += e.kind == kind;
    return n;
  }
};

TEST_F(AllocatorTest, RoundsTo512AndUsesTwoMiBSmallSegments) {
  void* p = alloc.allocate(1, 0);
  EXPECT_EQ(alloc.block_size(p), 512u);
  auto s = alloc.stats();
  EXPECT_EQ(s.allocated_bytes.current, 512);
  EXPECT_EQ(s.reserved_bytes.current, static_cast<int64_t>(2 * MiB));
  EXPECT_EQ(s.num_segment_allocs, 1);
  EXPECT_EQ(alloc.allocate(0, 0), nullptr);
  alloc.free(p);
}

TEST_F(AllocatorTest, SplitsASegmentIntoAdjacentBlocks) {
  void* a = alloc.allocate(1000, 0);
  void* b = alloc.allocate(3000, 0);
  EXPECT_EQ(addr(b), addr(a) + 1024);
  EXPECT_EQ(alloc.stats().segments.current, 1);
  alloc.free(a);
  alloc.free(b);
}

TEST_F(AllocatorTest, MergesFreeNeighboursBackIntoOneBlock) {
  void* a = alloc.allocate(512, 0);
  void* b = alloc.allocate(512, 0);
  void* c = alloc.allocate(512, 0);
  alloc.free(a);
  alloc.free(c);
  alloc.free(b);  // merges with both neighbours and the tail remainder
  std::string snap = alloc.snapshot_json();
  EXPECT_NE(snap.find("\"blocks\": [{\"address\": " + std::to_string(addr(a)) + ", \"size\": 2097152"),
            std::string::npos)
      << snap;
  // The merged segment serves a request as large as the whole small segment without a new segment.
  void* whole = alloc.allocate(MiB, 0);
  EXPECT_EQ(addr(whole), addr(a));
  EXPECT_EQ(alloc.stats().num_segment_allocs, 1);
  alloc.free(whole);
}

TEST_F(AllocatorTest, BestFitPicksTheSmallestFreeBlockThatFits) {
  void* big = alloc.allocate(4096, 0);
  void* sep1 = alloc.allocate(512, 0);
  void* small = alloc.allocate(2048, 0);
  void* sep2 = alloc.allocate(512, 0);
  alloc.free(big);
  alloc.free(small);
  void* p = alloc.allocate(2000, 0);  // fits both the 4096 and the 2048 hole: best fit is 2048
  EXPECT_EQ(addr(p), addr(small));
  void* q = alloc.allocate(3000, 0);  // only the 4096 hole fits; it is split
  EXPECT_EQ(addr(q), addr(big));
  EXPECT_EQ(alloc.block_size(q), 3072u);
  for (void* x : {sep1, sep2, p, q}) alloc.free(x);
}

TEST_F(AllocatorTest, LargePoolSplitsOnlyWhenTheRemainderExceedsOneMiB) {
  void* p = alloc.allocate(1536 * KiB, 0);  // 2 MiB segment, remainder 512 KiB: not split
  EXPECT_EQ(alloc.block_size(p), 2 * MiB);
  void* big = alloc.allocate(8 * MiB, 0);
  EXPECT_EQ(alloc.stats().reserved_bytes.current, static_cast<int64_t>(10 * MiB));
  alloc.free(big);
  void* q = alloc.allocate(3 * MiB, 0);  // reuses the 8 MiB block, split: remainder 5 MiB stays free
  EXPECT_EQ(addr(q), addr(big));
  EXPECT_EQ(alloc.block_size(q), 3 * MiB);
  void* r = alloc.allocate(5 * MiB, 0);
  EXPECT_EQ(addr(r), addr(big) + 3 * MiB);
  EXPECT_EQ(alloc.stats().num_segment_allocs, 2);
  for (void* x : {p, q, r}) alloc.free(x);
}

TEST_F(AllocatorTest, FreeBlocksAreReusedOnlyOnTheirOwnStream) {
  void* a = alloc.allocate(4096, 1);
  alloc.free(a);
  void* b = alloc.allocate(4096, 2);
  EXPECT_NE(addr(b), addr(a));
  EXPECT_EQ(alloc.stats().segments.current, 2);
  void* c = alloc.allocate(4096, 1);
  EXPECT_EQ(addr(c), addr(a));
  alloc.free(b);
  alloc.free(c);
}

TEST_F(AllocatorTest, RecordStreamDelaysReuseUntilTheEventCompletes) {
  observe();
  void* a = alloc.allocate(8192, 0);
  alloc.record_stream(a, 7);
  alloc.record_stream(a, 0);  // its own stream: no event needed
  alloc.free(a);
  EXPECT_EQ(count(AllocatorEvent::Kind::EventRecord), 1);
  auto s = alloc.stats();
  EXPECT_EQ(s.allocated_bytes.current, 0);
  EXPECT_EQ(s.active_bytes.current, 8192);  // pending blocks stay active
  void* b = alloc.allocate(8192, 0);
  EXPECT_NE(addr(b), addr(a));  // the event on stream 7 has not completed
  EXPECT_EQ(backend.complete_stream(7).size(), 1u);
  void* c = alloc.allocate(8192, 0);
  EXPECT_EQ(addr(c), addr(a));  // now it may be reused
  EXPECT_EQ(count(AllocatorEvent::Kind::BlockReady), 1);
  EXPECT_EQ(backend.live_events(), 0u);
  alloc.free(b);
  alloc.free(c);
}

TEST_F(AllocatorTest, TryRecordStreamIgnoresForeignPointersAndOtherwiseRecords) {
  // The autograd engine's record_stream (src/vbt/cuda/autograd_streams.cpp) may see memory the allocator does
  // not own (DLPack imports): try_record_stream says so instead of throwing; on a live block it is record_stream.
  int foreign = 0;
  EXPECT_FALSE(alloc.try_record_stream(&foreign, 3));
  EXPECT_THROW(alloc.record_stream(&foreign, 3), vbt::Error);
  void* a = alloc.allocate(4096, 0);
  EXPECT_TRUE(alloc.try_record_stream(a, 3));
  alloc.free(a);
  EXPECT_FALSE(alloc.try_record_stream(a, 3));  // freed: no longer live
  void* b = alloc.allocate(4096, 0);
  EXPECT_NE(addr(b), addr(a));  // pending on stream 3
  backend.complete_stream(3);
  void* c = alloc.allocate(4096, 0);
  EXPECT_EQ(addr(c), addr(a));
  alloc.free(b);
  alloc.free(c);
}

TEST_F(AllocatorTest, BlockUsedOnTwoStreamsWaitsForBothEvents) {
  void* a = alloc.allocate(4096, 0);
  alloc.record_stream(a, 1);
  alloc.record_stream(a, 2);
  alloc.free(a);
  backend.complete_stream(1);
  void* b = alloc.allocate(4096, 0);
  EXPECT_NE(addr(b), addr(a));
  backend.complete_stream(2);
  void* c = alloc.allocate(4096, 0);
  EXPECT_EQ(addr(c), addr(a));
  alloc.free(b);
  alloc.free(c);
}

TEST_F(AllocatorTest, StatsTrackPeaksAndResetThem) {
  void* a = alloc.allocate(3 * MiB, 0);
  // A 4 MiB large segment; the 1 MiB remainder is not > 1 MiB, so the block is the whole segment and
  // allocated_bytes (which counts block bytes, like PyTorch) grows by 4 MiB.
  EXPECT_EQ(alloc.block_size(a), 4 * MiB);
  void* b = alloc.allocate(1024, 0);
  alloc.free(a);
  auto s = alloc.stats();
  EXPECT_EQ(s.allocated_bytes.current, 1024);
  EXPECT_EQ(s.allocated_bytes.peak, static_cast<int64_t>(4 * MiB + 1024));
  EXPECT_EQ(s.reserved_bytes.peak, static_cast<int64_t>(6 * MiB));
  EXPECT_EQ(s.num_allocs, 2);
  EXPECT_EQ(s.num_frees, 1);
  alloc.reset_peak_stats();
  s = alloc.stats();
  EXPECT_EQ(s.allocated_bytes.peak, 1024);
  EXPECT_EQ(s.reserved_bytes.peak, s.reserved_bytes.current);
  alloc.free(b);
}

TEST_F(AllocatorTest, FractionCapRaisesAWellFormedOomAndStaysUsable) {
  alloc.set_per_process_memory_fraction(0.0625);  // 16 MiB of 256 MiB
  EXPECT_EQ(alloc.memory_limit(), 16 * MiB);
  void* a = alloc.allocate(10 * MiB, 0);
  try {
    alloc.allocate(10 * MiB, 0);
    FAIL() << "expected OutOfMemoryError";
  } catch (const OutOfMemoryError& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("tried to allocate 10485760 bytes"), std::string::npos) << msg;
    EXPECT_NE(msg.find("reserved 10485760 bytes"), std::string::npos) << msg;
    EXPECT_NE(msg.find("limit 16777216 bytes"), std::string::npos) << msg;
    EXPECT_EQ(e.requested_bytes, 10 * MiB);
    EXPECT_EQ(e.stats.num_ooms, 1);
  }
  EXPECT_EQ(alloc.stats().num_ooms, 1);
  alloc.free(a);
  void* b = alloc.allocate(10 * MiB, 0);  // the cached 10 MiB block
  EXPECT_EQ(addr(b), addr(a));
  void* c = alloc.allocate(4 * MiB, 0);
  alloc.free(b);
  alloc.free(c);
  EXPECT_THROW(alloc.set_per_process_memory_fraction(0.0), vbt::Error);
  EXPECT_THROW(alloc.set_per_process_memory_fraction(1.5), vbt::Error);
}

std::vector<int> gc_stages(const std::vector<AllocatorEvent>& events) {
  std::vector<int> stages;
  for (auto& e : events)
    if (e.kind == AllocatorEvent::Kind::GcStage) stages.push_back(e.stage);
  return stages;
}

TEST_F(AllocatorTest, GcStageOneFreesTheOldestCachedSegmentFirst) {
  alloc.set_per_process_memory_fraction(6.0 / 256);  // 6 MiB: three small segments
  void* a = alloc.allocate(MiB, 0);
  void* b = alloc.allocate(MiB, 0);  // same (oldest) segment as a
  void* c = alloc.allocate(MiB, 1);  // second segment
  void* d = alloc.allocate(MiB, 2);  // third segment
  alloc.free(a);
  alloc.free(b);
  alloc.free(c);
  observe();
  void* e = alloc.allocate(MiB, 3);  // needs a fourth: GC stage 1 frees only the oldest (a's)
  EXPECT_EQ(gc_stages(events), std::vector<int>{1});
  ASSERT_EQ(count(AllocatorEvent::Kind::SegmentFree), 1);
  for (auto& ev : events)
    if (ev.kind == AllocatorEvent::Kind::SegmentFree) EXPECT_EQ(ev.address, addr(a));
  EXPECT_EQ(alloc.stats().num_gc_segment_frees, 1);
  void* c2 = alloc.allocate(MiB, 1);  // c's segment survived in the cache
  EXPECT_EQ(addr(c2), addr(c));
  for (void* x : {c2, d, e}) alloc.free(x);
}

TEST_F(AllocatorTest, GcStageTwoFreesCachedSegmentsOfTheOtherPool) {
  alloc.set_per_process_memory_fraction(6.0 / 256);
  void* x = alloc.allocate(4096, 0);
  alloc.free(x);  // a cached 2 MiB small segment
  void* y = alloc.allocate(4 * MiB, 0);
  observe();
  void* z = alloc.allocate(2 * MiB, 1);  // large pool has nothing free: stage 2 frees the small segment
  EXPECT_EQ(gc_stages(events), (std::vector<int>{1, 2}));
  EXPECT_EQ(alloc.stats().reserved_bytes.current, static_cast<int64_t>(6 * MiB));
  alloc.free(y);
  alloc.free(z);
}

TEST_F(AllocatorTest, GcStageThreeWaitsForPendingEventsThenFlushes) {
  alloc.set_per_process_memory_fraction(6.0 / 256);
  void* z = alloc.allocate(4 * MiB, 0);
  alloc.record_stream(z, 1);
  alloc.free(z);  // pending: only waiting on its event frees it
  observe();
  void* w = alloc.allocate(4 * MiB, 2);
  EXPECT_EQ(gc_stages(events), (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(alloc.stats().num_cache_flushes, 1);
  EXPECT_EQ(backend.live_events(), 0u);
  EXPECT_EQ(alloc.stats().reserved_bytes.current, static_cast<int64_t>(4 * MiB));
  alloc.free(w);
}

TEST_F(AllocatorTest, DeviceFullRawAllocIsRetriedAfterGc) {
  observe();
  backend.fail_next_raw_allocs(1);
  void* p = alloc.allocate(4096, 0);
  EXPECT_NE(p, nullptr);
  EXPECT_EQ(gc_stages(events), std::vector<int>{1});
  alloc.free(p);
}

TEST_F(AllocatorTest, OomAfterAllStagesLeavesConsistentStats) {
  observe();
  alloc.set_per_process_memory_fraction(0.0625);
  void* a = alloc.allocate(12 * MiB, 0);
  EXPECT_THROW(alloc.allocate(8 * MiB, 0), OutOfMemoryError);
  EXPECT_EQ(gc_stages(events), (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(count(AllocatorEvent::Kind::Oom), 1);
  auto s = alloc.stats();
  EXPECT_EQ(s.allocated_bytes.current, static_cast<int64_t>(12 * MiB));
  EXPECT_EQ(s.reserved_bytes.current, static_cast<int64_t>(12 * MiB));
  alloc.free(a);
}

TEST_F(AllocatorTest, EmptyCacheReturnsEverythingToTheBackend) {
  std::vector<void*> ptrs;
  for (std::size_t n : {100u, 5000u, 300000u, 3000000u, 9000000u}) ptrs.push_back(alloc.allocate(n, 0));
  void* pending = alloc.allocate(777, 0);
  alloc.record_stream(pending, 4);
  for (void* p : ptrs) alloc.free(p);
  alloc.free(pending);
  alloc.empty_cache();
  auto s = alloc.stats();
  EXPECT_EQ(s.reserved_bytes.current, 0);
  EXPECT_EQ(s.active_bytes.current, 0);
  EXPECT_EQ(s.num_segment_allocs, s.num_segment_frees);
  EXPECT_EQ(backend.raw_bytes_in_use(), 0u);
  EXPECT_EQ(backend.live_events(), 0u);
}

TEST_F(AllocatorTest, GraphPoolBlocksAreNeverHandedToOtherAllocations) {
  alloc.begin_capture(/*graph=*/1, /*stream=*/5);
  void* g = alloc.allocate(4096, 5);
  void* other = alloc.allocate(4096, 6);  // another stream during capture: general pool
  alloc.free(g);                           // back into graph 1's pool
  void* g2 = alloc.allocate(4096, 5);      // still capturing: graph pool reuse
  EXPECT_EQ(addr(g2), addr(g));
  alloc.end_capture(1);
  alloc.free(g2);
  void* after = alloc.allocate(4096, 5);  // not capturing any more: must not take graph 1's block
  std::string snap = alloc.snapshot_json();
  EXPECT_NE(addr(after), addr(g));
  EXPECT_NE(snap.find("\"graph\": 1"), std::string::npos);
  auto before_release = alloc.stats().reserved_bytes.current;
  alloc.release_graph(1);
  EXPECT_EQ(alloc.stats().reserved_bytes.current, before_release - static_cast<int64_t>(2 * MiB));
  EXPECT_EQ(alloc.snapshot_json().find("\"graph\": 1"), std::string::npos);
  EXPECT_THROW(alloc.release_graph(1), vbt::Error);
  alloc.free(other);
  alloc.free(after);
}

TEST_F(AllocatorTest, ReleasedGraphSegmentIsFreedWhenItsLastBlockIs) {
  alloc.begin_capture(3, 0);
  void* g = alloc.allocate(3 * MiB, 0);
  alloc.end_capture(3);
  alloc.release_graph(3);  // g is still live: its segment stays
  EXPECT_EQ(alloc.stats().reserved_bytes.current, static_cast<int64_t>(4 * MiB));
  alloc.free(g);
  EXPECT_EQ(alloc.stats().reserved_bytes.current, 0);
  EXPECT_EQ(backend.raw_bytes_in_use(), 0u);
}

TEST_F(AllocatorTest, CaptureMisuseGivesClearErrors) {
  alloc.begin_capture(1, 0);
  EXPECT_THROW(alloc.begin_capture(2, 0), vbt::Error);  // stream already capturing
  EXPECT_THROW(alloc.release_graph(1), vbt::Error);     // still capturing
  alloc.end_capture(1);
  EXPECT_THROW(alloc.end_capture(1), vbt::Error);
  alloc.release_graph(1);
}

// Shared graph pools (Note [Shared graph pools]).
std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const vbt::Error& e) {
    return e.what();
  }
  return "";
}

TEST_F(AllocatorTest, TwoCapturesIntoOnePoolReuseABlockTheFirstFreed) {
  constexpr PoolId kPool = 100;
  alloc.retain_pool(kPool);  // a graph_pool_handle()
  alloc.begin_capture(/*graph=*/1, /*stream=*/5, kPool);
  void* tmp_small = alloc.allocate(64 * KiB, 5);  // an intermediate the capture frees
  void* tmp_large = alloc.allocate(3 * MiB, 5);
  void* out1 = alloc.allocate(1000, 5);          // graph 1's output: stays live
  alloc.free(tmp_small);
  alloc.free(tmp_large);
  alloc.end_capture(1);
  auto reserved = alloc.stats().reserved_bytes.current;
  alloc.begin_capture(2, 5, kPool);
  void* again_small = alloc.allocate(64 * KiB, 5);
  void* again_large = alloc.allocate(3 * MiB, 5);
  EXPECT_EQ(addr(again_small), addr(tmp_small)) << "the second capture did not reuse the block the first freed";
  EXPECT_EQ(addr(again_large), addr(tmp_large));
  EXPECT_NE(addr(again_small), addr(out1));
  EXPECT_EQ(alloc.stats().reserved_bytes.current, reserved) << "the second capture took new segments";
  GraphPoolStats ps = alloc.graph_pool_stats(kPool);
  EXPECT_TRUE(ps.exists);
  EXPECT_EQ(ps.graphs, 2);
  EXPECT_EQ(ps.handles, 1);
  EXPECT_EQ(ps.capturing, 2);
  EXPECT_EQ(ps.segments, 2);
  EXPECT_EQ(ps.reserved_bytes, reserved);
  EXPECT_EQ(alloc.graph_pool(1), kPool);
  EXPECT_EQ(alloc.graph_pool(2), kPool);
  std::string snap = alloc.snapshot_json();
  EXPECT_NE(snap.find("\"pool_id\": 100"), std::string::npos) << snap;
  EXPECT_NE(snap.find("\"graph_pools\": [{\"id\": 100, \"graphs\": [1, 2], \"handles\": 1, \"capturing\": 2"),
            std::string::npos)
      << snap;
  alloc.end_capture(2);
  for (void* p : {again_small, again_large, out1}) alloc.free(p);
  alloc.release_graph(1);
  alloc.release_graph(2);
  alloc.release_pool(kPool);
  EXPECT_EQ(backend.raw_bytes_in_use(), 0u);
  EXPECT_FALSE(alloc.graph_pool_stats(kPool).exists);
}

TEST_F(AllocatorTest, AGraphCapturesIntoAnotherGraphsPool) {
  alloc.begin_capture(1, 5);  // graph 1's own pool: id 1
  void* tmp = alloc.allocate(8 * KiB, 5);
  alloc.free(tmp);
  alloc.end_capture(1);
  alloc.begin_capture(2, 5, /*pool=*/alloc.graph_pool(1));  // torch: capture_begin(pool=g1.pool())
  void* reuse = alloc.allocate(8 * KiB, 5);
  EXPECT_EQ(addr(reuse), addr(tmp));
  alloc.end_capture(2);
  alloc.free(reuse);
  alloc.release_graph(2);
  alloc.release_graph(1);
  EXPECT_EQ(backend.raw_bytes_in_use(), 0u);
}

TEST(SharedGraphPools, ThePoolSurvivesTheFirstResetAndIsReleasedAfterTheLastInEitherOrder) {
  for (bool first_graph_first : {true, false}) {
    SCOPED_TRACE(first_graph_first ? "release graph 1 first" : "release graph 2 first");
    HostBackend backend(256 * MiB);
    CachingAllocator alloc(backend);
    alloc.begin_capture(1, 5);
    void* out1 = alloc.allocate(5000, 5);
    void* tmp = alloc.allocate(3 * MiB, 5);
    alloc.free(tmp);
    alloc.end_capture(1);
    alloc.begin_capture(2, 5, 1);
    void* out2 = alloc.allocate(3 * MiB, 5);  // in graph 1's freed block
    alloc.end_capture(2);
    EXPECT_EQ(addr(out2), addr(tmp));
    auto reserved = alloc.stats().reserved_bytes.current;
    EXPECT_EQ(reserved, static_cast<int64_t>(2 * MiB + 4 * MiB));
    alloc.free(out1);  // the outputs die before the graphs (the user dropped them)
    alloc.free(out2);
    alloc.empty_cache();  // keeps a pool that graphs hold
    EXPECT_EQ(alloc.stats().reserved_bytes.current, reserved);
    alloc.release_graph(first_graph_first ? 1 : 2);
    EXPECT_EQ(alloc.stats().reserved_bytes.current, reserved) << "the pool was released while a graph holds it";
    EXPECT_EQ(alloc.graph_pool_stats(1).graphs, 1);
    alloc.empty_cache();
    EXPECT_EQ(alloc.stats().reserved_bytes.current, reserved);
    alloc.release_graph(first_graph_first ? 2 : 1);
    EXPECT_EQ(alloc.stats().reserved_bytes.current, 0) << "the last graph's reset left the pool's segments";
    EXPECT_EQ(backend.raw_bytes_in_use(), 0u);
    EXPECT_FALSE(alloc.graph_pool_stats(1).exists);
    EXPECT_EQ(alloc.snapshot_json().find("\"pool_id\": 1"), std::string::npos);
  }
}

TEST(SharedGraphPools, LiveOutputsKeepTheirSegmentUntilFreedAfterTheLastGraphGoes) {
  HostBackend backend(256 * MiB);
  CachingAllocator alloc(backend);
  alloc.begin_capture(1, 5);
  void* out1 = alloc.allocate(3 * MiB, 5);
  alloc.end_capture(1);
  alloc.begin_capture(2, 5, 1);
  void* out2 = alloc.allocate(5 * MiB, 5);
  alloc.end_capture(2);
  alloc.release_graph(2);
  alloc.release_graph(1);
  EXPECT_EQ(alloc.stats().reserved_bytes.current, static_cast<int64_t>(4 * MiB + 6 * MiB));
  EXPECT_NE(error_of([&] { alloc.begin_capture(3, 5, 1); }).find("was released"), std::string::npos);
  alloc.free(out2);
  EXPECT_EQ(alloc.stats().reserved_bytes.current, static_cast<int64_t>(4 * MiB));
  alloc.free(out1);
  EXPECT_EQ(alloc.stats().reserved_bytes.current, 0);
  EXPECT_FALSE(alloc.graph_pool_stats(1).exists);
  EXPECT_EQ(backend.raw_bytes_in_use(), 0u);
}

TEST_F(AllocatorTest, AHandleKeepsThePoolUsableButHoldsNoMemory) {
  constexpr PoolId kPool = 7;
  alloc.retain_pool(kPool);
  alloc.begin_capture(1, 5, kPool);
  void* out = alloc.allocate(3 * MiB, 5);
  void* tmp = alloc.allocate(8 * KiB, 5);
  alloc.free(tmp);
  alloc.end_capture(1);
  alloc.release_graph(1);  // no graph holds the pool: its free small segment goes back at once
  EXPECT_EQ(alloc.stats().reserved_bytes.current, static_cast<int64_t>(4 * MiB));
  GraphPoolStats ps = alloc.graph_pool_stats(kPool);
  EXPECT_TRUE(ps.exists && !ps.released);
  EXPECT_EQ(ps.graphs, 0);
  EXPECT_EQ(ps.handles, 1);
  alloc.begin_capture(2, 5, kPool);  // the handle still lets a capture start into it
  void* out2 = alloc.allocate(8 * KiB, 5);
  alloc.end_capture(2);
  alloc.free(out);  // graph 2 holds the pool now: the segment stays cached
  EXPECT_EQ(alloc.stats().reserved_bytes.current, static_cast<int64_t>(4 * MiB + 2 * MiB));
  alloc.release_pool(kPool);
  EXPECT_TRUE(alloc.graph_pool_stats(kPool).exists);
  alloc.release_graph(2);
  EXPECT_EQ(alloc.stats().reserved_bytes.current, static_cast<int64_t>(2 * MiB));  // out2 is live
  EXPECT_TRUE(alloc.graph_pool_stats(kPool).released);
  alloc.free(out2);
  EXPECT_EQ(backend.raw_bytes_in_use(), 0u);
  EXPECT_FALSE(alloc.graph_pool_stats(kPool).exists);
  EXPECT_THROW(alloc.release_pool(kPool), vbt::Error);
}

TEST_F(AllocatorTest, ConcurrentCapturesIntoOnePoolAreRefused) {
  constexpr PoolId kPool = 9;
  alloc.retain_pool(kPool);
  alloc.begin_capture(1, 5, kPool);
  void* a = alloc.allocate(4096, 5);
  std::string msg = error_of([&] { alloc.begin_capture(2, 6, kPool); });
  EXPECT_NE(msg.find("graph 2 cannot capture into graph pool 9: graph 1 is capturing into it"), std::string::npos)
      << msg;
  EXPECT_NE(msg.find("at the same time"), std::string::npos) << msg;
  void* b = alloc.allocate(4096, 6);  // the refused capture left stream 6 ordinary
  EXPECT_EQ(alloc.graph_pool_stats(kPool).segments, 1);
  EXPECT_EQ(alloc.graph_pool_stats(kPool).graphs, 1);
  EXPECT_EQ(alloc.graph_pool(2), -1);
  alloc.end_capture(1);
  alloc.begin_capture(2, 6, kPool);  // one after the other is fine
  void* c = alloc.allocate(4096, 6);
  EXPECT_EQ(alloc.graph_pool_stats(kPool).segments, 2);  // stream 6's own segment in the pool
  alloc.end_capture(2);
  // a captured graph captures again only into the pool it holds
  EXPECT_NE(error_of([&] { alloc.begin_capture(1, 5, 11); }).find("holds graph pool 9"), std::string::npos);
  for (void* p : {a, b, c}) alloc.free(p);
  alloc.release_graph(1);
  alloc.release_graph(2);
  alloc.release_pool(kPool);
  alloc.empty_cache();
  EXPECT_EQ(backend.raw_bytes_in_use(), 0u);
}

TEST_F(AllocatorTest, SharedPoolBlocksAreNeverHandedToOrdinaryAllocationsEvenUnderPressure) {
  alloc.begin_capture(1, 5);
  void* big = alloc.allocate(8 * MiB, 5);
  void* small = alloc.allocate(4096, 5);
  alloc.free(big);
  alloc.free(small);
  alloc.end_capture(1);
  alloc.begin_capture(2, 5, 1);
  alloc.end_capture(2);
  void* ordinary = alloc.allocate(4096, 5);  // same stream, not capturing: never the pool's free block
  EXPECT_NE(addr(ordinary), addr(small));
  EXPECT_EQ(alloc.graph_pool_stats(1).segments, 2);
  // Past the cap the staged GC may not take the pool's free 8 MiB segment either: OOM instead.
  alloc.set_per_process_memory_fraction(static_cast<double>(12 * MiB) / static_cast<double>(256 * MiB));
  std::string msg = error_of([&] { alloc.allocate(8 * MiB, 5); });
  EXPECT_NE(msg.find("out of memory"), std::string::npos) << msg;
  EXPECT_EQ(alloc.graph_pool_stats(1).segments, 2);
  alloc.release_graph(1);
  alloc.release_graph(2);  // the pool's free segments go back: now the request fits
  void* after = alloc.allocate(8 * MiB, 5);
  EXPECT_EQ(alloc.graph_pool_stats(1).exists, false);
  alloc.free(after);
  alloc.free(ordinary);
}

TEST_F(AllocatorTest, AnOomDuringACaptureNamesThePool) {
  alloc.set_per_process_memory_fraction(static_cast<double>(4 * MiB) / static_cast<double>(256 * MiB));
  alloc.begin_capture(1, 5, 42);
  std::string msg = error_of([&] { alloc.allocate(8 * MiB, 5); });
  EXPECT_NE(msg.find("captured into graph pool 42"), std::string::npos) << msg;
  alloc.end_capture(1);
  alloc.release_graph(1);
}

TEST_F(AllocatorTest, PoisonOnFreeFillsFreedBlocks) {
  void* p = alloc.allocate(1024, 0);
  std::memset(p, 0x11, 1024);
  alloc.free(p);
  EXPECT_FALSE(backend.is_filled(p, 1024, 0xDB));  // poison is off by default
  alloc.set_poison_on_free(true);
  void* q = alloc.allocate(1024, 0);
  std::memset(q, 0x11, 1024);
  alloc.free(q);
  EXPECT_TRUE(backend.is_filled(q, 1024, 0xDB));
}

TEST_F(AllocatorTest, BadPointersGiveClearErrors) {
  int local = 0;
  EXPECT_THROW(alloc.free(&local), vbt::Error);
  EXPECT_THROW(alloc.record_stream(&local, 1), vbt::Error);
  void* p = alloc.allocate(64, 0);
  alloc.free(p);
  EXPECT_THROW(alloc.free(p), vbt::Error);  // double free
  alloc.free(nullptr);
}

TEST(CachingAllocatorChurn, StatsMatchLiveBlocksAfterEveryStep) {
  HostBackend backend(512 * MiB);
  CachingAllocator alloc(backend);
  std::mt19937 rng(1234);
  std::map<void*, std::size_t> live;
  std::size_t segment_bytes = 0;
  alloc.set_observer([&](const AllocatorEvent& e) {
    if (e.kind == AllocatorEvent::Kind::SegmentAlloc) segment_bytes += e.size;
    if (e.kind == AllocatorEvent::Kind::SegmentFree) segment_bytes -= e.size;
  });
  // Blocks freed after a record_stream stay pending (active, not reusable) until their event completes.
  std::map<void*, std::size_t> pending;  // by the address they had; cleared when stream 5 completes
  std::set<void*> used_on_stream5;
  std::size_t completed_bytes = 0;  // completed but not yet seen: the allocator polls events in allocate()
  for (int step = 0; step < 3000; ++step) {
    // Allocate more often while few blocks are live, free more often past ~120: bounded working set.
    bool do_alloc = live.empty() || rng() % 240 >= live.size();
    if (do_alloc) {
      std::size_t n = rng() % 4 == 0 ? 1 + rng() % (6 * MiB) : 1 + rng() % (64 * KiB);
      void* p = alloc.allocate(n, rng() % 2);
      ASSERT_GE(alloc.block_size(p), n);
      for (auto& [q, size] : live)  // never hand out memory that is still held
        ASSERT_TRUE(p >= static_cast<char*>(q) + size || static_cast<char*>(p) + alloc.block_size(p) <= q);
      for (auto& [q, size] : pending)  // nor memory whose stream event has not completed
        ASSERT_TRUE(p >= static_cast<char*>(q) + size || static_cast<char*>(p) + alloc.block_size(p) <= q)
            << "step " << step << ": a pending block was reused before its event";
      live[p] = alloc.block_size(p);
      completed_bytes = 0;
      if (rng() % 8 == 0) {
        alloc.record_stream(p, 5);
        used_on_stream5.insert(p);
      }
    } else {
      auto it = live.begin();
      std::advance(it, rng() % live.size());
      if (used_on_stream5.erase(it->first)) pending[it->first] = it->second;
      alloc.free(it->first);
      live.erase(it);
    }
    if (rng() % 50 == 0) {
      backend.complete_stream(5);
      for (auto& [p, size] : pending) completed_bytes += size;
      pending.clear();
    }
    std::size_t held = 0;
    for (auto& [p, size] : live) held += size;
    auto s = alloc.stats();
    ASSERT_EQ(static_cast<std::size_t>(s.allocated_bytes.current), held) << "step " << step;
    ASSERT_EQ(static_cast<std::size_t>(s.reserved_bytes.current), segment_bytes) << "step " << step;
    ASSERT_EQ(backend.raw_bytes_in_use(), segment_bytes) << "step " << step;
    std::size_t pending_held = 0;
    for (auto& [p, size] : pending) pending_held += size;
    ASSERT_EQ(static_cast<std::size_t>(s.active_bytes.current), held + pending_held + completed_bytes)
        << "step " << step;
    ASSERT_LE(s.allocated_bytes.current, s.active_bytes.current);
    ASSERT_LE(s.active_bytes.current, s.reserved_bytes.current);
  }
  for (auto& [p, size] : live) alloc.free(p);
  alloc.empty_cache();
  EXPECT_EQ(backend.live_events(), 0u);
  EXPECT_EQ(backend.raw_bytes_in_use(), 0u);
  EXPECT_EQ(alloc.stats().allocated_bytes.current, 0);
}

}  // namespace
}  // namespace vbt::cuda
