// CachingAllocator: the stream-ordered caching allocator policy (no CUDA headers; any MemoryBackend).
//
// Note [Caching allocator policy]
// * Sizes. A request of n bytes becomes a block of round_up(n, 512) bytes. Blocks <= 1 MiB come from
//   the small pool, whose segments (one raw_alloc each) are 2 MiB; larger blocks come from the large
//   pool, whose segments are the block size rounded up to 2 MiB.
// * Streams. Every segment, and every block cut from it, is owned by the stream it was allocated on;
//   a request on stream S reuses only free blocks owned by S (so stream order alone makes reuse safe).
// * Best fit. The smallest free block of the pool, on the stream, with size >= the request. It is split
//   when the remainder is >= 512 bytes (small pool) or > 1 MiB (large pool); the remainder stays free.
//   A block that becomes free merges with free neighbours of its segment, so a fully free segment is
//   one block.
// * record_stream(ptr, S2): the block is also used on S2. When it is freed, an event is recorded on
//   each such stream and the block stays "pending" (not reusable) until all those events complete.
// * Stats (bytes): allocated = sum of blocks the user holds; active = allocated + pending blocks;
//   reserved = sum of segments. allocated <= active <= reserved always; each has a peak.
// * Cap. set_per_process_memory_fraction(f): reserved may not exceed f * device_capacity().
// * OOM. When a new segment does not fit (cap, or raw_alloc returns nullptr), a staged GC runs and the
//   allocation is retried after each stage: 1) release fully free cached segments of the request's
//   pool (small or large) oldest first until the shortfall is covered; 2) release every fully free
//   cached segment, largest first; 3) wait for all pending events, then flush the whole cache. If all
//   fail: OutOfMemoryError (message: requested size, stats, limit); the allocator stays usable.
// * Graph-private pools. Between begin_capture(g, S[, P]) and end_capture(g), requests on S go to the
//   private pool P (fresh segments, never blocks of the general pools), and blocks of a private pool are
//   never handed to other requests (nor released by empty_cache or the GC). Note [Shared graph pools].
// * Poison-on-free (debug): a block returning to a pool is filled with poison_byte on its stream.
//
// Note [Shared graph pools]
// A private pool is keyed by its own id (PoolId), not by a graph's: begin_capture(g, S) captures into the
// pool whose id is g (a graph's own pool, created on demand), begin_capture(g, S, P) into pool P, which
// several graphs may share (torch's graph_pool_handle() / capture_begin(pool=other.pool())). References:
// * each graph that captured into the pool holds one from begin_capture until release_graph(g) (the graph's
//   reset or destruction); while any graph holds the pool it keeps all its segments, and a block freed
//   during one capture may be reused by a later capture into the same pool on the same stream (that is the
//   point: graphs captured in sequence share memory; they must then be replayed in the order they were
//   captured, as in torch);
// * each retain_pool(P) (a live pool handle) holds one until release_pool(P): it keeps the id usable, so a
//   capture may still start into P while no graph holds it, but it keeps no memory.
// When no graph holds the pool, its fully free segments go back to the backend at once, and each other
// segment when its last live (or pending) block is freed. When no handle holds it either, the pool is
// released: begin_capture / retain_pool on its id raise "was released" until its last segment is gone and
// the id is forgotten. One pool takes one capture at a time: a second graph beginning a capture into a pool
// another graph is capturing into raises (as in torch). The JSON snapshot names each segment's pool
// ("pool_id", and "graph" with the same value, null for the general pools) and lists the private pools
// ("graph_pools"); graph_pool_stats(P) gives one pool's numbers.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "vbt/core/error.h"
#include "vbt/cuda/memory_backend.h"

