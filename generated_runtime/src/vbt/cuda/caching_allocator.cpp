// CachingAllocator: the policy of Note [Caching allocator policy] (caching_allocator.h).
// Invariants kept by every public method (under mutex_):
//  * the blocks of a segment tile it exactly, linked by prev/next in address order;
//  * a block is in exactly one state: allocated (in live_blocks_), pending (pending_events > 0, in no
//    pool), or free (in its pool's free_blocks); no two free blocks of a segment are neighbours;
//  * stats_.reserved_bytes == sum of segment sizes, allocated_bytes == sum of allocated block sizes,
//    active_bytes == allocated + pending block sizes.
#include "vbt/cuda/caching_allocator.h"

#include <algorithm>
#include <cstdio>
#include <limits>

namespace vbt::cuda {

namespace {
constexpr std::size_t kAll = std::numeric_limits<std::size_t>::max();

std::size_t round_up(std::size_t n, std::size_t multiple) { return (n + multiple - 1) / multiple * multiple; }

// The JSON writers append to a std::string with std::to_string instead of using iostreams: they run on
// every memory_stats() call, and number formatting through a stream's locale facets has been seen to crash in
// a _C linked against a static libstdc++ once the CUDA driver is loaded (the H200 image's /opt/gcc toolchain).
void stat_json(std::string& os, const char* name, const Stat& s) {
  os += "\"";
  os += name;
  os += "\": {\"current\": " + std::to_string(s.current) + ", \"peak\": " + std::to_string(s.peak) + "}, ";
}

std::string double_json(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}
}  // namespace

const char* to_string(AllocatorEvent::Kind kind) {
  switch (kind) {
    case AllocatorEvent::Kind::SegmentAlloc: return "segment_alloc";
    case AllocatorEvent::Kind::SegmentFree: return "segment_free";
    case AllocatorEvent::Kind::EventRecord: return "event_record";
    case AllocatorEvent::Kind::EventDone: return "event_done";
    case AllocatorEvent::Kind::BlockReady: return "block_ready";
    case AllocatorEvent::Kind::GcStage: return "gc_stage";
    case AllocatorEvent::Kind::Oom: return "oom";
  }
  return "unknown";
}

std::string stats_to_json(const AllocatorStats& s) {
  std::string os = "{";
  stat_json(os, "allocated_bytes", s.allocated_bytes);
  stat_json(os, "active_bytes", s.active_bytes);
  stat_json(os, "reserved_bytes", s.reserved_bytes);
  stat_json(os, "allocated_blocks", s.allocated_blocks);
  stat_json(os, "segments", s.segments);
  os += "\"num_allocs\": " + std::to_string(s.num_allocs) + ", \"num_frees\": " + std::to_string(s.num_frees) +
        ", \"num_segment_allocs\": " + std::to_string(s.num_segment_allocs) +
        ", \"num_segment_frees\": " + std::to_string(s.num_segment_frees) +
        ", \"num_gc_segment_frees\": " + std::to_string(s.num_gc_segment_frees) +
        ", \"num_cache_flushes\": " + std::to_string(s.num_cache_flushes) +
        ", \"num_ooms\": " + std::to_string(s.num_ooms) + "}";
  return os;
}

bool CachingAllocator::BlockOrder::operator()(const Block* a, const Block* b) const {
  if (a->stream != b->stream) return a->stream < b->stream;
  if (a->size != b->size) return a->size < b->size;
  return a->addr < b->addr;
}

CachingAllocator::CachingAllocator(MemoryBackend& backend, AllocatorConfig config, int device_index)
    : backend_(backend), config_(config), device_index_(device_index) {
  VBT_CHECK_VALUE(config_.rounding > 0 && config_.small_segment_size >= config_.small_block_limit &&
                      config_.large_segment_rounding > 0,
                  "CachingAllocator: inconsistent config (rounding must be > 0 and small segments must hold the "
                  "largest small block)");
  small_pool_.small = true;
  large_pool_.small = false;
}

CachingAllocator::~CachingAllocator() {
  for (auto& pe : pending_) {
    try {
      backend_.destroy_event(pe.event);
    } catch (...) {
    }
  }
  for (auto& [base, seg] : segments_) {
    for (Block* b = seg->head; b != nullptr;) {
      Block* next = b->next;
      delete b;
      b = next;
    }
    try {
      backend_.raw_free(reinterpret_cast<void*>(base));
    } catch (...) {
    }
    delete seg;
  }
}

std::size_t CachingAllocator::round_size(std::size_t bytes) const { return round_up(bytes, config_.rounding); }

CachingAllocator::Pool& CachingAllocator::pool_for(std::size_t size, StreamId stream) {
  bool small = size <= config_.small_block_limit;
  auto capture = capturing_streams_.find(stream);
  if (capture != capturing_streams_.end()) {
    PrivatePool& p = *pools_.at(graphs_.at(capture->second).pool);
    return small ? p.small : p.large;
  }
  return small ? small_pool_ : large_pool_;
}

void CachingAllocator::notify(const AllocatorEvent& event) {
  if (observer_) observer_(event);
}

void* CachingAllocator::allocate(std::size_t bytes, StreamId stream) {
  if (bytes == 0) return nullptr;
  std::lock_guard<std::mutex> lock(mutex_);
  process_events(/*wait=*/false);
  std::size_t size = round_size(bytes);
  Pool& pool = pool_for(size, stream);
  Block* block = take_best_fit(pool, stream, size);
  if (block == nullptr) block = new_segment_with_gc(pool, stream, size, bytes);
  split(block, size);
  block->allocated = true;
  block->requested = bytes;
  block->stream_uses.clear();
  live_blocks_[block->addr] = block;
  stats_.allocated_bytes.add(static_cast<std::int64_t>(block->size));
  stats_.active_bytes.add(static_cast<std::int64_t>(block->size));
  stats_.allocated_blocks.add(1);
  stats_.num_allocs++;
  return reinterpret_cast<void*>(block->addr);
}

CachingAllocator::Block* CachingAllocator::take_best_fit(Pool& pool, StreamId stream, std::size_t size) {
  Block key;
  key.stream = stream;
  key.size = size;
  key.addr = 0;
  auto it = pool.free_blocks.lower_bound(&key);
  if (it == pool.free_blocks.end() || (*it)->stream != stream) return nullptr;
  Block* block = *it;
  pool.free_blocks.erase(it);
  return block;
}

void CachingAllocator::split(Block* block, std::size_t size) {
  std::size_t remaining = block->size - size;
  bool worth = block->pool->small ? remaining >= config_.rounding : remaining > config_.small_block_limit;
  if (!worth) return;
  auto* rest = new Block;
  rest->addr = block->addr + size;
  rest->size = remaining;
  rest->stream = block->stream;
  rest->pool = block->pool;
  rest->segment = block->segment;
  rest->prev = block;
  rest->next = block->next;
  if (rest->next) rest->next->prev = rest;
  block->next = rest;
  block->size = size;
  block->pool->free_blocks.insert(rest);
}

CachingAllocator::Block* CachingAllocator::try_new_segment(Pool& pool, StreamId stream, std::size_t segment_size) {
  if (static_cast<std::size_t>(stats_.reserved_bytes.current) + segment_size > memory_limit()) return nullptr;
  void* p = backend_.raw_alloc(segment_size);
  if (p == nullptr) return nullptr;
  auto* seg = new Segment;
  seg->base = reinterpret_cast<std::uintptr_t>(p);
  seg->size = segment_size;
  seg->stream = stream;
  seg->pool = &pool;
  seg->birth = segment_births_++;
  auto* block = new Block;
  block->addr = seg->base;
  block->size = segment_size;
  block->stream = stream;
  block->pool = &pool;
  block->segment = seg;
  seg->head = block;
  segments_[seg->base] = seg;
  pool.segments++;
  stats_.reserved_bytes.add(static_cast<std::int64_t>(segment_size));
  stats_.segments.add(1);
  stats_.num_segment_allocs++;
  notify({AllocatorEvent::Kind::SegmentAlloc, seg->base, segment_size, stream, 0, 0, pool.graph});
  return block;
}

CachingAllocator::Block* CachingAllocator::new_segment_with_gc(Pool& pool, StreamId stream, std::size_t size,
                                                               std::size_t requested) {
  std::size_t segment_size = pool.small ? config_.small_segment_size : round_up(size, config_.large_segment_rounding);
  auto attempt = [&]() -> Block* {
    if (Block* cached = take_best_fit(pool, stream, size)) return cached;  // stage 3 may have returned blocks
    return try_new_segment(pool, stream, segment_size);
  };
  auto shortfall = [&]() -> std::size_t {
    std::size_t need = static_cast<std::size_t>(stats_.reserved_bytes.current) + segment_size;
    return need > memory_limit() ? need - memory_limit() : segment_size;  // past the cap, or the device is full
  };
  if (Block* b = try_new_segment(pool, stream, segment_size)) return b;

  notify({AllocatorEvent::Kind::GcStage, 0, requested, stream, 0, 1, pool.graph});
  release_free_segments(/*oldest_first=*/true, pool.small ? &small_pool_ : &large_pool_, shortfall(), true);
  if (Block* b = attempt()) return b;

  notify({AllocatorEvent::Kind::GcStage, 0, requested, stream, 0, 2, pool.graph});
  release_free_segments(/*oldest_first=*/false, nullptr, kAll, true);
  if (Block* b = attempt()) return b;

  notify({AllocatorEvent::Kind::GcStage, 0, requested, stream, 0, 3, pool.graph});
  process_events(/*wait=*/true);
  release_free_segments(/*oldest_first=*/false, nullptr, kAll, true);
  stats_.num_cache_flushes++;
  if (Block* b = attempt()) return b;

  throw_oom(requested, size, segment_size, pool.graph);
}

void CachingAllocator::throw_oom(std::size_t requested, std::size_t size, std::size_t segment_size, PoolId pool) {
  stats_.num_ooms++;
  notify({AllocatorEvent::Kind::Oom, 0, requested, 0, 0, 0, -1});
  auto num = [](auto v) { return std::to_string(v); };  // no iostreams: see stat_json
  std::string os = std::string("CUDA caching allocator (") + backend_.name() + " backend, device " +
                   num(device_index_) + ") out of memory: tried to allocate " + num(requested) + " bytes (block " +
                   num(size) + " bytes, new segment " + num(segment_size) + " bytes); allocated " +
                   num(stats_.allocated_bytes.current) + " bytes, active " + num(stats_.active_bytes.current) +
                   " bytes, reserved " + num(stats_.reserved_bytes.current) + " bytes in " +
                   num(stats_.segments.current) + " segments; limit " + num(memory_limit()) +
                   " bytes (memory fraction " + double_json(fraction_) + " of device capacity " +
                   num(backend_.device_capacity()) + " bytes)" +
                   (pool >= 0 ? "; the request was captured into graph pool " + num(pool) : std::string()) +
                   "; stats " + stats_to_json(stats_);
  throw OutOfMemoryError(os, requested, stats_);
}

void CachingAllocator::free(void* ptr) {
  if (ptr == nullptr) return;
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = live_blocks_.find(reinterpret_cast<std::uintptr_t>(ptr));
  VBT_CHECK(it != live_blocks_.end(), "CachingAllocator::free: pointer ", ptr,
            " was not allocated by this allocator, or was already freed");
  Block* block = it->second;
  live_blocks_.erase(it);
  block->allocated = false;
  stats_.allocated_bytes.add(-static_cast<std::int64_t>(block->size));
  stats_.allocated_blocks.add(-1);
  stats_.num_frees++;
  if (block->stream_uses.empty()) {
    return_block(block);
    return;
  }
  for (StreamId use : block->stream_uses) {
    EventId event = backend_.create_event();
    backend_.record_event(event, use);
    pending_.push_back({event, block});
    block->pending_events++;
    notify({AllocatorEvent::Kind::EventRecord, block->addr, block->size, use, event, 0, block->pool->graph});
  }
  block->stream_uses.clear();
}

void CachingAllocator::return_block(Block* block) {
  stats_.active_bytes.add(-static_cast<std::int64_t>(block->size));
  if (config_.poison_on_free)
    backend_.fill(reinterpret_cast<void*>(block->addr), block->size, config_.poison_byte, block->stream);
  Pool* pool = block->pool;
  Segment* seg = block->segment;
  if (Block* prev = block->prev; prev != nullptr && prev->is_free()) {
    pool->free_blocks.erase(prev);
    block->addr = prev->addr;
    block->size += prev->size;
    block->prev = prev->prev;
    if (block->prev) block->prev->next = block;
    else seg->head = block;
    delete prev;
  }
  if (Block* next = block->next; next != nullptr && next->is_free()) {
    pool->free_blocks.erase(next);
    block->size += next->size;
    block->next = next->next;
    if (block->next) block->next->prev = block;
    delete next;
  }
  pool->free_blocks.insert(block);
  PoolId private_id = pool->graph;
  if (private_id >= 0 && pools_.at(private_id)->graph_refs == 0 && seg->head == block && block->next == nullptr) {
    release_segment(seg);  // no graph holds the pool: its memory drains (Note [Shared graph pools])
    maybe_forget_pool(private_id);
  }
}

void CachingAllocator::release_segment(Segment* seg) {
  Block* block = seg->head;
  VBT_CHECK(block->next == nullptr && block->is_free(), "CachingAllocator: internal error: releasing a segment "
            "that still holds blocks");
  Pool* pool = seg->pool;
  pool->free_blocks.erase(block);
  backend_.raw_free(reinterpret_cast<void*>(seg->base));
  stats_.reserved_bytes.add(-static_cast<std::int64_t>(seg->size));
  stats_.segments.add(-1);
  stats_.num_segment_frees++;
  pool->segments--;
  notify({AllocatorEvent::Kind::SegmentFree, seg->base, seg->size, seg->stream, 0, 0, pool->graph});
  segments_.erase(seg->base);
  delete block;
  delete seg;
}

std::size_t CachingAllocator::release_free_segments(bool oldest_first, const Pool* only_pool,
                                                    std::size_t target_bytes, bool from_gc) {
  std::vector<Segment*> candidates;
  for (auto& [base, seg] : segments_) {
    bool whole_free = seg->head->next == nullptr && seg->head->is_free();
    if (whole_free && seg->pool->graph < 0 && (only_pool == nullptr || seg->pool == only_pool))
      candidates.push_back(seg);
  }
  std::sort(candidates.begin(), candidates.end(), [oldest_first](const Segment* a, const Segment* b) {
    if (oldest_first) return a->birth < b->birth;
    return a->size != b->size ? a->size > b->size : a->birth < b->birth;
  });
  std::size_t released = 0;
  for (Segment* seg : candidates) {
    if (released >= target_bytes) break;
    released += seg->size;
    release_segment(seg);
    if (from_gc) stats_.num_gc_segment_frees++;
  }
  return released;
}

void CachingAllocator::process_events(bool wait) {
  if (pending_.empty()) return;  // the common case, on every allocate
  std::vector<PendingEvent> still_pending;
  std::vector<PendingEvent> pending;
  pending.swap(pending_);
  for (const PendingEvent& pe : pending) {
    if (wait) backend_.synchronize_event(pe.event);
    if (!backend_.query_event(pe.event)) {
      still_pending.push_back(pe);
      continue;
    }
    backend_.destroy_event(pe.event);
    Block* block = pe.block;
    notify({AllocatorEvent::Kind::EventDone, block->addr, block->size, 0, pe.event, 0, block->pool->graph});
    if (--block->pending_events == 0) {
      notify({AllocatorEvent::Kind::BlockReady, block->addr, block->size, block->stream, 0, 0, block->pool->graph});
      return_block(block);
    }
  }
  pending_ = std::move(still_pending);
}

CachingAllocator::PrivatePool& CachingAllocator::private_pool(PoolId pool, const char* what) {
  VBT_CHECK_VALUE(pool >= 0, what, ": graph pool id must be >= 0, got ", pool);
  auto& slot = pools_[pool];
  if (!slot) {
    slot = std::make_unique<PrivatePool>();
    slot->small.small = true;
    slot->large.small = false;
    slot->small.graph = slot->large.graph = pool;
  }
  VBT_CHECK(!slot->released, what, ": graph pool ", pool, " was released (no graph or handle references it any "
            "more) and still holds live blocks; its id cannot be captured into or retained again");
  return *slot;
}

void CachingAllocator::drop_pool_ref(PoolId pool) {
  PrivatePool& p = *pools_.at(pool);
  if (p.graph_refs > 0) return;
  p.released = p.handle_refs == 0;
  std::vector<Segment*> free_segments;
  for (auto& [base, seg] : segments_)
    if ((seg->pool == &p.small || seg->pool == &p.large) && seg->head->next == nullptr && seg->head->is_free())
      free_segments.push_back(seg);
  for (Segment* seg : free_segments) release_segment(seg);
  maybe_forget_pool(pool);
}

void CachingAllocator::maybe_forget_pool(PoolId pool) {
  auto it = pools_.find(pool);
  if (it == pools_.end()) return;
  const PrivatePool& p = *it->second;
  if (p.released && p.small.segments == 0 && p.large.segments == 0) pools_.erase(it);
}

void CachingAllocator::record_stream(void* ptr, StreamId stream) {
  VBT_CHECK(try_record_stream(ptr, stream), "CachingAllocator::record_stream: pointer ", ptr,
            " is not a live allocation of this allocator");
}

bool CachingAllocator::try_record_stream(void* ptr, StreamId stream) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = live_blocks_.find(reinterpret_cast<std::uintptr_t>(ptr));
  if (it == live_blocks_.end()) return false;
  Block* block = it->second;
  if (stream == block->stream) return true;
  auto& uses = block->stream_uses;
  if (std::find(uses.begin(), uses.end(), stream) == uses.end()) uses.push_back(stream);
  return true;
}

