// Stream, current-stream-per-device and StreamGuard (stream.h). The current streams are thread-local,
// one slot per device, empty meaning the default stream.
#include "vbt/cuda/stream.h"

#include <map>

#include "vbt/cuda/cuda_error.h"
#include "vbt/cuda/device_guard.h"

namespace vbt::cuda {

Stream Stream::create(int device_index, int priority) {
  DeviceGuard guard(device_index);
  cudaStream_t s = nullptr;
  VBT_CUDA_CHECK(cudaStreamCreateWithPriority(&s, cudaStreamNonBlocking, priority));
  std::shared_ptr<void> owner(static_cast<void*>(s), [device_index](void* p) {
    DeviceGuard g(device_index);
    (void)cudaStreamSynchronize(static_cast<cudaStream_t>(p));
    (void)cudaStreamDestroy(static_cast<cudaStream_t>(p));
  });
  return Stream(s, device_index, std::move(owner));
}

Stream Stream::default_stream(int device_index) { return Stream(nullptr, device_index, nullptr); }

bool Stream::query() const {
  cudaError_t status = cudaStreamQuery(handle_);
  if (status == cudaErrorNotReady) {
    (void)cudaGetLastError();
    return false;
  }
  VBT_CUDA_CHECK(status);
  return true;
}

void Stream::synchronize() const {
  DeviceGuard guard(device_);
  VBT_CUDA_CHECK(cudaStreamSynchronize(handle_));
}

namespace {
std::map<int, Stream>& current_streams() {
  thread_local std::map<int, Stream> streams;
  return streams;
}
}  // namespace

Stream current_stream(int device_index) {
  auto& streams = current_streams();
  auto it = streams.find(device_index);
  return it == streams.end() ? Stream::default_stream(device_index) : it->second;
}

void set_current_stream(const Stream& stream) { current_streams().insert_or_assign(stream.device_index(), stream); }

StreamGuard::StreamGuard(const Stream& stream) : previous_(current_stream(stream.device_index())) {
  set_current_stream(stream);
}

StreamGuard::~StreamGuard() { set_current_stream(previous_); }

}  // namespace vbt::cuda
