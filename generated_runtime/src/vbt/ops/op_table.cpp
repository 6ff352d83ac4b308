// THE op table (Note [Op table] in dispatcher.h): every op of the runtime, declared once.
// Columns: name, schema, CPU kernel, CUDA kernel, device-independent kernel. A later
// autograd layer adds a backward column here. Schema syntax: `Type name[=default]`, `T?` is
// optional (None allowed), arguments after `*` are keyword-only; Python numbers passed where
// a Tensor is expected become wrapped 0-dim tensors (Note [Type promotion]).
// In-place and out= forms of elementwise ops are the same kernel called with out=self / out=t;
// other ops' out= is handled by the dispatcher (cpu_out, Note [out= by the dispatcher]).
#include "../cpu/cpu_kernels.h"

namespace vbt {

namespace {
OpDef cpu(const char* name, const char* schema, Kernel k) { return OpDef{name, schema, k, nullptr, nullptr}; }
// An op whose out= the dispatcher handles (Note [out= by the dispatcher] in dispatcher.h).
OpDef cpu_out(const char* name, const char* schema, Kernel k, OutMode m) {
  return OpDef{name, schema, k, nullptr, nullptr, m};
}
OpDef any(const char* name, const char* schema, Kernel k) { return OpDef{name, schema, nullptr, nullptr, k}; }
// a device-independent composite whose out= the dispatcher handles
OpDef any_out(const char* name, const char* schema, Kernel k, OutMode m) {
  return OpDef{name, schema, nullptr, nullptr, k, m};
}
#define UNARY(name) cpu(#name, #name "(Tensor self, *, Tensor? out=None) -> Tensor", k_##name)
#define BINARY(name) cpu(#name, #name "(Tensor self, Tensor other, *, Tensor? out=None) -> Tensor", k_##name)
}  // namespace

const std::vector<OpDef>& op_table() {
  static const std::vector<OpDef> table = {
      // ---- copy / conversion
      cpu("copy_", "copy_(Tensor self, Tensor src) -> Tensor", k_copy_),
      cpu("to_dtype", "to_dtype(Tensor self, ScalarType dtype, bool copy=False) -> Tensor", k_to_dtype),
      cpu("contiguous", "contiguous(Tensor self) -> Tensor", k_contiguous),
      cpu("clone", "clone(Tensor self) -> Tensor", k_clone),
      cpu("item", "item(Tensor self) -> Scalar", k_item),
      // ---- factories and random
      cpu("empty", "empty(int[] size, *, ScalarType? dtype=None, Device? device=None) -> Tensor", k_empty),
      cpu("zeros", "zeros(int[] size, *, ScalarType? dtype=None, Device? device=None) -> Tensor", k_zeros),
      cpu("ones", "ones(int[] size, *, ScalarType? dtype=None, Device? device=None) -> Tensor", k_ones),
      cpu("full", "full(int[] size, Scalar fill_value, *, ScalarType? dtype=None, Device? device=None) -> Tensor", k_full),
      cpu("arange", "arange(Scalar start, Scalar end, Scalar step=1, *, ScalarType? dtype=None, Device? device=None) -> Tensor", k_arange),
      cpu("linspace", "linspace(Scalar start, Scalar end, int steps, *, ScalarType? dtype=None, Device? device=None) -> Tensor", k_linspace),
      cpu("eye", "eye(int n, int? m=None, *, ScalarType? dtype=None, Device? device=None) -> Tensor", k_eye),
      cpu("rand", "rand(int[] size, *, Generator? generator=None, ScalarType? dtype=None, Device? device=None) -> Tensor", k_rand),
      cpu("randn", "randn(int[] size, *, Generator? generator=None, ScalarType? dtype=None, Device? device=None) -> Tensor", k_randn),
      cpu("randint", "randint(int low, int high, int[] size, *, Generator? generator=None, ScalarType? dtype=None, Device? device=None) -> Tensor", k_randint),
      cpu("randperm", "randperm(int n, *, Generator? generator=None, ScalarType? dtype=None, Device? device=None) -> Tensor", k_randperm),
      cpu("normal_", "normal_(Tensor self, float mean=0, float std=1, *, Generator? generator=None) -> Tensor", k_normal_),
      cpu("uniform_", "uniform_(Tensor self, float from=0, float to=1, *, Generator? generator=None) -> Tensor", k_uniform_),
      cpu("bernoulli", "bernoulli(Tensor self, float? p=None, *, Generator? generator=None) -> Tensor", k_bernoulli),
      cpu("multinomial", "multinomial(Tensor self, int num_samples, bool replacement=False, *, Generator? generator=None) -> Tensor", k_multinomial),
      cpu("fill_", "fill_(Tensor self, Scalar value) -> Tensor", k_fill_),
      cpu("zero_", "zero_(Tensor self) -> Tensor", k_zero_),
      // ---- binary / ternary elementwise
      cpu("add", "add(Tensor self, Tensor other, *, Scalar alpha=1, Tensor? out=None) -> Tensor", k_add),
      cpu("sub", "sub(Tensor self, Tensor other, *, Scalar alpha=1, Tensor? out=None) -> Tensor", k_sub),
      BINARY(mul),
      cpu("div", "div(Tensor self, Tensor other, *, str? rounding_mode=None, Tensor? out=None) -> Tensor", k_div),
      BINARY(remainder), BINARY(fmod), BINARY(maximum), BINARY(minimum), BINARY(atan2),
      cpu("pow", "pow(Tensor self, Tensor exponent, *, Tensor? out=None) -> Tensor", k_pow),
      BINARY(eq), BINARY(ne), BINARY(lt), BINARY(le), BINARY(gt), BINARY(ge),
      BINARY(logical_and), BINARY(logical_or), BINARY(logical_xor),
      BINARY(bitwise_and), BINARY(bitwise_or), BINARY(bitwise_xor),
      cpu("where", "where(Tensor condition, Tensor self, Tensor other, *, Tensor? out=None) -> Tensor", k_where),
      cpu("clamp", "clamp(Tensor self, Tensor? min=None, Tensor? max=None, *, Tensor? out=None) -> Tensor", k_clamp),
      cpu("lerp", "lerp(Tensor self, Tensor end, Tensor weight, *, Tensor? out=None) -> Tensor", k_lerp),
      cpu("addcmul", "addcmul(Tensor self, Tensor tensor1, Tensor tensor2, *, Scalar value=1, Tensor? out=None) -> Tensor", k_addcmul),
      cpu("addcdiv", "addcdiv(Tensor self, Tensor tensor1, Tensor tensor2, *, Scalar value=1, Tensor? out=None) -> Tensor", k_addcdiv),
      // ---- unary elementwise
      UNARY(exp), UNARY(exp2), UNARY(log), UNARY(log2), UNARY(log10), UNARY(log1p), UNARY(expm1), UNARY(sqrt),
      UNARY(rsqrt), UNARY(reciprocal), UNARY(sin), UNARY(cos), UNARY(tan), UNARY(asin), UNARY(acos), UNARY(atan),
      UNARY(sinh), UNARY(cosh), UNARY(tanh), UNARY(sigmoid), UNARY(silu), UNARY(erf), UNARY(erfc), UNARY(neg),
      UNARY(abs), UNARY(sign), UNARY(relu), UNARY(floor), UNARY(ceil), UNARY(trunc), UNARY(frac), UNARY(square),
      UNARY(isnan), UNARY(isinf), UNARY(isfinite), UNARY(logical_not), UNARY(bitwise_not),
      cpu("round", "round(Tensor self, *, int decimals=0, Tensor? out=None) -> Tensor", k_round),
      cpu("gelu", "gelu(Tensor self, *, str approximate='none', Tensor? out=None) -> Tensor", k_gelu),
      cpu("softplus", "softplus(Tensor self, Scalar beta=1, Scalar threshold=20, *, Tensor? out=None) -> Tensor", k_softplus),
      cpu("nan_to_num", "nan_to_num(Tensor self, float? nan=None, float? posinf=None, float? neginf=None, *, Tensor? out=None) -> Tensor", k_nan_to_num),
      // ---- reductions and scans
      cpu_out("sum", "sum(Tensor self, int[]? dim=None, bool keepdim=False, *, ScalarType? dtype=None, Tensor? out=None) -> Tensor", k_sum, OutMode::DtypeFromOut),
      cpu_out("mean", "mean(Tensor self, int[]? dim=None, bool keepdim=False, *, ScalarType? dtype=None, Tensor? out=None) -> Tensor", k_mean, OutMode::Cast),
      cpu_out("prod", "prod(Tensor self, int[]? dim=None, bool keepdim=False, *, ScalarType? dtype=None, Tensor? out=None) -> Tensor", k_prod, OutMode::DtypeFromOut),
      cpu_out("amax", "amax(Tensor self, int[] dim=[], bool keepdim=False, *, Tensor? out=None) -> Tensor", k_amax, OutMode::Exact),
      cpu_out("amin", "amin(Tensor self, int[] dim=[], bool keepdim=False, *, Tensor? out=None) -> Tensor", k_amin, OutMode::Exact),
      cpu("max_dim", "max_dim(Tensor self, int dim, bool keepdim=False) -> Tensor[]", k_max_dim),
      cpu("min_dim", "min_dim(Tensor self, int dim, bool keepdim=False) -> Tensor[]", k_min_dim),
      cpu_out("argmax", "argmax(Tensor self, int? dim=None, bool keepdim=False, *, Tensor? out=None) -> Tensor", k_argmax, OutMode::Exact),
      cpu_out("argmin", "argmin(Tensor self, int? dim=None, bool keepdim=False, *, Tensor? out=None) -> Tensor", k_argmin, OutMode::Exact),
      cpu_out("var", "var(Tensor self, int[]? dim=None, *, Scalar? correction=None, bool keepdim=False, Tensor? out=None) -> Tensor", k_var, OutMode::Cast),
      cpu_out("std", "std(Tensor self, int[]? dim=None, *, Scalar? correction=None, bool keepdim=False, Tensor? out=None) -> Tensor", k_std, OutMode::Cast),
      cpu_out("norm", "norm(Tensor self, Scalar p=2, int[]? dim=None, bool keepdim=False, *, ScalarType? dtype=None, Tensor? out=None) -> Tensor", k_norm, OutMode::Exact),
      cpu_out("logsumexp", "logsumexp(Tensor self, int[] dim, bool keepdim=False, *, Tensor? out=None) -> Tensor", k_logsumexp, OutMode::Cast),
      cpu_out("all", "all(Tensor self, int[]? dim=None, bool keepdim=False, *, Tensor? out=None) -> Tensor", k_all, OutMode::Exact),
      cpu_out("any", "any(Tensor self, int[]? dim=None, bool keepdim=False, *, Tensor? out=None) -> Tensor", k_any, OutMode::Exact),
      cpu_out("cumsum", "cumsum(Tensor self, int dim, *, ScalarType? dtype=None, Tensor? out=None) -> Tensor", k_cumsum, OutMode::DtypeFromOut),
      cpu_out("cumprod", "cumprod(Tensor self, int dim, *, ScalarType? dtype=None, Tensor? out=None) -> Tensor", k_cumprod, OutMode::DtypeFromOut),
      cpu_out("softmax", "softmax(Tensor self, int dim, ScalarType? dtype=None, *, Tensor? out=None) -> Tensor", k_softmax, OutMode::Exact),
      cpu_out("log_softmax", "log_softmax(Tensor self, int dim, ScalarType? dtype=None, *, Tensor? out=None) -> Tensor", k_log_softmax, OutMode::Exact),
      // softmax/log_softmax backward as one op (torch's names; the autograd formulas call them)
      cpu("_softmax_backward_data", "_softmax_backward_data(Tensor grad_output, Tensor output, int dim, ScalarType input_dtype) -> Tensor", k_softmax_backward_data),
      cpu("_log_softmax_backward_data", "_log_softmax_backward_data(Tensor grad_output, Tensor output, int dim, ScalarType input_dtype) -> Tensor", k_log_softmax_backward_data),
      // forward-only fused layer_norm (nn.functional.layer_norm uses it when no operand requires grad)
      cpu("_fused_layer_norm", "_fused_layer_norm(Tensor input, int[] normalized_shape, Tensor? weight=None, Tensor? bias=None, float eps=1e-05) -> Tensor", k_fused_layer_norm),
      // fused ops with a backward (Note [Fused NN ops] in src/vbt/cpu/reduce_kernels.cpp): nn.functional's
      // cross_entropy (class-index targets, no class weights) and layer_norm with grad
      cpu("_fused_cross_entropy", "_fused_cross_entropy(Tensor input, Tensor target, int ignore_index=-100, float label_smoothing=0.0, str reduction='mean') -> Tensor[]", k_fused_cross_entropy),
      cpu("_fused_cross_entropy_backward", "_fused_cross_entropy_backward(Tensor grad, Tensor input, Tensor target, Tensor stats, Tensor total, int ignore_index=-100, float label_smoothing=0.0, str reduction='mean') -> Tensor", k_fused_cross_entropy_backward),
      cpu("_fused_layer_norm_fwd", "_fused_layer_norm_fwd(Tensor input, int[] normalized_shape, Tensor? weight=None, Tensor? bias=None, float eps=1e-05) -> Tensor[]", k_fused_layer_norm_fwd),
      cpu("_fused_adam_", "_fused_adam_(Tensor[] params, Tensor[] grads, Tensor[] exp_avgs, Tensor[] exp_avg_sqs, float lr, float beta1, float beta2, float eps, float weight_decay, float step_size, float bias_correction2_sqrt, bool decoupled=False, bool maximize=False) -> Tensor[]", k_fused_adam_),
      // clip_grad_norm_'s list ops (Note [Clip lists] in src/vbt/cpu/optim_kernels.cpp)
      cpu("_stacked_norms", "_stacked_norms(Tensor[] tensors, float ord=2.0) -> Tensor", k_stacked_norms),
      cpu("_foreach_mul_", "_foreach_mul_(Tensor[] self, Tensor other) -> Tensor[]", k_foreach_mul_),
      cpu("_fused_layer_norm_backward", "_fused_layer_norm_backward(Tensor grad, Tensor input, Tensor mean, Tensor rstd, Tensor? weight, int[] normalized_shape, bool has_bias=False) -> Tensor[]", k_fused_layer_norm_backward),
      // ---- sorting and selection along one dim (Note [Sort order] in sort_kernels.cpp)
      cpu("sort", "sort(Tensor self, int dim=-1, bool descending=False, *, bool stable=False) -> Tensor[]", k_sort),
      cpu("argsort", "argsort(Tensor self, int dim=-1, bool descending=False, *, bool stable=False) -> Tensor", k_argsort),
      cpu("topk", "topk(Tensor self, int k, int dim=-1, bool largest=True, bool sorted=True) -> Tensor[]", k_topk),
      cpu("kthvalue", "kthvalue(Tensor self, int k, int dim=-1, bool keepdim=False) -> Tensor[]", k_kthvalue),
      // ---- linear algebra
      cpu_out("mm", "mm(Tensor self, Tensor mat2, *, Tensor? out=None) -> Tensor", k_mm, OutMode::Exact),
      cpu_out("bmm", "bmm(Tensor self, Tensor mat2, *, Tensor? out=None) -> Tensor", k_bmm, OutMode::Exact),
      cpu_out("matmul", "matmul(Tensor self, Tensor other, *, Tensor? out=None) -> Tensor", k_matmul, OutMode::Exact),
      cpu_out("addmm", "addmm(Tensor self, Tensor mat1, Tensor mat2, *, Scalar beta=1, Scalar alpha=1, Tensor? out=None) -> Tensor", k_addmm, OutMode::Exact),
      cpu_out("baddbmm", "baddbmm(Tensor self, Tensor batch1, Tensor batch2, *, Scalar beta=1, Scalar alpha=1, Tensor? out=None) -> Tensor", k_baddbmm, OutMode::Exact),
      cpu_out("linear", "linear(Tensor input, Tensor weight, Tensor? bias=None, *, Tensor? out=None) -> Tensor", k_linear, OutMode::Exact),
      any_out("outer", "outer(Tensor self, Tensor vec2, *, Tensor? out=None) -> Tensor", k_outer, OutMode::Cast),
      cpu_out("dot", "dot(Tensor self, Tensor tensor, *, Tensor? out=None) -> Tensor", k_dot, OutMode::Exact),
      // ---- indexing
      cpu_out("index_select", "index_select(Tensor self, int dim, Tensor index, *, Tensor? out=None) -> Tensor", k_index_select, OutMode::Exact),
      cpu_out("gather", "gather(Tensor self, int dim, Tensor index, *, Tensor? out=None) -> Tensor", k_gather, OutMode::Exact),
      cpu_out("scatter", "scatter(Tensor self, int dim, Tensor index, Tensor src, *, Tensor? out=None) -> Tensor", k_scatter, OutMode::Exact),
      cpu_out("scatter_add", "scatter_add(Tensor self, int dim, Tensor index, Tensor src, *, Tensor? out=None) -> Tensor", k_scatter_add, OutMode::Exact),
      cpu_out("index_add", "index_add(Tensor self, int dim, Tensor index, Tensor source, *, Scalar alpha=1, Tensor? out=None) -> Tensor", k_index_add, OutMode::Exact),
      cpu("masked_fill", "masked_fill(Tensor self, Tensor mask, Tensor value) -> Tensor", k_masked_fill),
      cpu_out("masked_select", "masked_select(Tensor self, Tensor mask, *, Tensor? out=None) -> Tensor", k_masked_select, OutMode::Exact),
      cpu("index", "index(Tensor self, Tensor[] indices, int[] dims) -> Tensor", k_index),
      cpu("index_put_", "index_put_(Tensor self, Tensor[] indices, int[] dims, Tensor values, bool accumulate=False) -> Tensor", k_index_put_),
      cpu_out("nonzero", "nonzero(Tensor self, *, Tensor? out=None) -> Tensor", k_nonzero, OutMode::Exact),
      cpu("one_hot", "one_hot(Tensor self, int num_classes=-1) -> Tensor", k_one_hot),
      cpu("embedding", "embedding(Tensor weight, Tensor indices) -> Tensor", k_embedding),
      any_out("take_along_dim", "take_along_dim(Tensor self, Tensor indices, int? dim=None, *, Tensor? out=None) -> Tensor", k_take_along_dim, OutMode::Exact),
      // ---- shape ops that copy
      cpu("cat", "cat(Tensor[] tensors, int dim=0) -> Tensor", k_cat),
      cpu("stack", "stack(Tensor[] tensors, int dim=0) -> Tensor", k_stack),
      cpu("flip", "flip(Tensor self, int[] dims) -> Tensor", k_flip),
      cpu("roll", "roll(Tensor self, int[] shifts, int[] dims=[]) -> Tensor", k_roll),
      cpu_out("tril", "tril(Tensor self, int diagonal=0, *, Tensor? out=None) -> Tensor", k_tril, OutMode::Exact),
      cpu_out("triu", "triu(Tensor self, int diagonal=0, *, Tensor? out=None) -> Tensor", k_triu, OutMode::Exact),
      cpu("repeat", "repeat(Tensor self, int[] repeats) -> Tensor", k_repeat),
      // ---- views (device independent)
      any("view", "view(Tensor self, int[] size) -> Tensor", k_view),
      any("reshape", "reshape(Tensor self, int[] shape) -> Tensor", k_reshape),
      any("permute", "permute(Tensor self, int[] dims) -> Tensor", k_permute),
      any("transpose", "transpose(Tensor self, int dim0, int dim1) -> Tensor", k_transpose),
      any("t", "t(Tensor self) -> Tensor", k_t),
      any("expand", "expand(Tensor self, int[] size) -> Tensor", k_expand),
      any("narrow", "narrow(Tensor self, int dim, int start, int length) -> Tensor", k_narrow),
      any("slice", "slice(Tensor self, int dim=0, int? start=None, int? end=None, int step=1) -> Tensor", k_slice),
      any("select", "select(Tensor self, int dim, int index) -> Tensor", k_select),
      any("squeeze", "squeeze(Tensor self, int[]? dim=None) -> Tensor", k_squeeze),
      any("unsqueeze", "unsqueeze(Tensor self, int dim) -> Tensor", k_unsqueeze),
      any("flatten", "flatten(Tensor self, int start_dim=0, int end_dim=-1) -> Tensor", k_flatten),
      any("unflatten", "unflatten(Tensor self, int dim, int[] sizes) -> Tensor", k_unflatten),
      any("as_strided", "as_strided(Tensor self, int[] size, int[] stride, int? storage_offset=None) -> Tensor", k_as_strided),
      any("split", "split(Tensor self, int split_size, int dim=0) -> Tensor[]", k_split),
      any("split_with_sizes", "split_with_sizes(Tensor self, int[] split_sizes, int dim=0) -> Tensor[]", k_split_with_sizes),
      any("chunk", "chunk(Tensor self, int chunks, int dim=0) -> Tensor[]", k_chunk),
      any("unbind", "unbind(Tensor self, int dim=0) -> Tensor[]", k_unbind),
      any("diagonal", "diagonal(Tensor self, int offset=0, int dim1=0, int dim2=1) -> Tensor", k_diagonal),
      any("movedim", "movedim(Tensor self, int[] source, int[] destination) -> Tensor", k_movedim),
      // the same bytes as another dtype (torch's Tensor.view(dtype)); shares the storage like a view
      any("view_dtype", "view_dtype(Tensor self, ScalarType dtype) -> Tensor", k_view_dtype),
  };
  return table;
}

}  // namespace vbt
