// vbt_allocator_scenarios: runs the allocator gate's scripted scenarios on the caching allocator and writes a
// JSON report: per scenario the trace (every step with the stats after it, the allocator's own events), the
// invariants the driver checked from its own bookkeeping (not from the allocator's word), a time series of
// allocated/active/reserved bytes, fragmentation figures and the final snapshot.
// validators/allocator_gate.py re-checks what can be recomputed from the trace; it does not trust "passed".
//
// Usage: vbt_allocator_scenarios [--scenario NAME]... [--backend host|cuda] [--seed N] [--steps N] [--out FILE]
//        vbt_allocator_scenarios --list
// No --scenario: every scenario. Exit status: 0 when every invariant held, 3 when one failed, 1 when a
// scenario threw, 2 on bad arguments.
//
// Report schema "vbt.allocator_report/1":
//   {"schema", "backend", "seed", "steps_arg", "config": {rounding, small_block_limit, small_segment_size,
//    large_segment_rounding, device_capacity}, "passed": bool,
//    "scenarios": [{"name", "passed", "error": str|null,
//      "invariants": [{"name", "passed", "message"}],
//      "steps": [{"t", "op", "stream", "size", "ptr", "block_size", "graph", "allocated", "reserved", "active",
//                 "allocated_peak", "reserved_peak", "active_peak", "segments", ...op fields}],
//      "events": [{"t", "kind", "address", "size", "stream", "event", "stage", "graph"}],
//      "series": {"t": [], "allocated": [], "active": [], "reserved": []},
//      "fragmentation": {"max_allocated", "max_reserved", "overhead_ratio",
//                        "snapshots": [{"label", "reserved", "free_bytes", "largest_free_block", "external"}]},
//      "final_stats": <stats>, "snapshot": <final snapshot>}]}
// ops: malloc (oom: true + error + oom_stats when it threw), free (poisoned: bool when poison-on-free is on),
// record_stream, complete_stream (events: the ids that completed: host backend; a stream synchronize on CUDA),
// empty_cache, set_fraction (fraction, limit), begin_capture / end_capture / release_graph (graph),
// reset_peaks, set_poison (on), snapshot (label, snapshot). Events are the allocator's own (segment_alloc,
// segment_free, event_record, event_done, block_ready, gc_stage, oom) tagged with the step t during which they
// happened. Streams are small indices (0 = the default stream). Addresses are integers.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "vbt/cuda/caching_allocator.h"
#include "vbt/cuda/host_backend.h"
#ifdef VBT_WITH_CUDA
#include "vbt/cuda/cuda_backend.h"
#include "vbt/cuda/device_guard.h"
#include "vbt/cuda/stream.h"
#endif

namespace {

using namespace vbt::cuda;
constexpr std::size_t KiB = 1024, MiB = 1024 * 1024;
constexpr int kStreams = 4;

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

// One invariant the driver checks from its own bookkeeping; the first violation is kept as the message.
struct Invariant {
  std::string name;
  bool passed = true;
  std::string message;
  void check(bool ok, const std::string& what) {
    if (!ok && passed) {
      passed = false;
      message = what;
    }
  }
};

class Recorder {
 public:
  Recorder(MemoryBackend& backend, HostBackend* host) : backend_(backend), host_(host), alloc_(backend) {
#ifdef VBT_WITH_CUDA
    if (host_ == nullptr) {
      streams_.push_back(Stream::default_stream(current_device()));
      for (int i = 1; i < kStreams; ++i) streams_.push_back(Stream::create(current_device()));
    }
#endif
    for (const char* name : {"stats_add_up", "no_overlapping_blocks", "no_reuse_before_stream_event",
                             "no_leak_after_empty_cache", "memory_cap_respected", "graph_pools_isolated"})
      invariants_.push_back({name, true, ""});
    alloc_.set_observer([this](const AllocatorEvent& e) { on_event(e); });
  }

  CachingAllocator& alloc() { return alloc_; }
  bool host() const { return host_ != nullptr; }
  Invariant& invariant(const std::string& name) {
    for (auto& inv : invariants_)
      if (inv.name == name) return inv;
    invariants_.push_back({name, true, ""});
    return invariants_.back();
  }

