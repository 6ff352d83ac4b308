// MemoryBackend: where the caching allocator gets raw device memory and stream-ordered events.
// The allocator's policy (caching_allocator.h) talks only to this interface, so it is tested on the
// CPU with HostBackend (host_backend.h) and runs on a GPU with CudaBackend (cuda_backend.h).
// Units: bytes. Streams and events are opaque 64-bit handles (a cudaStream_t / cudaEvent_t value for
// CUDA, a small integer for the host simulation); stream 0 is the device's default stream.
// raw_alloc returns nullptr when the device is out of memory (never throws for that); every other
// failure throws vbt::Error.
#pragma once
#include <cstddef>
#include <cstdint>

namespace vbt::cuda {

using StreamId = std::uint64_t;
using EventId = std::uint64_t;

class MemoryBackend {
 public:
  virtual ~MemoryBackend() = default;
  virtual const char* name() const = 0;  // "host" or "cuda"
  virtual std::size_t device_capacity() const = 0;  // total bytes of the device (the memory-fraction base)

  virtual void* raw_alloc(std::size_t bytes) = 0;  // nullptr: out of device memory
  virtual void raw_free(void* ptr) = 0;

  virtual EventId create_event() = 0;
  virtual void destroy_event(EventId event) = 0;
  virtual void record_event(EventId event, StreamId stream) = 0;  // marks the work queued on stream so far
  virtual bool query_event(EventId event) = 0;  // true once that work has completed
  virtual void synchronize_event(EventId event) = 0;  // blocks until it has

  // Fill bytes with `byte`, ordered on `stream` (the poison-on-free debug mode).
  virtual void fill(void* ptr, std::size_t bytes, std::uint8_t byte, StreamId stream) = 0;
  // Whether every byte of [ptr, ptr+bytes) equals `byte` (waits for the device); for tests and diagnostics.
  virtual bool is_filled(const void* ptr, std::size_t bytes, std::uint8_t byte) = 0;
};

}  // namespace vbt::cuda
