// Device: where a tensor's storage lives. CPU is the only backend built today; CUDA is a
// reserved value so that TensorImpl, the allocator interface and the dispatcher already carry it.
#pragma once
#include <cstdint>
#include <string>

namespace vbt {

enum class DeviceType : int8_t { CPU = 0, CUDA = 1 };

struct Device {
  DeviceType type = DeviceType::CPU;
  int16_t index = -1;  // -1: "the current device" (always -1 for CPU)
  bool operator==(const Device& o) const { return type == o.type && index == o.index; }
  bool operator!=(const Device& o) const { return !(*this == o); }
  std::string str() const;  // "cpu", "cuda:0"
  static Device parse(const std::string& s);  // throws RuntimeError on an unknown device string
};

}  // namespace vbt