  void* malloc(std::size_t size, int stream) {
    ++t_;
    std::ostringstream extra;
    void* p = nullptr;
    std::size_t block = 0;
    try {
      p = alloc_.allocate(size, stream_id(stream));
      block = alloc_.block_size(p);
      extra << ", \"ptr\": " << reinterpret_cast<std::uintptr_t>(p) << ", \"block_size\": " << block;
    } catch (const OutOfMemoryError& e) {
      extra << ", \"ptr\": null, \"oom\": true, \"error\": " << json_string(e.what())
            << ", \"oom_stats\": " << stats_to_json(e.stats);
      ++ooms_;
    }
    auto capture = capturing_.find(stream);
    GraphId graph = capture != capturing_.end() ? capture->second : -1;
    extra << ", \"graph\": ";
    if (graph >= 0) extra << graph;
    else extra << "null";
    if (p != nullptr) check_new_block(reinterpret_cast<std::uintptr_t>(p), block, size, stream, graph);
    step("malloc", stream, size, extra.str());
    return p;
  }
  void free(void* p) {
    ++t_;
    auto addr = reinterpret_cast<std::uintptr_t>(p);
    auto it = live_.find(addr);
    Live gone = it != live_.end() ? it->second : Live{};
    if (it != live_.end()) live_.erase(it);
    if (!gone.uses.empty()) pending_.push_back({addr, gone.size, gone.uses});
    alloc_.free(p);
    std::string extra = ", \"ptr\": " + std::to_string(addr);
    if (poison_ && gone.uses.empty()) {  // a block freed on its own stream is poisoned at once
      bool filled = backend_.is_filled(p, gone.size, AllocatorConfig{}.poison_byte);
      invariant("poison_on_free").check(filled, "block " + std::to_string(addr) + " was not poisoned when freed");
      extra += std::string(", \"poisoned\": ") + (filled ? "true" : "false");
    }
    step("free", -1, 0, extra);
  }
  void record_stream(void* p, int stream) {
    ++t_;
    alloc_.record_stream(p, stream_id(stream));
    auto it = live_.find(reinterpret_cast<std::uintptr_t>(p));
    if (it != live_.end() && stream != it->second.stream) it->second.uses.insert(stream);
    step("record_stream", stream, 0, ", \"ptr\": " + std::to_string(reinterpret_cast<std::uintptr_t>(p)));
  }
  void complete_stream(int stream) {  // the work queued on `stream` so far finishes
    ++t_;
    std::string ids = "[";
    if (host_ != nullptr) {
      for (EventId id : host_->complete_stream(stream_id(stream)))
        ids += (ids.size() > 1 ? ", " : "") + std::to_string(id);
    } else {
#ifdef VBT_WITH_CUDA
      streams_.at(stream).synchronize();
#endif
    }
    for (auto& pb : pending_) pb.uses.erase(stream);
    std::erase_if(pending_, [](const PendingBlock& pb) { return pb.uses.empty(); });
    step("complete_stream", stream, 0, ", \"events\": " + ids + "]");
  }
  void empty_cache() {
    ++t_;
    alloc_.empty_cache();  // waits for every pending event
    pending_.clear();
    AllocatorStats s = alloc_.stats();
    // Every segment left must hold a live block, or belong to a graph pool that was not released.
    std::size_t needed = 0;
    for (auto& [base, seg] : segments_) {
      bool holds_live = false;
      for (auto& [addr, l] : live_) holds_live |= addr >= base && addr < base + seg.size;
      if (holds_live || (seg.graph >= 0 && !released_graphs_.count(seg.graph))) needed += seg.size;
    }
    invariant("no_leak_after_empty_cache")
        .check(static_cast<std::size_t>(s.reserved_bytes.current) == needed,
               "t=" + std::to_string(t_) + ": after empty_cache " + std::to_string(s.reserved_bytes.current) +
                   " bytes are reserved but only " + std::to_string(needed) +
                   " are in segments holding live blocks or unreleased graph pools");
    if (host_ != nullptr)
      invariant("no_leak_after_empty_cache")
          .check(host_->raw_bytes_in_use() == static_cast<std::size_t>(s.reserved_bytes.current),
                 "t=" + std::to_string(t_) + ": the backend holds " + std::to_string(host_->raw_bytes_in_use()) +
                     " raw bytes but the allocator reports " + std::to_string(s.reserved_bytes.current) + " reserved");
    step("empty_cache", -1, 0, "");
  }
  void set_fraction(double fraction) {
    ++t_;
    alloc_.set_per_process_memory_fraction(fraction);
    std::ostringstream extra;
    extra << ", \"fraction\": " << fraction << ", \"limit\": " << alloc_.memory_limit();
    step("set_fraction", -1, 0, extra.str());
  }
  void set_poison(bool on) {
    ++t_;
    alloc_.set_poison_on_free(on);
    poison_ = on;
    step("set_poison", -1, 0, std::string(", \"on\": ") + (on ? "true" : "false"));
  }
  void begin_capture(GraphId graph, int stream) {
    ++t_;
    alloc_.begin_capture(graph, stream_id(stream));
    capturing_[stream] = graph;
    step("begin_capture", stream, 0, ", \"graph\": " + std::to_string(graph));
  }
  void end_capture(GraphId graph) {
    ++t_;
    alloc_.end_capture(graph);
    for (auto it = capturing_.begin(); it != capturing_.end();)
      it = it->second == graph ? capturing_.erase(it) : std::next(it);
    step("end_capture", -1, 0, ", \"graph\": " + std::to_string(graph));
  }
  void release_graph(GraphId graph) {
    ++t_;
    alloc_.release_graph(graph);
    released_graphs_.insert(graph);
    step("release_graph", -1, 0, ", \"graph\": " + std::to_string(graph));
  }
  void reset_peaks() {
    ++t_;
    alloc_.reset_peak_stats();
    step("reset_peaks", -1, 0, "");
  }
  void snapshot(const std::string& label) {
    ++t_;
    std::string snap = alloc_.snapshot_json();
    frag_snapshots_.push_back(fragmentation_of(label));
    step("snapshot", -1, 0, ", \"label\": " + json_string(label) + ", \"snapshot\": " + snap);
  }
  int ooms() const { return ooms_; }

