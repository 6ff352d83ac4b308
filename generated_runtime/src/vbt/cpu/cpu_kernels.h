// Private header: declarations of the CPU kernels (one .cpp per op family) and the few
// helpers kernels share. Kernels use the boxed convention of the op table (value.h); their
// argument order is the schema's in src/vbt/ops/op_table.cpp.
#pragma once
#include "vbt/cpu/tensor_iterator.h"
#include "vbt/dispatch/dispatcher.h"
#include "vbt/dispatch/value.h"

namespace vbt {

// dst[...] = src broadcast to dst's shape, cast to dst's dtype. No version bump.
void copy_into(const Tensor& dst, const Tensor& src);
// A contiguous copy of t, or t itself when it is already contiguous.
Tensor contiguous_or_self(const Tensor& t);
Tensor cast_to(const Tensor& t, ScalarType dtype);  // t itself when the dtype already matches
// Reads element 0 of a 1-element tensor as a Scalar (float64/int64/bool).
Scalar item_of(const Tensor& t);

#define VBT_KERNEL(name) Value name(const Args& a);
// copy_kernels.cpp
VBT_KERNEL(k_copy_) VBT_KERNEL(k_to_dtype) VBT_KERNEL(k_contiguous) VBT_KERNEL(k_clone) VBT_KERNEL(k_item)
// factory_kernels.cpp
VBT_KERNEL(k_empty) VBT_KERNEL(k_zeros) VBT_KERNEL(k_ones) VBT_KERNEL(k_full) VBT_KERNEL(k_arange)
VBT_KERNEL(k_linspace) VBT_KERNEL(k_eye) VBT_KERNEL(k_rand) VBT_KERNEL(k_randn) VBT_KERNEL(k_randint)
VBT_KERNEL(k_randperm) VBT_KERNEL(k_normal_) VBT_KERNEL(k_uniform_) VBT_KERNEL(k_bernoulli) VBT_KERNEL(k_multinomial)
VBT_KERNEL(k_fill_) VBT_KERNEL(k_zero_)
// optim_kernels.cpp (check_fused_adam_lists: shared with the CUDA kernel)
VBT_KERNEL(k_fused_adam_) VBT_KERNEL(k_stacked_norms) VBT_KERNEL(k_foreach_mul_)
void check_fused_adam_lists(const Args& a, const char* op);
void check_tensor_list(const TensorList& ts, const char* op);  // one device, one dtype (float32/float64), non-empty
// binary_kernels.cpp
VBT_KERNEL(k_add) VBT_KERNEL(k_sub) VBT_KERNEL(k_mul)
VBT_KERNEL(k_div) VBT_KERNEL(k_remainder) VBT_KERNEL(k_pow)
VBT_KERNEL(k_maximum) VBT_KERNEL(k_minimum) VBT_KERNEL(k_atan2) VBT_KERNEL(k_fmod)
VBT_KERNEL(k_eq) VBT_KERNEL(k_ne) VBT_KERNEL(k_lt) VBT_KERNEL(k_le) VBT_KERNEL(k_gt) VBT_KERNEL(k_ge)
VBT_KERNEL(k_logical_and) VBT_KERNEL(k_logical_or) VBT_KERNEL(k_logical_xor)
VBT_KERNEL(k_bitwise_and) VBT_KERNEL(k_bitwise_or) VBT_KERNEL(k_bitwise_xor)
VBT_KERNEL(k_where) VBT_KERNEL(k_clamp) VBT_KERNEL(k_lerp) VBT_KERNEL(k_addcmul)
VBT_KERNEL(k_addcdiv)
// unary_kernels.cpp
VBT_KERNEL(k_exp) VBT_KERNEL(k_exp2) VBT_KERNEL(k_log) VBT_KERNEL(k_log2) VBT_KERNEL(k_log10) VBT_KERNEL(k_log1p)
VBT_KERNEL(k_expm1) VBT_KERNEL(k_sqrt) VBT_KERNEL(k_rsqrt) VBT_KERNEL(k_reciprocal) VBT_KERNEL(k_sin)
VBT_KERNEL(k_cos) VBT_KERNEL(k_tan) VBT_KERNEL(k_asin) VBT_KERNEL(k_acos) VBT_KERNEL(k_atan) VBT_KERNEL(k_sinh)
VBT_KERNEL(k_cosh) VBT_KERNEL(k_tanh) VBT_KERNEL(k_sigmoid) VBT_KERNEL(k_silu) VBT_KERNEL(k_erf) VBT_KERNEL(k_erfc)
VBT_KERNEL(k_neg) VBT_KERNEL(k_abs) VBT_KERNEL(k_sign) VBT_KERNEL(k_relu) VBT_KERNEL(k_floor) VBT_KERNEL(k_ceil)
VBT_KERNEL(k_trunc) VBT_KERNEL(k_frac) VBT_KERNEL(k_square) VBT_KERNEL(k_round) VBT_KERNEL(k_gelu)
VBT_KERNEL(k_softplus) VBT_KERNEL(k_isnan) VBT_KERNEL(k_isinf) VBT_KERNEL(k_isfinite) VBT_KERNEL(k_logical_not)
VBT_KERNEL(k_bitwise_not) VBT_KERNEL(k_nan_to_num)
// reduce_kernels.cpp
VBT_KERNEL(k_sum) VBT_KERNEL(k_mean) VBT_KERNEL(k_prod) VBT_KERNEL(k_amax) VBT_KERNEL(k_amin)
VBT_KERNEL(k_max_dim) VBT_KERNEL(k_min_dim) VBT_KERNEL(k_argmax) VBT_KERNEL(k_argmin) VBT_KERNEL(k_var)
VBT_KERNEL(k_std) VBT_KERNEL(k_norm) VBT_KERNEL(k_logsumexp) VBT_KERNEL(k_all) VBT_KERNEL(k_any)
VBT_KERNEL(k_cumsum) VBT_KERNEL(k_cumprod) VBT_KERNEL(k_softmax) VBT_KERNEL(k_log_softmax) VBT_KERNEL(k_softmax_backward_data) VBT_KERNEL(k_log_softmax_backward_data)
VBT_KERNEL(k_fused_layer_norm)
// reduce_kernels.cpp, Note [Fused NN ops]: fused ops with a backward (CPU reference kernels)
VBT_KERNEL(k_fused_cross_entropy) VBT_KERNEL(k_fused_cross_entropy_backward)
VBT_KERNEL(k_fused_layer_norm_fwd) VBT_KERNEL(k_fused_layer_norm_backward)
// The argument checks of every layer_norm kernel, CPU and CUDA (normalized_shape fits the input's trailing dims, a
// floating input, weight/bias of that shape, dtype and device); returns the row length.
int64_t check_layer_norm_operands(const char* op, const Tensor& in, const Shape& ns, const Tensor& w, const Tensor& b);
// softmax backward's operand checks (CPU and CUDA kernels): one shape, one floating dtype; returns the wrapped dim
int64_t check_softmax_backward_operands(const char* op, const Tensor& g, const Tensor& y, int64_t dim,
                                        ScalarType input_dtype);
// linalg_kernels.cpp
VBT_KERNEL(k_mm) VBT_KERNEL(k_bmm) VBT_KERNEL(k_matmul) VBT_KERNEL(k_addmm) VBT_KERNEL(k_linear)
VBT_KERNEL(k_outer) VBT_KERNEL(k_dot) VBT_KERNEL(k_baddbmm)
// index_kernels.cpp
VBT_KERNEL(k_index_select) VBT_KERNEL(k_gather) VBT_KERNEL(k_scatter) VBT_KERNEL(k_scatter_add)
VBT_KERNEL(k_index_add) VBT_KERNEL(k_masked_fill) VBT_KERNEL(k_masked_select)
VBT_KERNEL(k_index) VBT_KERNEL(k_index_put_) VBT_KERNEL(k_nonzero) VBT_KERNEL(k_one_hot) VBT_KERNEL(k_embedding)
VBT_KERNEL(k_take_along_dim)
// shape_kernels.cpp
VBT_KERNEL(k_cat) VBT_KERNEL(k_stack) VBT_KERNEL(k_flip) VBT_KERNEL(k_roll) VBT_KERNEL(k_tril)
VBT_KERNEL(k_triu) VBT_KERNEL(k_repeat)
// sort_kernels.cpp
VBT_KERNEL(k_sort) VBT_KERNEL(k_argsort) VBT_KERNEL(k_topk) VBT_KERNEL(k_kthvalue)
// src/vbt/ops/view_ops.cpp (device-independent)
VBT_KERNEL(k_view) VBT_KERNEL(k_reshape) VBT_KERNEL(k_permute) VBT_KERNEL(k_transpose) VBT_KERNEL(k_t)
VBT_KERNEL(k_expand) VBT_KERNEL(k_narrow) VBT_KERNEL(k_slice) VBT_KERNEL(k_select) VBT_KERNEL(k_squeeze)
VBT_KERNEL(k_unsqueeze) VBT_KERNEL(k_flatten) VBT_KERNEL(k_unflatten) VBT_KERNEL(k_as_strided)
VBT_KERNEL(k_split) VBT_KERNEL(k_split_with_sizes) VBT_KERNEL(k_chunk) VBT_KERNEL(k_unbind) VBT_KERNEL(k_diagonal) VBT_KERNEL(k_movedim)
VBT_KERNEL(k_view_dtype)
#undef VBT_KERNEL

}  // namespace vbt
