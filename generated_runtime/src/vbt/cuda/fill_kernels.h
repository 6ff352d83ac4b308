// Internal: device kernels of the CUDA backend (fill_kernels.cu). Counts, on `stream`, the bytes of
// [ptr, ptr+bytes) that differ from `byte` into *device_count (a device int, zeroed by the caller).
#pragma once
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

namespace vbt::cuda::detail {

cudaError_t launch_count_mismatched_bytes(const void* ptr, std::size_t bytes, std::uint8_t byte,
                                          unsigned long long* device_count, cudaStream_t stream);

}  // namespace vbt::cuda::detail
