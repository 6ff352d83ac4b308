// CudaBackend (cuda_backend.h). Every call runs with the backend's device current (DeviceGuard).
// cudaMalloc reporting cudaErrorMemoryAllocation returns nullptr so the caching allocator can GC and retry.
// raw_alloc may run during a graph capture (Note [Graph capture] in cuda_bindings.cpp).
#include "vbt/cuda/cuda_backend.h"

#include "fill_kernels.h"
#include "vbt/cuda/cuda_error.h"
#include "vbt/cuda/device_guard.h"

namespace vbt::cuda {

namespace {
cudaStream_t as_stream(StreamId id) { return reinterpret_cast<cudaStream_t>(id); }
cudaEvent_t as_event(EventId id) { return reinterpret_cast<cudaEvent_t>(id); }
}  // namespace

CudaBackend::CudaBackend(int device_index) : device_(device_index) {
  DeviceGuard guard(device_);
  std::size_t free_bytes = 0;
  VBT_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &capacity_));
}

void* CudaBackend::raw_alloc(std::size_t bytes) {
  DeviceGuard guard(device_);
  void* p = nullptr;
  // A new segment while this thread captures a CUDA graph (its private pool): cudaMalloc is not stream work,
  // but thread-local capture mode forbids it; relaxed mode allows it for this call (the graph keeps the
  // address; replays do not allocate).
  cudaStreamCaptureMode mode = cudaStreamCaptureModeRelaxed;
  (void)cudaThreadExchangeStreamCaptureMode(&mode);
  cudaError_t status = cudaMalloc(&p, bytes);
  (void)cudaThreadExchangeStreamCaptureMode(&mode);
  if (status == cudaErrorMemoryAllocation) {
    (void)cudaGetLastError();
    return nullptr;
  }
  VBT_CUDA_CHECK(status);
  return p;
}

void CudaBackend::raw_free(void* ptr) {
  DeviceGuard guard(device_);
  VBT_CUDA_CHECK(cudaFree(ptr));
}

EventId CudaBackend::create_event() {
  DeviceGuard guard(device_);
  cudaEvent_t e = nullptr;
  VBT_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
  return reinterpret_cast<EventId>(e);
}

void CudaBackend::destroy_event(EventId event) {
  DeviceGuard guard(device_);
  VBT_CUDA_CHECK(cudaEventDestroy(as_event(event)));
}

void CudaBackend::record_event(EventId event, StreamId stream) {
  DeviceGuard guard(device_);
  VBT_CUDA_CHECK(cudaEventRecord(as_event(event), as_stream(stream)));
}

bool CudaBackend::query_event(EventId event) {
  cudaError_t status = cudaEventQuery(as_event(event));
  if (status == cudaErrorNotReady) {
    (void)cudaGetLastError();
    return false;
  }
  VBT_CUDA_CHECK(status);
  return true;
}

void CudaBackend::synchronize_event(EventId event) { VBT_CUDA_CHECK(cudaEventSynchronize(as_event(event))); }

void CudaBackend::fill(void* ptr, std::size_t bytes, std::uint8_t byte, StreamId stream) {
  DeviceGuard guard(device_);
  VBT_CUDA_CHECK(cudaMemsetAsync(ptr, byte, bytes, as_stream(stream)));
}

bool CudaBackend::is_filled(const void* ptr, std::size_t bytes, std::uint8_t byte) {
  DeviceGuard guard(device_);
  unsigned long long* count = nullptr;
  VBT_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&count), sizeof(*count)));
  unsigned long long host_count = 0;
  cudaError_t status = cudaDeviceSynchronize();  // the fill may be queued on any stream
  if (status == cudaSuccess) status = cudaMemset(count, 0, sizeof(*count));
  if (status == cudaSuccess) status = detail::launch_count_mismatched_bytes(ptr, bytes, byte, count, nullptr);
  if (status == cudaSuccess) status = cudaMemcpy(&host_count, count, sizeof(host_count), cudaMemcpyDeviceToHost);
  (void)cudaFree(count);
  VBT_CUDA_CHECK(status);
  return host_count == 0;
}

}  // namespace vbt::cuda
