// The CUDA implementation of the autograd engine's StreamHooks (include/vbt/autograd/streams.h; Note
// [Autograd streams] in src/vbt/autograd/engine.cpp): current streams are vbt::cuda's per-thread current
// streams, cross-stream waits are events, record_stream goes to the device's caching allocator.
// Built only with CUDA and the autograd subsystem (VBT_WITH_CUDA_AUTOGRAD); the Python binding installs it
// when _C loads.
#pragma once

namespace vbt::cuda {

// Registers the hooks for DeviceType::CUDA when a CUDA device exists (idempotent; no-op without devices).
// VBT_AUTOGRAD_STREAMS=0 in the environment (debugging only) leaves them out: backward then runs every node on
// the current stream with no cross-stream ordering, as before the hooks existed.
void install_autograd_stream_hooks();

}  // namespace vbt::cuda
