// Event: an owning, move-only CUDA event (created without timing unless asked). record() marks the work
// queued on a stream so far; wait() makes another stream wait for it without blocking the host.
// Only compiled with CUDA enabled.
#pragma once
#include <cuda_runtime_api.h>

#include "vbt/cuda/stream.h"

namespace vbt::cuda {

class Event {
 public:
  explicit Event(bool enable_timing = false);
  ~Event();
  Event(Event&& other) noexcept;
  Event& operator=(Event&& other) noexcept;
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;

  void record(const Stream& stream);
  void wait(const Stream& stream) const;  // stream waits for this event (cudaStreamWaitEvent)
  bool query() const;                     // true once the recorded work has completed
  void synchronize() const;
  float elapsed_ms(const Event& end) const;  // both need enable_timing
  cudaEvent_t handle() const { return handle_; }

 private:
  cudaEvent_t handle_ = nullptr;
  int device_ = 0;
};

}  // namespace vbt::cuda
