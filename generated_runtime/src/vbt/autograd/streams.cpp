// The registry of per-device-type stream hooks and StreamRefGuard (include/vbt/autograd/streams.h).
#include "vbt/autograd/streams.h"

#include <atomic>

#include "vbt/core/error.h"

namespace vbt::autograd {

namespace {
constexpr int kDeviceTypes = 2;  // DeviceType::CPU, DeviceType::CUDA
std::atomic<StreamHooks*> g_hooks[kDeviceTypes] = {};
std::atomic<int> g_registered{0};

int slot(DeviceType type) {
  int i = static_cast<int>(type);
  return i >= 0 && i < kDeviceTypes ? i : -1;
}
}  // namespace

void set_stream_hooks(DeviceType type, StreamHooks* hooks) {
  int i = slot(type);
  VBT_CHECK(i >= 0, "set_stream_hooks: unknown device type");
  StreamHooks* old = g_hooks[i].exchange(hooks);
  g_registered.fetch_add((hooks != nullptr) - (old != nullptr));
}

StreamHooks* stream_hooks(DeviceType type) {
  int i = slot(type);
  return i < 0 ? nullptr : g_hooks[i].load(std::memory_order_acquire);
}

bool any_stream_hooks() { return g_registered.load(std::memory_order_relaxed) > 0; }

StreamRef current_stream_of(Device device) {
  if (!any_stream_hooks()) return StreamRef{};
  StreamHooks* h = stream_hooks(device.type);
  return h ? h->current_stream(device) : StreamRef{};
}

StreamRefGuard::StreamRefGuard(const StreamRef& stream) {
  if (!stream.defined()) return;
  hooks_ = stream_hooks(stream.device.type);
  if (!hooks_) return;
  previous_ = hooks_->current_stream(stream.device);
  if (previous_.same(stream)) {
    hooks_ = nullptr;  // already current: nothing to restore
    return;
  }
  hooks_->set_current_stream(stream);
}

StreamRefGuard::~StreamRefGuard() {
  if (hooks_) hooks_->set_current_stream(previous_);
}

}  // namespace vbt::autograd