  bool all_passed() const {
    return std::all_of(invariants_.begin(), invariants_.end(), [](const Invariant& i) { return i.passed; });
  }

  std::string report_json(const std::string& scenario, const std::string& error) {
    std::ostringstream os;
    os << "{\"name\": " << json_string(scenario) << ", \"passed\": " << (all_passed() && error.empty() ? "true" : "false")
       << ", \"error\": " << (error.empty() ? "null" : json_string(error)) << ",\n\"invariants\": [";
    for (std::size_t i = 0; i < invariants_.size(); ++i)
      os << (i ? ", " : "") << "{\"name\": " << json_string(invariants_[i].name)
         << ", \"passed\": " << (invariants_[i].passed ? "true" : "false")
         << ", \"message\": " << json_string(invariants_[i].message) << "}";
    os << "],\n\"steps\": [\n";
    for (std::size_t i = 0; i < steps_.size(); ++i) os << (i ? ",\n" : "") << steps_[i];
    os << "],\n\"events\": [\n";
    for (std::size_t i = 0; i < events_.size(); ++i) os << (i ? ",\n" : "") << events_[i];
    os << "],\n\"series\": {";
    const char* names[] = {"t", "allocated", "active", "reserved"};
    for (int k = 0; k < 4; ++k) {
      os << (k ? ", " : "") << "\"" << names[k] << "\": [";
      for (std::size_t i = 0; i < series_[k].size(); ++i) os << (i ? ", " : "") << series_[k][i];
      os << "]";
    }
    std::int64_t max_alloc = 0, max_res = 0;
    for (auto v : series_[1]) max_alloc = std::max(max_alloc, v);
    for (auto v : series_[3]) max_res = std::max(max_res, v);
    os << "},\n\"fragmentation\": {\"max_allocated\": " << max_alloc << ", \"max_reserved\": " << max_res
       << ", \"overhead_ratio\": " << (max_alloc > 0 ? static_cast<double>(max_res) / static_cast<double>(max_alloc) : 0.0)
       << ", \"snapshots\": [";
    for (std::size_t i = 0; i < frag_snapshots_.size(); ++i) os << (i ? ", " : "") << frag_snapshots_[i];
    os << "]},\n\"final_stats\": " << stats_to_json(alloc_.stats()) << ",\n\"snapshot\": " << alloc_.snapshot_json()
       << "}";
    return os.str();
  }