namespace vbt::cuda {

using GraphId = std::int64_t;
using PoolId = std::int64_t;  // a graph-private pool (Note [Shared graph pools]); >= 0

struct AllocatorConfig {
  std::size_t rounding = 512;                        // block size granularity
  std::size_t small_block_limit = std::size_t(1) << 20;  // blocks <= this use the small pool
  std::size_t small_segment_size = std::size_t(2) << 20;
  std::size_t large_segment_rounding = std::size_t(2) << 20;
  bool poison_on_free = false;
  std::uint8_t poison_byte = 0xDB;
};

struct Stat {
  std::int64_t current = 0;
  std::int64_t peak = 0;
  void add(std::int64_t delta) {
    current += delta;
    if (current > peak) peak = current;
  }
};

struct AllocatorStats {
  Stat allocated_bytes, active_bytes, reserved_bytes;
  Stat allocated_blocks, segments;
  std::int64_t num_allocs = 0, num_frees = 0;
  std::int64_t num_segment_allocs = 0, num_segment_frees = 0;
  std::int64_t num_gc_segment_frees = 0;  // segments released by the staged GC (a subset of segment frees)
  std::int64_t num_cache_flushes = 0;     // empty_cache calls and GC stage 3
  std::int64_t num_ooms = 0;
};
std::string stats_to_json(const AllocatorStats& stats);

// Thrown when a request cannot be met after the staged GC. A RuntimeError for the Python binding.
class OutOfMemoryError : public vbt::Error {
 public:
  OutOfMemoryError(std::string msg, std::size_t requested_bytes, AllocatorStats stats)
      : vbt::Error(vbt::ErrorKind::Runtime, std::move(msg)), requested_bytes(requested_bytes), stats(stats) {}
  std::size_t requested_bytes;
  AllocatorStats stats;
};

// What the allocator tells an observer (the scenario driver records these as raw trace events).
struct AllocatorEvent {
  enum class Kind { SegmentAlloc, SegmentFree, EventRecord, EventDone, BlockReady, GcStage, Oom };
  Kind kind;
  std::uint64_t address = 0;  // segment or block address
  std::size_t size = 0;       // segment or block bytes (Oom: the requested bytes)
  StreamId stream = 0;
  EventId event = 0;
  int stage = 0;              // GcStage: 1, 2 or 3
  GraphId graph = -1;         // the private pool (PoolId) of the segment or block, -1 for the general pools
};

// One private pool's numbers (graph_pool_stats).
struct GraphPoolStats {
  PoolId id = -1;
  bool exists = false;       // false: no pool has this id (never created, or released and fully returned)
  bool released = false;     // no graph or handle references it any more (its segments are draining)
  int graphs = 0;            // graphs holding it (captured into it and not released)
  int handles = 0;           // retain_pool references
  GraphId capturing = -1;    // the graph capturing into it now, -1 if none
  std::int64_t segments = 0, reserved_bytes = 0, allocated_bytes = 0;
};
const char* to_string(AllocatorEvent::Kind kind);
using AllocatorObserver = std::function<void(const AllocatorEvent&)>;

class CachingAllocator {
 public:
  explicit CachingAllocator(MemoryBackend& backend, AllocatorConfig config = {}, int device_index = 0);
  ~CachingAllocator();  // returns every segment to the backend (blocks still held become dangling)
  CachingAllocator(const CachingAllocator&) = delete;
  CachingAllocator& operator=(const CachingAllocator&) = delete;

  void* allocate(std::size_t bytes, StreamId stream);  // nullptr for 0 bytes; throws OutOfMemoryError
  void free(void* ptr);                                // nullptr is a no-op; unknown pointers throw
  void record_stream(void* ptr, StreamId stream);      // ptr must be a live allocation
  bool try_record_stream(void* ptr, StreamId stream);  // record_stream; false (no-op) for a pointer it does not own
  void empty_cache();                                  // waits for pending events, frees free segments

  void set_per_process_memory_fraction(double fraction);  // 0 < fraction <= 1
  double memory_fraction() const;
  std::size_t memory_limit() const;  // fraction * device capacity, in bytes

  AllocatorStats stats() const;
  void reset_peak_stats();  // every peak := its current value
  std::string snapshot_json() const;  // schema: Note [Allocator snapshot schema] in caching_allocator.cpp

