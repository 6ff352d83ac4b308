// Launchers of the CUDA sorting and multinomial kernels (sort.cu); the host kernels are in sort_ops.cpp.
// Plain C++17 types only: included by both nvcc (sort.cu) and the C++20 host code. Dtype codes are
// vbt::ScalarType's values; every pointer is device memory on the current device; `stream` orders all work.
// Note [CUDA sort] in sort.cu describes the algorithms.
#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

namespace vbt::cuda::ops {

// Bytes of scratch memory launch_sort_rows needs for a contiguous [rows, cols] input of `dtype` (CUB's
// temporary storage included); cudaErrorInvalidValue for an unsupported dtype.
cudaError_t sort_workspace_bytes(int dtype, int64_t rows, int64_t cols, int64_t* bytes);
// Sorts every row of the contiguous [rows, cols] `in` (stable: ties keep index order; NaN after +inf,
// -0.0 == 0.0), writing the original column of each sorted element to idx [rows, cols] and, when `values` is
// not null, the elements themselves (copied from `in`, bit-exact). descending reverses the order of the
// values, never of ties. `workspace`: sort_workspace_bytes bytes, 256-byte aligned.
cudaError_t launch_sort_rows(int dtype, const void* in, void* values, int64_t* idx, int64_t rows, int64_t cols,
                             bool descending, void* workspace, int64_t workspace_bytes, cudaStream_t stream);

// multinomial, for a contiguous [rows, cols] float tensor of weights:
// *flags |= 1 when some weight is negative, inf or NaN, |= 2 when some row sums to 0 (flags: one int32 on
// the device, zeroed by the caller).
cudaError_t launch_multinomial_check(int dtype, const void* w, int64_t rows, int64_t cols, int32_t* flags,
                                     cudaStream_t stream);
// With replacement: out[r, k] for k < n draws category i with probability w[r, i] / sum(w[r]); `cumsum` is
// scratch of rows * cols doubles. Draws are a function of (seed, r * n + k) only.
cudaError_t launch_multinomial_replacement(int dtype, const void* w, double* cumsum, int64_t* out, int64_t rows,
                                           int64_t cols, int64_t n, uint64_t seed, cudaStream_t stream);
// Without replacement: keys[r, i] = w[r, i] / E[r, i] with E ~ Exp(1) (-1 for a zero weight); the columns of
// the n largest keys, largest first, are a draw without replacement (the host sorts the keys).
cudaError_t launch_multinomial_keys(int dtype, const void* w, double* keys, int64_t rows, int64_t cols, uint64_t seed,
                                    cudaStream_t stream);

}  // namespace vbt::cuda::ops
