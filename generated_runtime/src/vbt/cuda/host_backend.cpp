// HostBackend: host memory and simulated streams/events for testing the caching allocator's policy
// on the CPU (see host_backend.h). Invariant: raw_bytes_ == sum of raw_sizes_; every event id in
// events_ was created and not yet destroyed.
#include "vbt/cuda/host_backend.h"

#include <cstdlib>
#include <cstring>

#include "vbt/core/error.h"

namespace vbt::cuda {

HostBackend::HostBackend(std::size_t capacity_bytes) : capacity_(capacity_bytes) {}

HostBackend::~HostBackend() {
  for (auto& [ptr, size] : raw_sizes_) std::free(ptr);
}

void* HostBackend::raw_alloc(std::size_t bytes) {
  ++raw_alloc_calls_;
  if (fail_next_ > 0) {
    --fail_next_;
    return nullptr;
  }
  if (bytes == 0 || raw_bytes_ + bytes > capacity_) return nullptr;
  std::size_t rounded = (bytes + 511) / 512 * 512;  // aligned_alloc needs a multiple of the alignment
  void* p = std::aligned_alloc(512, rounded);
  if (p == nullptr) return nullptr;
  raw_sizes_[p] = bytes;
  raw_bytes_ += bytes;
  return p;
}

void HostBackend::raw_free(void* ptr) {
  auto it = raw_sizes_.find(ptr);
  VBT_CHECK(it != raw_sizes_.end(), "HostBackend::raw_free: pointer was not returned by raw_alloc");
  raw_bytes_ -= it->second;
  raw_sizes_.erase(it);
  std::free(ptr);
}

HostBackend::SimEvent& HostBackend::event_at(EventId event) {
  auto it = events_.find(event);
  VBT_CHECK(it != events_.end(), "HostBackend: unknown or destroyed event ", event);
  return it->second;
}

EventId HostBackend::create_event() {
  EventId id = next_event_++;
  events_[id] = SimEvent{};
  return id;
}

void HostBackend::destroy_event(EventId event) {
  event_at(event);
  events_.erase(event);
}

void HostBackend::record_event(EventId event, StreamId stream) {
  SimEvent& e = event_at(event);
  e.recorded = true;
  e.completed = false;
  e.stream = stream;
}

bool HostBackend::query_event(EventId event) {
  const SimEvent& e = event_at(event);
  return !e.recorded || e.completed;  // like cudaEventQuery: an unrecorded event counts as complete
}

void HostBackend::synchronize_event(EventId event) { event_at(event).completed = true; }

void HostBackend::fill(void* ptr, std::size_t bytes, std::uint8_t byte, StreamId) { std::memset(ptr, byte, bytes); }

bool HostBackend::is_filled(const void* ptr, std::size_t bytes, std::uint8_t byte) {
  const auto* p = static_cast<const std::uint8_t*>(ptr);
  for (std::size_t i = 0; i < bytes; ++i)
    if (p[i] != byte) return false;
  return true;
}

std::vector<EventId> HostBackend::complete_stream(StreamId stream) {
  std::vector<EventId> done;
  for (auto& [id, e] : events_) {
    if (e.recorded && !e.completed && e.stream == stream) {
      e.completed = true;
      done.push_back(id);
    }
  }
  return done;
}

void HostBackend::complete_event(EventId event) { event_at(event).completed = true; }

}  // namespace vbt::cuda