void CachingAllocator::empty_cache() {
  std::lock_guard<std::mutex> lock(mutex_);
  process_events(/*wait=*/true);
  release_free_segments(/*oldest_first=*/true, nullptr, kAll, false);
  stats_.num_cache_flushes++;
}

void CachingAllocator::set_per_process_memory_fraction(double fraction) {
  VBT_CHECK_VALUE(fraction > 0.0 && fraction <= 1.0,
                  "set_per_process_memory_fraction: fraction must be in (0, 1], got ", fraction);
  std::lock_guard<std::mutex> lock(mutex_);
  fraction_ = fraction;
}

double CachingAllocator::memory_fraction() const { return fraction_; }

std::size_t CachingAllocator::memory_limit() const {
  return static_cast<std::size_t>(fraction_ * static_cast<double>(backend_.device_capacity()));
}

AllocatorStats CachingAllocator::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

void CachingAllocator::reset_peak_stats() {
  std::lock_guard<std::mutex> lock(mutex_);
  for (Stat* s : {&stats_.allocated_bytes, &stats_.active_bytes, &stats_.reserved_bytes, &stats_.allocated_blocks,
                  &stats_.segments})
    s->peak = s->current;
}

void CachingAllocator::begin_capture(GraphId graph, StreamId stream) { begin_capture(graph, stream, graph); }

