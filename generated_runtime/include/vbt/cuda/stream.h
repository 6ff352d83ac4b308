// Stream: a handle to a CUDA stream of one device. Copies share ownership: a stream made by
// Stream::create is destroyed (after synchronising) when its last handle goes; the default (legacy)
// stream is never destroyed. id() is the opaque StreamId the caching allocator keys blocks by.
// Current stream: one per device and per thread, the default stream until set; StreamGuard sets it
// for a scope. Only compiled with CUDA enabled.
#pragma once
#include <cuda_runtime_api.h>

#include <memory>

#include "vbt/cuda/memory_backend.h"

namespace vbt::cuda {

class Stream {
 public:
  static Stream create(int device_index, int priority = 0);  // a new non-blocking stream
  static Stream default_stream(int device_index);
  cudaStream_t handle() const { return handle_; }
  StreamId id() const { return reinterpret_cast<StreamId>(handle_); }
  int device_index() const { return device_; }
  bool query() const;  // true when all queued work has completed
  void synchronize() const;
  bool operator==(const Stream& o) const { return handle_ == o.handle_ && device_ == o.device_; }
  // The shared owner of a created stream (null for the default stream). With wrap(), code that keeps streams
  // as plain handles (the autograd engine's StreamRef, src/vbt/cuda/autograd_streams.cpp) keeps one alive
  // and rebuilds the Stream.
  const std::shared_ptr<void>& owner() const { return owner_; }
  static Stream wrap(cudaStream_t handle, int device_index, std::shared_ptr<void> owner) {
    return Stream(handle, device_index, std::move(owner));
  }

 private:
  Stream(cudaStream_t handle, int device, std::shared_ptr<void> owner)
      : handle_(handle), device_(device), owner_(std::move(owner)) {}
  cudaStream_t handle_ = nullptr;
  int device_ = 0;
  std::shared_ptr<void> owner_;  // destroys handle_ (created streams only)
};

Stream current_stream(int device_index);
StreamId current_stream_id(int device_index);  // current_stream(d).id() without copying the handle
void set_current_stream(const Stream& stream);

class StreamGuard {
 public:
  explicit StreamGuard(const Stream& stream);
  ~StreamGuard();
  StreamGuard(const StreamGuard&) = delete;
  StreamGuard& operator=(const StreamGuard&) = delete;

 private:
  Stream previous_;
};

}  // namespace vbt::cuda
