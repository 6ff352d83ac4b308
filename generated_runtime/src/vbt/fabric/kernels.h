// Internal: launchers of the fabric's float32 kernels (kernels.cu). Pointers may be peer pointers (other
// devices' memory with peer access enabled for the current device). The current device must be the one
// `stream` belongs to. n in elements; n == 0 launches nothing.
#pragma once
#include <cuda_runtime_api.h>

#include <cstddef>

namespace vbt::fabric::detail {

cudaError_t launch_add(float* out, const float* a, const float* b, std::size_t n, cudaStream_t stream);
// dst[i] += src[i]
cudaError_t launch_accumulate(float* dst, const float* src, std::size_t n, cudaStream_t stream);

}  // namespace vbt::fabric::detail
