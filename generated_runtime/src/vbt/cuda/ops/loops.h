// Internal interface between the CUDA op kernels' host code (cuda_ops.cpp, C++20) and the device code
// (elementwise.cu, reduce_gemm.cu, C++17 under nvcc). Plain structs and integer dtype codes only, so the
// .cu files need no core header. Dtype codes are vbt::ScalarType's values (Bool=0 ... Float64=9).
#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

namespace vbt::cuda::ops {

constexpr int kMaxDims = 12;     // dims of a loop after coalescing
constexpr int kMaxOperands = 4;  // outputs + inputs of one elementwise loop

// The geometry of one elementwise loop, as TensorIterator computes it: coalesced shape with the
// innermost (fastest) dim first, and per operand the byte strides of each dim (0 = broadcast).
struct LoopGeometry {
  int ndim = 0;
  int ntensors = 0;
  int64_t numel = 0;
  int64_t sizes[kMaxDims] = {};
  int64_t strides[kMaxOperands][kMaxDims] = {};
  char* data[kMaxOperands] = {};
};

// Elementwise op codes. Unary: out = f(in); Binary: out = f(a, b); Ternary: where(cond, a, b).
enum class Ew : int {
  // copy/cast (operand 0 = out of any dtype, operand 1 = in of any dtype)
  Copy = 0,
  // unary, same dtype in and out
  Neg, Abs, Relu, Exp, Log, Sqrt, Sigmoid, Tanh, Gelu, GeluTanh, Silu, Sin, Cos, Rsqrt, Reciprocal, Square,
  // binary, same dtype in and out (alpha: add/sub's scale)
  Add, Sub, Mul, Div, DivTrunc, DivFloor, Maximum, Minimum,
  // binary, inputs of the compute dtype, bool output
  Eq, Ne, Lt, Le, Gt, Ge,
  // ternary: operand 1 bool condition, 2 and 3 of the output's dtype
  Where,
  // nullary: fill with the scalar (given as double and int64)
  Fill,
  // ---- more unary float ops (integers promote on the host)
  Exp2, Log2, Log10, Log1p, Expm1, Tan, Asin, Acos, Atan, Sinh, Cosh, Erf, Erfc,
  // unary, same dtype (numeric): sign/floor/ceil/trunc (identity on integers), frac (float)
  Sign, Floor, Ceil, Trunc, Frac,
  // unary predicates: input of in_dtype, bool output
  IsNan, IsInf, IsFinite, LogicalNot,
  // binary, same dtype: pow, atan2 (float), remainder (Python sign rule), fmod (C rule),
  // axpby: out = alpha * a + beta * b
  Pow, Atan2, Remainder, Fmod, Axpby,
  // ternary, same dtype: lerp(a, b, w) (float), addcmul/addcdiv: a + alpha * b * c, a + alpha * b / c
  Lerp, Addcmul, Addcdiv,
  // nullary over a contiguous output, the value a function of the linear index i:
  //   arange: start + i * step (alpha/beta, ialpha/ibeta); linspace: start/end alpha/beta, steps n;
  //   eye: [n, m] with ones where row == col
  Arange, Linspace, Eye,
  // random (counter-based, see RandomNote in elementwise.cu): uniform in [alpha, beta); normal(alpha, std beta);
  // bernoulli with the scalar p = alpha (nullary) or with p read from operand 1 (BernoulliT, unary)
  Uniform, Normal, Bernoulli, BernoulliT,
  // tril/triu of a [.., n, m] batch of matrices: operand 0 contiguous out, operand 1 the input;
  // diagonal k, upper when ialpha != 0
  Tril,
  // gather along one dim: out[i] = src[off_src(i) + index[i] * n] (n: byte stride of the gathered dim of the
  // source, operand 1 a view of the source with that dim's stride 0, operand 2 int64 indices)
  GatherIdx,
  // binary, inputs of the compute dtype, bool output: logical and/or/xor of (x != 0, y != 0)
  LogicalAnd, LogicalOr, LogicalXor,
  // unary, same dtype: round half to even (identity on integers)
  Round,
  // unary float: softplus with beta = alpha and threshold = beta: x * beta > threshold ? x : log1p(exp(x * beta)) / beta
  Softplus,
  // binary, same dtype (integral and bool): &, |, ^; unary: ~ (logical not for bool)
  BitAnd, BitOr, BitXor, BitNot,
  // unary, same dtype (all dtypes, identity on integers and bool): NaN -> alpha, +inf -> beta, -inf -> gamma
  NanToNum,
  // nullary random integers (counter-based, RandomNote): ialpha + (draw mod ibeta as uint64), any output dtype
  Randint,
  // unary float, the other operand a CPU scalar s = alpha (ScalarArithNote in elementwise.cu): MulS x * s; DivS
  // x * (1/s); DivTruncS trunc(x * (1/s)); DivFloorS floor(x / s) through fmod and 1/s; AddS x + beta * s, or
  // s + beta * x when n = 1 (sub: beta = -alpha)
  MulS, DivS, DivTruncS, DivFloorS, AddS,
  // binary float: lerp(x, end, w) with a CPU scalar weight w = alpha, used in the compute type (ScalarArithNote)
  LerpS,
};

struct EwScalars {
  double alpha = 1.0;     // add/sub scale; fill value for float dtypes
  int64_t ialpha = 1;     // the same for integral dtypes
  double beta = 0.0;      // a second scalar (axpby, arange's step, linspace's end, random's upper bound / std)
  int64_t ibeta = 0;
  double gamma = 0.0;     // a third scalar (nan_to_num's -inf replacement)
  int64_t n = 0, m = 0, k = 0;  // extents and offsets of the index-based ops (linspace, eye, tril, gather)
  uint64_t seed = 0, offset = 0;  // random ops: the key and the first counter of this call
};

// Launches op over g on `stream`. out_dtype: operand 0's dtype; in_dtype: the inputs' dtype (for Copy the
// source's; for comparisons the compute dtype; for Where the value operands'). Returns
// cudaErrorInvalidValue for an (op, dtype) pair without a kernel.
cudaError_t launch_elementwise(Ew op, int out_dtype, int in_dtype, const LoopGeometry& g, EwScalars s,
                               cudaStream_t stream);

// Reductions of a contiguous [outer, red, inner] input over its middle dim into outer * inner outputs
// (contiguous [outer, inner]); inner == 1 is the reduction of rows (ReduceNote in reduce_gemm.cu). red > 0.
enum class Red : int { Sum = 0, Mean, Max, Min };
// Few long reductions run in two deterministic passes and need `workspace`: device memory of
// reduce_workspace_bytes(outer, red, inner) bytes (0: none needed, workspace may be nullptr), 8-byte aligned.
int64_t reduce_workspace_bytes(int64_t outer, int64_t red, int64_t inner);
// in_dtype: input's dtype; out_dtype: output's dtype (sum of ints -> int64).
cudaError_t launch_reduce(Red op, int in_dtype, int out_dtype, const void* in, void* out, int64_t outer, int64_t red,
                          int64_t inner, void* workspace, cudaStream_t stream);

// softmax / log_softmax over the last dim of a contiguous [rows, cols] input (float dtypes), out same shape.
cudaError_t launch_softmax_rows(bool log, int in_dtype, int out_dtype, const void* in, void* out, int64_t rows,
                                int64_t cols, cudaStream_t stream);
// softmax (log: log_softmax) backward over the last dim of contiguous [rows, cols] y (the forward's output) and g
// (its gradient), one float dtype: dx = y * (g - sum(g * y)) or g - exp(y) * sum(g) per row (SoftmaxNote).
cudaError_t launch_softmax_bw_rows(bool log, int dtype, const void* y, const void* g, void* dx, int64_t rows,
                                   int64_t cols, cudaStream_t stream);

// layer_norm forward over the last dim of a contiguous [rows, cols] input (float dtypes, LayerNormNote in
// reduce_gemm.cu); w and b: contiguous [cols] of the same dtype, or nullptr; out contiguous like in.
cudaError_t launch_layer_norm(int dtype, const void* in, const void* w, const void* b, void* out, int64_t rows,
                              int64_t cols, double eps, cudaStream_t stream);
// The same, also writing each row's mean and rstd (the accumulate type: float, double for float64) for the
// backward (FusedNnNote in reduce_gemm.cu); mean/rstd: [rows].
cudaError_t launch_layer_norm_fwd(int dtype, const void* in, const void* w, const void* b, void* out, void* mean,
                                  void* rstd, int64_t rows, int64_t cols, double eps, cudaStream_t stream);
// layer_norm backward: dx (like in), and when non-null dw / db ([cols], the input's dtype), which need
// `workspace`: 2 * layer_norm_bwd_chunks(rows, cols) * cols accumulate-type elements of device memory, 16-byte
// aligned for the fused kernel (FusedNnNote). w may be null.
int64_t layer_norm_bwd_chunks(int64_t rows, int64_t cols);
cudaError_t launch_layer_norm_bwd(int dtype, const void* grad, const void* in, const void* mean, const void* rstd,
                                  const void* w, int64_t rows, int64_t cols, void* dx, void* dw, void* db,
                                  void* workspace, cudaStream_t stream);
// cross_entropy over a contiguous [rows, cols] input with int64 class targets (FusedNnNote): lse [rows, 2] (row max,
// log of the sum of exp(x - max)) and
// total [] (non-ignored rows) in the accumulate type; reduction 0 none (out [rows] of the input's dtype), 1 mean,
// 2 sum (out []); rowloss: [rows] accumulate-type scratch for mean/sum (unused for none).
cudaError_t launch_cross_entropy_fwd(int dtype, const void* in, const int64_t* tgt, int64_t rows, int64_t cols,
                                     int64_t ignore, double eps, int reduction, void* out, void* lse, void* rowloss,
                                     void* total, cudaStream_t stream);
// dx [rows, cols] from grad ([rows] when grad_per_row, else one element; input's dtype), lse [rows, 2] and total.
cudaError_t launch_cross_entropy_bwd(int dtype, const void* grad, bool grad_per_row, const void* in,
                                     const int64_t* tgt, const void* lse, const void* total, int64_t rows,
                                     int64_t cols, int64_t ignore, double eps, bool mean, void* dx,
                                     cudaStream_t stream);

// C[b] = A[b] @ B[b] for b < batch; A is [M, K], B [K, N], C [M, N], each with element strides
// (batch, row, col); float dtypes, one dtype for all three.
struct GemmArgs {
  int64_t batch, M, N, K;
  const void* A; int64_t sa_b, sa_m, sa_k;
  const void* B; int64_t sb_b, sb_k, sb_n;
  void* C; int64_t sc_b, sc_m, sc_n;
};
cudaError_t launch_gemm(int dtype, const GemmArgs& a, cudaStream_t stream);

// ---- scan_index.cu: one thread per row / line, sequential inside it (CPU accumulators, no atomics).
// Rows are the last dim of a contiguous [rows, cols] input.
// argmax/argmin of each row into idx (int64); also the extreme values into vals (the input's dtype) when
// vals != nullptr. First extreme wins; NaN counts as the extreme. cols must be > 0.
cudaError_t launch_arg_rows(bool is_max, int dtype, const void* in, int64_t* idx, void* vals, int64_t rows,
                            int64_t cols, cudaStream_t stream);
// Row reductions into `rows` outputs of the input's dtype, accumulated in double (floating types) or int64.
// Prod: numeric dtypes; the norms: floating dtypes (NormP uses p).
enum class RowRed : int { Prod = 0, NormInf, NormNegInf, Norm0, Norm1, Norm2, NormP };
// Few long rows run in two passes and need `workspace`: row_reduce_workspace_bytes(rows, cols) bytes of device
// memory (0: none needed, workspace may be nullptr), 8-byte aligned.
int64_t row_reduce_workspace_bytes(int64_t rows, int64_t cols);
cudaError_t launch_row_reduce(RowRed op, int dtype, const void* in, void* out, int64_t rows, int64_t cols, double p,
                              void* workspace, cudaStream_t stream);
// Inclusive cumulative sum (prod = false) or product of each row; out is contiguous [rows, cols]; numeric dtypes.
// Long rows are scanned in parallel chunks and need `workspace`: device memory of scan_workspace_bytes(rows,
// cols) bytes (0: none needed, workspace may be nullptr), 8-byte aligned.
int64_t scan_workspace_bytes(int64_t rows, int64_t cols);
cudaError_t launch_scan_rows(bool prod, int dtype, const void* in, void* out, int64_t rows, int64_t cols,
                             void* workspace, cudaStream_t stream);
// out[pos with dim = idx[pos]] = src[pos] (add: += alpha * src[pos]) for every position pos of `sizes`
// (the index's shape); strides in elements, idx int64 with -out_size <= idx < out_size (checked by the host).
struct ScatterArgs {
  int ndim = 0, dim = 0;
  int64_t sizes[kMaxDims] = {};
  int64_t idx_st[kMaxDims] = {}, src_st[kMaxDims] = {}, out_st[kMaxDims] = {};
  const int64_t* idx = nullptr;
  const void* src = nullptr;
  void* out = nullptr;
  int64_t out_size = 0;  // out's size along dim
  double alpha = 1.0;
  int64_t ialpha = 1;
};
cudaError_t launch_scatter_lines(bool add, int dtype, const ScatterArgs& a, cudaStream_t stream);
// The same scatter when the index varies along a.dim only and there are many indices (a.idx unused): keys are
// the n = a.sizes[a.dim] index values, non-negative, sorted stably (launch_sort_rows), pos the position each came
// from. Same result as launch_scatter_lines, bit for bit (duplicates in index order), with more parallelism.
cudaError_t launch_sorted_scatter(bool add, int dtype, const ScatterArgs& a, const int64_t* keys, const int64_t* pos,
                                  cudaStream_t stream);
// masked_select's compaction over n contiguous elements of elem_size bytes: out[pos[i] - 1] = src[i] where
// mask[i]; pos is the inclusive prefix count of mask (int64).
cudaError_t launch_masked_compact(int elem_size, const void* src, const bool* mask, const int64_t* pos, void* out,
                                  int64_t n, cudaStream_t stream);
// nonzero's coordinates: for each i < n with mask[i] (contiguous, row-major over sizes), the ndim coordinates of i
// go to row pos[i] - 1 of the contiguous int64 out [count, ndim].
struct NonzeroArgs {
  int ndim = 0;
  int64_t sizes[kMaxDims] = {};
};
cudaError_t launch_nonzero(const bool* mask, const int64_t* pos, int64_t* out, int64_t n, const NonzeroArgs& a,
                           cudaStream_t stream);

// _fused_adam_ (Note [Multi-tensor launch] in optim.cu): one entry per tensor, all contiguous, of the dtype code
// given (float32 or float64); the scalars as the op's arguments.
struct AdamTensorPtrs {
  void* p;
  const void* g;
  void* m;
  void* v;
  int64_t numel;
};
struct AdamScalarsArg {
  double lr, beta1, beta2, eps, weight_decay, step_size, bias_correction2_sqrt;
  bool decoupled, maximize;
};
cudaError_t launch_fused_adam(int dtype, const AdamTensorPtrs* tensors, int64_t count, const AdamScalarsArg& s,
                              cudaStream_t stream);
// clip_grad_norm_'s list ops (Note [Clip lists] in src/vbt/cpu/optim_kernels.cpp): float32/float64 tensors of one
// dtype, contiguous. list_chunks(numel): the blocks (and partials) a tensor takes.
int64_t list_chunks(int64_t numel);
// out[i] = the op-norm of tensors[i] (out: count elements of dtype); part: the sum over i of list_chunks(numels[i])
// doubles. An empty tensor's out[i] is not written.
cudaError_t launch_list_norms(int dtype, const void* const* tensors, const int64_t* numels, int64_t count, RowRed op,
                              double p, double* part, void* out, cudaStream_t stream);
// tensors[i] *= *scale for every i (scale: one element of dtype on the device)
cudaError_t launch_list_mul(int dtype, void* const* tensors, const int64_t* numels, int64_t count, const void* scale,
                            cudaStream_t stream);

}  // namespace vbt::cuda::ops
