// CUDA op kernels: fills the CUDA column of the op table at runtime (Dispatcher::set_kernel) and
// registers the caching allocator as the memory source of "cuda:N" storages (vbt::set_device_allocator).
// Ops with a CUDA kernel: see register_cuda_ops() in src/vbt/cuda/ops/cuda_ops.cpp. Only compiled with
// CUDA enabled. Registration needs no GPU; running a kernel without one raises RuntimeError.
#pragma once
#include "vbt/core/tensor_impl.h"

namespace vbt::cuda {

void register_cuda_ops();  // idempotent
// A copy of t on `device` (cpu or cuda[:N]), contiguous, same dtype; t itself when already there.
Tensor to_device(const Tensor& t, Device device);

}  // namespace vbt::cuda
