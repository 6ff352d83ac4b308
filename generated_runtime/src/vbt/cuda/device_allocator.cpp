// CachingDeviceAllocator: adapts the CachingAllocator to vbt::Allocator (see device_allocator.h).
// Ownership: each DataPtr holds a shared_ptr to the cache; the deleter frees into it on the block's
// own stream (the stream recorded at allocation), so the cache outlives every storage it backs.
#include "vbt/cuda/device_allocator.h"

#include <atomic>
#include <mutex>
#include <vector>

#ifdef VBT_WITH_CUDA
#include "vbt/cuda/cuda_backend.h"
#include "vbt/cuda/device_guard.h"
#include "vbt/cuda/stream.h"
#endif

namespace vbt::cuda {

CachingDeviceAllocator::CachingDeviceAllocator(std::shared_ptr<CachingAllocator> cache, int device_index,
                                               std::function<StreamId()> current_stream)
    : cache_(std::move(cache)), device_index_(device_index), current_stream_(std::move(current_stream)) {
  VBT_CHECK(cache_ != nullptr, "CachingDeviceAllocator: no cache given");
}

DataPtr CachingDeviceAllocator::allocate(size_t nbytes) {
  StreamId stream = current_stream_ ? current_stream_() : 0;
  void* p = cache_->allocate(nbytes, stream);
  DataPtr d;
  std::shared_ptr<CachingAllocator> cache = cache_;
  d.owner = std::shared_ptr<void>(p, [cache](void* q) {
    if (q != nullptr) cache->free(q);
  });
  d.data = p;
  d.device = Device{DeviceType::CUDA, static_cast<int16_t>(device_index_)};
  return d;
}

#ifdef VBT_WITH_CUDA
CachingDeviceAllocator& cuda_caching_allocator(int device_index) {
  // Fast path (every CUDA allocation comes here): a device's allocator, once made, is published in a lock-free
  // table, so the common call is one atomic load: no mutex, no cudaGetDeviceCount.
  constexpr int kFastDevices = 64;
  static std::atomic<CachingDeviceAllocator*> fast[kFastDevices] = {};
  if (device_index >= 0 && device_index < kFastDevices) {
    if (CachingDeviceAllocator* a = fast[device_index].load(std::memory_order_acquire)) return *a;
  }
  static std::mutex mutex;
  // Never destroyed: storages freed during static destruction must still find their cache and backend.
  static auto& per_device = *new std::vector<std::unique_ptr<CachingDeviceAllocator>>();
  static auto& backends = *new std::vector<std::unique_ptr<CudaBackend>>();
  std::lock_guard<std::mutex> lock(mutex);
  int count = device_count();
  VBT_CHECK_INDEX(device_index >= 0 && device_index < count, "cuda_caching_allocator: device ", device_index,
                  " out of range (", count, " CUDA devices)");
  if (per_device.empty()) {
    per_device.resize(count);
    backends.resize(count);
  }
  auto& slot = per_device[device_index];
  if (!slot) {
    backends[device_index] = std::make_unique<CudaBackend>(device_index);
    auto cache = std::make_shared<CachingAllocator>(*backends[device_index], AllocatorConfig{}, device_index);
    slot = std::make_unique<CachingDeviceAllocator>(
        std::move(cache), device_index, [device_index] { return current_stream_id(device_index); });
    if (device_index < kFastDevices) fast[device_index].store(slot.get(), std::memory_order_release);
  }
  return *slot;
}
#endif

}  // namespace vbt::cuda
