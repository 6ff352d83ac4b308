// Helpers shared by the host sides of the CUDA kernels (cuda_ops.cpp, sort_ops.cpp): the current stream of a
// device, and a launch status turned into the runtime's errors.
#pragma once
#include <cuda_runtime_api.h>

#include "vbt/core/error.h"
#include "vbt/core/tensor_impl.h"
#include "vbt/cuda/stream.h"

namespace vbt::cuda {

inline cudaStream_t stream_of(const Device& d) { return current_stream(d.index).handle(); }

// cudaErrorInvalidValue from a launcher means "no kernel for this dtype" (NotImplementedError); any other error
// is a RuntimeError naming the op. The sticky launch error is cleared either way.
inline void check_launch(cudaError_t e, const char* op, ScalarType dt) {
  if (e == cudaSuccess) return;
  (void)cudaGetLastError();
  if (e == cudaErrorInvalidValue)
    VBT_NOT_IMPLEMENTED(op, ": not implemented for dtype ", dtype_name(dt), " on CUDA");
  throw_error(ErrorKind::Runtime, op, ": CUDA kernel launch failed: ", cudaGetErrorString(e));
}

}  // namespace vbt::cuda
