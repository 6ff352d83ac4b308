// CachingDeviceAllocator: the core `vbt::Allocator` interface (vbt/core/allocator.h) for a CUDA device,
// backed by a CachingAllocator. allocate() takes memory on the stream current_stream() names at that
// moment; the DataPtr's deleter frees it back into the cache (never to the device directly), and keeps
// the CachingAllocator alive, so storages may outlive this object.
// With CUDA enabled, cuda_caching_allocator(device) is the process-wide allocator of one device (a
// CudaBackend, the device's current stream); without CUDA only the class exists (tests use HostBackend).
#pragma once
#include <functional>
#include <memory>

#include "vbt/core/allocator.h"
#include "vbt/cuda/caching_allocator.h"

namespace vbt::cuda {

class CachingDeviceAllocator final : public vbt::Allocator {
 public:
  CachingDeviceAllocator(std::shared_ptr<CachingAllocator> cache, int device_index,
                         std::function<StreamId()> current_stream);
  DataPtr allocate(size_t nbytes) override;  // device {CUDA, device_index}; throws OutOfMemoryError
  CachingAllocator& cache() { return *cache_; }

 private:
  std::shared_ptr<CachingAllocator> cache_;
  int device_index_;
  std::function<StreamId()> current_stream_;
};

#ifdef VBT_WITH_CUDA
CachingDeviceAllocator& cuda_caching_allocator(int device_index);
#endif

}  // namespace vbt::cuda
