// Streams for the autograd engine, without a dependency on CUDA (Note [Autograd streams] in engine.cpp).
// A device type with streams (CUDA) registers StreamHooks at run time (the CUDA subsystem does so when
// vibetensor._C loads, src/vbt/cuda/autograd_streams.cpp); with none registered (a CPU-only build, or a
// build without the CUDA subsystem) nodes record no stream and the engine does no stream work at all.
// Tests register fake hooks (tests/cpp/autograd/engine_streams_test.cpp) to check the engine's ordering
// decisions on the CPU.
#pragma once
#include <cstdint>
#include <memory>

#include "vbt/core/device.h"
#include "vbt/core/tensor_impl.h"

namespace vbt::autograd {

// One stream of one device. id: an opaque handle (the cudaStream_t value for CUDA); 0 is the device's
// default stream. keep: shares ownership of the stream, so a stream recorded by a node outlives the
// user's handle on it (a created CUDA stream is destroyed with its last owner). defined() is false for
// "no stream" (a device type without hooks).
struct StreamRef {
  Device device{};
  std::uint64_t id = 0;
  std::shared_ptr<void> keep;
  bool has = false;
  bool defined() const { return has; }
  bool same(const StreamRef& o) const { return has == o.has && device == o.device && id == o.id; }
};

class StreamHooks {
 public:
  virtual ~StreamHooks() = default;
  // The calling thread's current stream of `device` (device.type is this hooks' type).
  virtual StreamRef current_stream(Device device) = 0;
  // Makes `stream` the calling thread's current stream of its device.
  virtual void set_current_stream(const StreamRef& stream) = 0;
  // Orders `consumer` after the work queued on `producer` so far (an event recorded on producer that
  // consumer waits on; the host does not block). Both are streams of one device.
  virtual void wait_stream(const StreamRef& consumer, const StreamRef& producer) = 0;
  // record_stream: t's memory is also used on `stream`; the allocator must not reuse its block before the
  // work queued there by then has finished. Memory the device's allocator does not own is ignored.
  virtual void record_stream(const Tensor& t, const StreamRef& stream) = 0;
};

// Registers (or, with nullptr, removes) the hooks of a device type. Not owned; must outlive every use.
void set_stream_hooks(DeviceType type, StreamHooks* hooks);
StreamHooks* stream_hooks(DeviceType type);
bool any_stream_hooks();
// The current stream of `device`, or an undefined StreamRef when its type has no hooks.
StreamRef current_stream_of(Device device);

// Sets the current stream of `stream`'s device for a scope (nothing for an undefined one).
class StreamRefGuard {
 public:
  explicit StreamRefGuard(const StreamRef& stream);
  ~StreamRefGuard();
  StreamRefGuard(const StreamRefGuard&) = delete;
  StreamRefGuard& operator=(const StreamRefGuard&) = delete;

 private:
  StreamHooks* hooks_ = nullptr;
  StreamRef previous_;
};

}  // namespace vbt::autograd
