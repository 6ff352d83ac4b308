// CUDA kernels of sort, argsort, topk, kthvalue and multinomial (sort_ops.cpp; device code in sort.cu, Note
// [CUDA sort]). Registered by register_cuda_ops() in cuda_ops.cpp.
#pragma once
#include "vbt/dispatch/value.h"

namespace vbt::cuda {

Value k_sort_cuda(const Args& a);
Value k_argsort_cuda(const Args& a);
Value k_topk_cuda(const Args& a);
Value k_kthvalue_cuda(const Args& a);
Value k_multinomial_cuda(const Args& a);

}  // namespace vbt::cuda
