// Event (event.h): an owning cudaEvent_t, destroyed with its device current.
#include "vbt/cuda/event.h"

#include <utility>

#include "vbt/cuda/cuda_error.h"
#include "vbt/cuda/device_guard.h"

namespace vbt::cuda {

Event::Event(bool enable_timing) : device_(current_device()) {
  VBT_CUDA_CHECK(cudaEventCreateWithFlags(&handle_, enable_timing ? cudaEventDefault : cudaEventDisableTiming));
}

Event::~Event() {
  if (handle_ != nullptr) {
    DeviceGuard guard(device_);
    (void)cudaEventDestroy(handle_);
  }
}

Event::Event(Event&& other) noexcept
    : handle_(std::exchange(other.handle_, nullptr)), device_(other.device_) {}

Event& Event::operator=(Event&& other) noexcept {
  if (this != &other) {
    if (handle_ != nullptr) (void)cudaEventDestroy(handle_);
    handle_ = std::exchange(other.handle_, nullptr);
    device_ = other.device_;
  }
  return *this;
}

void Event::record(const Stream& stream) {
  VBT_CHECK(stream.device_index() == device_, "Event::record: event of device ", device_,
            " recorded on a stream of device ", stream.device_index());
  VBT_CUDA_CHECK(cudaEventRecord(handle_, stream.handle()));
}

void Event::wait(const Stream& stream) const { VBT_CUDA_CHECK(cudaStreamWaitEvent(stream.handle(), handle_, 0)); }

bool Event::query() const {
  cudaError_t status = cudaEventQuery(handle_);
  if (status == cudaErrorNotReady) {
    (void)cudaGetLastError();
    return false;
  }
  VBT_CUDA_CHECK(status);
  return true;
}

void Event::synchronize() const { VBT_CUDA_CHECK(cudaEventSynchronize(handle_)); }

float Event::elapsed_ms(const Event& end) const {
  float ms = 0.0f;
  VBT_CUDA_CHECK(cudaEventElapsedTime(&ms, handle_, end.handle_));
  return ms;
}

}  // namespace vbt::cuda
