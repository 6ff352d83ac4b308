// Allocator: the interface every device's memory source implements. Units are bytes.
// A DataPtr owns its memory through its deleter; Storage holds exactly one DataPtr.
// The CPU allocator returns 64-byte aligned memory; a CUDA caching allocator will implement
// the same interface later.
#pragma once
#include <cstddef>
#include <functional>
#include <memory>

#include "vbt/core/device.h"

namespace vbt {

struct DataPtr {
  std::shared_ptr<void> owner;  // deleter frees the memory (or releases a foreign owner)
  void* data = nullptr;
  Device device;
};

class Allocator {
 public:
  virtual ~Allocator() = default;
  virtual DataPtr allocate(size_t nbytes) = 0;
};

Allocator& cpu_allocator();
// Memory sources of other device types, registered at runtime by their subsystem (the CUDA subsystem
// registers its caching allocator). `fn(index)` returns the allocator of that device (index -1: the
// current device). make_storage raises RuntimeError for a device type nobody registered.
using DeviceAllocatorFn = Allocator& (*)(int16_t device_index);
void set_device_allocator(DeviceType type, DeviceAllocatorFn fn);
// Wraps memory owned by someone else (e.g. a NumPy array); `release` runs when the last
// storage referencing it dies.
DataPtr wrap_foreign_memory(void* data, Device device, std::function<void()> release);

}  // namespace vbt
