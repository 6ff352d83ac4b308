// Stream, current-stream-per-device and StreamGuard (stream.h). The current streams are thread-local, a vector
// indexed by device (a device past its end: the default stream), cheap to read on every allocation and launch.
#include "vbt/cuda/stream.h"

#include <vector>

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
// Indexed by device; a slot past the end is the default stream (every CUDA allocation and kernel launch reads it).
std::vector<Stream>& current_streams() {
  thread_local std::vector<Stream> streams;
  return streams;
}
}  // namespace

Stream current_stream(int device_index) {
  auto& streams = current_streams();
  return device_index >= 0 && static_cast<std::size_t>(device_index) < streams.size()
             ? streams[device_index]
             : Stream::default_stream(device_index);
}

StreamId current_stream_id(int device_index) {
  auto& streams = current_streams();
  return device_index >= 0 && static_cast<std::size_t>(device_index) < streams.size() ? streams[device_index].id() : 0;
}

void set_current_stream(const Stream& stream) {
  auto& streams = current_streams();
  int d = stream.device_index();
  VBT_CHECK(d >= 0, "set_current_stream: a stream of device ", d);
  while (streams.size() <= static_cast<std::size_t>(d)) streams.push_back(Stream::default_stream(static_cast<int>(streams.size())));
  streams[d] = stream;
}

StreamGuard::StreamGuard(const Stream& stream) : previous_(current_stream(stream.device_index())) {
  set_current_stream(stream);
}

StreamGuard::~StreamGuard() { set_current_stream(previous_); }

}  // namespace vbt::cuda