 private:
  struct Live {
    std::size_t size = 0;
    int stream = 0;
    std::set<int> uses;  // other streams it was recorded on
  };
  struct PendingBlock {
    std::uintptr_t addr;
    std::size_t size;
    std::set<int> uses;  // streams whose work has not completed yet
  };
  struct Seg {
    std::size_t size;
    int stream;
    GraphId graph;
  };

  void on_event(const AllocatorEvent& e) {
    std::ostringstream os;
    os << "{\"t\": " << t_ << ", \"kind\": \"" << to_string(e.kind) << "\", \"address\": " << e.address
       << ", \"size\": " << e.size << ", \"stream\": " << stream_index(e.stream) << ", \"event\": " << e.event
       << ", \"stage\": " << e.stage << ", \"graph\": ";
    if (e.graph >= 0) os << e.graph;
    else os << "null";
    os << "}";
    events_.push_back(os.str());
    if (e.kind == AllocatorEvent::Kind::SegmentAlloc) {
      segments_[e.address] = {e.size, static_cast<int>(stream_index(e.stream)), e.graph};
      invariant("memory_cap_respected")
          .check(reserved_from_events() <= alloc_.memory_limit(),  // memory_limit() takes no lock
                 "t=" + std::to_string(t_) + ": a new segment took reserved memory to " +
                     std::to_string(reserved_from_events()) + " bytes, past the limit " +
                     std::to_string(alloc_.memory_limit()));
    } else if (e.kind == AllocatorEvent::Kind::SegmentFree) {
      segments_.erase(e.address);
    } else if (e.kind == AllocatorEvent::Kind::BlockReady && host_ == nullptr) {
      // CUDA: a stream with no queued work completes its event at once, before any complete_stream; the
      // allocator's block_ready (after cudaEventQuery said done) is then the only signal there is.
      std::erase_if(pending_, [&](const PendingBlock& pb) { return pb.addr == e.address; });
    } else if (e.kind == AllocatorEvent::Kind::GcStage && e.stage == 3) {
      pending_.clear();  // stage 3 waits for every pending event
    }
  }
  std::size_t reserved_from_events() const {
    std::size_t total = 0;
    for (auto& [base, seg] : segments_) total += seg.size;
    return total;
  }

  void check_new_block(std::uintptr_t p, std::size_t block, std::size_t size, int stream, GraphId graph) {
    std::string at = "t=" + std::to_string(t_) + ": block " + std::to_string(p) + " (" + std::to_string(block) + " bytes)";
    invariant("stats_add_up").check(block >= size, at + " is smaller than the " + std::to_string(size) + " requested");
    for (auto& [q, l] : live_)
      invariant("no_overlapping_blocks").check(p >= q + l.size || p + block <= q,
                                               at + " overlaps live block " + std::to_string(q));
    for (auto& pb : pending_)
      invariant("no_reuse_before_stream_event")
          .check(p >= pb.addr + pb.size || p + block <= pb.addr,
                 at + " reuses freed block " + std::to_string(pb.addr) + " before the work of its other streams completed");
    // The block lies in a segment of its own stream, in its graph's pools exactly when captured.
    auto seg = segments_.upper_bound(p);
    bool found = seg != segments_.begin();
    if (found) {
      --seg;
      found = p + block <= seg->first + seg->second.size;
    }
    invariant("stats_add_up").check(found, at + " lies in no segment the allocator reported");
    if (found) {
      invariant("graph_pools_isolated")
          .check(seg->second.graph == graph, at + " comes from a segment of graph " + std::to_string(seg->second.graph) +
                                                 " but the request was for graph " + std::to_string(graph));
      invariant("no_reuse_before_stream_event")
          .check(seg->second.stream == stream, at + " on stream " + std::to_string(stream) +
                                                   " comes from a segment owned by stream " + std::to_string(seg->second.stream));
    }
    live_[p] = Live{block, stream, {}};
  }

