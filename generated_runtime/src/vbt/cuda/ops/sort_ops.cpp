// Host side of CUDA sorting and multinomial (registered in register_cuda_ops, cuda_ops.cpp): sort, argsort
// (msort is sort along dim 0 in Python), topk, kthvalue, multinomial. Argument checks and messages are the
// CPU kernels' (src/vbt/cpu/sort_kernels.cpp, factory_kernels.cpp); the device work is sort.cu (Note [CUDA
// sort]). Outputs are contiguous, as on the CPU.
#include "sort_ops.h"

#include <utility>

#include "../../cpu/cpu_kernels.h"
#include "launch_util.h"
#include "sort_launch.h"
#include "vbt/cuda/cuda_error.h"
#include "vbt/cuda/device_guard.h"
#include "vbt/cuda/stream.h"
#include "vbt/dispatch/dispatcher.h"

namespace vbt::cuda {

using namespace vbt::cuda::ops;

namespace {


// Device scratch of `bytes` from the caching allocator (freed stream-ordered with the tensor).
Tensor scratch(int64_t bytes, const Device& dev) { return empty({(bytes + 7) / 8}, ScalarType::Int64, dev); }

// t with `dim` moved last and contiguous (a 0-dim t as [1]).
Tensor dim_last(const Tensor& t, int64_t dim) {
  if (t.dim() == 0) return call_tensor_op("view", {t, Shape{1}});
  Tensor m = dim == t.dim() - 1 ? t : call_tensor_op("movedim", {t, Shape{dim}, Shape{-1}});
  return call_tensor_op("contiguous", {m});
}
// The inverse of dim_last for a result whose last dim is `dim` of a tensor of `ndim` dims.
Tensor dim_back(const Tensor& r, int64_t dim, int64_t ndim) {
  if (ndim == 0) return call_tensor_op("view", {r, Shape{}});
  if (dim == ndim - 1) return r;
  return call_tensor_op("contiguous", {call_tensor_op("movedim", {r, Shape{-1}, Shape{dim}})});
}

}  // namespace

std::pair<Tensor, Tensor> sort_rows(const Tensor& m, bool descending, bool want_values, const char* op) {
  const Device dev = m.device();
  Tensor vals = want_values ? empty(m.sizes(), m.dtype(), dev) : Tensor();
  Tensor idx = empty(m.sizes(), ScalarType::Int64, dev);
  if (m.numel() == 0) return {vals, idx};
  const int64_t cols = m.sizes().back(), rows = m.numel() / cols;
  DeviceGuard guard(dev.index);
  int64_t bytes = 0;
  check_launch(sort_workspace_bytes(int(m.dtype()), rows, cols, &bytes), op, m.dtype());
  Tensor ws = scratch(bytes, dev);
  check_launch(launch_sort_rows(int(m.dtype()), m.data_ptr(), want_values ? vals.data_ptr() : nullptr,
                                static_cast<int64_t*>(idx.data_ptr()), rows, cols, descending, ws.data_ptr(), bytes,
                                stream_of(dev)),
               op, m.dtype());
  return {vals, idx};
}

namespace {

std::pair<Tensor, Tensor> sort_impl(const Tensor& in, int64_t dim_arg, bool descending, bool want_values,
                                    const char* op) {
  const int64_t dim = wrap_dim(dim_arg, in.dim(), op);
  if (in.numel() == 0)
    return {want_values ? empty(in.sizes(), in.dtype(), in.device()) : Tensor(),
            empty(in.sizes(), ScalarType::Int64, in.device())};
  auto [v, i] = sort_rows(dim_last(in, dim), descending, want_values, op);
  return {want_values ? dim_back(v, dim, in.dim()) : Tensor(), dim_back(i, dim, in.dim())};
}

// The first `len` columns from `start` of a dim-last result, moved back.
Tensor slice_back(const Tensor& r, int64_t start, int64_t len, int64_t dim, int64_t ndim) {
  Tensor s = call_tensor_op("contiguous", {call_tensor_op("narrow", {r, int64_t(-1), start, len})});
  return dim_back(s, dim, ndim);
}

}  // namespace

// sort(Tensor self, int dim=-1, bool descending=False, *, bool stable=False) -> (values, indices). Always
// stable (Note [CUDA sort]).
Value k_sort_cuda(const Args& a) {
  auto [v, i] = sort_impl(a.tensor(0), a.integer(1), a.boolean(2), true, "sort");
  return TensorList{v, i};
}

// argsort(Tensor self, int dim=-1, bool descending=False, *, bool stable=False) -> Tensor
Value k_argsort_cuda(const Args& a) { return sort_impl(a.tensor(0), a.integer(1), a.boolean(2), false, "argsort").second; }

// topk(Tensor self, int k, int dim=-1, bool largest=True, bool sorted=True) -> (values, indices): the row sorted
// (descending when largest; NaN counts as largest) and its first k columns; always sorted.
Value k_topk_cuda(const Args& a) {
  const char* op = "topk";
  const Tensor& in = a.tensor(0);
  const int64_t k = a.integer(1);
  const int64_t dim = wrap_dim(a.integer(2), in.dim(), op);
  const bool largest = a.boolean(3);
  VBT_CHECK_KIND(ErrorKind::NotImplemented, in.dtype() != ScalarType::Bool,
                 "\"topk_out_cuda\" not implemented for 'Bool'");
  const int64_t n = in.dim() > 0 ? in.sizes()[dim] : 1;
  VBT_CHECK(k >= 0 && k <= n, op, "(): selected index k out of range (k = ", k, ", size of dim ", dim, " = ", n,
            ", input shape ", shape_str(in.sizes()), ")");
  Shape osizes = in.sizes();
  if (in.dim() > 0) osizes[dim] = k;
  if (shape_numel(osizes) == 0)
    return TensorList{empty(osizes, in.dtype(), in.device()), empty(osizes, ScalarType::Int64, in.device())};
  // a 0-dim input gives 0-dim outputs holding its element, for k = 0 too (as the CPU kernel)
  const int64_t k_out = in.dim() == 0 ? 1 : k;
  auto [v, i] = sort_rows(dim_last(in, dim), largest, true, op);
  return TensorList{slice_back(v, 0, k_out, dim, in.dim()), slice_back(i, 0, k_out, dim, in.dim())};
}

// kthvalue(Tensor self, int k, int dim=-1, bool keepdim=False) -> (values, indices): the k-th smallest (1-based)
// of the ascending stable sort, so with ties the index is the k-th in index order among equal elements.
Value k_kthvalue_cuda(const Args& a) {
  const char* op = "kthvalue";
  const Tensor& in = a.tensor(0);
  const int64_t k = a.integer(1);
  const int64_t dim = wrap_dim(a.integer(2), in.dim(), op);
  const bool keepdim = a.boolean(3);
  const int64_t n = in.dim() > 0 ? in.sizes()[dim] : 1;
  VBT_CHECK_INDEX(n > 0, op, "(): Expected reduction dim ", dim, " to have non-zero size.");
  VBT_CHECK(k >= 1 && k <= n, op, "(): selected number k out of range for dimension ", dim, " (k = ", k,
            ", input shape ", shape_str(in.sizes()), ")");
  VBT_CHECK_KIND(ErrorKind::NotImplemented, in.dim() == 0 || in.dtype() != ScalarType::Bool,
                 "\"kthvalue_cuda\" not implemented for 'Bool'");
  Shape keep = in.sizes();
  if (in.dim() > 0) keep[dim] = 1;
  Tensor vals, idx;
  if (shape_numel(keep) == 0) {
    vals = empty(keep, in.dtype(), in.device());
    idx = empty(keep, ScalarType::Int64, in.device());
  } else {
    auto [v, i] = sort_rows(dim_last(in, dim), false, true, op);
    vals = slice_back(v, k - 1, 1, dim, in.dim());
    idx = slice_back(i, k - 1, 1, dim, in.dim());
  }
  if (keepdim || in.dim() == 0) return TensorList{vals, idx};
  return TensorList{call_tensor_op("squeeze", {vals, Shape{dim}}), call_tensor_op("squeeze", {idx, Shape{dim}})};
}

// multinomial(Tensor self, int num_samples, bool replacement=False, *, Generator? generator=None) -> Tensor
// Checks as the CPU kernel. The weights are validated on the device and the flags read back: one host sync
// per call, as torch, whose CUDA multinomial also reads its checks back (.item()) or stops the device with an
// assert. Under CUDA graph capture the check is skipped (a host sync cannot be captured): invalid weights then
// give unspecified (in-range) indices. The draws: Note [CUDA sort] in sort.cu.
Value k_multinomial_cuda(const Args& a) {
  const Tensor& self = a.tensor(0);
  const int64_t n = a.integer(1);
  const bool replacement = a.boolean(2);
  VBT_CHECK(self.dim() == 1 || self.dim() == 2, "prob_dist must be 1 or 2 dim");
  VBT_CHECK(is_floating(self.dtype()), "multinomial only supports floating-point dtypes for input, got: ",
            dtype_name(self.dtype()));
  VBT_CHECK(n > 0, "cannot sample n_sample <= 0 samples");
  const int64_t ncat = self.sizes().back();
  VBT_CHECK(replacement || n <= ncat, "cannot sample n_sample > prob_dist.size(-1) samples without replacement");
  VBT_CHECK(ncat <= (int64_t(1) << 24), "number of categories cannot exceed 2^24");
  const int64_t rows = self.dim() == 1 ? 1 : self.sizes()[0];
  const Device dev = self.device();
  VBT_CHECK(rows == 0 || ncat > 0, "invalid multinomial distribution (sum of probabilities <= 0)");
  const uint64_t seed = a.generator(3)->next_u64();
  Tensor out = empty(self.dim() == 1 ? Shape{n} : Shape{rows, n}, ScalarType::Int64, dev);
  if (rows == 0) return out;
  Tensor w = call_tensor_op("contiguous", {self});
  const int dt = int(w.dtype());
  DeviceGuard guard(dev.index);
  cudaStream_t s = stream_of(dev);
  cudaStreamCaptureStatus cs = cudaStreamCaptureStatusNone;
  VBT_CUDA_CHECK(cudaStreamIsCapturing(s, &cs));
  if (cs == cudaStreamCaptureStatusNone) {
    Tensor flags = empty({1}, ScalarType::Int32, dev);
    VBT_CUDA_CHECK(cudaMemsetAsync(flags.data_ptr(), 0, sizeof(int32_t), s));
    check_launch(launch_multinomial_check(dt, w.data_ptr(), rows, ncat, static_cast<int32_t*>(flags.data_ptr()), s),
                 "multinomial", w.dtype());
    int32_t host_flags = 0;
    VBT_CUDA_CHECK(cudaMemcpyAsync(&host_flags, flags.data_ptr(), sizeof(int32_t), cudaMemcpyDeviceToHost, s));
    VBT_CUDA_CHECK(cudaStreamSynchronize(s));
    VBT_CHECK(!(host_flags & 1), "probability tensor contains either `inf`, `nan` or element < 0");
    VBT_CHECK(!(host_flags & 2), "invalid multinomial distribution (sum of probabilities <= 0)");
  }
  if (replacement) {
    Tensor cum = empty({rows, ncat}, ScalarType::Float64, dev);
    check_launch(launch_multinomial_replacement(dt, w.data_ptr(), static_cast<double*>(cum.data_ptr()),
                                                static_cast<int64_t*>(out.data_ptr()), rows, ncat, n, seed, s),
                 "multinomial", w.dtype());
    return out;
  }
  Tensor keys = empty({rows, ncat}, ScalarType::Float64, dev);
  check_launch(launch_multinomial_keys(dt, w.data_ptr(), static_cast<double*>(keys.data_ptr()), rows, ncat, seed, s),
               "multinomial", w.dtype());
  Tensor idx = sort_rows(keys, true, false, "multinomial").second;
  Tensor first = call_tensor_op("contiguous", {call_tensor_op("narrow", {idx, int64_t(1), int64_t(0), n})});
  return self.dim() == 1 ? call_tensor_op("view", {first, Shape{n}}) : first;
}

}  // namespace vbt::cuda