  // Note [Shared graph pools]. begin_capture(g, S) captures into the pool whose id is g.
  void begin_capture(GraphId graph, StreamId stream);
  void begin_capture(GraphId graph, StreamId stream, PoolId pool);
  void end_capture(GraphId graph);
  void release_graph(GraphId graph);  // the graph drops its pool reference (reset or destroyed)
  void retain_pool(PoolId pool);      // a handle's reference (creates the pool if it does not exist)
  void release_pool(PoolId pool);     // drops one retain_pool reference
  PoolId graph_pool(GraphId graph) const;  // the pool a graph holds, -1 if it holds none
  GraphPoolStats graph_pool_stats(PoolId pool) const;

  void set_poison_on_free(bool on);
  void set_observer(AllocatorObserver observer);
  std::size_t block_size(const void* ptr) const;  // the block bytes behind a live allocation
  const char* backend_name() const { return backend_.name(); }
  int device_index() const { return device_index_; }

 private:
  struct Pool;
  struct Segment;
  struct Block {
    std::uintptr_t addr = 0;
    std::size_t size = 0;
    std::size_t requested = 0;
    StreamId stream = 0;
    Pool* pool = nullptr;
    Segment* segment = nullptr;
    Block* prev = nullptr;  // neighbours within the segment, by address
    Block* next = nullptr;
    bool allocated = false;
    int pending_events = 0;
    std::vector<StreamId> stream_uses;
    bool is_free() const { return !allocated && pending_events == 0; }
  };
  struct BlockOrder {
    bool operator()(const Block* a, const Block* b) const;
  };
  struct Pool {
    bool small = true;
    PoolId graph = -1;  // the private pool this is half of, -1 for the general pools
    std::set<Block*, BlockOrder> free_blocks;
    int segments = 0;
  };
  struct Segment {
    std::uintptr_t base = 0;
    std::size_t size = 0;
    StreamId stream = 0;
    Pool* pool = nullptr;
    std::uint64_t birth = 0;  // creation order (the GC frees oldest first)
    Block* head = nullptr;
  };
  struct PrivatePool {  // Note [Shared graph pools]
    Pool small, large;
    int graph_refs = 0;
    int handle_refs = 0;
    GraphId capturing = -1;
    bool released = false;
  };
  struct CapturedGraph {
    PoolId pool = -1;
    bool capturing = false;
    StreamId stream = 0;
  };
  struct PendingEvent {
    EventId event;
    Block* block;
  };

  std::size_t round_size(std::size_t bytes) const;
  Pool& pool_for(std::size_t size, StreamId stream);
  Block* take_best_fit(Pool& pool, StreamId stream, std::size_t size);
  Block* new_segment_with_gc(Pool& pool, StreamId stream, std::size_t size, std::size_t requested);
  Block* try_new_segment(Pool& pool, StreamId stream, std::size_t segment_size);
  void split(Block* block, std::size_t size);
  void return_block(Block* block);  // a block no longer held nor pending goes back to its pool
  void release_segment(Segment* segment);
  std::size_t release_free_segments(bool oldest_first, const Pool* only_pool, std::size_t target_bytes,
                                    bool from_gc);
  void process_events(bool wait);
  PrivatePool& private_pool(PoolId pool, const char* what);  // finds or creates; refuses a released pool
  void drop_pool_ref(PoolId pool);   // releases the pool when its last reference goes
  void maybe_forget_pool(PoolId pool);  // erases a released pool once its last segment is gone
  void notify(const AllocatorEvent& event);
  [[noreturn]] void throw_oom(std::size_t requested, std::size_t size, std::size_t segment_size, PoolId pool);
  GraphPoolStats pool_stats_locked(PoolId id, const PrivatePool& pool) const;

  MemoryBackend& backend_;
  AllocatorConfig config_;
  int device_index_;
  double fraction_ = 1.0;
  mutable std::mutex mutex_;
  AllocatorStats stats_;
  Pool small_pool_, large_pool_;
  std::map<PoolId, std::unique_ptr<PrivatePool>> pools_;
  std::map<GraphId, CapturedGraph> graphs_;
  std::map<StreamId, GraphId> capturing_streams_;
  std::map<std::uintptr_t, Segment*> segments_;
  std::unordered_map<std::uintptr_t, Block*> live_blocks_;  // allocated blocks by address
  std::vector<PendingEvent> pending_;
  std::uint64_t segment_births_ = 0;
  AllocatorObserver observer_;
};

}  // namespace vbt::cuda
