// CUDA stream hooks of the autograd engine (include/vbt/cuda/autograd_streams.h).
#include "vbt/cuda/autograd_streams.h"

#include <cstdlib>
#include <cstring>
#include <mutex>

#include "vbt/autograd/streams.h"
#include "vbt/cuda/device_allocator.h"
#include "vbt/cuda/device_guard.h"
#include "vbt/cuda/event.h"
#include "vbt/cuda/stream.h"

namespace vbt::cuda {

namespace {

using vbt::autograd::StreamRef;

StreamRef to_ref(const Stream& s) {
  StreamRef r;
  r.device = Device{DeviceType::CUDA, static_cast<int16_t>(s.device_index())};
  r.id = s.id();
  r.keep = s.owner();
  r.has = true;
  return r;
}

Stream from_ref(const StreamRef& r) {
  return Stream::wrap(reinterpret_cast<cudaStream_t>(r.id), r.device.index, r.keep);
}

class CudaStreamHooks final : public vbt::autograd::StreamHooks {
 public:
  StreamRef current_stream(Device device) override {
    int index = device.index < 0 ? current_device() : device.index;
    return to_ref(vbt::cuda::current_stream(index));
  }
  void set_current_stream(const StreamRef& stream) override { vbt::cuda::set_current_stream(from_ref(stream)); }
  void wait_stream(const StreamRef& consumer, const StreamRef& producer) override {
    DeviceGuard guard(producer.device.index);
    Event event;  // destroyed at once; CUDA releases it when the recorded work is done
    event.record(from_ref(producer));
    event.wait(from_ref(consumer));
  }
  void record_stream(const Tensor& t, const StreamRef& stream) override {
    if (!t.defined() || t.device().type != DeviceType::CUDA) return;
    void* base = t.impl()->storage()->data_ptr.data;
    if (base == nullptr) return;
    // Memory not from the caching allocator (e.g. imported through DLPack) is left to its owner.
    (void)cuda_caching_allocator(t.device().index).cache().try_record_stream(base, stream.id);
  }
};

}  // namespace

void install_autograd_stream_hooks() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (device_count() <= 0) return;
    const char* off = std::getenv("VBT_AUTOGRAD_STREAMS");
    if (off != nullptr && std::strcmp(off, "0") == 0) return;  // debug: the old one-stream backward
    static CudaStreamHooks hooks;
    vbt::autograd::set_stream_hooks(DeviceType::CUDA, &hooks);
  });
}

}  // namespace vbt::cuda