void CachingAllocator::begin_capture(GraphId graph, StreamId stream, PoolId pool) {
  std::lock_guard<std::mutex> lock(mutex_);
  VBT_CHECK_VALUE(graph >= 0, "begin_capture: graph id must be >= 0, got ", graph);
  VBT_CHECK(capturing_streams_.count(stream) == 0, "begin_capture: stream ", stream, " is already capturing");
  auto g = graphs_.find(graph);
  if (g != graphs_.end()) {  // captured before and not released: only into the same pool again
    VBT_CHECK(!g->second.capturing, "begin_capture: graph ", graph, " is already capturing");
    VBT_CHECK(g->second.pool == pool, "begin_capture: graph ", graph, " holds graph pool ", g->second.pool,
              "; it cannot capture into graph pool ", pool, " before release_graph");
  }
  auto existing = pools_.find(pool);
  if (existing != pools_.end() && !existing->second->released) {
    GraphId other = existing->second->capturing;
    VBT_CHECK(other < 0 || other == graph, "begin_capture: graph ", graph, " cannot capture into graph pool ", pool,
              ": graph ", other, " is capturing into it; two graphs cannot capture into one pool at the same time "
              "(end that capture first)");
  }
  PrivatePool& p = private_pool(pool, "begin_capture");
  if (g == graphs_.end()) {
    p.graph_refs++;
    g = graphs_.emplace(graph, CapturedGraph{pool, false, stream}).first;
  }
  g->second.capturing = true;
  g->second.stream = stream;
  p.capturing = graph;
  capturing_streams_[stream] = graph;
}

