// Internal: DeviceScope sets the current CUDA device for a scope and restores the previous one.
#pragma once
#include <cuda_runtime_api.h>

#include "vbt/fabric/fabric.h"

namespace vbt::fabric::detail {

class DeviceScope {
 public:
  explicit DeviceScope(int device) {
    VBT_FABRIC_CUDA(cudaGetDevice(&previous_));
    if (device != previous_) VBT_FABRIC_CUDA(cudaSetDevice(device));
  }
  ~DeviceScope() { (void)cudaSetDevice(previous_); }
  DeviceScope(const DeviceScope&) = delete;
  DeviceScope& operator=(const DeviceScope&) = delete;

 private:
  int previous_ = 0;
};

}  // namespace vbt::fabric::detail
