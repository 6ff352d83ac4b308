// CUDA kernels of sort, argsort, topk, kthvalue and multinomial (sort_ops.cpp; device code in sort.cu, Note
// [CUDA sort]). Registered by register_cuda_ops() in cuda_ops.cpp.
#pragma once
#include <utility>

#include "vbt/dispatch/value.h"

namespace vbt::cuda {

Value k_sort_cuda(const Args& a);
Value k_argsort_cuda(const Args& a);
Value k_topk_cuda(const Args& a);
Value k_kthvalue_cuda(const Args& a);
Value k_multinomial_cuda(const Args& a);

// Sorts every row of the contiguous [rows, cols] (last dim) m, stably (Note [CUDA sort]): (the sorted values,
// or undefined unless want_values; the int64 columns they came from). Nothing synchronises the host.
std::pair<Tensor, Tensor> sort_rows(const Tensor& m, bool descending, bool want_values, const char* op);

}  // namespace vbt::cuda