void CachingAllocator::end_capture(GraphId graph) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = graphs_.find(graph);
  VBT_CHECK(it != graphs_.end() && it->second.capturing, "end_capture: graph ", graph, " is not capturing");
  it->second.capturing = false;
  capturing_streams_.erase(it->second.stream);
  pools_.at(it->second.pool)->capturing = -1;
}

void CachingAllocator::release_graph(GraphId graph) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = graphs_.find(graph);
  VBT_CHECK(it != graphs_.end(), "release_graph: unknown or already released graph ", graph);
  VBT_CHECK(!it->second.capturing, "release_graph: graph ", graph, " is still capturing (call end_capture)");
  PoolId pool = it->second.pool;
  graphs_.erase(it);
  pools_.at(pool)->graph_refs--;
  drop_pool_ref(pool);
}

void CachingAllocator::retain_pool(PoolId pool) {
  std::lock_guard<std::mutex> lock(mutex_);
  private_pool(pool, "retain_pool").handle_refs++;
}

void CachingAllocator::release_pool(PoolId pool) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = pools_.find(pool);
  VBT_CHECK(it != pools_.end() && it->second->handle_refs > 0, "release_pool: graph pool ", pool,
            " holds no handle reference");
  it->second->handle_refs--;
  drop_pool_ref(pool);
}

