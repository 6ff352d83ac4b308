// HostBackend: a MemoryBackend on host memory, so the caching allocator's policy runs without a GPU.
// Memory: aligned_alloc(512) per raw_alloc; a simulated device capacity (raw_alloc returns nullptr past
// it, like cudaMalloc on a full device). Streams are plain integers. Events are simulated: an event
// recorded on a stream completes only when the test says so (complete_stream / complete_event), which
// stands for "the work queued on that stream has finished". synchronize_event completes it at once.
#pragma once
#include <cstddef>
#include <map>
#include <vector>

#include "vbt/cuda/memory_backend.h"

namespace vbt::cuda {

class HostBackend final : public MemoryBackend {
 public:
  explicit HostBackend(std::size_t capacity_bytes = std::size_t(1) << 30);
  ~HostBackend() override;
  HostBackend(const HostBackend&) = delete;
  HostBackend& operator=(const HostBackend&) = delete;

  const char* name() const override { return "host"; }
  std::size_t device_capacity() const override { return capacity_; }
  void* raw_alloc(std::size_t bytes) override;
  void raw_free(void* ptr) override;
  EventId create_event() override;
  void destroy_event(EventId event) override;
  void record_event(EventId event, StreamId stream) override;
  bool query_event(EventId event) override;
  void synchronize_event(EventId event) override;
  void fill(void* ptr, std::size_t bytes, std::uint8_t byte, StreamId stream) override;
  bool is_filled(const void* ptr, std::size_t bytes, std::uint8_t byte) override;

  // Test control: the work queued on `stream` so far has finished; returns the events that completed.
  std::vector<EventId> complete_stream(StreamId stream);
  void complete_event(EventId event);
  // Observability for tests: bytes and count of raw allocations alive, events not yet destroyed.
  std::size_t raw_bytes_in_use() const { return raw_bytes_; }
  std::size_t raw_allocations() const { return raw_sizes_.size(); }
  std::size_t live_events() const { return events_.size(); }
  std::size_t raw_alloc_calls() const { return raw_alloc_calls_; }
  // Makes the next `n` raw_alloc calls fail as if the device were full (fault injection).
  void fail_next_raw_allocs(int n) { fail_next_ = n; }

 private:
  struct SimEvent {
    bool recorded = false;
    bool completed = false;
    StreamId stream = 0;
  };
  SimEvent& event_at(EventId event);

  std::size_t capacity_;
  std::size_t raw_bytes_ = 0;
  std::size_t raw_alloc_calls_ = 0;
  int fail_next_ = 0;
  std::map<void*, std::size_t> raw_sizes_;
  std::map<EventId, SimEvent> events_;
  EventId next_event_ = 1;
};

}  // namespace vbt::cuda