  std::string fragmentation_of(const std::string& label) {
    // Free bytes and the largest free block, scanned from the snapshot JSON's blocks
    // ({"address": A, "size": S, "requested": R, "stream": X, "state": "..."}).
    std::string snap = alloc_.snapshot_json();
    std::size_t free_bytes = 0, largest = 0;
    std::size_t pos = 0;
    // Blocks appear as {"address": A, "size": S, "requested": R, "stream": X, "state": "..."}.
    while ((pos = snap.find("\"requested\": ", pos)) != std::string::npos) {
      std::size_t start = snap.rfind("\"size\": ", pos);
      std::size_t size = std::stoull(snap.substr(start + 8));
      std::size_t st = snap.find("\"state\": \"", pos) + 10;
      if (snap.compare(st, 4, "free") == 0) {
        free_bytes += size;
        largest = std::max(largest, size);
      }
      pos = st;
    }
    std::ostringstream os;
    os << "{\"label\": " << json_string(label) << ", \"reserved\": " << alloc_.stats().reserved_bytes.current
       << ", \"free_bytes\": " << free_bytes << ", \"largest_free_block\": " << largest << ", \"external\": "
       << (free_bytes > 0 ? 1.0 - static_cast<double>(largest) / static_cast<double>(free_bytes) : 0.0) << "}";
    return os.str();
  }

  StreamId stream_id(int index) const {
#ifdef VBT_WITH_CUDA
    if (host_ == nullptr) return streams_.at(index).id();
#endif
    return static_cast<StreamId>(index);
  }
  long long stream_index(StreamId id) const {
    for (int i = 0; i < kStreams; ++i)
      if (stream_id(i) == id) return i;
    return static_cast<long long>(id);
  }
  void step(const char* op, int stream, std::size_t size, const std::string& extra) {
    AllocatorStats s = alloc_.stats();
    std::size_t held = 0;
    for (auto& [p, l] : live_) held += l.size;
    std::string at = "t=" + std::to_string(t_) + " (" + op + "): ";
    Invariant& sums = invariant("stats_add_up");
    sums.check(static_cast<std::size_t>(s.allocated_bytes.current) == held,
               at + "allocated_bytes " + std::to_string(s.allocated_bytes.current) + " != " + std::to_string(held) +
                   " bytes of live blocks");
    sums.check(s.allocated_bytes.current <= s.active_bytes.current && s.active_bytes.current <= s.reserved_bytes.current,
               at + "not allocated <= active <= reserved");
    sums.check(static_cast<std::size_t>(s.reserved_bytes.current) == reserved_from_events(),
               at + "reserved_bytes " + std::to_string(s.reserved_bytes.current) + " != " +
                   std::to_string(reserved_from_events()) + " bytes of segments alive");
    sums.check(s.allocated_blocks.current == static_cast<std::int64_t>(live_.size()),
               at + "allocated_blocks != live blocks");
    sums.check(s.allocated_bytes.peak >= s.allocated_bytes.current && s.reserved_bytes.peak >= s.reserved_bytes.current,
               at + "a peak is below its current value");
    if (host_ != nullptr)
      sums.check(host_->raw_bytes_in_use() == static_cast<std::size_t>(s.reserved_bytes.current),
                 at + "the backend holds " + std::to_string(host_->raw_bytes_in_use()) + " raw bytes, reserved is " +
                     std::to_string(s.reserved_bytes.current));
    invariant("memory_cap_respected")
        .check(static_cast<std::size_t>(s.reserved_bytes.current) <= alloc_.memory_limit(),
               at + "reserved " + std::to_string(s.reserved_bytes.current) + " exceeds the limit " +
                   std::to_string(alloc_.memory_limit()));
    std::ostringstream os;
    os << "{\"t\": " << t_ << ", \"op\": \"" << op << "\", \"stream\": ";
    if (stream >= 0) os << stream;
    else os << "null";
    os << ", \"size\": " << size << extra << ", \"allocated\": " << s.allocated_bytes.current
       << ", \"reserved\": " << s.reserved_bytes.current << ", \"active\": " << s.active_bytes.current
       << ", \"allocated_peak\": " << s.allocated_bytes.peak << ", \"reserved_peak\": " << s.reserved_bytes.peak
       << ", \"active_peak\": " << s.active_bytes.peak << ", \"segments\": " << s.segments.current << "}";
    steps_.push_back(os.str());
    series_[0].push_back(t_);
    series_[1].push_back(s.allocated_bytes.current);
    series_[2].push_back(s.active_bytes.current);
    series_[3].push_back(s.reserved_bytes.current);
  }

