// DeviceGuard: sets the current CUDA device for a scope and restores the previous one on exit.
// device_count() / current_device() query the runtime (throw vbt::Error on a CUDA failure).
// Only compiled with CUDA enabled.
#pragma once

namespace vbt::cuda {

int device_count();
int current_device();
void set_device(int device_index);

class DeviceGuard {
 public:
  explicit DeviceGuard(int device_index);  // index < 0: leaves the current device unchanged
  ~DeviceGuard();
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = -1;
};

}  // namespace vbt::cuda
