// DispatchKey: which layer or backend handles a call. Backends (CPU, CUDA) hold kernels;
// wrapper layers (Autograd, Python) run before the backend and call `next` to continue.
// Values are explicit and only grow at the end.
#pragma once
#include <cstdint>

#include "vbt/core/device.h"

namespace vbt {

enum class DispatchKey : uint8_t { CPU = 0, CUDA = 1, Autograd = 2, Python = 3 };
constexpr int kNumDispatchKeys = 4;

inline DispatchKey backend_key(DeviceType t) { return t == DeviceType::CUDA ? DispatchKey::CUDA : DispatchKey::CPU; }

}  // namespace vbt