PoolId CachingAllocator::graph_pool(GraphId graph) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = graphs_.find(graph);
  return it == graphs_.end() ? -1 : it->second.pool;
}

GraphPoolStats CachingAllocator::graph_pool_stats(PoolId pool) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = pools_.find(pool);
  if (it != pools_.end()) return pool_stats_locked(pool, *it->second);
  GraphPoolStats out;
  out.id = pool;
  return out;
}

GraphPoolStats CachingAllocator::pool_stats_locked(PoolId id, const PrivatePool& p) const {
  GraphPoolStats out;
  out.id = id;
  out.exists = true;
  out.released = p.released;
  out.graphs = p.graph_refs;
  out.handles = p.handle_refs;
  out.capturing = p.capturing;
  for (const auto& [base, seg] : segments_) {
    if (seg->pool != &p.small && seg->pool != &p.large) continue;
    out.segments++;
    out.reserved_bytes += static_cast<std::int64_t>(seg->size);
    for (const Block* b = seg->head; b != nullptr; b = b->next)
      if (b->allocated) out.allocated_bytes += static_cast<std::int64_t>(b->size);
  }
  return out;
}

void CachingAllocator::set_poison_on_free(bool on) {
  std::lock_guard<std::mutex> lock(mutex_);
  config_.poison_on_free = on;
}

