// Internal: float GEMMs through cuBLAS, loaded at run time (CublasNote in cublas_gemm.cpp). Host code only.
#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

#include "loops.h"

namespace vbt::cuda::ops {

// Whether matmuls should go to cuBLAS now: enabled (VBT_CUBLAS / set_cublas_enabled) and the library loaded
// (the first call tries to load it).
bool cublas_ready();
// Whether a [rows, cols] operand with element strides (s_row, s_col) can go to cuBLAS as it is (row- or
// column-major with a valid leading dimension); otherwise the caller passes a contiguous copy.
bool cublas_layout_ok(int64_t rows, int64_t cols, int64_t s_row, int64_t s_col);
// C[b] = A[b] @ B[b] (loops.h's GemmArgs; dtype codes 6..9) on `stream` of the current device. Returns false,
// launching nothing, when cuBLAS is not ready, the dtype, sizes or layouts do not suit it, or no handle can be
// made (the first matmul of a thread on a capturing stream): the caller then runs launch_gemm. Throws
// RuntimeError when cuBLAS fails.
bool cublas_gemm(int dtype, const GemmArgs& g, int device, cudaStream_t stream);

}  // namespace vbt::cuda::ops
