// PinnedHostAllocator (pinned_allocator.h): Note [Pinned host memory]. With CUDA, also the process-wide
// instance on a backend of cudaHostAlloc'd memory and CUDA events.
#include "vbt/cuda/pinned_allocator.h"

#include <algorithm>
#include <cstring>
#include <limits>

#ifdef VBT_WITH_CUDA
#include <cuda_runtime_api.h>

#include "vbt/cuda/cuda_error.h"
#endif

namespace vbt::cuda {

PinnedHostAllocator::PinnedHostAllocator(MemoryBackend& backend) : backend_(backend) {}

PinnedHostAllocator::~PinnedHostAllocator() {
  try {
    std::lock_guard<std::mutex> lock(mutex_);
    for (Block* b : pending_) {
      for (EventId e : b->events) {
        backend_.synchronize_event(e);
        backend_.destroy_event(e);
      }
      b->events.clear();
      free_.emplace(b->size, b);
    }
    pending_.clear();
    release_free_blocks();
    for (auto& [addr, b] : blocks_) delete b;  // still held by tensors: left to the process (dangling)
  } catch (...) {
  }
}

std::size_t PinnedHostAllocator::round_size(std::size_t bytes) {
  std::size_t size = 512;
  while (size < bytes) {
    VBT_CHECK(size <= std::numeric_limits<std::size_t>::max() / 2, "pin_memory: request of ", bytes,
              " bytes is too large");
    size <<= 1;
  }
  return size;
}

PinnedHostAllocator::Block* PinnedHostAllocator::find_block(const void* ptr) const {
  auto p = reinterpret_cast<std::uintptr_t>(ptr);
  auto it = blocks_.upper_bound(p);
  if (it == blocks_.begin()) return nullptr;
  --it;
  Block* b = it->second;
  return p < b->addr + b->size ? b : nullptr;
}

void PinnedHostAllocator::process_events() {
  auto done = [&](Block* b) {
    while (!b->events.empty() && backend_.query_event(b->events.back())) {
      backend_.destroy_event(b->events.back());
      b->events.pop_back();
    }
    if (!b->events.empty()) return false;
    free_.emplace(b->size, b);
    stats_.pending_blocks--;
    return true;
  };
  pending_.erase(std::remove_if(pending_.begin(), pending_.end(), done), pending_.end());
}

void PinnedHostAllocator::release_free_blocks() {
  for (auto& [size, b] : free_) {
    backend_.raw_free(reinterpret_cast<void*>(b->addr));
    stats_.cached_bytes -= static_cast<std::int64_t>(b->size);
    stats_.num_raw_frees++;
    blocks_.erase(b->addr);
    delete b;
  }
  free_.clear();
}

void* PinnedHostAllocator::allocate(std::size_t bytes) {
  if (bytes == 0) return nullptr;
  const std::size_t size = round_size(bytes);
  std::lock_guard<std::mutex> lock(mutex_);
  process_events();
  Block* b = nullptr;
  if (auto it = free_.find(size); it != free_.end()) {
    b = it->second;
    free_.erase(it);
    stats_.cached_bytes -= static_cast<std::int64_t>(size);
  } else {
    void* p = backend_.raw_alloc(size);
    if (p == nullptr) {  // release what is cached and try once more
      release_free_blocks();
      p = backend_.raw_alloc(size);
    }
    if (p == nullptr)
      throw OutOfMemoryError("pin_memory: out of pinned host memory: tried to allocate " + std::to_string(bytes) +
                                 " bytes (block of " + std::to_string(size) + " bytes); " +
                                 std::to_string(stats_.allocated_bytes) + " bytes of pinned memory in use",
                             bytes, AllocatorStats{});
    b = new Block;
    b->addr = reinterpret_cast<std::uintptr_t>(p);
    b->size = size;
    blocks_[b->addr] = b;
    stats_.num_raw_allocs++;
  }
  b->allocated = true;
  stats_.allocated_bytes += static_cast<std::int64_t>(size);
  stats_.num_allocs++;
  return reinterpret_cast<void*>(b->addr);
}

void PinnedHostAllocator::free(void* ptr) {
  if (ptr == nullptr) return;
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = blocks_.find(reinterpret_cast<std::uintptr_t>(ptr));
  VBT_CHECK(it != blocks_.end() && it->second->allocated, "PinnedHostAllocator::free: pointer ", ptr,
            " is not a live pinned allocation");
  Block* b = it->second;
  b->allocated = false;
  stats_.allocated_bytes -= static_cast<std::int64_t>(b->size);
  stats_.cached_bytes += static_cast<std::int64_t>(b->size);
  if (b->events.empty()) {
    free_.emplace(b->size, b);
  } else {
    pending_.push_back(b);
    stats_.pending_blocks++;
  }
  process_events();
}

bool PinnedHostAllocator::record_use(const void* ptr, StreamId stream) {
  std::lock_guard<std::mutex> lock(mutex_);
  Block* b = find_block(ptr);
  if (b == nullptr || !b->allocated) return false;
  EventId e = backend_.create_event();
  try {
    backend_.record_event(e, stream);
  } catch (...) {
    backend_.destroy_event(e);
    throw;
  }
  b->events.push_back(e);
  stats_.num_recorded_uses++;
  return true;
}

bool PinnedHostAllocator::contains(const void* ptr) const {
  std::lock_guard<std::mutex> lock(mutex_);
  Block* b = find_block(ptr);
  return b != nullptr && b->allocated;
}

std::size_t PinnedHostAllocator::block_size(const void* ptr) const {
  std::lock_guard<std::mutex> lock(mutex_);
  Block* b = find_block(ptr);
  return b != nullptr && b->allocated ? b->size : 0;
}

void PinnedHostAllocator::empty_cache() {
  std::lock_guard<std::mutex> lock(mutex_);
  process_events();
  release_free_blocks();
}

PinnedStats PinnedHostAllocator::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

#ifdef VBT_WITH_CUDA
namespace {

// cudaHostAlloc'd memory; events are created on the current device (the copy code holds a DeviceGuard
// for the stream's device). Allocation switches the thread to relaxed capture mode so that a pinned
// allocation during a graph capture is not an illegal call (it is not stream-ordered work).
class PinnedCudaBackend final : public MemoryBackend {
 public:
  const char* name() const override { return "cuda_pinned"; }
  std::size_t device_capacity() const override { return std::numeric_limits<std::size_t>::max(); }
  void* raw_alloc(std::size_t bytes) override {
    cudaStreamCaptureMode mode = cudaStreamCaptureModeRelaxed;
    (void)cudaThreadExchangeStreamCaptureMode(&mode);
    void* p = nullptr;
    cudaError_t status = cudaHostAlloc(&p, bytes, cudaHostAllocPortable);
    (void)cudaThreadExchangeStreamCaptureMode(&mode);
    if (status == cudaErrorMemoryAllocation) {
      (void)cudaGetLastError();
      return nullptr;
    }
    VBT_CUDA_CHECK(status);
    return p;
  }
  void raw_free(void* ptr) override { VBT_CUDA_CHECK(cudaFreeHost(ptr)); }
  EventId create_event() override {
    cudaEvent_t e = nullptr;
    VBT_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
    return reinterpret_cast<EventId>(e);
  }
  void destroy_event(EventId event) override {
    VBT_CUDA_CHECK(cudaEventDestroy(reinterpret_cast<cudaEvent_t>(event)));
  }
  void record_event(EventId event, StreamId stream) override {
    VBT_CUDA_CHECK(cudaEventRecord(reinterpret_cast<cudaEvent_t>(event), reinterpret_cast<cudaStream_t>(stream)));
  }
  bool query_event(EventId event) override {
    cudaError_t status = cudaEventQuery(reinterpret_cast<cudaEvent_t>(event));
    if (status == cudaErrorNotReady) {
      (void)cudaGetLastError();
      return false;
    }
    VBT_CUDA_CHECK(status);
    return true;
  }
  void synchronize_event(EventId event) override {
    VBT_CUDA_CHECK(cudaEventSynchronize(reinterpret_cast<cudaEvent_t>(event)));
  }
  void fill(void* ptr, std::size_t bytes, std::uint8_t byte, StreamId) override { std::memset(ptr, byte, bytes); }
  bool is_filled(const void* ptr, std::size_t bytes, std::uint8_t byte) override {
    const auto* p = static_cast<const std::uint8_t*>(ptr);
    return std::all_of(p, p + bytes, [byte](std::uint8_t v) { return v == byte; });
  }
};

}  // namespace

PinnedHostAllocator& pinned_host_allocator() {
  static auto* backend = new PinnedCudaBackend();
  static auto* alloc = new PinnedHostAllocator(*backend);  // never destroyed (see the header)
  return *alloc;
}
#endif

}  // namespace vbt::cuda