  MemoryBackend& backend_;
  HostBackend* host_;
  CachingAllocator alloc_;
  int t_ = 0;
  int ooms_ = 0;
  bool poison_ = false;
  std::vector<std::string> steps_, events_, frag_snapshots_;
  std::vector<std::int64_t> series_[4];
  std::vector<Invariant> invariants_;
  std::map<int, GraphId> capturing_;
  std::set<GraphId> released_graphs_;
  std::map<std::uintptr_t, Live> live_;
  std::vector<PendingBlock> pending_;
  std::map<std::uintptr_t, Seg> segments_;
#ifdef VBT_WITH_CUDA
  std::vector<Stream> streams_;
#endif
};

// ---- scenarios ------------------------------------------------------------------------------------

void free_all(Recorder& r, std::vector<void*>& live) {
  for (void* p : live)
    if (p) r.free(p);
  live.clear();
}

// Many sizes (512 B to 8 MiB) on two streams with a bounded working set, some blocks used on a third stream.
void churn(Recorder& r, unsigned seed, int steps) {
  std::mt19937 rng(seed);
  std::vector<void*> live;
  for (int i = 0; i < steps; ++i) {
    if (live.empty() || rng() % 160 >= live.size()) {
      std::size_t size = rng() % 8 == 0 ? 1 + rng() % (8 * MiB) : 1 + rng() % (128 * KiB);
      if (void* p = r.malloc(size, static_cast<int>(rng() % 2))) {
        live.push_back(p);
        if (rng() % 10 == 0) r.record_stream(p, 2);
      }
    } else {
      std::size_t k = rng() % live.size();
      r.free(live[k]);
      live.erase(live.begin() + static_cast<long>(k));
    }
    if (rng() % 40 == 0) r.complete_stream(2);
    if ((i + 1) % 250 == 0) r.snapshot("step " + std::to_string(i + 1));
    if (i + 1 == steps / 2) r.reset_peaks();
  }
  free_all(r, live);
  r.complete_stream(2);
  r.snapshot("all freed");
  r.empty_cache();
}

void cross_stream(Recorder& r, unsigned, int) {
  for (std::size_t size : {64 * KiB, 3 * MiB}) {
    void* a = r.malloc(size, 0);
    r.record_stream(a, 1);
    r.record_stream(a, 2);
    r.free(a);  // pending on the events of streams 1 and 2
    void* before = r.malloc(size, 0);   // no event complete: must not reuse a
    r.complete_stream(1);
    void* half = r.malloc(size, 0);     // stream 2's event still pending
    r.complete_stream(2);
    void* after = r.malloc(size, 0);    // both complete: a may be reused
    // Host backend only: on a GPU the events of idle streams complete at once, so `before` may rightly get a.
    if (r.host())
      r.invariant("pending_block_reused_once_done")
          .check(after == a, "the block freed after record_stream was not reused once both streams completed");
    r.snapshot("after reuse, size " + std::to_string(size));
    std::vector<void*> live{before, half, after};
    free_all(r, live);
  }
  void* b = r.malloc(4 * KiB, 1);  // freed on its own stream: reusable at once
  r.free(b);
  void* c = r.malloc(4 * KiB, 1);
  r.invariant("own_stream_block_reused_at_once").check(c == b, "a block freed on its own stream was not reused");
  r.free(c);
  r.empty_cache();
}

void fraction_cap(Recorder& r, unsigned, int) {
  std::size_t capacity = r.alloc().memory_limit();
  r.set_fraction(static_cast<double>(64 * MiB) / static_cast<double>(capacity));  // a 64 MiB cap
  std::vector<void*> live;
  for (int i = 0; i < 8; ++i) {
    void* p = r.malloc(12 * MiB, 0);
    if (p == nullptr) break;  // the OOM is recorded in the trace
    live.push_back(p);
  }
  r.invariant("oom_at_the_cap").check(r.ooms() == 1 && live.size() == 5,
                                      "expected five 12 MiB blocks under a 64 MiB cap, then one OOM");
  r.snapshot("at the cap");
  r.free(live.back());
  live.pop_back();
  void* again = r.malloc(12 * MiB, 0);  // usable again: the cached block
  r.invariant("usable_after_oom").check(again != nullptr, "the allocator failed after an OOM");
  if (again) live.push_back(again);
  for (int i = 0; i < 2; ++i) {  // 36 MiB live, 24 MiB cached in two 12 MiB segments
    r.free(live.back());
    live.pop_back();
  }
  void* big = r.malloc(20 * MiB, 1);  // 60 + 20 > 64: the GC must free both cached segments
  r.invariant("gc_before_oom").check(big != nullptr, "a request the staged GC could satisfy raised OOM");
  if (big) live.push_back(big);
  if (void* p = r.malloc(512 * KiB, 2)) live.push_back(p);
  r.snapshot("after gc");
  free_all(r, live);
  r.empty_cache();
  r.set_fraction(1.0);
}

void graph_capture(Recorder& r, unsigned, int) {
  std::vector<void*> live;
  live.push_back(r.malloc(8 * KiB, 3));  // general pool, stream 3
  r.free(live.back());                   // cached general block on stream 3
  live.pop_back();
  r.begin_capture(1, 3);
  void* g1 = r.malloc(8 * KiB, 3);        // graph pool (never the cached general block)
  void* g2 = r.malloc(3 * MiB, 3);        // graph large pool
  void* outside = r.malloc(8 * KiB, 0);   // another stream while capturing: general pool
  r.free(g1);                             // back into graph 1's pool
  void* g3 = r.malloc(8 * KiB, 3);        // reuses the graph block
  r.invariant("graph_pool_reuse").check(g3 == g1, "a block freed into a graph pool was not reused by the capture");
  r.end_capture(1);
  r.free(g3);
  void* after1 = r.malloc(8 * KiB, 3);    // not capturing: general pool only
  void* after2 = r.malloc(3 * MiB, 3);
  r.snapshot("graph 1 pools alive");
  r.empty_cache();                        // must keep graph 1's segments (the graph may replay)
  r.release_graph(1);                     // frees graph 1's free segments; g2 is still live
  r.snapshot("graph 1 released");
  r.free(g2);                             // its segment goes back to the device
  live = {outside, after1, after2};
  free_all(r, live);
  r.empty_cache();
}

void empty_cache_scenario(Recorder& r, unsigned seed, int) {
  std::mt19937 rng(seed);
  std::vector<void*> live;
  for (int i = 0; i < 40; ++i) live.push_back(r.malloc(1 + rng() % (4 * MiB), static_cast<int>(rng() % 3)));
  r.record_stream(live[0], 1);
  r.record_stream(live[1], 2);
  r.snapshot("before free");
  free_all(r, live);
  r.snapshot("all freed, cache full");
  r.empty_cache();  // waits for the pending events, then returns every segment
  r.snapshot("after empty_cache");
}

void poison(Recorder& r, unsigned seed, int) {
  std::mt19937 rng(seed);
  r.set_poison(true);
  std::vector<void*> live;
  for (int i = 0; i < 30; ++i) {
    std::size_t n = 1 + rng() % (2 * MiB);
    void* p = r.malloc(n, 0);
    std::memset(p, 0x5A, n);  // host backend: user data the poison must overwrite
    live.push_back(p);
  }
  free_all(r, live);
  r.set_poison(false);
  r.empty_cache();
}

using Scenario = std::function<void(Recorder&, unsigned, int)>;
struct Entry {
  Scenario fn;
  bool host_only;
};
const std::map<std::string, Entry>& scenarios() {
  static const std::map<std::string, Entry> table = {
      {"churn", {churn, false}},
      {"cross_stream", {cross_stream, false}},
      {"fraction_cap", {fraction_cap, false}},
      {"graph_capture", {graph_capture, false}},
      {"empty_cache", {empty_cache_scenario, false}},
      {"poison", {poison, true}},  // writes user data with memset: host memory only
  };
  return table;
}

int usage(const std::string& problem) {
  std::cerr << "vbt_allocator_scenarios: " << problem << "\nusage: vbt_allocator_scenarios [--scenario NAME]... "
            << "[--backend host|cuda] [--seed N] [--steps N] [--out FILE] | --list\nscenarios:";
  for (auto& [name, e] : scenarios()) std::cerr << " " << name;
  std::cerr << "\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> wanted;
  std::string backend_name = "host", out;
  unsigned seed = 0;
  int steps = 2000;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(arg + " needs a value");
      return argv[++i];
    };
    try {
      if (arg == "--list") {
        for (auto& [name, e] : scenarios()) std::cout << name << "\n";
        return 0;
      } else if (arg == "--scenario") wanted.push_back(value());
      else if (arg == "--backend") backend_name = value();
      else if (arg == "--seed") seed = static_cast<unsigned>(std::stoul(value()));
      else if (arg == "--steps") steps = std::stoi(value());
      else if (arg == "--out") out = value();
      else return usage("unknown argument " + arg);
    } catch (const std::exception& e) {
      return usage(std::string("bad argument: ") + e.what());
    }
  }
  for (auto& name : wanted)
    if (!scenarios().count(name)) return usage("unknown scenario " + name);
  if (steps <= 0) return usage("--steps must be positive");
  if (backend_name != "host" && backend_name != "cuda") return usage("unknown backend " + backend_name + " (host or cuda)");
