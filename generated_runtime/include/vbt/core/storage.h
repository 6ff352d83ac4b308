// Storage: a reference-counted, untyped block of memory of nbytes bytes on one device, plus
// the version counter shared by every tensor viewing it (Note [Version counter]).
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>

#include "vbt/core/allocator.h"

namespace vbt {

// Note [Version counter]
// Every in-place write to a tensor bumps the counter of its storage, so all views of the
// same memory observe the bump (PyTorch's `_version`). Autograd will use it to detect
// tensors modified after being saved for backward.
struct StorageImpl {
  DataPtr data_ptr;
  size_t nbytes = 0;
  std::atomic<int64_t> version{0};
};
using Storage = std::shared_ptr<StorageImpl>;

Storage make_storage(size_t nbytes, Device device);

}  // namespace vbt