void CachingAllocator::set_observer(AllocatorObserver observer) {
  std::lock_guard<std::mutex> lock(mutex_);
  observer_ = std::move(observer);
}

std::size_t CachingAllocator::block_size(const void* ptr) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = live_blocks_.find(reinterpret_cast<std::uintptr_t>(ptr));
  VBT_CHECK(it != live_blocks_.end(), "block_size: pointer ", ptr, " is not a live allocation");
  return it->second->size;
}

// Note [Allocator snapshot schema]
// {"schema": "vbt.cuda.allocator_snapshot/1", "backend": "host"|"cuda", "device": int,
//  "memory_fraction": float, "memory_limit": int, "stats": <stats_to_json>,
//  "graph_pools": [{"id": int, "graphs": [int], "handles": int, "capturing": int|null, "released": bool,
//                   "segments": int, "reserved_bytes": int, "allocated_bytes": int}],
//  "segments": [{"address": int, "size": int, "stream": int, "pool": "small"|"large",
//                "pool_id": int|null, "graph": int|null, "birth": int,
//                "blocks": [{"address": int, "size": int, "requested": int, "stream": int,
//                            "state": "allocated"|"pending"|"free"}]}]}
// Segments are in address order; a segment's blocks are in address order and tile it exactly.
// "requested" is the user's byte count for allocated blocks and 0 otherwise. "pool_id" is the segment's private
// graph pool (Note [Shared graph pools]), null for the general pools; "graph" repeats it (the name of schema /1,
// from when each graph had its own pool, whose id is still the graph's id when no pool was shared).
// "graph_pools" lists the private pools in id order ("graphs": the graphs holding the pool, in id order).
std::string CachingAllocator::snapshot_json() const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto num = [](auto v) { return std::to_string(v); };
  std::string os = "{\"schema\": \"vbt.cuda.allocator_snapshot/1\", \"backend\": \"";
  os += backend_.name();
  os += "\", \"device\": " + num(device_index_) + ", \"memory_fraction\": " + double_json(fraction_) +
        ", \"memory_limit\": " + num(memory_limit()) + ", \"stats\": " + stats_to_json(stats_) +
        ", \"graph_pools\": [";
  for (auto it = pools_.begin(); it != pools_.end(); ++it) {
    GraphPoolStats ps = pool_stats_locked(it->first, *it->second);
    std::string graphs;
    for (const auto& [graph, captured] : graphs_)
      if (captured.pool == it->first) graphs += (graphs.empty() ? "" : ", ") + num(graph);
    os += std::string(it == pools_.begin() ? "" : ", ") + "{\"id\": " + num(it->first) + ", \"graphs\": [" + graphs +
          "], \"handles\": " + num(ps.handles) + ", \"capturing\": " +
          (ps.capturing >= 0 ? num(ps.capturing) : std::string("null")) + ", \"released\": " +
          (ps.released ? "true" : "false") + ", \"segments\": " + num(ps.segments) + ", \"reserved_bytes\": " +
          num(ps.reserved_bytes) + ", \"allocated_bytes\": " + num(ps.allocated_bytes) + "}";
  }
  os += "], \"segments\": [";
  bool first_segment = true;
  for (const auto& [base, seg] : segments_) {
    std::string pool_id = seg->pool->graph >= 0 ? num(seg->pool->graph) : std::string("null");
    os += std::string(first_segment ? "" : ", ") + "{\"address\": " + num(seg->base) + ", \"size\": " +
          num(seg->size) + ", \"stream\": " + num(seg->stream) + ", \"pool\": \"" +
          (seg->pool->small ? "small" : "large") + "\", \"pool_id\": " + pool_id + ", \"graph\": " + pool_id +
          ", \"birth\": " + num(seg->birth) + ", \"blocks\": [";
    for (const Block* b = seg->head; b != nullptr; b = b->next) {
      const char* state = b->allocated ? "allocated" : (b->pending_events > 0 ? "pending" : "free");
      os += std::string(b == seg->head ? "" : ", ") + "{\"address\": " + num(b->addr) + ", \"size\": " +
            num(b->size) + ", \"requested\": " + num(b->allocated ? b->requested : 0) + ", \"stream\": " +
            num(b->stream) + ", \"state\": \"" + state + "\"}";
    }
    os += "]}";
    first_segment = false;
  }
  os += "]}";
  return os;
}

}  // namespace vbt::cuda