#ifndef VBT_WITH_CUDA
  if (backend_name == "cuda") return usage("this build has no CUDA backend (configure with VBT_ENABLE_CUDA=ON)");
#endif
  if (wanted.empty())
    for (auto& [name, e] : scenarios())
      if (!(e.host_only && backend_name == "cuda")) wanted.push_back(name);

  std::size_t capacity = std::size_t(1) << 30;
  std::ostringstream report;
  bool all_passed = true, any_error = false;
  std::string scenario_reports;
  for (const std::string& name : wanted) {
    std::unique_ptr<MemoryBackend> backend;
    HostBackend* host = nullptr;
    try {
      if (backend_name == "host") {
        auto h = std::make_unique<HostBackend>(capacity);
        host = h.get();
        backend = std::move(h);
      } else {
#ifdef VBT_WITH_CUDA
        if (device_count() == 0) {
          std::cerr << "vbt_allocator_scenarios: --backend cuda but no CUDA device is visible\n";
          return 1;
        }
        backend = std::make_unique<CudaBackend>(current_device());
        capacity = backend->device_capacity();
#endif
      }
    } catch (const std::exception& e) {
      std::cerr << "vbt_allocator_scenarios: cannot create the " << backend_name << " backend: " << e.what() << "\n";
      return 1;
    }
    if (scenarios().at(name).host_only && host == nullptr) return usage("scenario " + name + " needs --backend host");
    Recorder recorder(*backend, host);
    std::string error;
    try {
      scenarios().at(name).fn(recorder, seed, steps);
    } catch (const std::exception& e) {
      error = e.what();
      any_error = true;
      std::cerr << "vbt_allocator_scenarios: scenario " << name << " failed: " << e.what() << "\n";
    }
    all_passed &= recorder.all_passed() && error.empty();
    scenario_reports += (scenario_reports.empty() ? "" : ",\n") + recorder.report_json(name, error);
  }
  report << "{\"schema\": \"vbt.allocator_report/1\", \"backend\": " << json_string(backend_name)
         << ", \"seed\": " << seed << ", \"steps_arg\": " << steps << ", \"config\": {"
         << "\"rounding\": " << AllocatorConfig{}.rounding << ", \"small_block_limit\": " << AllocatorConfig{}.small_block_limit
         << ", \"small_segment_size\": " << AllocatorConfig{}.small_segment_size
         << ", \"large_segment_rounding\": " << AllocatorConfig{}.large_segment_rounding
         << ", \"device_capacity\": " << capacity << "}, \"passed\": " << (all_passed ? "true" : "false")
         << ",\n\"scenarios\": [\n" << scenario_reports << "]}\n";
  if (out.empty()) {
    std::cout << report.str();
  } else {
    std::ofstream f(out);
    f << report.str();
    if (!f) {
      std::cerr << "vbt_allocator_scenarios: cannot write " << out << "\n";
      return 1;
    }
  }
  return any_error ? 1 : all_passed ? 0 : 3;
}
