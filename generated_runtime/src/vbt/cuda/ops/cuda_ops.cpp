// Host side of the CUDA op kernels (include/vbt/cuda/ops.h): argument handling, dtype rules (the same
// helpers as the CPU: result_type, broadcast_shapes, can_cast), loop geometry, and the registration of
// every CUDA kernel with the dispatcher. Device code: elementwise.cu, reduce_gemm.cu, scan_index.cu (loops.h);
// sorting and multinomial have their own host file (sort_ops.cpp) and device code (sort.cu).
//
// Geometry: the CPU TensorIterator allocates its temporaries on the CPU, so CUDA kernels build the same
// geometry here (broadcast shape, byte strides innermost first, dims ordered by the output's strides,
// coalesce_dims from tensor_iterator.h) over operands that are already on the device and of the compute
// dtype. Note [Device policy] in dispatcher.h: a 0-dim CPU tensor (a wrapped Python number) may join CUDA
// tensors; such operands are copied to the device here.
#include "vbt/cuda/ops.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <mutex>
#include <numeric>
#include <optional>

#include "../../cpu/cpu_kernels.h"
#include "cublas_gemm.h"
#include "launch_util.h"
#include "loops.h"
#include "sort_ops.h"
#include "vbt/cpu/tensor_iterator.h"
#include "vbt/cuda/cuda_error.h"
#include "vbt/cuda/device_allocator.h"
#include "vbt/cuda/device_guard.h"
#include "vbt/cuda/pinned_allocator.h"
#include "vbt/cuda/stream.h"
#include "vbt/dispatch/dispatcher.h"

namespace vbt::cuda {

using namespace vbt::cuda::ops;

namespace {

Device resolve(Device d) {
  if (d.type == DeviceType::CUDA && d.index < 0) d.index = static_cast<int16_t>(current_device());
  return d;
}

bool is_cuda(const Tensor& t) { return t.defined() && t.device().type == DeviceType::CUDA; }

// The geometry of a loop over `shape` (operand 0 is the output; inputs broadcast to shape).
LoopGeometry make_geometry(const Shape& shape, const std::vector<Tensor>& operands, const char* op) {
  const int64_t ndim = static_cast<int64_t>(shape.size());
  std::vector<Shape> strides;
  for (const Tensor& t : operands) {
    Shape st(ndim, 0);
    int64_t off = ndim - t.dim(), isz = itemsize(t.dtype());
    for (int64_t d = 0; d < t.dim(); ++d)
      st[ndim - 1 - (d + off)] = t.sizes()[d] == 1 ? 0 : t.strides()[d] * isz;
    strides.push_back(st);
  }
  Shape rshape(shape.rbegin(), shape.rend());
  if (ndim > 1) {  // order dims by the operands' strides (output first), as TensorIterator does
    std::vector<int64_t> perm(ndim);
    std::iota(perm.begin(), perm.end(), 0);
    auto outer = [&](int64_t a, int64_t b) {
      for (const auto& st : strides) {
        if (st[a] == 0 || st[b] == 0) continue;
        if (st[a] != st[b]) return st[a] > st[b];
      }
      return false;
    };
    for (int64_t i = 1; i < ndim; ++i)
      for (int64_t j = i; j > 0 && outer(perm[j - 1], perm[j]); --j) std::swap(perm[j - 1], perm[j]);
    Shape ps(ndim);
    for (int64_t d = 0; d < ndim; ++d) ps[d] = rshape[perm[d]];
    rshape = ps;
    for (auto& st : strides) {
      Shape ns(ndim);
      for (int64_t d = 0; d < ndim; ++d) ns[d] = st[perm[d]];
      st = ns;
    }
  }
  if (ndim == 0) {
    rshape = {1};
    for (auto& st : strides) st = {0};
  }
  coalesce_dims(rshape, strides);
  VBT_CHECK(rshape.size() <= static_cast<size_t>(kMaxDims), op, ": too many dimensions for a CUDA loop (",
            rshape.size(), " after coalescing, at most ", kMaxDims, ")");
  VBT_INTERNAL_ASSERT(operands.size() <= static_cast<size_t>(kMaxOperands), op, ": too many operands");
  LoopGeometry g;
  g.ndim = static_cast<int>(rshape.size());
  g.ntensors = static_cast<int>(operands.size());
  g.numel = shape_numel(shape);
  for (int d = 0; d < g.ndim; ++d) g.sizes[d] = rshape[d];
  for (int k = 0; k < g.ntensors; ++k) {
    for (int d = 0; d < g.ndim; ++d) g.strides[k][d] = strides[k][d];
    g.data[k] = static_cast<char*>(operands[k].data_ptr());
  }
  return g;
}

void run_loop(const char* op, Ew code, const Tensor& out, const std::vector<Tensor>& inputs, ScalarType in_dtype,
              EwScalars sc = {}) {
  std::vector<Tensor> operands{out};
  operands.insert(operands.end(), inputs.begin(), inputs.end());
  LoopGeometry g = make_geometry(out.sizes(), operands, op);
  DeviceGuard guard(out.device().index);
  check_launch(launch_elementwise(code, int(out.dtype()), int(in_dtype), g, sc, stream_of(out.device())), op,
               code == Ew::Copy ? in_dtype : out.dtype());
}

Tensor empty_cuda(const Shape& sizes, ScalarType dt, Device d) { return empty(sizes, dt, resolve(d)); }

// Note [Host synchronization under graph capture]: work that must wait for the device on the host (a blocking
// copy to or from pageable memory, .item(), the output size of nonzero / masked_select, index range checks)
// cannot be recorded into a CUDA graph. Such calls check first that the stream is not capturing and raise a
// RuntimeError naming the operation, before any illegal CUDA call could invalidate the capture (the Python
// graph context then ends and discards the capture; see CudaGraph::capture_abort in cuda_bindings.cpp).
void check_not_capturing(const char* what, cudaStream_t s) {
  cudaStreamCaptureStatus cs = cudaStreamCaptureStatusNone;
  VBT_CUDA_CHECK(cudaStreamIsCapturing(s, &cs));
  if (cs != cudaStreamCaptureStatusNone)
    throw_error(ErrorKind::Runtime, what, ": needs to synchronize the host with the device, which is not allowed "
                "while the current stream is capturing a CUDA graph (keep host syncs such as .item(), .cpu(), "
                "printing, nonzero() or masked_select() out of the captured region)");
}
void sync(const Device& d, const char* what = "synchronize") {
  cudaStream_t s = stream_of(d);
  check_not_capturing(what, s);
  VBT_CUDA_CHECK(cudaStreamSynchronize(s));
}

// Note [Non-blocking copies]: copy_(src, non_blocking=True) / .to(device, non_blocking=True) set the
// calling thread's flag (set_non_blocking_copies) for the duration of the copy. A host <-> device copy
// whose host side is page-locked (pinned) memory is then one cudaMemcpyAsync on the current stream and the
// host does not wait: the copy is ordered with the kernels queued there, and the host must synchronize (the
// stream, an event or the device) before it reads a D2H result. Right after enqueueing, an event is recorded
// on the stream for the pinned block (PinnedHostAllocator::record_use), so the block is not handed out again
// before the copy has run. From or to pageable memory the copy stays blocking, as in torch.
thread_local bool t_non_blocking = false;

bool is_pinned_ptr(const void* p) {
  if (p == nullptr) return false;
  if (pinned_host_allocator().contains(p)) return true;
  cudaPointerAttributes attr{};
  if (cudaPointerGetAttributes(&attr, p) != cudaSuccess) {
    (void)cudaGetLastError();
    return false;
  }
  return attr.type == cudaMemoryTypeHost;  // cudaHostAlloc'd or cudaHostRegister'ed elsewhere
}
// After an asynchronous copy that uses pinned host memory at `host` on `s`. Not under a graph capture: there
// the copy runs at each replay and the user keeps the pinned tensor alive, as with torch.
void record_host_use(const void* host, cudaStream_t s) {
  cudaStreamCaptureStatus cs = cudaStreamCaptureStatusNone;
  VBT_CUDA_CHECK(cudaStreamIsCapturing(s, &cs));
  if (cs == cudaStreamCaptureStatusNone) pinned_host_allocator().record_use(host, reinterpret_cast<StreamId>(s));
}

// Copies host (CPU, contiguous) -> device or back, `bytes` bytes. Waits for it, unless non_blocking and the
// host memory is pinned (Note [Non-blocking copies]).
void memcpy_h2d(void* dst, const void* src, size_t bytes, const Device& d, bool non_blocking = false) {
  if (bytes == 0) return;
  DeviceGuard guard(d.index);
  cudaStream_t s = stream_of(d);
  const bool async = non_blocking && is_pinned_ptr(src);
  if (!async) check_not_capturing("copy from pageable host memory to CUDA", s);
  VBT_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, s));
  if (async) record_host_use(src, s);
  else VBT_CUDA_CHECK(cudaStreamSynchronize(s));
}
void memcpy_d2h(void* dst, const void* src, size_t bytes, const Device& d, bool non_blocking = false,
                const char* what = "copy from CUDA to pageable host memory") {
  if (bytes == 0) return;
  DeviceGuard guard(d.index);
  cudaStream_t s = stream_of(d);
  const bool async = non_blocking && is_pinned_ptr(dst);
  if (!async) check_not_capturing(what, s);
  VBT_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, s));
  if (async) record_host_use(dst, s);
  else VBT_CUDA_CHECK(cudaStreamSynchronize(s));
}

// dst (CUDA) <- src (any device, broadcastable to dst), with a dtype cast.
void copy_to_cuda(const Tensor& dst, const Tensor& src) {
  broadcast_shapes(dst.sizes(), src.sizes(), "copy_");  // raises on a shape mismatch
  if (src.device().type == DeviceType::CPU) {
    Tensor hs = contiguous_or_self(src);
    if (dst.is_contiguous() && dst.dtype() == hs.dtype() && dst.sizes() == hs.sizes()) {
      memcpy_h2d(dst.data_ptr(), hs.data_ptr(), size_t(hs.numel() * itemsize(hs.dtype())), dst.device(),
                 t_non_blocking);
      return;
    }
    Tensor staged = empty(hs.sizes(), hs.dtype(), dst.device());
    memcpy_h2d(staged.data_ptr(), hs.data_ptr(), size_t(hs.numel() * itemsize(hs.dtype())), dst.device(),
               t_non_blocking);
    run_loop("copy_", Ew::Copy, dst, {staged}, staged.dtype());
    return;
  }
  if (src.device() != dst.device()) {  // another GPU: contiguous peer copy, then the strided cast
    Tensor sc = src;
    if (!src.is_contiguous()) {
      sc = empty(src.sizes(), src.dtype(), src.device());
      run_loop("copy_", Ew::Copy, sc, {src}, src.dtype());
    }
    Tensor staged = empty(sc.sizes(), sc.dtype(), dst.device());
    size_t bytes = size_t(sc.numel() * itemsize(sc.dtype()));
    if (bytes) {
      sync(src.device(), "copy between CUDA devices");
      DeviceGuard guard(dst.device().index);
      VBT_CUDA_CHECK(cudaMemcpyPeerAsync(staged.data_ptr(), dst.device().index, sc.data_ptr(), src.device().index,
                                         bytes, stream_of(dst.device())));
    }
    run_loop("copy_", Ew::Copy, dst, {staged}, staged.dtype());
    return;
  }
  run_loop("copy_", Ew::Copy, dst, {src}, src.dtype());
}

// dst (CPU) <- src (CUDA).
void copy_to_cpu(const Tensor& dst, const Tensor& src) {
  broadcast_shapes(dst.sizes(), src.sizes(), "copy_");
  Tensor dev = src;
  if (!src.is_contiguous() || src.dtype() != dst.dtype()) {  // cast / compact on the device first
    dev = empty(src.sizes(), dst.dtype(), src.device());
    run_loop("copy_", Ew::Copy, dev, {src}, src.dtype());
  }
  size_t bytes = size_t(dev.numel() * itemsize(dev.dtype()));
  if (dst.is_contiguous() && dst.sizes() == dev.sizes()) {
    memcpy_d2h(dst.data_ptr(), dev.data_ptr(), bytes, src.device(), t_non_blocking);
    return;
  }
  Tensor host = empty(dev.sizes(), dev.dtype());
  memcpy_d2h(host.data_ptr(), dev.data_ptr(), bytes, src.device());
  copy_into(dst, host);
}

void fill(const Tensor& t, const Scalar& v);

// An input operand on `dev` (0-dim CPU tensors are filled in) in dtype `dt`.
Tensor operand(const Tensor& t, const Device& dev, ScalarType dt) {
  Tensor x = t;
  if (!is_cuda(x)) {  // the value goes into a fill kernel's arguments: no copy, no host sync (graph capture)
    VBT_INTERNAL_ASSERT(x.dim() == 0, "non-scalar CPU operand reached a CUDA kernel");
    Tensor d = empty({}, dt, dev);
    fill(d, item_of(x));
    return d;
  }
  if (x.dtype() != dt) {
    Tensor c = empty(x.sizes(), dt, x.device());
    run_loop("to", Ew::Copy, c, {x}, x.dtype());
    return c;
  }
  return x;
}

// The shared elementwise driver: broadcasts `inputs`, casts them to `compute`, writes `result_dtype`
// into `out` (a new tensor when undefined; otherwise checked, resized when empty, cast back via a temporary).
Tensor elementwise(const char* op, Ew code, const std::vector<Tensor>& inputs, ScalarType compute,
                   ScalarType result_dtype, const Tensor& out, EwScalars sc = {},
                   const std::vector<ScalarType>* per_input = nullptr) {
  Shape shape;
  bool first = true;
  for (const Tensor& t : inputs) {
    shape = first ? t.sizes() : broadcast_shapes(shape, t.sizes(), op);
    first = false;
  }
  Device dev{DeviceType::CUDA, 0};
  for (const Tensor& t : inputs) if (is_cuda(t)) { dev = t.device(); break; }
  if (out.defined() && is_cuda(out)) dev = out.device();
  std::vector<Tensor> ins;
  for (size_t i = 0; i < inputs.size(); ++i) ins.push_back(operand(inputs[i], dev, per_input ? (*per_input)[i] : compute));
  Tensor target;
  if (out.defined()) {
    VBT_CHECK(out.device() == dev, op, ": Expected out tensor to be on device ", dev.str(), ", but got ",
              out.device().str());
    if (out.sizes() != shape) {
      VBT_CHECK(out.numel() == 0, op, ": out= tensor has shape ", shape_str(out.sizes()), " but the result has shape ",
                shape_str(shape), " (only empty out= tensors are resized)");
      out.impl()->set_sizes_contiguous(shape);
    }
    if (out.dtype() != result_dtype) {
      VBT_CHECK(can_cast(result_dtype, out.dtype()), op, ": result type ", dtype_name(result_dtype),
                " can't be cast to the desired output type ", dtype_name(out.dtype()));
      target = empty(shape, result_dtype, dev);
    } else {
      target = out;
    }
  } else {
    target = empty(shape, result_dtype, dev);
  }
  run_loop(op, code, target, ins, compute, sc);
  if (out.defined()) {
    if (!target.is_same(out)) run_loop(op, Ew::Copy, out, {target}, target.dtype());
    out.impl()->bump_version();
    return out;
  }
  return target;
}

ScalarType promoted(const std::vector<Tensor>& ts) {
  std::vector<bool> wrapped;
  for (const Tensor& t : ts) wrapped.push_back(t.defined() && t.impl()->wrapped_number);
  return result_type(ts, wrapped);
}

// ---------------------------------------------------------------- kernels
// Unary ops that compute in floating point (integers promote to the default float dtype).
template <Ew code> Value k_unary_float(const Args& a) {
  const Tensor& x = a.tensor(0);
  ScalarType dt = is_floating(x.dtype()) ? x.dtype() : default_float_dtype();
  return elementwise("unary", code, {x}, dt, dt, a.opt_tensor(1));
}
template <Ew code> Value k_unary_same(const Args& a) {
  const Tensor& x = a.tensor(0);
  VBT_CHECK(!(code == Ew::Neg && x.dtype() == ScalarType::Bool),
            "Negation, the `-` operator, on a bool tensor is not supported. If you are trying to invert a mask, use "
            "the `~` or `logical_not()` operator instead.");
  return elementwise("unary", code, {x}, x.dtype(), x.dtype(), a.opt_tensor(1));
}
// round(Tensor self, *, int decimals=0, Tensor? out=None): half to even, like the CPU kernel (decimals=0 only)
Value k_round(const Args& a) {
  const Tensor& x = a.tensor(0);
  if (a.integer(1) != 0)
    throw_error(ErrorKind::NotImplemented, "round: decimals != 0 is not implemented for CUDA tensors (got decimals=",
                a.integer(1), "); round on the CPU or scale by 10**decimals yourself");
  return elementwise("round", Ew::Round, {x}, x.dtype(), x.dtype(), a.opt_tensor(2));
}
Value k_gelu(const Args& a) {
  const Tensor& x = a.tensor(0);
  const std::string& approx = a.str(1);
  VBT_CHECK_VALUE(approx == "none" || approx == "tanh", "approximate argument must be either none or tanh.");
  ScalarType dt = is_floating(x.dtype()) ? x.dtype() : default_float_dtype();
  return elementwise("gelu", approx == "tanh" ? Ew::GeluTanh : Ew::Gelu, {x}, dt, dt, a.opt_tensor(2));
}

// softplus(Tensor self, Scalar beta=1, Scalar threshold=20, *, Tensor? out=None): integers promote to float
Value k_softplus(const Args& a) {
  const Tensor& x = a.tensor(0);
  ScalarType dt = is_floating(x.dtype()) ? x.dtype() : default_float_dtype();
  EwScalars sc;
  sc.alpha = a.real(1);
  sc.beta = a.real(2);
  return elementwise("softplus", Ew::Softplus, {x}, dt, dt, a.opt_tensor(3), sc);
}
// nan_to_num(Tensor self, float? nan=None, float? posinf=None, float? neginf=None, *, Tensor? out=None):
// infinities default to the dtype's largest / lowest finite value (identity on integers and bool)
Value k_nan_to_num(const Args& a) {
  const Tensor& x = a.tensor(0);
  const ScalarType dt = x.dtype();
  const double lim = dt == ScalarType::Float16 ? 65504.0
                     : dt == ScalarType::BFloat16 ? 3.3895313892515355e38
                     : dt == ScalarType::Float32 ? double(std::numeric_limits<float>::max())
                                                 : std::numeric_limits<double>::max();
  EwScalars sc;
  sc.alpha = a.is_none(1) ? 0.0 : a.real(1);
  sc.beta = a.is_none(2) ? lim : a.real(2);
  sc.gamma = a.is_none(3) ? -lim : a.real(3);
  return elementwise("nan_to_num", Ew::NanToNum, {x}, dt, dt, a.opt_tensor(4), sc);
}
// bitwise_and/or/xor(Tensor self, Tensor other, *, Tensor? out=None) and bitwise_not(Tensor self, *, Tensor? out=None):
// bool and integer dtypes (the promoted dtype), like the CPU kernels
void check_integral(const char* op, ScalarType dt) {
  if (!is_integral(dt, /*include_bool=*/true))
    throw_error(ErrorKind::Runtime, op, ": not implemented for '", dtype_name(dt), "'");
}
template <Ew code> Value k_bitwise(const Args& a) {
  const char* op = code == Ew::BitAnd ? "bitwise_and" : code == Ew::BitOr ? "bitwise_or" : "bitwise_xor";
  ScalarType dt = promoted({a.tensor(0), a.tensor(1)});
  check_integral(op, dt);
  return elementwise(op, code, {a.tensor(0), a.tensor(1)}, dt, dt, a.opt_tensor(2));
}
Value k_bitwise_not(const Args& a) {
  const Tensor& x = a.tensor(0);
  check_integral("bitwise_not", x.dtype());
  return elementwise("bitwise_not", Ew::BitNot, {x}, x.dtype(), x.dtype(), a.opt_tensor(1));
}

// One operand a CPU scalar (a Python number or any 0-d CPU tensor), the other on cuda, a floating dtype: the
// scalar goes into the kernel's arguments in the compute type, as torch.cuda does (ScalarArithNote in
// elementwise.cu). Returns the scalar's value, or nothing when the rule does not apply.
std::optional<double> cpu_scalar_of(const Tensor& scalar, const Tensor& other, ScalarType dt) {
  if (!is_floating(dt) || scalar.dim() != 0 || is_cuda(scalar) || !is_cuda(other)) return std::nullopt;
  return item_of(scalar).to_double();
}
Value scalar_arith(const char* op, Ew code, const Tensor& x, ScalarType dt, const Tensor& out, double s,
                   double beta = 0.0, bool scalar_first = false) {
  EwScalars sc;
  sc.alpha = s;
  sc.beta = beta;
  sc.n = scalar_first ? 1 : 0;
  return elementwise(op, code, {x}, dt, dt, out, sc);
}

template <Ew code> Value k_add_sub(const Args& a) {
  const Tensor &x = a.tensor(0), &y = a.tensor(1);
  ScalarType dt = promoted({x, y});
  Scalar alpha = a.scalar(2);
  VBT_CHECK(!(alpha.is_floating() && !is_floating(dt)), "For integral input tensors, argument alpha must not be a "
            "floating point number.");
  VBT_CHECK(!(code == Ew::Sub && dt == ScalarType::Bool), "Subtraction, the `-` operator, with two bool tensors is "
            "not supported. Use the `^` or `logical_xor()` operator instead.");
  if (code == Ew::Add && dt == ScalarType::Bool) {  // bool + bool is logical or (x + alpha * y, alpha != 0)
    if (alpha.to_double() != 0.0) return elementwise("add", Ew::LogicalOr, {x, y}, dt, dt, a.opt_tensor(3));
    Tensor none = elementwise("add", Ew::Ne, {y, y}, dt, dt, Tensor());  // alpha = 0: x broadcast with y
    return elementwise("add", Ew::LogicalOr, {x, none}, dt, dt, a.opt_tensor(3));
  }
  const char* op = code == Ew::Add ? "add" : "sub";
  const double signed_alpha = code == Ew::Add ? alpha.to_double() : -alpha.to_double();
  if (std::optional<double> s = cpu_scalar_of(y, x, dt))
    return scalar_arith(op, Ew::AddS, x, dt, a.opt_tensor(3), *s, signed_alpha);
  if (std::optional<double> s = cpu_scalar_of(x, y, dt))
    return scalar_arith(op, Ew::AddS, y, dt, a.opt_tensor(3), *s, signed_alpha, /*scalar_first=*/true);
  EwScalars sc{alpha.to_double(), alpha.to_int()};
  return elementwise(op, code, {x, y}, dt, dt, a.opt_tensor(3), sc);
}
Value k_mul(const Args& a) {
  ScalarType dt = promoted({a.tensor(0), a.tensor(1)});
  if (dt == ScalarType::Bool)  // bool * bool is logical and
    return elementwise("mul", Ew::LogicalAnd, {a.tensor(0), a.tensor(1)}, dt, dt, a.opt_tensor(2));
  if (std::optional<double> s = cpu_scalar_of(a.tensor(1), a.tensor(0), dt))
    return scalar_arith("mul", Ew::MulS, a.tensor(0), dt, a.opt_tensor(2), *s);
  if (std::optional<double> s = cpu_scalar_of(a.tensor(0), a.tensor(1), dt))
    return scalar_arith("mul", Ew::MulS, a.tensor(1), dt, a.opt_tensor(2), *s);
  return elementwise("mul", Ew::Mul, {a.tensor(0), a.tensor(1)}, dt, dt, a.opt_tensor(2));
}
Value k_div(const Args& a) {
  const Tensor &x = a.tensor(0), &y = a.tensor(1);
  ScalarType dt = promoted({x, y});
  if (a.is_none(2)) {
    if (!is_floating(dt)) dt = default_float_dtype();
    // a CPU scalar dividend (torch.div(0.7, x)) stays rounded to the dtype, as torch.cuda does
    if (std::optional<double> s = cpu_scalar_of(y, x, dt))
      return scalar_arith("div", Ew::DivS, x, dt, a.opt_tensor(3), *s);
    return elementwise("div", Ew::Div, {x, y}, dt, dt, a.opt_tensor(3));
  }
  const std::string& mode = a.str(2);
  VBT_CHECK_VALUE(mode == "trunc" || mode == "floor", "div expected rounding_mode to be one of None, 'trunc', or "
                  "'floor' but found '", mode, "'");
  if (std::optional<double> s = cpu_scalar_of(y, x, dt))
    return scalar_arith("div", mode == "trunc" ? Ew::DivTruncS : Ew::DivFloorS, x, dt, a.opt_tensor(3), *s);
  EwScalars sc;
  // torch's CUDA div trunc of two 16-bit float tensors rounds the quotient to the storage type before truncating;
  // with a CPU scalar divisor (a Python number or any 0-d CPU tensor: what operand() turns into a fill) it truncates
  // the float quotient. sc.n = 1 asks for the rounding.
  const bool cpu_scalar = y.dim() == 0 && !is_cuda(y);
  sc.n = (mode == "trunc" && !cpu_scalar) ? 1 : 0;
  return elementwise("div", mode == "trunc" ? Ew::DivTrunc : Ew::DivFloor, {x, y}, dt, dt, a.opt_tensor(3), sc);
}
template <Ew code> Value k_binary_same(const Args& a) {
  ScalarType dt = promoted({a.tensor(0), a.tensor(1)});
  return elementwise(code == Ew::Maximum ? "maximum" : "minimum", code, {a.tensor(0), a.tensor(1)}, dt, dt,
                     a.opt_tensor(2));
}
template <Ew code> Value k_compare(const Args& a) {
  ScalarType dt = promoted({a.tensor(0), a.tensor(1)});
  return elementwise("comparison", code, {a.tensor(0), a.tensor(1)}, dt, ScalarType::Bool, a.opt_tensor(2));
}
Value k_where(const Args& a) {
  const Tensor &c = a.tensor(0), &x = a.tensor(1), &y = a.tensor(2);
  VBT_CHECK(c.dtype() == ScalarType::Bool, "where expected condition to be a boolean tensor, but got a tensor with "
            "dtype ", dtype_name(c.dtype()));
  ScalarType dt = promoted({x, y});
  std::vector<ScalarType> per{ScalarType::Bool, dt, dt};
  return elementwise("where", Ew::Where, {c, x, y}, dt, dt, a.opt_tensor(3), {}, &per);
}

void fill(const Tensor& t, const Scalar& v) {
  if (t.numel() == 0) return;
  EwScalars sc{v.to_double(), v.is_floating() ? static_cast<int64_t>(v.to_double()) : v.to_int()};
  if (t.dtype() == ScalarType::Bool) sc.ialpha = v.to_bool() ? 1 : 0;
  run_loop("fill_", Ew::Fill, t, {}, t.dtype(), sc);
}
Value k_fill_(const Args& a) {
  fill(a.tensor(0), a.scalar(1));
  a.tensor(0).impl()->bump_version();
  return a.tensor(0);
}
Value k_zero_(const Args& a) {
  fill(a.tensor(0), Scalar(int64_t(0)));
  a.tensor(0).impl()->bump_version();
  return a.tensor(0);
}

Device factory_device(const Args& a, size_t i) { return resolve(a.device_or_cpu(i)); }
Value k_empty(const Args& a) { return empty_cuda(a.int_list(0), a.dtype_or(1, default_float_dtype()), factory_device(a, 2)); }
Value k_zeros(const Args& a) {
  Tensor t = empty_cuda(a.int_list(0), a.dtype_or(1, default_float_dtype()), factory_device(a, 2));
  fill(t, Scalar(int64_t(0)));
  return t;
}
Value k_ones(const Args& a) {
  Tensor t = empty_cuda(a.int_list(0), a.dtype_or(1, default_float_dtype()), factory_device(a, 2));
  fill(t, Scalar(int64_t(1)));
  return t;
}
Value k_full(const Args& a) {
  Scalar v = a.scalar(1);
  ScalarType inferred = v.is_floating() ? default_float_dtype() : v.natural_dtype();
  Tensor t = empty_cuda(a.int_list(0), a.dtype_or(2, inferred), factory_device(a, 3));
  fill(t, v);
  return t;
}

Value k_copy_(const Args& a) {
  const Tensor &self = a.tensor(0), &src = a.tensor(1);
  if (is_cuda(self)) copy_to_cuda(self, src);
  else copy_to_cpu(self, src);
  self.impl()->bump_version();
  return self;
}
Tensor clone_cuda(const Tensor& t, ScalarType dt) {
  Tensor out = empty(t.sizes(), dt, t.device());
  run_loop("clone", Ew::Copy, out, {t}, t.dtype());
  return out;
}
Value k_to_dtype(const Args& a) {
  const Tensor& t = a.tensor(0);
  ScalarType dt = a.dtype(1);
  if (dt == t.dtype() && !a.boolean(2)) return t;
  return clone_cuda(t, dt);
}
Value k_contiguous(const Args& a) { return a.tensor(0).is_contiguous() ? a.tensor(0) : clone_cuda(a.tensor(0), a.tensor(0).dtype()); }
Value k_clone(const Args& a) { return clone_cuda(a.tensor(0), a.tensor(0).dtype()); }
Value k_item(const Args& a) {
  const Tensor& t = a.tensor(0);
  VBT_CHECK(t.numel() == 1, "item: a Tensor with ", t.numel(), " elements cannot be converted to Scalar");
  Tensor host = empty({}, t.dtype());
  memcpy_d2h(host.data_ptr(), t.data_ptr(), size_t(itemsize(t.dtype())), t.device(), false, "item()");
  return item_of(host);
}
// reshape: a view when the geometry allows one (the core's view rules), else a contiguous copy.
Value k_reshape(const Args& a) {
  const Tensor& t = a.tensor(0);
  try {
    return call_tensor_op("view", {t, a.int_list(1)});
  } catch (const Error&) {
  }
  Tensor c = clone_cuda(t, t.dtype());
  return call_tensor_op("view", {c, a.int_list(1)});
}

// ---- reductions: permute the reduced dims last, make contiguous, reduce rows.
std::vector<bool> reduced_dims(const Tensor& t, const Args& a, size_t i, const char* op) {
  std::vector<bool> red(size_t(t.dim()), false);
  if (a.is_none(i) || a.int_list(i).empty()) {
    std::fill(red.begin(), red.end(), true);
    return red;
  }
  for (int64_t d : a.int_list(i)) {
    int64_t w = wrap_dim(d, std::max<int64_t>(t.dim(), 1), op);
    if (t.dim() == 0) continue;
    VBT_CHECK(!red[w], op, ": dim ", w, " appears multiple times in the list of dims");
    red[w] = true;
  }
  return red;
}

// A contiguous input whose reduced dims are one run [d0, d1) is reduced in place as [outer, red, inner] (an
// outer-dim reduction such as amax(dim=0) reads coalesced columns, no transposing copy); other inputs have the
// reduced dims permuted last and made contiguous (inner = 1).
Tensor reduce(const char* op, Red code, const Tensor& in, const std::vector<bool>& red, bool keepdim,
              ScalarType out_dtype) {
  Shape perm, out_shape;
  int64_t rows = 1, cols = 1;
  for (int64_t d = 0; d < in.dim(); ++d)
    if (!red[d]) { perm.push_back(d); rows *= in.sizes()[d]; out_shape.push_back(in.sizes()[d]); }
    else if (keepdim) out_shape.push_back(1);
  for (int64_t d = 0; d < in.dim(); ++d)
    if (red[d]) { perm.push_back(d); cols *= in.sizes()[d]; }
  if ((code == Red::Max || code == Red::Min) && cols == 0 && rows > 0)
    throw_error(ErrorKind::Index, op, "(): Expected reduction dim to have non-zero size.");
  // the runs of reduced dims, ignoring size-1 dims (they do not change the memory order)
  int64_t outer = 1, inner = 1, runs = 0;
  bool in_run = false;
  for (int64_t d = 0; d < in.dim(); ++d) {
    const int64_t n = in.sizes()[d];
    if (n == 1) continue;
    if (red[d]) {
      if (!in_run) ++runs;
      in_run = true;
    } else {
      in_run = false;
      (runs == 0 ? outer : inner) *= n;
    }
  }
  const bool columns = runs == 1 && inner > 1 && in.is_contiguous() && rows > 0 && cols > 0 &&
                       outer * ((inner + 31) / 32) <= std::numeric_limits<int>::max();
  Tensor x = in;
  if (!columns) {
    outer = rows;
    inner = 1;
    x = in.dim() > 0 ? call_tensor_op("permute", {in, perm}) : in;
    if (!x.is_contiguous()) x = clone_cuda(x, x.dtype());
  }
  Tensor out = empty(out_shape, out_dtype, in.device());
  DeviceGuard guard(in.device().index);
  if (cols == 0) {
    fill(out, Scalar(code == Red::Mean ? std::nan("") : 0.0));
    return out;
  }
  if (rows == 0) return out;
  const int64_t ws_bytes = reduce_workspace_bytes(outer, cols, inner);
  Tensor ws = ws_bytes > 0 ? empty({ws_bytes / 8}, ScalarType::Int64, in.device()) : Tensor();
  check_launch(launch_reduce(code, int(x.dtype()), int(out_dtype), x.data_ptr(), out.data_ptr(), outer, cols, inner,
                             ws_bytes > 0 ? ws.data_ptr() : nullptr, stream_of(in.device())), op, x.dtype());
  return out;
}
Value k_sum(const Args& a) {
  Tensor x = a.tensor(0);
  if (!a.is_none(3)) x = operand(x, x.device(), a.dtype(3));
  ScalarType out = is_floating(x.dtype()) ? x.dtype() : ScalarType::Int64;
  return reduce("sum", Red::Sum, x, reduced_dims(x, a, 1, "sum"), a.boolean(2), out);
}
Value k_mean(const Args& a) {
  Tensor x = a.tensor(0);
  if (!a.is_none(3)) x = operand(x, x.device(), a.dtype(3));
  VBT_CHECK(is_floating(x.dtype()), "mean(): could not infer output dtype. Input dtype must be either a floating "
            "point or complex dtype. Got: ", dtype_name(x.dtype()));
  return reduce("mean", Red::Mean, x, reduced_dims(x, a, 1, "mean"), a.boolean(2), x.dtype());
}
template <Red code> Value k_minmax(const Args& a) {
  const Tensor& x = a.tensor(0);
  const char* op = code == Red::Max ? "amax" : "amin";
  return reduce(op, code, x, reduced_dims(x, a, 1, op), a.boolean(2), x.dtype());
}

template <bool log> Value k_softmax(const Args& a) {
  const char* op = log ? "log_softmax" : "softmax";
  Tensor x = a.tensor(0);
  if (!a.is_none(2)) x = operand(x, x.device(), a.dtype(2));
  VBT_CHECK(is_floating(x.dtype()), op, ": not implemented for '", dtype_name(x.dtype()), "'");
  if (x.dim() == 0) x = call_tensor_op("view", {x, Shape{1}});
  int64_t dim = wrap_dim(a.integer(1), x.dim(), op);
  const bool last = dim == x.dim() - 1;
  Tensor m = last ? x : call_tensor_op("movedim", {x, Shape{dim}, Shape{-1}});
  if (!m.is_contiguous()) m = clone_cuda(m, m.dtype());
  Tensor out = empty(m.sizes(), m.dtype(), m.device());
  int64_t cols = m.sizes().back(), rows = cols == 0 ? 0 : m.numel() / cols;
  DeviceGuard guard(m.device().index);
  check_launch(launch_softmax_rows(log, int(m.dtype()), int(out.dtype()), m.data_ptr(), out.data_ptr(), rows, cols,
                                   stream_of(m.device())), op, m.dtype());
  if (!last) out = clone_cuda(call_tensor_op("movedim", {out, Shape{-1}, Shape{dim}}), out.dtype());
  if (a.tensor(0).dim() == 0) out = call_tensor_op("view", {out, Shape{}});
  return out;
}

// _softmax_backward_data / _log_softmax_backward_data(grad_output, output, dim, input_dtype) (SoftmaxNote in
// reduce_gemm.cu): the CPU kernel's checks, the dim moved last and the operands made contiguous (as softmax does),
// one row kernel, the result cast to input_dtype.
template <bool log> Value k_softmax_backward_cuda(const Args& a) {
  const char* op = log ? "_log_softmax_backward_data" : "_softmax_backward_data";
  Tensor g = a.tensor(0), y = a.tensor(1);
  int64_t dim = check_softmax_backward_operands(op, g, y, a.integer(2), a.dtype(3));
  const Device dev = is_cuda(y) ? y.device() : g.device();  // a 0-dim CPU operand is filled in on the device
  g = operand(g, dev, g.dtype());
  y = operand(y, dev, y.dtype());
  const bool scalar = y.dim() == 0;
  if (scalar) {
    g = call_tensor_op("view", {g, Shape{1}});
    y = call_tensor_op("view", {y, Shape{1}});
    dim = 0;
  }
  const bool last = dim == y.dim() - 1;
  if (!last) {
    g = call_tensor_op("movedim", {g, Shape{dim}, Shape{-1}});
    y = call_tensor_op("movedim", {y, Shape{dim}, Shape{-1}});
  }
  if (!g.is_contiguous()) g = clone_cuda(g, g.dtype());
  if (!y.is_contiguous()) y = clone_cuda(y, y.dtype());
  Tensor dx = empty(y.sizes(), y.dtype(), y.device());
  const int64_t cols = y.sizes().back(), rows = cols == 0 ? 0 : y.numel() / cols;
  DeviceGuard guard(y.device().index);
  check_launch(launch_softmax_bw_rows(log, int(y.dtype()), y.data_ptr(), g.data_ptr(), dx.data_ptr(), rows, cols,
                                      stream_of(y.device())), op, y.dtype());
  if (!last) dx = clone_cuda(call_tensor_op("movedim", {dx, Shape{-1}, Shape{dim}}), dx.dtype());
  if (scalar) dx = call_tensor_op("view", {dx, Shape{}});
  return operand(dx, dx.device(), a.dtype(3));
}

// The layer_norm kernels' checks (shared with the CPU kernels), then contiguous operands. Returns the row length.
int64_t ln_operands(const char* op, Tensor& in, const Shape& ns, Tensor& w, Tensor& b) {
  const int64_t n = check_layer_norm_operands(op, in, ns, w, b);
  for (Tensor* t : {&w, &b})
    if (t->defined() && !t->is_contiguous()) *t = clone_cuda(*t, t->dtype());
  if (!in.is_contiguous()) in = clone_cuda(in, in.dtype());
  return n;
}
// _fused_layer_norm (the CPU op's schema and checks; forward only, nn.functional.layer_norm calls it when no
// operand requires grad): one block per row of the trailing normalized dims (LayerNormNote in reduce_gemm.cu).
Value k_layer_norm_cuda(const Args& a) {
  const char* op = "_fused_layer_norm";
  Tensor in = a.tensor(0);
  const Shape& ns = a.int_list(1);
  Tensor w = a.opt_tensor(2), b = a.opt_tensor(3);
  const double eps = a.real(4);
  const int64_t n = ln_operands(op, in, ns, w, b), rows = n ? in.numel() / n : 0;
  Tensor out = empty(in.sizes(), in.dtype(), in.device());
  if (rows == 0 || n == 0) return out;
  DeviceGuard guard(in.device().index);
  check_launch(launch_layer_norm(int(in.dtype()), in.data_ptr(), w.defined() ? w.data_ptr() : nullptr,
                                 b.defined() ? b.data_ptr() : nullptr, out.data_ptr(), rows, n, eps,
                                 stream_of(in.device())), op, in.dtype());
  return out;
}

// ---- fused ops with a backward (FusedNnNote in reduce_gemm.cu; the CPU op's schema, Note [Fused NN ops] in
// src/vbt/cpu/reduce_kernels.cpp). No host sync: an out-of-range target gives its row a NaN loss and gradient.
int ce_reduction_code(const std::string& r, const char* op) {
  if (r == "none") return 0;
  if (r == "mean") return 1;
  if (r == "sum") return 2;
  VBT_CHECK_VALUE(false, op, ": ", r, " is not a valid value for reduction");
  return 1;
}
ScalarType acc_dtype(ScalarType dt) { return dt == ScalarType::Float64 ? ScalarType::Float64 : ScalarType::Float32; }
Tensor ce_operands(const char* op, Tensor& in, const Tensor& target) {
  VBT_CHECK(in.dim() == 2, op, ": expected a 2-D input [N, C], got ", shape_str(in.sizes()));
  VBT_CHECK(is_floating(in.dtype()), op, ": expected a floating input, got ", dtype_name(in.dtype()));
  VBT_CHECK(!is_floating(target.dtype()) && target.dtype() != ScalarType::Bool, op,
            ": expected target of an integer dtype (class indices), got ", dtype_name(target.dtype()));
  VBT_CHECK_VALUE(target.dim() == 1 && target.sizes()[0] == in.sizes()[0], op, ": Expected input batch_size (",
                  in.sizes()[0], ") to match target batch_size (", target.numel(), ").");
  VBT_CHECK(in.sizes()[1] > 0, op, ": expected at least one class");
  VBT_CHECK(target.device() == in.device(), op, ": target must be on ", in.device().str());
  if (!in.is_contiguous()) in = clone_cuda(in, in.dtype());
  Tensor t = target;
  if (t.dtype() != ScalarType::Int64 || !t.is_contiguous()) t = clone_cuda(t, ScalarType::Int64);
  return t;
}
Value k_cross_entropy_cuda(const Args& a) {
  const char* op = "_fused_cross_entropy";
  Tensor in = a.tensor(0);
  Tensor tgt = ce_operands(op, in, a.tensor(1));
  const int64_t ignore = a.integer(2);
  const double eps = a.real(3);
  const int red = ce_reduction_code(a.str(4), op);
  const int64_t M = in.sizes()[0], C = in.sizes()[1];
  const ScalarType acc = acc_dtype(in.dtype());
  Tensor loss = red == 0 ? empty({M}, in.dtype(), in.device()) : empty({}, in.dtype(), in.device());
  Tensor lse = empty({M, 2}, acc, in.device()), total = empty({}, acc, in.device());
  Tensor rowloss = red == 0 ? Tensor() : empty({M}, acc, in.device());
  DeviceGuard guard(in.device().index);
  check_launch(launch_cross_entropy_fwd(int(in.dtype()), in.data_ptr(), tgt.data<int64_t>(), M, C, ignore, eps, red,
                                        loss.data_ptr(), lse.data_ptr(), red == 0 ? nullptr : rowloss.data_ptr(),
                                        total.data_ptr(), stream_of(in.device())), op, in.dtype());
  return TensorList{loss, lse, total};
}
Value k_cross_entropy_backward_cuda(const Args& a) {
  const char* op = "_fused_cross_entropy_backward";
  Tensor in = a.tensor(1);
  Tensor tgt = ce_operands(op, in, a.tensor(2));
  const ScalarType acc = acc_dtype(in.dtype());
  Tensor g = operand(a.tensor(0), in.device(), in.dtype());
  Tensor lse = operand(a.tensor(3), in.device(), acc), total = operand(a.tensor(4), in.device(), acc);
  const int64_t ignore = a.integer(5);
  const double eps = a.real(6);
  const int red = ce_reduction_code(a.str(7), op);
  const int64_t M = in.sizes()[0], C = in.sizes()[1];
  VBT_CHECK(red == 0 ? g.numel() == M : g.numel() == 1, op, ": grad of shape ", shape_str(g.sizes()),
            " does not match the reduction");
  VBT_CHECK(lse.numel() == 2 * M && total.numel() == 1, op, ": stats/total do not match the input");
  if (!g.is_contiguous()) g = clone_cuda(g, g.dtype());
  if (!lse.is_contiguous()) lse = clone_cuda(lse, lse.dtype());
  Tensor dx = empty(in.sizes(), in.dtype(), in.device());
  DeviceGuard guard(in.device().index);
  check_launch(launch_cross_entropy_bwd(int(in.dtype()), g.data_ptr(), red == 0, in.data_ptr(), tgt.data<int64_t>(),
                                        lse.data_ptr(), total.data_ptr(), M, C, ignore, eps, red == 1, dx.data_ptr(),
                                        stream_of(in.device())), op, in.dtype());
  return dx;
}
Value k_layer_norm_fwd_cuda(const Args& a) {
  const char* op = "_fused_layer_norm_fwd";
  Tensor in = a.tensor(0), w = a.opt_tensor(2), b = a.opt_tensor(3);
  const Shape& ns = a.int_list(1);
  const int64_t n = ln_operands(op, in, ns, w, b);
  const int64_t rows = n ? in.numel() / n : 0;
  const ScalarType acc = acc_dtype(in.dtype());
  Tensor out = empty(in.sizes(), in.dtype(), in.device());
  Tensor mean = empty({rows}, acc, in.device()), rstd = empty({rows}, acc, in.device());
  if (rows == 0 || n == 0) return TensorList{out, mean, rstd};
  DeviceGuard guard(in.device().index);
  check_launch(launch_layer_norm_fwd(int(in.dtype()), in.data_ptr(), w.defined() ? w.data_ptr() : nullptr,
                                     b.defined() ? b.data_ptr() : nullptr, out.data_ptr(), mean.data_ptr(),
                                     rstd.data_ptr(), rows, n, a.real(4), stream_of(in.device())), op, in.dtype());
  return TensorList{out, mean, rstd};
}
Value k_layer_norm_backward_cuda(const Args& a) {
  const char* op = "_fused_layer_norm_backward";
  Tensor in = a.tensor(1), w = a.opt_tensor(4), none;
  const Shape& ns = a.int_list(5);
  const bool has_bias = a.boolean(6);
  const int64_t n = ln_operands(op, in, ns, w, none);
  const int64_t rows = n ? in.numel() / n : 0;
  const ScalarType acc = acc_dtype(in.dtype());
  Tensor g = operand(a.tensor(0), in.device(), in.dtype());
  VBT_CHECK(g.sizes() == in.sizes(), op, ": grad of shape ", shape_str(g.sizes()), " for input of shape ",
            shape_str(in.sizes()));
  if (!g.is_contiguous()) g = clone_cuda(g, g.dtype());
  Tensor mean = operand(a.tensor(2), in.device(), acc), rstd = operand(a.tensor(3), in.device(), acc);
  VBT_CHECK(mean.numel() == rows && rstd.numel() == rows, op, ": mean/rstd must have ", rows, " elements");
  if (!mean.is_contiguous()) mean = clone_cuda(mean, acc);
  if (!rstd.is_contiguous()) rstd = clone_cuda(rstd, acc);
  Tensor dx = empty(in.sizes(), in.dtype(), in.device());
  Tensor dw = w.defined() ? empty(ns, in.dtype(), in.device()) : Tensor();
  Tensor db = has_bias ? empty(ns, in.dtype(), in.device()) : Tensor();
  TensorList outs{dx};
  if (dw.defined()) outs.push_back(dw);
  if (db.defined()) outs.push_back(db);
  if (n == 0) return outs;
  if (rows == 0) {
    for (size_t i = 1; i < outs.size(); ++i) fill(outs[i], Scalar(0.0));
    return outs;
  }
  Tensor ws;
  if (dw.defined() || db.defined()) ws = empty({2 * layer_norm_bwd_chunks(rows, n) * n}, acc, in.device());
  DeviceGuard guard(in.device().index);
  check_launch(launch_layer_norm_bwd(int(in.dtype()), g.data_ptr(), in.data_ptr(), mean.data_ptr(), rstd.data_ptr(),
                                     w.defined() ? w.data_ptr() : nullptr, rows, n, dx.data_ptr(),
                                     dw.defined() ? dw.data_ptr() : nullptr, db.defined() ? db.data_ptr() : nullptr,
                                     ws.defined() ? ws.data_ptr() : nullptr, stream_of(in.device())), op, in.dtype());
  return outs;
}

// ---- clip_grad_norm_'s list ops (Note [Clip lists] in src/vbt/cpu/optim_kernels.cpp; the list checks are the CPU
// kernels'). A list with an empty or non-contiguous tensor takes the per-tensor ops, as the CPU kernels do.
RowRed norm_code(double pw);
bool plain_list(const TensorList& ts) {
  for (const Tensor& t : ts)
    if (t.numel() == 0 || !t.is_contiguous()) return false;
  return true;
}
Value k_stacked_norms_cuda(const Args& a) {
  const char* op = "_stacked_norms";
  const TensorList& ts = a.tensor_list(0);
  check_tensor_list(ts, op);
  if (!plain_list(ts)) return k_stacked_norms(a);
  const double pw = a.real(1);
  const ScalarType dt = ts[0].dtype();
  const Device dev = ts[0].device();
  std::vector<const void*> ptrs;
  std::vector<int64_t> numels;
  int64_t chunks = 0;
  for (const Tensor& t : ts) {
    ptrs.push_back(t.data_ptr());
    numels.push_back(t.numel());
    chunks += list_chunks(t.numel());
  }
  Tensor out = empty({static_cast<int64_t>(ts.size())}, dt, dev);
  Tensor part = empty({chunks}, ScalarType::Float64, dev);
  DeviceGuard guard(dev.index);
  check_launch(launch_list_norms(int(dt), ptrs.data(), numels.data(), static_cast<int64_t>(ts.size()), norm_code(pw), pw,
                                 static_cast<double*>(part.data_ptr()), out.data_ptr(), stream_of(dev)), op, dt);
  return out;
}
Value k_foreach_mul_cuda(const Args& a) {
  const char* op = "_foreach_mul_";
  const TensorList& ts = a.tensor_list(0);
  check_tensor_list(ts, op);
  const Tensor& other = a.tensor(1);
  VBT_CHECK_VALUE(other.defined() && other.dim() == 0, op, ": expected a 0-d tensor as the factor");
  if (!plain_list(ts)) return k_foreach_mul_(a);
  const ScalarType dt = ts[0].dtype();
  const Device dev = ts[0].device();
  Tensor scale = operand(is_cuda(other) ? other : to_device(other, dev), dev, dt);  // one element of dt on dev
  std::vector<void*> ptrs;
  std::vector<int64_t> numels;
  for (const Tensor& t : ts) {
    ptrs.push_back(t.data_ptr());
    numels.push_back(t.numel());
  }
  DeviceGuard guard(dev.index);
  check_launch(launch_list_mul(int(dt), ptrs.data(), numels.data(), static_cast<int64_t>(ts.size()), scale.data_ptr(),
                               stream_of(dev)), op, dt);
  for (const Tensor& t : ts) t.impl()->bump_version();
  return ts;
}

// ---- optimizers: _fused_adam_ (Note [Multi-tensor launch] in optim.cu; the lists' checks are the CPU kernel's)
Value k_fused_adam_cuda(const Args& a) {
  const char* op = "_fused_adam_";
  check_fused_adam_lists(a, op);
  const TensorList &ps = a.tensor_list(0), &gs = a.tensor_list(1), &ms = a.tensor_list(2), &vs = a.tensor_list(3);
  if (ps.empty()) return ps;
  const AdamScalarsArg s{a.real(4), a.real(5), a.real(6), a.real(7), a.real(8), a.real(9), a.real(10),
                         a.boolean(11), a.boolean(12)};
  DeviceGuard guard(ps[0].device().index);
  for (ScalarType dt : {ScalarType::Float32, ScalarType::Float64}) {  // one launch sequence per dtype
    std::vector<AdamTensorPtrs> ptrs;
    for (size_t i = 0; i < ps.size(); ++i)
      if (ps[i].dtype() == dt)
        ptrs.push_back({ps[i].data_ptr(), gs[i].data_ptr(), ms[i].data_ptr(), vs[i].data_ptr(), ps[i].numel()});
    if (!ptrs.empty())
      check_launch(launch_fused_adam(int(dt), ptrs.data(), static_cast<int64_t>(ptrs.size()), s,
                                     stream_of(ps[0].device())), op, dt);
  }
  for (size_t i = 0; i < ps.size(); ++i) {
    ps[i].impl()->bump_version();
    ms[i].impl()->bump_version();
    vs[i].impl()->bump_version();
  }
  return ps;
}

// ---- matrix products
void check_mm_dtypes(const char* op, const Tensor& x, const Tensor& y) {
  VBT_CHECK(x.dtype() == y.dtype(), op, ": expected m1 and m2 to have the same dtype, but got: ", dtype_name(x.dtype()),
            " != ", dtype_name(y.dtype()));
  if (!is_floating(x.dtype())) VBT_NOT_IMPLEMENTED(op, ": not implemented for '", dtype_name(x.dtype()), "' on CUDA");
}
// MatmulHostNote: a small matmul is bound by the host (an H200 multiplies 32 x (512x64 @ 64x512) in bfloat16 in
// 7.6 us of GPU time, about what issuing it costs), so mm, bmm and the matmul cases that need no broadcast go
// straight to one GEMM on 2-D or 3-D operands, with no unsqueeze / expand / reshape / view ops around it (each is a
// dispatcher call and a tensor on the host). A 2-D operand is a batch of one (batch stride 0).
int64_t stride_at(const Tensor& t, int64_t i) {  // i in 0..2 of the [B, r, c] form; the batch stride of 2-D is 0
  return t.dim() == 3 ? t.strides()[i] : (i == 0 ? 0 : t.strides()[i - 1]);
}
GemmArgs gemm_args(const Tensor& x, const Tensor& y, const Tensor& out, int64_t B, int64_t M, int64_t N, int64_t K) {
  return GemmArgs{B, M, N, K,
                  x.data_ptr(), stride_at(x, 0), stride_at(x, 1), stride_at(x, 2),
                  y.data_ptr(), stride_at(y, 0), stride_at(y, 1), stride_at(y, 2),
                  out.data_ptr(), stride_at(out, 0), stride_at(out, 1), stride_at(out, 2)};
}
// A [B, r, c] or [r, c] operand as cuBLAS takes it: itself when its matrices are row- or column-major (any batch
// stride, broadcast included), else a contiguous copy.
Tensor blas_operand(const Tensor& t) {
  const int64_t d = t.dim();
  if (cublas_layout_ok(t.sizes()[d - 2], t.sizes()[d - 1], t.strides()[d - 2], t.strides()[d - 1])) return t;
  return clone_cuda(t, t.dtype());
}
// [M,K] @ [K,N] -> [M,N], or [B,M,K] @ [B,K,N] -> [B,M,N] (shapes and dtypes checked by the caller).
Tensor gemm_new(const char* op, const Tensor& x, const Tensor& y) {
  const bool b3 = x.dim() == 3;
  const int64_t B = b3 ? x.sizes()[0] : 1, M = x.sizes()[b3 ? 1 : 0], K = x.sizes()[b3 ? 2 : 1];
  const int64_t N = y.sizes()[b3 ? 2 : 1];
  Tensor out = b3 ? empty({B, M, N}, x.dtype(), x.device()) : empty({M, N}, x.dtype(), x.device());
  if (out.numel() == 0) return out;
  if (K == 0) {
    fill(out, Scalar(int64_t(0)));
    return out;
  }
  DeviceGuard guard(x.device().index);
  const cudaStream_t stream = stream_of(x.device());
  if (cublas_ready()) {  // cuBLAS (CublasNote in cublas_gemm.cpp); the tiled kernel when it declines
    Tensor xb = blas_operand(x), yb = blas_operand(y);
    if (cublas_gemm(int(x.dtype()), gemm_args(xb, yb, out, B, M, N, K), x.device().index, stream)) return out;
  }
  check_launch(launch_gemm(int(x.dtype()), gemm_args(x, y, out, B, M, N, K), stream), op, x.dtype());
  return out;
}
Tensor unsq(const Tensor& t, int64_t d) { return call_tensor_op("unsqueeze", {t, d}); }
Tensor sq(const Tensor& t, int64_t d) { return call_tensor_op("squeeze", {t, Shape{d}}); }
Tensor mm2(const char* op, const Tensor& x, const Tensor& y) {
  VBT_CHECK(x.dim() == 2, op, ": self must be a matrix");
  VBT_CHECK(y.dim() == 2, op, ": mat2 must be a matrix");
  VBT_CHECK(x.sizes()[1] == y.sizes()[0], op, ": mat1 and mat2 shapes cannot be multiplied (", x.sizes()[0], "x",
            x.sizes()[1], " and ", y.sizes()[0], "x", y.sizes()[1], ")");
  check_mm_dtypes(op, x, y);
  return gemm_new(op, x, y);
}
Value k_mm(const Args& a) { return mm2("mm", a.tensor(0), a.tensor(1)); }
Value k_bmm(const Args& a) {
  const Tensor &x = a.tensor(0), &y = a.tensor(1);
  VBT_CHECK(x.dim() == 3, "bmm: batch1 must be a 3D tensor");
  VBT_CHECK(y.dim() == 3, "bmm: batch2 must be a 3D tensor");
  VBT_CHECK(x.sizes()[0] == y.sizes()[0] && x.sizes()[2] == y.sizes()[1], "bmm: Expected size for first two dimensions "
            "of batch2 tensor to be: [", x.sizes()[0], ", ", x.sizes()[2], "] but got: [", y.sizes()[0], ", ",
            y.sizes()[1], "].");
  check_mm_dtypes("bmm", x, y);
  return gemm_new("bmm", x, y);
}
Value k_matmul(const Args& a) {
  const Tensor &x = a.tensor(0), &y = a.tensor(1);
  VBT_CHECK(x.dim() >= 1 && y.dim() >= 1, "both arguments to matmul need to be at least 1D, but they are ", x.dim(),
            "D and ", y.dim(), "D");
  if (x.dim() <= 2 && y.dim() <= 2) {
    Tensor xm = x.dim() == 1 ? unsq(x, 0) : x, ym = y.dim() == 1 ? unsq(y, 1) : y;
    Tensor r = mm2("matmul", xm, ym);
    if (y.dim() == 1) r = sq(r, 1);
    if (x.dim() == 1) r = sq(r, 0);
    return r;
  }
  Tensor xm = x.dim() == 1 ? unsq(x, 0) : x, ym = y.dim() == 1 ? unsq(y, 1) : y;
  int64_t n = xm.sizes()[xm.dim() - 2], k = xm.sizes().back(), k2 = ym.sizes()[ym.dim() - 2], m = ym.sizes().back();
  VBT_CHECK(k == k2, "matmul: Expected size for first two dimensions of batch2 tensor to be: [*, ", k, "] but got: [*, ",
            k2, "] (shapes ", shape_str(x.sizes()), " and ", shape_str(y.sizes()), ")");  // the CPU's words
  if (x.dim() == 3 && y.dim() == 3 && x.sizes()[0] == y.sizes()[0]) {  // no broadcast: one bmm (MatmulHostNote)
    check_mm_dtypes("matmul", x, y);
    return gemm_new("matmul", x, y);
  }
  check_mm_dtypes("matmul", xm, ym);
  Shape bx(xm.sizes().begin(), xm.sizes().end() - 2), by(ym.sizes().begin(), ym.sizes().end() - 2);
  Shape batch = broadcast_shapes(bx, by, "matmul");
  int64_t B = shape_numel(batch);
  Shape ex = batch, ey = batch;
  ex.insert(ex.end(), {n, k});
  ey.insert(ey.end(), {k, m});
  Tensor x3 = call_tensor_op("reshape", {call_tensor_op("expand", {xm, ex}), Shape{B, n, k}});
  Tensor y3 = call_tensor_op("reshape", {call_tensor_op("expand", {ym, ey}), Shape{B, k, m}});
  Tensor r = gemm_new("matmul", x3, y3);
  Shape rs = batch;
  rs.insert(rs.end(), {n, m});
  r = call_tensor_op("view", {r, rs});
  if (y.dim() == 1) r = sq(r, -1);
  if (x.dim() == 1) r = sq(r, r.dim() - (y.dim() == 1 ? 1 : 2));
  return r;
}


// ================================================================ more kernels (generic loop instantiations)
Tensor zero_like_scalar(ScalarType dt, const Device& dev) {  // a 0-dim CUDA zero of dt
  Tensor z = empty({}, dt, dev);
  fill(z, Scalar(int64_t(0)));
  return z;
}
Tensor ew(const char* op, Ew code, const std::vector<Tensor>& in, ScalarType dt, ScalarType res, EwScalars sc = {}) {
  return elementwise(op, code, in, dt, res, Tensor(), sc);
}
Tensor scale_add(const Tensor& x, double a, const Tensor& y, double b, ScalarType dt) {  // a * x + b * y
  EwScalars sc{a, int64_t(a)};
  sc.beta = b;
  sc.ibeta = int64_t(b);
  return ew("axpby", Ew::Axpby, {x, y}, dt, dt, sc);
}

template <Ew code> Value k_predicate(const Args& a) {
  const Tensor& x = a.tensor(0);
  return elementwise("predicate", code, {x}, x.dtype(), ScalarType::Bool, a.opt_tensor(1));
}
Value k_frac(const Args& a) {
  const Tensor& x = a.tensor(0);
  VBT_CHECK(is_floating(x.dtype()), "frac: not implemented for '", dtype_name(x.dtype()), "'");
  return elementwise("frac", Ew::Frac, {x}, x.dtype(), x.dtype(), a.opt_tensor(1));
}
Value k_pow(const Args& a) {
  ScalarType dt = promoted({a.tensor(0), a.tensor(1)});
  return elementwise("pow", Ew::Pow, {a.tensor(0), a.tensor(1)}, dt, dt, a.opt_tensor(2));
}
Value k_atan2(const Args& a) {
  ScalarType dt = promoted({a.tensor(0), a.tensor(1)});
  if (!is_floating(dt)) dt = default_float_dtype();
  return elementwise("atan2", Ew::Atan2, {a.tensor(0), a.tensor(1)}, dt, dt, a.opt_tensor(2));
}
template <Ew code> Value k_rem(const Args& a) {
  ScalarType dt = promoted({a.tensor(0), a.tensor(1)});
  return elementwise(code == Ew::Fmod ? "fmod" : "remainder", code, {a.tensor(0), a.tensor(1)}, dt, dt, a.opt_tensor(2));
}
Value k_clamp(const Args& a) {
  const Tensor &x = a.tensor(0), lo = a.opt_tensor(1), hi = a.opt_tensor(2);
  VBT_CHECK(lo.defined() || hi.defined(), "torch.clamp: At least one of 'min' or 'max' must not be None");
  std::vector<Tensor> ts{x};
  if (lo.defined()) ts.push_back(lo);
  if (hi.defined()) ts.push_back(hi);
  ScalarType dt = promoted(ts);
  Tensor out = a.opt_tensor(3);
  if (lo.defined() && hi.defined()) {
    Tensor r = ew("clamp", Ew::Maximum, {x, lo}, dt, dt);
    return elementwise("clamp", Ew::Minimum, {r, hi}, dt, dt, out);
  }
  if (lo.defined()) return elementwise("clamp", Ew::Maximum, {x, lo}, dt, dt, out);
  return elementwise("clamp", Ew::Minimum, {x, hi}, dt, dt, out);
}
Value k_lerp(const Args& a) {
  const Tensor &x = a.tensor(0), &e = a.tensor(1), &w = a.tensor(2);
  ScalarType dt = promoted({x, e});
  VBT_CHECK(is_floating(dt), "lerp: not implemented for '", dtype_name(dt), "'");
  if (std::optional<double> wv = cpu_scalar_of(w, is_cuda(x) ? x : e, dt)) {  // a scalar weight, in the compute type
    EwScalars sc;
    sc.alpha = *wv;
    return elementwise("lerp", Ew::LerpS, {x, e}, dt, dt, a.opt_tensor(3), sc);
  }
  return elementwise("lerp", Ew::Lerp, {x, e, w}, dt, dt, a.opt_tensor(3));
}
template <Ew code> Value k_addc(const Args& a) {
  const char* op = code == Ew::Addcmul ? "addcmul" : "addcdiv";
  const Tensor &x = a.tensor(0), &t1 = a.tensor(1), &t2 = a.tensor(2);
  ScalarType dt = promoted({x, t1, t2});
  if (code == Ew::Addcdiv)
    VBT_CHECK(is_floating(dt), "Integer division with addcdiv is no longer supported, and in a future release addcdiv "
              "will perform a true division of tensor1 and tensor2.");
  Scalar v = a.scalar(3);
  EwScalars sc{v.to_double(), v.is_floating() ? int64_t(v.to_double()) : v.to_int()};
  return elementwise(op, code, {x, t1, t2}, dt, dt, a.opt_tensor(4), sc);
}
Value k_masked_fill(const Args& a) {
  const Tensor &x = a.tensor(0), &mask = a.tensor(1), &v = a.tensor(2);
  VBT_CHECK(mask.dtype() == ScalarType::Bool, "masked_fill_ only supports boolean masks, but got mask with dtype ",
            dtype_name(mask.dtype()));
  VBT_CHECK(v.dim() == 0, "masked_fill_ only supports a 0-dimensional value tensor, but got tensor with ", v.dim(),
            " dimension(s).");
  Shape shape = broadcast_shapes(x.sizes(), mask.sizes(), "masked_fill");
  VBT_CHECK(shape == x.sizes(), "masked_fill: the mask of shape ", shape_str(mask.sizes()),
            " must be broadcastable to self's shape ", shape_str(x.sizes()));
  std::vector<ScalarType> per{ScalarType::Bool, x.dtype(), x.dtype()};
  return elementwise("masked_fill", Ew::Where, {mask, v, x}, x.dtype(), x.dtype(), Tensor(), {}, &per);
}

// ---- factories computed from the element index
Value k_arange(const Args& a) {
  Scalar st = a.scalar(0), en = a.scalar(1), sp = a.scalar(2);
  const bool fl = st.is_floating() || en.is_floating() || sp.is_floating();
  ScalarType dt = a.dtype_or(3, fl ? default_float_dtype() : ScalarType::Int64);
  const double s0 = st.to_double(), s1 = en.to_double(), step = sp.to_double();
  VBT_CHECK(step != 0, "arange: step must be nonzero");
  VBT_CHECK((step > 0 && s1 >= s0) || (step < 0 && s1 <= s0), "arange: upper bound and larger bound inconsistent with "
            "step sign");
  const int64_t n = static_cast<int64_t>(std::ceil((s1 - s0) / step));
  Tensor t = empty_cuda({n}, dt, factory_device(a, 4));
  EwScalars sc{s0, fl ? int64_t(s0) : st.to_int()};
  sc.beta = step;
  sc.ibeta = fl ? int64_t(step) : sp.to_int();
  if (n > 0) run_loop("arange", Ew::Arange, t, {}, dt, sc);
  return t;
}
Value k_linspace(const Args& a) {
  const int64_t steps = a.integer(2);
  VBT_CHECK(steps >= 0, "linspace: number of steps must be non-negative");
  Tensor t = empty_cuda({steps}, a.dtype_or(3, default_float_dtype()), factory_device(a, 4));
  EwScalars sc{a.scalar(0).to_double(), 0};
  sc.beta = a.scalar(1).to_double();
  sc.n = steps;
  if (steps > 0) run_loop("linspace", Ew::Linspace, t, {}, t.dtype(), sc);
  return t;
}
Value k_eye(const Args& a) {
  const int64_t n = a.integer(0), m = a.is_none(1) ? n : a.integer(1);
  VBT_CHECK(n >= 0 && m >= 0, "eye: n and m must be non-negative, got ", n, " and ", m);
  Tensor t = empty_cuda({n, m}, a.dtype_or(2, default_float_dtype()), factory_device(a, 3));
  EwScalars sc;
  sc.m = m;
  if (n * m > 0) run_loop("eye", Ew::Eye, t, {}, t.dtype(), sc);
  return t;
}

// ---- random fill. The values come from the counter-based generator of elementwise.cu (RandomNote): one
// 64-bit key per call, drawn from the (CPU) Generator, so manual_seed makes CUDA streams reproducible; the
// values differ from PyTorch's (tests compare statistics).
EwScalars random_scalars(const Args& a, size_t gen_index) {
  EwScalars sc;
  sc.seed = a.generator(gen_index)->next_u64();
  sc.offset = 0;
  return sc;
}
ScalarType random_float_dtype(const Args& a, size_t i, const char* op) {
  ScalarType dt = a.dtype_or(i, default_float_dtype());
  VBT_CHECK(is_floating(dt), op, ": expected a floating point dtype, got ", dtype_name(dt));
  return dt;
}
Value k_rand(const Args& a) {
  Tensor t = empty_cuda(a.int_list(0), random_float_dtype(a, 2, "rand"), factory_device(a, 3));
  EwScalars sc = random_scalars(a, 1);
  sc.alpha = 0.0;
  sc.beta = 1.0;
  if (t.numel()) run_loop("rand", Ew::Uniform, t, {}, t.dtype(), sc);
  return t;
}
Value k_randn(const Args& a) {
  Tensor t = empty_cuda(a.int_list(0), random_float_dtype(a, 2, "randn"), factory_device(a, 3));
  EwScalars sc = random_scalars(a, 1);
  sc.alpha = 0.0;
  sc.beta = 1.0;
  if (t.numel()) run_loop("randn", Ew::Normal, t, {}, t.dtype(), sc);
  return t;
}
// randint(int low, int high, int[] size, *, Generator? generator=None, ScalarType? dtype=None, Device? device=None):
// low + (draw mod (high - low)) per element from the counter-based generator (RandomNote)
Value k_randint(const Args& a) {
  const int64_t low = a.integer(0), high = a.integer(1);
  VBT_CHECK(high > low, "randint: random_ expects 'from' to be less than 'to', but got from=", low, " >= to=", high);
  for (int64_t s : a.int_list(2)) VBT_CHECK(s >= 0, "randint: negative dimension ", s);
  Tensor t = empty_cuda(a.int_list(2), a.dtype_or(4, ScalarType::Int64), factory_device(a, 5));
  EwScalars sc = random_scalars(a, 3);
  sc.ialpha = low;
  sc.ibeta = static_cast<int64_t>(static_cast<uint64_t>(high) - static_cast<uint64_t>(low));
  if (t.numel()) run_loop("randint", Ew::Randint, t, {}, t.dtype(), sc);
  return t;
}
// randperm(int n, *, Generator? generator=None, ScalarType? dtype=None, Device? device=None): drawn on the host by the
// CPU kernel (a sequential Fisher-Yates shuffle from the same Generator, so CPU and CUDA give the same permutation
// for a seed) and copied to the device.
Value k_randperm(const Args& a) {
  Args host{a[0], a[1], a[2], Value(Device{DeviceType::CPU, -1})};
  Tensor p = std::get<Tensor>(::vbt::k_randperm(host));
  return to_device(p, factory_device(a, 3));
}
Value k_normal_(const Args& a) {
  const Tensor& t = a.tensor(0);
  VBT_CHECK(a.real(2) >= 0, "normal expects std >= 0.0, but found std ", a.real(2));
  EwScalars sc = random_scalars(a, 3);
  sc.alpha = a.real(1);
  sc.beta = a.real(2);
  if (t.numel()) run_loop("normal_", Ew::Normal, t, {}, t.dtype(), sc);
  t.impl()->bump_version();
  return t;
}
Value k_uniform_(const Args& a) {
  const Tensor& t = a.tensor(0);
  VBT_CHECK(a.real(1) <= a.real(2), "uniform_ expects to return a [from, to) range, but found from=", a.real(1),
            " > to=", a.real(2));
  EwScalars sc = random_scalars(a, 3);
  sc.alpha = a.real(1);
  sc.beta = a.real(2);
  if (t.numel()) run_loop("uniform_", Ew::Uniform, t, {}, t.dtype(), sc);
  t.impl()->bump_version();
  return t;
}
Value k_bernoulli(const Args& a) {
  const Tensor& x = a.tensor(0);
  EwScalars sc = random_scalars(a, 2);
  Tensor out = empty(x.sizes(), x.dtype(), x.device());
  if (!out.numel()) return out;
  if (!a.is_none(1)) {
    const double p = a.real(1);
    VBT_CHECK(p >= 0 && p <= 1, "bernoulli_ expects p to be in [0, 1], but got p=", p);
    sc.alpha = p;
    run_loop("bernoulli", Ew::Bernoulli, out, {}, out.dtype(), sc);
  } else {
    VBT_CHECK(is_floating(x.dtype()), "bernoulli: expected a floating point probability tensor, got ",
              dtype_name(x.dtype()));
    run_loop("bernoulli", Ew::BernoulliT, out, {x}, x.dtype(), sc);
  }
  return out;
}

// ---- tril / triu
template <bool upper> Value k_tri(const Args& a) {
  const char* op = upper ? "triu" : "tril";
  const Tensor& x = a.tensor(0);
  VBT_CHECK(x.dim() >= 2, op, ": input tensor must have at least 2 dimensions");
  Tensor r = empty(x.sizes(), x.dtype(), x.device());
  EwScalars sc;
  sc.n = x.sizes()[x.dim() - 2];
  sc.m = x.sizes()[x.dim() - 1];
  sc.k = a.integer(1);
  sc.ialpha = upper ? 1 : 0;
  if (r.numel()) run_loop(op, Ew::Tril, r, {x}, x.dtype(), sc);
  Tensor out = a.opt_tensor(2);
  if (!out.defined()) return r;
  VBT_CHECK(out.dtype() == r.dtype(), op, ": expected out dtype ", dtype_name(r.dtype()), ", got ", dtype_name(out.dtype()));
  if (out.sizes() != r.sizes()) out.impl()->set_sizes_contiguous(r.sizes());
  run_loop(op, Ew::Copy, out, {r}, r.dtype());
  out.impl()->bump_version();
  return out;
}

// ---- gathers: one loop over the output; operand 1 views the source with the gathered dim's stride 0,
// operand 2 the int64 indices (broadcast along the other dims for index_select).
int64_t scalar_of(const Tensor& t, const char* op) {  // a one-element CUDA int64 tensor's value (a host sync)
  int64_t v = 0;
  memcpy_d2h(&v, t.data_ptr(), sizeof(v), t.device(), false, op);
  return v;
}
// Whether the current stream of `d` is capturing a CUDA graph.
bool capturing(const Device& d) {
  cudaStreamCaptureStatus cs = cudaStreamCaptureStatusNone;
  VBT_CUDA_CHECK(cudaStreamIsCapturing(stream_of(d), &cs));
  return cs != cudaStreamCaptureStatusNone;
}
// The host-side index range checks below read the indices back (a host sync). Under graph capture they are
// skipped, so that index_select / embedding / gather / scatter / index can be captured: a replay reads the
// indices its static input holds then, unchecked (torch checks them in the kernel; an out-of-range index is
// the caller's error either way, here possibly an illegal-address fault).
void check_index_range(const char* op, const Tensor& idx, int64_t size) {
  if (idx.numel() == 0 || capturing(idx.device())) return;
  std::vector<bool> all(size_t(idx.dim()), true);
  int64_t lo = scalar_of(reduce(op, Red::Min, idx, all, false, ScalarType::Int64), op);
  int64_t hi = scalar_of(reduce(op, Red::Max, idx, all, false, ScalarType::Int64), op);
  VBT_CHECK_INDEX(lo >= -size && hi < size, op, "(): index out of range in self (indices in [", lo, ", ", hi,
                  "], size ", size, ")");
  VBT_CHECK_INDEX(lo >= 0, op, "(): negative indices are not supported on CUDA");
}
Tensor strided_view(const Tensor& t, const Shape& sizes, const Shape& strides) {
  return call_tensor_op("as_strided", {t, sizes, strides, t.storage_offset()});
}
Tensor gather_along(const char* op, const Tensor& self, int64_t dim, const Tensor& idx_view, const Shape& out_shape) {
  Tensor out = empty(out_shape, self.dtype(), self.device());
  if (out.numel() == 0) return out;
  Shape st(self.strides().begin(), self.strides().end());
  const int64_t dstride = self.dim() ? st[dim] : 0;
  if (self.dim()) st[dim] = 0;
  Tensor src = strided_view(self, out_shape, st);
  EwScalars sc;
  sc.n = dstride * itemsize(self.dtype());
  run_loop(op, Ew::GatherIdx, out, {src, idx_view}, self.dtype(), sc);
  return out;
}
Tensor index_select_impl(const Tensor& self, int64_t dim_in, const Tensor& index) {
  const char* op = "index_select";
  VBT_CHECK_INDEX(index.dim() <= 1, "index_select(): Index is supposed to be a vector, got shape ", shape_str(index.sizes()));
  VBT_CHECK(index.dtype() == ScalarType::Int64 || index.dtype() == ScalarType::Int32,
            "index_select(): Expected dtype int32/int64 for index");
  const int64_t dim = wrap_dim(dim_in, std::max<int64_t>(self.dim(), 1), op);
  Tensor idx = operand(index, self.device(), ScalarType::Int64);
  idx = idx.is_contiguous() ? idx : clone_cuda(idx, ScalarType::Int64);
  check_index_range(op, idx, self.dim() ? self.sizes()[dim] : 1);
  Shape out_shape(self.sizes().begin(), self.sizes().end());
  if (self.dim() == 0) return clone_cuda(self, self.dtype());
  out_shape[dim] = idx.numel();
  Shape ist(out_shape.size(), 0);
  ist[dim] = 1;
  return gather_along(op, self, dim, strided_view(idx, out_shape, ist), out_shape);
}
Value k_index_select(const Args& a) {
  Tensor r = index_select_impl(a.tensor(0), a.integer(1), a.tensor(2));
  Tensor out = a.opt_tensor(3);
  if (!out.defined()) return r;
  if (out.sizes() != r.sizes()) out.impl()->set_sizes_contiguous(r.sizes());
  run_loop("index_select", Ew::Copy, out, {r}, r.dtype());
  out.impl()->bump_version();
  return out;
}
Value k_gather(const Args& a) {
  const Tensor &self = a.tensor(0), &index = a.tensor(2);
  const char* op = "gather";
  VBT_CHECK(index.dtype() == ScalarType::Int64, "gather(): Expected dtype int64 for index");
  VBT_CHECK(std::max<int64_t>(index.dim(), 1) == std::max<int64_t>(self.dim(), 1),
            "Index tensor must have the same number of dimensions as input tensor");
  const int64_t dim = wrap_dim(a.integer(1), std::max<int64_t>(self.dim(), 1), op);
  for (int64_t d = 0; d < index.dim(); ++d)
    if (d != dim)
      VBT_CHECK(index.sizes()[d] <= self.sizes()[d], "Size does not match at dimension ", d,
                " expected index ", shape_str(index.sizes()), " to be smaller than self ", shape_str(self.sizes()),
                " apart from dimension ", dim);
  check_index_range(op, index, self.dim() ? self.sizes()[dim] : 1);
  if (self.dim() == 0) return clone_cuda(self, self.dtype());
  Tensor r = gather_along(op, self, dim, index, index.sizes());
  Tensor out = a.opt_tensor(3);
  if (!out.defined()) return r;
  if (out.sizes() != r.sizes()) out.impl()->set_sizes_contiguous(r.sizes());
  run_loop(op, Ew::Copy, out, {r}, r.dtype());
  out.impl()->bump_version();
  return out;
}
Value k_embedding(const Args& a) {
  const Tensor &w = a.tensor(0), &ind = a.tensor(1);
  VBT_CHECK(w.dim() == 2, "embedding: weight must be 2-D, got shape ", shape_str(w.sizes()));
  Tensor flat = call_tensor_op("reshape", {ind, Shape{ind.numel()}});
  Tensor r = index_select_impl(w, 0, flat);
  Shape s(ind.sizes().begin(), ind.sizes().end());
  s.push_back(w.sizes()[1]);
  return call_tensor_op("view", {r, s});
}

// ---- linear algebra on the tiled GEMM
Tensor finish_out(const char* op, const Tensor& r, const Tensor& out) {
  if (!out.defined()) return r;
  VBT_CHECK(out.dtype() == r.dtype(), op, ": expected out dtype ", dtype_name(r.dtype()), ", got ", dtype_name(out.dtype()));
  if (out.sizes() != r.sizes()) out.impl()->set_sizes_contiguous(r.sizes());
  run_loop(op, Ew::Copy, out, {r}, r.dtype());
  out.impl()->bump_version();
  return out;
}
Tensor beta_alpha(const Tensor& self, const Tensor& prod, const Scalar& beta, const Scalar& alpha) {
  // beta * self + alpha * prod; beta == 0 ignores self (NaN included), as torch does
  const double b = beta.to_double(), al = alpha.to_double();
  Tensor s = call_tensor_op("expand", {self, prod.sizes()});
  if (b == 0) return scale_add(prod, al, prod, 0.0, prod.dtype());
  return scale_add(prod, al, s, b, prod.dtype());
}
Value k_addmm(const Args& a) {
  Tensor p = mm2("addmm", a.tensor(1), a.tensor(2));
  return finish_out("addmm", beta_alpha(a.tensor(0), p, a.scalar(3), a.scalar(4)), a.opt_tensor(5));
}
Value k_baddbmm(const Args& a) {
  const Tensor &x = a.tensor(1), &y = a.tensor(2);
  VBT_CHECK(x.dim() == 3 && y.dim() == 3, "baddbmm: batch1 and batch2 must be 3D tensors");
  VBT_CHECK(x.sizes()[0] == y.sizes()[0] && x.sizes()[2] == y.sizes()[1], "baddbmm: incompatible batch shapes ",
            shape_str(x.sizes()), " and ", shape_str(y.sizes()));
  check_mm_dtypes("baddbmm", x, y);
  Tensor p = gemm_new("baddbmm", x, y);
  return finish_out("baddbmm", beta_alpha(a.tensor(0), p, a.scalar(3), a.scalar(4)), a.opt_tensor(5));
}
Value k_linear(const Args& a) {
  const Tensor &x = a.tensor(0), &w = a.tensor(1), b = a.opt_tensor(2);
  Tensor wt = w.dim() == 2 ? call_tensor_op("t", {w}) : w;
  Args ma{x, wt};
  Tensor r = std::get<Tensor>(vbt::cuda::k_matmul(ma));
  if (b.defined()) r = scale_add(r, 1.0, call_tensor_op("expand", {b, r.sizes()}), 1.0, r.dtype());
  return finish_out("linear", r, a.opt_tensor(3));
}
Value k_dot(const Args& a) {
  const Tensor &x = a.tensor(0), &y = a.tensor(1);
  VBT_CHECK(x.dim() == 1 && y.dim() == 1, "1D tensors expected, but got ", x.dim(), "D and ", y.dim(), "D tensors");
  VBT_CHECK(x.numel() == y.numel(), "inconsistent tensor size, expected tensor [", x.numel(),
            "] and src [", y.numel(), "] to have the same number of elements, but got ", x.numel(), " and ", y.numel(),
            " elements respectively");
  check_mm_dtypes("dot", x, y);
  Tensor r = sq(sq(gemm_new("dot", unsq(unsq(x, 0), 0), unsq(unsq(y, 1), 0)), 0), 0);
  return finish_out("dot", call_tensor_op("view", {r, Shape{}}), a.opt_tensor(2));
}

// ---- statistics composed of the row reductions and elementwise loops
Tensor squeeze_reduced(const Tensor& t, const std::vector<bool>& red, bool keepdim) {
  if (keepdim) return t;
  Shape s;
  for (size_t d = 0; d < red.size(); ++d) if (!red[d]) s.push_back(t.sizes()[d]);
  return call_tensor_op("view", {t, s});
}
Tensor var_impl(const char* op, const Args& a, bool take_sqrt) {
  Tensor x = a.tensor(0);
  if (!is_floating(x.dtype())) x = operand(x, x.device(), default_float_dtype());
  std::vector<bool> red = reduced_dims(x, a, 1, op);
  const double corr = a.is_none(2) ? 1.0 : a.scalar(2).to_double();
  int64_t n = 1;
  for (int64_t d = 0; d < x.dim(); ++d) if (red[d]) n *= x.sizes()[d];
  Tensor m = reduce(op, Red::Mean, x, red, true, x.dtype());
  Tensor dev = ew(op, Ew::Sub, {x, m}, x.dtype(), x.dtype());
  Tensor sq2 = ew(op, Ew::Square, {dev}, x.dtype(), x.dtype());
  Tensor s = reduce(op, Red::Sum, sq2, red, a.boolean(3), x.dtype());
  const double denom = std::max(double(n) - corr, 0.0);
  Tensor v = scale_add(s, denom == 0 ? std::nan("") : 1.0 / denom, s, 0.0, x.dtype());
  if (take_sqrt) v = ew(op, Ew::Sqrt, {v}, x.dtype(), x.dtype());
  return v;
}
Value k_var(const Args& a) { return finish_out("var", var_impl("var", a, false), a.opt_tensor(4)); }
Value k_std(const Args& a) { return finish_out("std", var_impl("std", a, true), a.opt_tensor(4)); }
Value k_logsumexp(const Args& a) {
  const char* op = "logsumexp";
  Tensor x = a.tensor(0);
  if (!is_floating(x.dtype())) x = operand(x, x.device(), default_float_dtype());
  std::vector<bool> red = reduced_dims(x, a, 1, op);
  const ScalarType dt = x.dtype();
  if (x.numel() == 0) {
    Args sa{x, a.int_list(1), a.boolean(2), std::monostate{}};
    Tensor s = std::get<Tensor>(vbt::cuda::k_sum(sa));
    return finish_out(op, ew(op, Ew::Log, {s}, dt, dt), a.opt_tensor(3));
  }
  Tensor m = reduce(op, Red::Max, x, red, true, dt);
  Tensor fin = ew(op, Ew::IsFinite, {m}, dt, ScalarType::Bool);
  std::vector<ScalarType> per{ScalarType::Bool, dt, dt};
  Tensor mz = elementwise(op, Ew::Where, {fin, m, zero_like_scalar(dt, x.device())}, dt, dt, Tensor(), {}, &per);
  Tensor e = ew(op, Ew::Exp, {ew(op, Ew::Sub, {x, mz}, dt, dt)}, dt, dt);
  Tensor s = reduce(op, Red::Sum, e, red, true, dt);
  Tensor r = ew(op, Ew::Add, {ew(op, Ew::Log, {s}, dt, dt), mz}, dt, dt);
  return finish_out(op, squeeze_reduced(r, red, a.boolean(2)), a.opt_tensor(3));
}
template <bool is_all> Value k_all_any(const Args& a) {
  const char* op = is_all ? "all" : "any";
  const Tensor& x = a.tensor(0);
  std::vector<bool> red = reduced_dims(x, a, 1, op);
  // all: no element equal to zero; any: some element not equal to zero (counted in int64)
  Tensor hit = ew(op, is_all ? Ew::Eq : Ew::Ne, {x, zero_like_scalar(x.dtype(), x.device())}, x.dtype(), ScalarType::Bool);
  Tensor cnt = reduce(op, Red::Sum, hit, red, a.boolean(2), ScalarType::Int64);
  Tensor r = ew(op, is_all ? Ew::Eq : Ew::Ne, {cnt, zero_like_scalar(ScalarType::Int64, x.device())}, ScalarType::Int64,
                ScalarType::Bool);
  // torch: all/any of uint8 give uint8 (0/1); bool for every other dtype (as the CPU kernel)
  if (x.dtype() == ScalarType::UInt8) r = clone_cuda(r, ScalarType::UInt8);
  return finish_out(op, r, a.opt_tensor(3));
}
Value k_one_hot(const Args& a) {
  const Tensor& x = a.tensor(0);
  VBT_CHECK(x.dtype() == ScalarType::Int64, "one_hot is only applicable to index tensor of type LongTensor, got ",
            dtype_name(x.dtype()));
  int64_t classes = a.integer(1);
  if (x.numel() > 0) {
    std::vector<bool> all(size_t(x.dim()), true);
    int64_t lo = scalar_of(reduce("one_hot", Red::Min, x, all, false, ScalarType::Int64), "one_hot");
    int64_t hi = scalar_of(reduce("one_hot", Red::Max, x, all, false, ScalarType::Int64), "one_hot");
    VBT_CHECK(lo >= 0, "one_hot: Class values must be non-negative.");
    if (classes == -1) classes = hi + 1;
    VBT_CHECK(hi < classes, "one_hot: Class values must be smaller than num_classes.");
  } else {
    VBT_CHECK(classes > 0, "one_hot: Can not infer total number of classes from empty tensor.");
  }
  Tensor ar = empty({classes}, ScalarType::Int64, x.device());
  EwScalars sc{0.0, 0};
  sc.ibeta = 1;
  if (classes > 0) run_loop("one_hot", Ew::Arange, ar, {}, ScalarType::Int64, sc);
  Tensor hit = ew("one_hot", Ew::Eq, {unsq(x, x.dim()), ar}, ScalarType::Int64, ScalarType::Bool);
  return clone_cuda(hit, ScalarType::Int64);
}

// ---- cat / stack: strided copies into narrowed views of the result
Value k_cat(const Args& a) {
  const TensorList& ts = a.tensor_list(0);
  VBT_CHECK(!ts.empty(), "torch.cat(): expected a non-empty list of Tensors");
  const Tensor* ref = nullptr;
  for (const Tensor& t : ts) if (!(t.dim() == 1 && t.numel() == 0)) { ref = &t; break; }
  std::vector<Tensor> tv(ts.begin(), ts.end());
  ScalarType dt = promoted(tv);
  if (!ref) return empty({0}, dt, ts[0].device());
  const int64_t dim = wrap_dim(a.integer(1), ref->dim(), "cat");
  Shape shape(ref->sizes().begin(), ref->sizes().end());
  int64_t total = 0;
  for (const Tensor& t : ts) {
    if (t.dim() == 1 && t.numel() == 0) continue;
    VBT_CHECK(is_cuda(t) && t.device() == ref->device(), "Expected all tensors to be on the same device");
    VBT_CHECK(t.dim() == ref->dim(), "Tensors must have same number of dimensions: got ", ref->dim(), " and ", t.dim());
    for (int64_t d = 0; d < t.dim(); ++d)
      VBT_CHECK(d == dim || t.sizes()[d] == shape[d], "Sizes of tensors must match except in dimension ", dim,
                ". Expected size ", shape[d], " but got size ", t.sizes()[d], " for tensor number in the list.");
    total += t.sizes()[dim];
  }
  shape[dim] = total;
  Tensor out = empty(shape, dt, ref->device());
  int64_t at = 0;
  for (const Tensor& t : ts) {
    if (t.dim() == 1 && t.numel() == 0) continue;
    const int64_t len = t.sizes()[dim];
    if (len > 0) run_loop("cat", Ew::Copy, call_tensor_op("narrow", {out, dim, at, len}), {t}, t.dtype());
    at += len;
  }
  return out;
}
Value k_stack(const Args& a) {
  const TensorList& ts = a.tensor_list(0);
  VBT_CHECK(!ts.empty(), "stack expects a non-empty TensorList");
  const int64_t dim = wrap_dim(a.integer(1), ts[0].dim() + 1, "stack");
  TensorList us;
  for (const Tensor& t : ts) {
    VBT_CHECK(t.sizes() == ts[0].sizes(), "stack expects each tensor to be equal size, but got ",
              shape_str(ts[0].sizes()), " at entry 0 and ", shape_str(t.sizes()), " at another entry");
    us.push_back(unsq(t, dim));
  }
  Args ca{us, dim};
  return vbt::cuda::k_cat(ca);
}

// ================================================================ scans, arg-reductions, scatters (scan_index.cu)
// The reduced dims of `in` moved last and made contiguous: a [rows, cols] matrix, and the result's shape.
struct Rows {
  Tensor x;
  int64_t rows = 1, cols = 1;
  Shape out_shape;
};
Rows rows_of(const Tensor& in, const std::vector<bool>& red, bool keepdim) {
  Rows r;
  Shape perm;
  for (int64_t d = 0; d < in.dim(); ++d)
    if (!red[d]) { perm.push_back(d); r.rows *= in.sizes()[d]; r.out_shape.push_back(in.sizes()[d]); }
    else if (keepdim) r.out_shape.push_back(1);
  for (int64_t d = 0; d < in.dim(); ++d)
    if (red[d]) { perm.push_back(d); r.cols *= in.sizes()[d]; }
  Tensor x = in.dim() > 0 ? call_tensor_op("permute", {in, perm}) : in;
  r.x = x.is_contiguous() ? x : clone_cuda(x, x.dtype());
  return r;
}

// argmax/argmin (flattened when dim is None) and max_dim/min_dim (values and indices).
template <bool IsMax> Tensor arg_extreme(const char* op, const Tensor& in, const std::vector<bool>& red, bool keepdim,
                                         Tensor* values, int64_t dim_for_msg) {
  Rows r = rows_of(in, red, keepdim);
  if (r.cols == 0 && r.rows > 0) {
    if (values)
      throw_error(ErrorKind::Index, op, "(): Expected reduction dim ", dim_for_msg,
                  " to have non-zero size (input shape ", shape_str(in.sizes()), ")");
    throw_error(ErrorKind::Index, op, "(): Expected reduction dim ", dim_for_msg, " to have non-zero size.");
  }
  Tensor idx = empty(r.out_shape, ScalarType::Int64, in.device());
  if (values) *values = empty(r.out_shape, in.dtype(), in.device());
  if (r.rows == 0) return idx;
  DeviceGuard guard(in.device().index);
  check_launch(launch_arg_rows(IsMax, int(in.dtype()), r.x.data_ptr(), static_cast<int64_t*>(idx.data_ptr()),
                               values ? values->data_ptr() : nullptr, r.rows, r.cols, stream_of(in.device())),
               op, in.dtype());
  return idx;
}
template <bool IsMax> Value k_argext(const Args& a) {
  const char* op = IsMax ? "argmax" : "argmin";
  const Tensor& in = a.tensor(0);
  const bool keepdim = a.boolean(2);
  if (a.is_none(1)) {
    VBT_CHECK(in.numel() > 0, op, "(): Expected reduction dim to be specified for input.numel() == 0.");
    return arg_extreme<IsMax>(op, in, std::vector<bool>(size_t(in.dim()), true), keepdim, nullptr, 0);
  }
  const int64_t dim = a.integer(1);
  const int64_t w = wrap_dim(dim, in.dim(), op);
  std::vector<bool> red(size_t(in.dim()), false);
  if (in.dim() > 0) red[w] = true;
  return arg_extreme<IsMax>(op, in, red, keepdim, nullptr, dim);
}
template <bool IsMax> Value k_max_min_dim(const Args& a) {
  const char* op = IsMax ? "max" : "min";
  const Tensor& in = a.tensor(0);
  const int64_t dim = a.integer(1);
  const int64_t w = wrap_dim(dim, in.dim(), op);
  std::vector<bool> red(size_t(in.dim()), false);
  if (in.dim() > 0) red[w] = true;
  Tensor vals;
  Tensor idx = arg_extreme<IsMax>(op, in, red, a.boolean(2), &vals, dim);
  return TensorList{vals, idx};
}

Tensor row_reduce(const char* op, RowRed code, const Tensor& x, const std::vector<bool>& red, bool keepdim, double p) {
  Rows r = rows_of(x, red, keepdim);
  Tensor out = empty(r.out_shape, x.dtype(), x.device());
  if (r.rows == 0) return out;
  DeviceGuard guard(x.device().index);
  const int64_t ws_bytes = row_reduce_workspace_bytes(r.rows, r.cols);
  Tensor ws = ws_bytes > 0 ? empty({ws_bytes / 8}, ScalarType::Int64, x.device()) : Tensor();
  check_launch(launch_row_reduce(code, int(x.dtype()), r.x.data_ptr(), out.data_ptr(), r.rows, r.cols, p,
                                 ws_bytes > 0 ? ws.data_ptr() : nullptr, stream_of(x.device())), op, x.dtype());
  return out;
}
// prod: integers (and bool) multiply in int64 unless dtype= says otherwise; an empty product is 1.
Value k_prod(const Args& a) {
  Tensor x = a.tensor(0);
  const ScalarType dt = !a.is_none(3) ? a.dtype(3) : is_integral(x.dtype(), true) ? ScalarType::Int64 : x.dtype();
  x = operand(x, x.device(), dt);
  return row_reduce("prod", RowRed::Prod, x, reduced_dims(x, a, 1, "prod"), a.boolean(2), 0.0);
}
// The row reduction of the p-norm: p = inf, -inf, 0, 1, 2 or any other p.
RowRed norm_code(double pw) {
  return std::isinf(pw) ? (pw > 0 ? RowRed::NormInf : RowRed::NormNegInf)
         : pw == 0     ? RowRed::Norm0
         : pw == 1     ? RowRed::Norm1
         : pw == 2     ? RowRed::Norm2
                       : RowRed::NormP;
}
// norm, accumulated in double like the CPU kernel.
Value k_norm(const Args& a) {
  Tensor x = a.tensor(0);
  const ScalarType dt = a.dtype_or(4, x.dtype());
  VBT_CHECK(is_floating(dt), "norm(): input dtype should be floating point, but got ", dtype_name(dt));
  x = operand(x, x.device(), dt);
  const double pw = a.real(1);
  return row_reduce("norm", norm_code(pw), x, reduced_dims(x, a, 2, "norm"), a.boolean(3), pw);
}

// The scratch memory of a chunked scan (undefined when the rows are short enough for one thread each).
Tensor scan_workspace(int64_t rows, int64_t cols, const Device& dev) {
  const int64_t bytes = scan_workspace_bytes(rows, cols);
  return bytes > 0 ? empty({bytes / 8}, ScalarType::Int64, dev) : Tensor();
}
// cumsum/cumprod: the dim moved last, one scan per row; integers (and bool) accumulate to int64.
template <bool IsProd> Value k_cum(const Args& a) {
  const char* op = IsProd ? "cumprod" : "cumsum";
  Tensor x = a.tensor(0);
  const int64_t dim = wrap_dim(a.integer(1), x.dim(), op);
  const ScalarType dt = !a.is_none(2) ? a.dtype(2) : is_integral(x.dtype(), true) ? ScalarType::Int64 : x.dtype();
  x = operand(x, x.device(), dt);
  const bool last = x.dim() == 0 || dim == x.dim() - 1;
  Tensor m = x.dim() == 0 ? call_tensor_op("view", {x, Shape{1}})
             : last       ? x
                          : call_tensor_op("movedim", {x, Shape{dim}, Shape{-1}});
  if (!m.is_contiguous()) m = clone_cuda(m, dt);
  Tensor out = empty(m.sizes(), dt, x.device());
  const int64_t cols = m.sizes().back(), rows = cols == 0 ? 0 : m.numel() / cols;
  Tensor ws = scan_workspace(rows, cols, x.device());
  DeviceGuard guard(x.device().index);
  check_launch(launch_scan_rows(IsProd, int(dt), m.data_ptr(), out.data_ptr(), rows, cols,
                                ws.defined() ? ws.data_ptr() : nullptr, stream_of(x.device())), op, dt);
  if (x.dim() == 0) return call_tensor_op("view", {out, Shape{}});
  if (!last) out = clone_cuda(call_tensor_op("movedim", {out, Shape{-1}, Shape{dim}}), dt);
  return out;
}

// ---- shape ops that copy
Value k_flip(const Args& a) {
  const Tensor& t = a.tensor(0);
  Shape strides(t.strides().begin(), t.strides().end());
  int64_t off = t.storage_offset();
  std::vector<bool> seen(size_t(std::max<int64_t>(t.dim(), 1)), false);
  for (int64_t d : a.int_list(1)) {
    const int64_t w = wrap_dim(d, t.dim(), "flip");
    VBT_CHECK(!seen[w], "flip: dim ", w, " appears multiple times in the list of dims");
    seen[w] = true;
    if (t.dim() == 0) continue;
    if (t.sizes()[w] > 0) off += (t.sizes()[w] - 1) * strides[w];
    strides[w] = -strides[w];
  }
  if (t.numel() == 0) return clone_cuda(t, t.dtype());
  return clone_cuda(make_view(t, t.sizes(), strides, off), t.dtype());
}
Value k_roll(const Args& a) {
  const Tensor& t = a.tensor(0);
  const Shape &shifts = a.int_list(1), &dims = a.int_list(2);
  if (dims.empty()) {
    VBT_CHECK(shifts.size() == 1, "roll: `shifts` required to be of size 1 when `dims` is empty, got ", shape_str(shifts));
    Tensor flat = call_tensor_op("reshape", {t, Shape{-1}});
    Args ra{flat, shifts, Shape{0}};
    Tensor r = std::get<Tensor>(vbt::cuda::k_roll(ra));
    return call_tensor_op("reshape", {r, t.sizes()});
  }
  VBT_CHECK(shifts.size() == dims.size(), "roll: shifts and dimensions must align. shifts: ", shifts.size(), ", dims: ",
            dims.size());
  Tensor cur = t;
  for (size_t i = 0; i < dims.size(); ++i) {
    const int64_t d = wrap_dim(dims[i], t.dim(), "roll");
    if (t.dim() == 0) continue;
    const int64_t n = t.sizes()[d];
    if (n == 0) continue;
    const int64_t s = ((shifts[i] % n) + n) % n;
    if (s == 0) continue;
    Args ca{TensorList{call_tensor_op("narrow", {cur, d, n - s, s}), call_tensor_op("narrow", {cur, d, int64_t(0), n - s})},
            d};
    cur = std::get<Tensor>(vbt::cuda::k_cat(ca));
  }
  return cur.is_same(t) ? clone_cuda(t, t.dtype()) : cur;
}
Value k_repeat(const Args& a) {
  const Tensor& t = a.tensor(0);
  const Shape& reps = a.int_list(1);
  const int64_t n = static_cast<int64_t>(reps.size());
  VBT_CHECK(n >= t.dim(), "repeat: Number of dimensions of repeat dims (", n,
            ") can not be smaller than number of dimensions of tensor (", t.dim(), ")");
  for (int64_t r : reps) VBT_CHECK(r >= 0, "repeat: Trying to create tensor with negative dimension ", r, ": ", shape_str(reps));
  Shape padded(size_t(n - t.dim()), 1);
  padded.insert(padded.end(), t.sizes().begin(), t.sizes().end());
  Shape inter, expanded, final_shape;
  for (int64_t d = 0; d < n; ++d) {  // [.., 1, s, ..] expanded to [.., r, s, ..], then merged to r * s
    inter.push_back(1);
    inter.push_back(padded[d]);
    expanded.push_back(reps[d]);
    expanded.push_back(padded[d]);
    final_shape.push_back(reps[d] * padded[d]);
  }
  Tensor e = call_tensor_op("expand", {call_tensor_op("reshape", {t, inter}), expanded});
  return call_tensor_op("view", {clone_cuda(e, t.dtype()), final_shape});
}

// ---- scatter / scatter_add / index_add / masked_select / index / index_put_
// An index tensor as int64 on `dev` (any strides); the CPU kernels' dtype rule.
Tensor index_long(const char* op, const Tensor& idx, const Device& dev, const char* arg) {
  const ScalarType dt = idx.dtype();
  VBT_CHECK(dt == ScalarType::Int64 || dt == ScalarType::Int32 || dt == ScalarType::Int16 || dt == ScalarType::Int8 ||
                dt == ScalarType::UInt8,
            op, "(): Expected dtype int32/int64 for ", arg, " but got ", dtype_name(dt));
  Tensor x = is_cuda(idx) ? idx : to_device(idx, dev);
  return operand(x, dev, ScalarType::Int64);
}
// IndexError unless every index v satisfies -size <= v < size (one min/max reduction, read back).
void check_bounds(const char* op, const Tensor& idx, int64_t size, int64_t dim) {
  if (idx.numel() == 0 || capturing(idx.device())) return;  // see check_index_range
  std::vector<bool> all(size_t(idx.dim()), true);
  const int64_t lo = scalar_of(reduce(op, Red::Min, idx, all, false, ScalarType::Int64), op);
  const int64_t hi = scalar_of(reduce(op, Red::Max, idx, all, false, ScalarType::Int64), op);
  const int64_t bad = lo < -size ? lo : hi;
  VBT_CHECK_INDEX(lo >= -size && hi < size, op, "(): index ", bad, " is out of bounds for dimension ", dim,
                  " with size ", size);
}
void run_scatter(const char* op, bool add, ScatterArgs& sa, const Tensor& out, const Tensor& idx, const Tensor& src) {
  sa.idx = static_cast<const int64_t*>(idx.data_ptr());
  sa.src = src.data_ptr();
  sa.out = out.data_ptr();
  DeviceGuard guard(out.device().index);
  check_launch(launch_scatter_lines(add, int(out.dtype()), sa, stream_of(out.device())), op, out.dtype());
}
void check_ndim(const char* op, int64_t nd) {
  VBT_CHECK(nd <= kMaxDims, op, ": at most ", kMaxDims, " dimensions are supported on CUDA, got ", nd);
}

Tensor scatter_impl(const Args& a, bool add, const char* op) {
  const Tensor &self = a.tensor(0), &index = a.tensor(2), &src0 = a.tensor(3);
  const int64_t dim = wrap_dim(a.integer(1), self.dim(), op);
  const Device dev = self.device();
  const bool value_mode = src0.dim() == 0 && src0.impl()->wrapped_number;
  if (!value_mode)
    VBT_CHECK(src0.dtype() == self.dtype(), op, "(): Expected self.dtype to be equal to src.dtype (",
              dtype_name(self.dtype()), " vs ", dtype_name(src0.dtype()), ")");
  Tensor src = operand(src0, dev, self.dtype());
  VBT_CHECK(index.dim() == self.dim() || (index.dim() <= 1 && self.dim() <= 1), op,
            "(): Index tensor must have the same number of dimensions as input tensor (index shape ",
            shape_str(index.sizes()), ", input shape ", shape_str(self.sizes()), ")");
  for (int64_t d = 0; d < index.dim(); ++d) {
    if (d != dim && d < self.dim())
      VBT_CHECK(index.sizes()[d] <= self.sizes()[d], op, "(): Size does not match at dimension ", d, " expected index ",
                shape_str(index.sizes()), " to be smaller than self ", shape_str(self.sizes()), " apart from dimension ",
                dim);
    if (!value_mode)
      VBT_CHECK(d < src.dim() && index.sizes()[d] <= src.sizes()[d], op, "(): Expected index ",
                shape_str(index.sizes()), " to be smaller than src ", shape_str(src.sizes()));
  }
  Tensor idx = index_long(op, index, dev, "index");
  check_bounds(op, idx, self.dim() ? self.sizes()[dim] : 1, dim);
  Tensor out = clone_cuda(self, self.dtype());
  if (idx.numel() == 0) return out;
  const int64_t nd = std::max<int64_t>(index.dim(), 1);
  check_ndim(op, nd);
  ScatterArgs sa;
  sa.ndim = int(nd);
  sa.dim = int(dim);
  for (int64_t d = 0; d < nd; ++d) {
    sa.sizes[d] = index.dim() ? index.sizes()[d] : 1;
    sa.idx_st[d] = index.dim() ? idx.strides()[d] : 0;
    sa.src_st[d] = d < src.dim() ? src.strides()[d] : 0;
    sa.out_st[d] = d < out.dim() ? out.strides()[d] : 0;
  }
  sa.out_size = self.dim() ? self.sizes()[dim] : 1;
  run_scatter(op, add, sa, out, idx, src);
  return out;
}
Value k_scatter(const Args& a) { return scatter_impl(a, false, "scatter"); }
Value k_scatter_add(const Args& a) { return scatter_impl(a, true, "scatter_add"); }

// index_add: out = self; out.select(dim, index[i]) += alpha * source.select(dim, i), in index order.
Value k_index_add(const Args& a) {
  const char* op = "index_add";
  const Tensor &self = a.tensor(0), &index = a.tensor(2), &source = a.tensor(3);
  const int64_t dim = wrap_dim(a.integer(1), self.dim(), op);
  VBT_CHECK_INDEX(index.dim() <= 1, "index_add(): Index is supposed to be a vector, got shape ", shape_str(index.sizes()));
  VBT_CHECK(source.dtype() == self.dtype(), "index_add(): self (", dtype_name(self.dtype()), ") and source (",
            dtype_name(source.dtype()), ") must have the same scalar type");
  Shape expect(self.sizes().begin(), self.sizes().end());
  if (self.dim()) expect[dim] = index.numel();
  VBT_CHECK(source.sizes() == expect || (self.dim() == 0 && source.numel() == 1), "index_add(): source shape ",
            shape_str(source.sizes()), " does not match ", shape_str(expect), " (self ", shape_str(self.sizes()),
            " with dim ", dim, " replaced by the number of indices)");
  const Scalar alpha = a.scalar(4);
  VBT_CHECK(!(alpha.is_floating() && !is_floating(self.dtype())), "For integral input tensors, argument alpha must not "
            "be a floating point number.");
  const Device dev = self.device();
  Tensor idx = index_long(op, index, dev, "index");
  const int64_t size = self.dim() ? self.sizes()[dim] : 1;
  check_bounds(op, idx, size, dim);
  Tensor out = clone_cuda(self, self.dtype());
  const int64_t n = idx.numel();
  if (n == 0 || out.numel() == 0) return out;
  Tensor src = operand(source, dev, self.dtype());
  ScatterArgs sa;
  if (self.dim() == 0) {  // the single element gets alpha * source once per index
    sa.ndim = 1;
    sa.sizes[0] = n;
    sa.idx_st[0] = idx.dim() ? idx.strides()[0] : 0;
    sa.src_st[0] = 0;
    sa.out_st[0] = 0;
  } else {
    check_ndim(op, self.dim());
    sa.ndim = int(self.dim());
    for (int64_t d = 0; d < self.dim(); ++d) {
      sa.sizes[d] = src.sizes()[d];
      sa.idx_st[d] = d == dim && idx.dim() ? idx.strides()[0] : 0;
      sa.src_st[d] = src.strides()[d];
      sa.out_st[d] = out.strides()[d];
    }
  }
  sa.dim = int(dim);
  sa.out_size = size;
  sa.alpha = alpha.to_double();
  sa.ialpha = alpha.is_floating() ? int64_t(alpha.to_double()) : alpha.to_int();
  if (self.dtype() == ScalarType::Bool) sa.ialpha = alpha.to_bool() ? 1 : 0;
  run_scatter(op, true, sa, out, idx, src);
  return out;
}

// The inclusive prefix count (int64) of a contiguous bool tensor's elements, and the total. n > 0.
std::pair<Tensor, int64_t> prefix_count(const char* op, const Tensor& m) {
  const int64_t n = m.numel();
  const Device dev = m.device();
  Tensor m64 = clone_cuda(m, ScalarType::Int64);
  Tensor pos = empty({n}, ScalarType::Int64, dev);
  Tensor ws = scan_workspace(1, n, dev);
  {
    DeviceGuard guard(dev.index);
    check_launch(launch_scan_rows(false, int(ScalarType::Int64), m64.data_ptr(), pos.data_ptr(), 1, n,
                                  ws.defined() ? ws.data_ptr() : nullptr, stream_of(dev)), op, ScalarType::Int64);
  }
  return {pos, scalar_of(call_tensor_op("select", {pos, int64_t(0), n - 1}), op)};
}
// masked_select: the selected elements of self (broadcast with mask) in row-major order, as a 1-D tensor.
Value k_masked_select(const Args& a) {
  const char* op = "masked_select";
  const Tensor &self = a.tensor(0), &mask = a.tensor(1);
  VBT_CHECK(mask.dtype() == ScalarType::Bool, "masked_select: expected BoolTensor for mask, got ", dtype_name(mask.dtype()));
  const Device dev = is_cuda(self) ? self.device() : mask.device();
  const Shape b = broadcast_shapes(self.sizes(), mask.sizes(), op);
  Tensor s = clone_cuda(call_tensor_op("expand", {operand(self, dev, self.dtype()), b}), self.dtype());
  Tensor m = clone_cuda(call_tensor_op("expand", {operand(mask, dev, ScalarType::Bool), b}), ScalarType::Bool);
  const int64_t n = m.numel();
  if (n == 0) return empty({0}, self.dtype(), dev);
  auto [pos, cnt] = prefix_count(op, m);
  Tensor out = empty({cnt}, self.dtype(), dev);
  DeviceGuard guard(dev.index);
  check_launch(launch_masked_compact(int(itemsize(self.dtype())), s.data_ptr(), static_cast<const bool*>(m.data_ptr()),
                                     static_cast<const int64_t*>(pos.data_ptr()), out.data_ptr(), n, stream_of(dev)),
               op, self.dtype());
  return out;
}
// nonzero: [count, ndim] int64 coordinates of the elements that are not zero (NaN counts), row-major order.
Value k_nonzero(const Args& a) {
  const char* op = "nonzero";
  const Tensor& self = a.tensor(0);
  const Device dev = self.device();
  const int64_t nd = self.dim(), n = self.numel();
  check_ndim(op, nd);
  if (n == 0) return empty({0, nd}, ScalarType::Int64, dev);
  Tensor m = clone_cuda(self, ScalarType::Bool);  // contiguous; x != 0 like the CPU's cast to bool
  auto [pos, cnt] = prefix_count(op, m);
  Tensor out = empty({cnt, nd}, ScalarType::Int64, dev);
  NonzeroArgs na;
  na.ndim = int(nd);
  for (int64_t d = 0; d < nd; ++d) na.sizes[d] = self.sizes()[d];
  DeviceGuard guard(dev.index);
  check_launch(launch_nonzero(static_cast<const bool*>(m.data_ptr()), static_cast<const int64_t*>(pos.data_ptr()),
                              static_cast<int64_t*>(out.data_ptr()), n, na, stream_of(dev)), op, self.dtype());
  return out;
}

// Advanced indexing (index / index_put_): the element offset in self of each index tuple, as a contiguous
// int64 tensor of the broadcast index shape, plus the geometry of the non-indexed ("rest") dims.
struct AdvPlan {
  std::vector<int64_t> dims, rest_dims;
  Shape ishape, rest_sizes, rest_strides;
  bool adjacent = true;
  Tensor offsets;
};
AdvPlan plan_adv(const char* op, const Tensor& self, const TensorList& indices, const Shape& dims) {
  VBT_CHECK(indices.size() == dims.size() && !indices.empty(), op, ": indices and dims must match");
  AdvPlan p;
  std::vector<bool> used(size_t(self.dim()), false);
  for (size_t i = 0; i < dims.size(); ++i) {
    VBT_CHECK_INDEX(dims[i] >= 0 && dims[i] < self.dim(), op, ": too many indices for tensor of dimension ", self.dim());
    VBT_CHECK_INDEX(!used[dims[i]], op, ": dim ", dims[i], " indexed twice");
    used[dims[i]] = true;
    p.dims.push_back(dims[i]);
    if (i > 0 && dims[i] != dims[i - 1] + 1) p.adjacent = false;
    p.ishape = i == 0 ? indices[i].sizes() : broadcast_shapes(p.ishape, indices[i].sizes(), op);
  }
  const Device dev = self.device();
  Tensor off = empty(p.ishape, ScalarType::Int64, dev);
  fill(off, Scalar(int64_t(0)));
  for (size_t k = 0; k < dims.size(); ++k) {
    const int64_t d = p.dims[k], size = self.sizes()[d];
    Tensor iv = index_long(op, indices[k], dev, "indices");
    check_bounds(op, iv, size, d);
    Tensor sz = empty({}, ScalarType::Int64, dev), st = empty({}, ScalarType::Int64, dev);
    fill(sz, Scalar(size));
    fill(st, Scalar(self.strides()[d]));
    // remainder (Python sign rule) maps -size <= v < 0 to v + size
    Tensor w = ew(op, Ew::Remainder, {iv, sz}, ScalarType::Int64, ScalarType::Int64);
    off = ew(op, Ew::Add, {off, ew(op, Ew::Mul, {w, st}, ScalarType::Int64, ScalarType::Int64)}, ScalarType::Int64,
             ScalarType::Int64);
  }
  p.offsets = off.is_contiguous() ? off : clone_cuda(off, ScalarType::Int64);
  for (int64_t d = 0; d < self.dim(); ++d)
    if (!used[d]) {
      p.rest_dims.push_back(d);
      p.rest_sizes.push_back(self.sizes()[d]);
      p.rest_strides.push_back(self.strides()[d]);
    }
  return p;
}
// PyTorch's layout rule: [index dims..., rest dims...], moved to the first indexed dim's place when the
// indexed dims are adjacent. Returns the permutation of [index dims, rest dims] (empty: none needed).
Shape place_perm(const AdvPlan& p) {
  if (!p.adjacent || p.dims[0] == 0) return {};
  int64_t before = 0;
  for (int64_t d : p.rest_dims) before += d < p.dims[0];
  const int64_t ni = static_cast<int64_t>(p.ishape.size()), nr = static_cast<int64_t>(p.rest_dims.size());
  Shape perm;
  for (int64_t i = 0; i < before; ++i) perm.push_back(ni + i);
  for (int64_t i = 0; i < ni; ++i) perm.push_back(i);
  for (int64_t i = before; i < nr; ++i) perm.push_back(ni + i);
  return perm;
}
// index: out[i..., r...] = self[offset[i...] + rest offset of r] through the gather loop (GatherIdx with a
// one-element stride), then placed by PyTorch's rule.
Value k_index(const Args& a) {
  const Tensor& self = a.tensor(0);
  AdvPlan p = plan_adv("index", self, a.tensor_list(1), a.int_list(2));
  Shape out_shape = p.ishape;
  out_shape.insert(out_shape.end(), p.rest_sizes.begin(), p.rest_sizes.end());
  Tensor out = empty(out_shape, self.dtype(), self.device());
  if (out.numel() > 0) {
    const size_t ni = p.ishape.size();
    Shape src_st(ni, 0), idx_st(out_shape.size(), 0);
    src_st.insert(src_st.end(), p.rest_strides.begin(), p.rest_strides.end());
    Shape cst = contiguous_strides(p.ishape);
    for (size_t i = 0; i < ni; ++i) idx_st[i] = cst[i];
    Tensor src = strided_view(self, out_shape, src_st);
    Tensor iv = strided_view(p.offsets, out_shape, idx_st);
    EwScalars sc;
    sc.n = itemsize(self.dtype());
    run_loop("index", Ew::GatherIdx, out, {src, iv}, self.dtype(), sc);
  }
  Shape perm = place_perm(p);
  return perm.empty() ? out : call_tensor_op("permute", {out, perm});
}
// index_put_: self[offset[i] + rest offset of r] = values[i, r] (accumulate: +=), one thread per rest
// position walking the index tuples in order, so duplicates resolve as on the CPU (last write / every add).
// From kSortedPutMin index tuples on (embedding's backward has one per token), the offsets are sorted stably
// first and one thread per (run of equal offsets, rest position) walks its run (launch_sorted_scatter): the same
// result, with the parallelism of the tuples too.
constexpr int64_t kSortedPutMin = 64;
Value k_index_put_(const Args& a) {
  const char* op = "index_put_";
  const Tensor& self = a.tensor(0);
  AdvPlan p = plan_adv(op, self, a.tensor_list(1), a.int_list(2));
  const bool accumulate = a.boolean(4);
  Shape res_shape = p.ishape;
  res_shape.insert(res_shape.end(), p.rest_sizes.begin(), p.rest_sizes.end());
  Shape perm = place_perm(p);
  Shape placed = res_shape;
  for (size_t i = 0; i < perm.size(); ++i) placed[i] = res_shape[perm[i]];
  const Tensor& values = a.tensor(3);
  broadcast_shapes(placed, values.sizes(), op);
  Tensor v = is_cuda(values) || values.dim() == 0 ? values : to_device(values, self.device());
  Tensor vb = call_tensor_op("expand", {operand(v, self.device(), self.dtype()), placed});
  if (!perm.empty()) {  // back to [index dims, rest dims]
    Shape inv(perm.size());
    for (size_t i = 0; i < perm.size(); ++i) inv[perm[i]] = int64_t(i);
    vb = call_tensor_op("permute", {vb, inv});
  }
  vb = clone_cuda(vb, self.dtype());  // contiguous [n, rest...]
  const int64_t n = shape_numel(p.ishape);
  if (n > 0 && shape_numel(p.rest_sizes) > 0) {
    check_ndim(op, 1 + int64_t(p.rest_sizes.size()));
    ScatterArgs sa;
    sa.ndim = 1 + int(p.rest_sizes.size());
    sa.dim = 0;
    sa.sizes[0] = n;
    sa.idx_st[0] = 1;
    sa.src_st[0] = shape_numel(p.rest_sizes);
    sa.out_st[0] = 1;  // the offsets are element offsets already
    Shape cst = contiguous_strides(p.rest_sizes);
    for (size_t r = 0; r < p.rest_sizes.size(); ++r) {
      sa.sizes[r + 1] = p.rest_sizes[r];
      sa.idx_st[r + 1] = 0;
      sa.src_st[r + 1] = cst[r];
      sa.out_st[r + 1] = p.rest_strides[r];
    }
    sa.out_size = 0;  // offsets are never negative
    if (n >= kSortedPutMin) {
      auto [keys, pos] = sort_rows(call_tensor_op("view", {p.offsets, Shape{n}}), false, true, op);
      sa.src = vb.data_ptr();
      sa.out = self.data_ptr();
      DeviceGuard guard(self.device().index);
      check_launch(launch_sorted_scatter(accumulate, int(self.dtype()), sa, static_cast<const int64_t*>(keys.data_ptr()),
                                         static_cast<const int64_t*>(pos.data_ptr()), stream_of(self.device())),
                   op, self.dtype());
    } else {
      run_scatter(op, accumulate, sa, self, p.offsets, vb);
    }
  }
  self.impl()->bump_version();
  return self;
}

Allocator& device_allocator(int16_t index) { return cuda_caching_allocator(index < 0 ? current_device() : index); }

}  // namespace

Tensor to_device(const Tensor& t, Device device, bool non_blocking) {
  if (device.type == DeviceType::CUDA) device = resolve(device);
  if (t.device() == device) return t;
  NonBlockingCopies nb(non_blocking);
  // CUDA -> CPU non-blocking: the result is pinned so that the copy can be asynchronous (torch does the same)
  Tensor out = device.type == DeviceType::CPU && non_blocking ? empty_pinned(t.sizes(), t.dtype())
                                                               : empty(t.sizes(), t.dtype(), device);
  if (device.type == DeviceType::CUDA) copy_to_cuda(out, t);
  else copy_to_cpu(out, t);
  return out;
}

bool set_non_blocking_copies(bool on) {
  const bool previous = t_non_blocking;
  t_non_blocking = on;
  return previous;
}

Tensor empty_pinned(const Shape& sizes, ScalarType dtype) {
  for (int64_t s : sizes) VBT_CHECK_VALUE(s >= 0, "empty: negative dimension in size ", shape_str(sizes));
  const size_t nbytes = size_t(shape_numel(sizes) * itemsize(dtype));
  PinnedHostAllocator& pinned = pinned_host_allocator();
  void* p = pinned.allocate(nbytes);
  auto st = std::make_shared<StorageImpl>();
  st->data_ptr.owner = std::shared_ptr<void>(p, [](void* q) {
    if (q == nullptr) return;
    try {
      pinned_host_allocator().free(q);
    } catch (...) {  // a CUDA failure at exit (driver shut down): leave the block to the process
    }
  });
  st->data_ptr.data = p;
  st->data_ptr.device = Device{};
  st->nbytes = nbytes;
  return Tensor(std::make_shared<TensorImpl>(std::move(st), dtype, sizes, contiguous_strides(sizes), 0));
}

bool is_pinned(const Tensor& t) {
  if (!t.defined() || t.device().type != DeviceType::CPU) return false;
  return is_pinned_ptr(t.impl()->storage()->data_ptr.data);
}

Tensor pin_memory(const Tensor& t) {
  VBT_CHECK(t.device().type == DeviceType::CPU, "cannot pin '", t.device().str(),
            "' memory: only dense CPU tensors can be pinned");
  if (is_pinned(t)) return t;
  Tensor out = empty_pinned(t.sizes(), t.dtype());
  copy_into(out, t);
  return out;
}

void register_cuda_ops() {
  static std::once_flag once;
  std::call_once(once, [] {
    set_device_allocator(DeviceType::CUDA, &device_allocator);
    Dispatcher& d = Dispatcher::get();
    auto reg = [&](const char* name, Kernel k) { d.set_kernel(name, DispatchKey::CUDA, k); };
    reg("copy_", k_copy_); reg("to_dtype", k_to_dtype); reg("contiguous", k_contiguous); reg("clone", k_clone);
    reg("item", k_item); reg("reshape", k_reshape);
    reg("empty", k_empty); reg("zeros", k_zeros); reg("ones", k_ones); reg("full", k_full);
    reg("fill_", k_fill_); reg("zero_", k_zero_);
    reg("add", k_add_sub<Ew::Add>); reg("sub", k_add_sub<Ew::Sub>); reg("mul", k_mul); reg("div", k_div);
    reg("maximum", k_binary_same<Ew::Maximum>); reg("minimum", k_binary_same<Ew::Minimum>);
    reg("eq", k_compare<Ew::Eq>); reg("ne", k_compare<Ew::Ne>); reg("lt", k_compare<Ew::Lt>);
    reg("le", k_compare<Ew::Le>); reg("gt", k_compare<Ew::Gt>); reg("ge", k_compare<Ew::Ge>);
    reg("where", k_where);
    reg("logical_and", k_compare<Ew::LogicalAnd>); reg("logical_or", k_compare<Ew::LogicalOr>);
    reg("logical_xor", k_compare<Ew::LogicalXor>);
    reg("round", k_round);
    reg("neg", k_unary_same<Ew::Neg>); reg("abs", k_unary_same<Ew::Abs>); reg("relu", k_unary_same<Ew::Relu>);
    reg("square", k_unary_same<Ew::Square>);
    reg("exp", k_unary_float<Ew::Exp>); reg("log", k_unary_float<Ew::Log>); reg("sqrt", k_unary_float<Ew::Sqrt>);
    reg("sigmoid", k_unary_float<Ew::Sigmoid>); reg("tanh", k_unary_float<Ew::Tanh>);
    reg("silu", k_unary_float<Ew::Silu>); reg("sin", k_unary_float<Ew::Sin>); reg("cos", k_unary_float<Ew::Cos>);
    reg("rsqrt", k_unary_float<Ew::Rsqrt>); reg("reciprocal", k_unary_float<Ew::Reciprocal>);
    reg("gelu", k_gelu); reg("softplus", k_softplus); reg("nan_to_num", k_nan_to_num);
    reg("bitwise_and", k_bitwise<Ew::BitAnd>); reg("bitwise_or", k_bitwise<Ew::BitOr>);
    reg("bitwise_xor", k_bitwise<Ew::BitXor>); reg("bitwise_not", k_bitwise_not);
    reg("sum", k_sum); reg("mean", k_mean); reg("amax", k_minmax<Red::Max>); reg("amin", k_minmax<Red::Min>);
    reg("softmax", k_softmax<false>); reg("log_softmax", k_softmax<true>);
    reg("_softmax_backward_data", k_softmax_backward_cuda<false>);
    reg("_log_softmax_backward_data", k_softmax_backward_cuda<true>);
    reg("_fused_layer_norm", k_layer_norm_cuda);
    reg("_fused_adam_", k_fused_adam_cuda); reg("_stacked_norms", k_stacked_norms_cuda); reg("_foreach_mul_", k_foreach_mul_cuda); reg("_fused_layer_norm_fwd", k_layer_norm_fwd_cuda); reg("_fused_layer_norm_backward", k_layer_norm_backward_cuda);
    reg("_fused_cross_entropy", k_cross_entropy_cuda);
    reg("_fused_cross_entropy_backward", k_cross_entropy_backward_cuda);
    reg("mm", k_mm); reg("bmm", k_bmm); reg("matmul", k_matmul);
    reg("exp2", k_unary_float<Ew::Exp2>); reg("log2", k_unary_float<Ew::Log2>); reg("log10", k_unary_float<Ew::Log10>);
    reg("log1p", k_unary_float<Ew::Log1p>); reg("expm1", k_unary_float<Ew::Expm1>); reg("tan", k_unary_float<Ew::Tan>);
    reg("asin", k_unary_float<Ew::Asin>); reg("acos", k_unary_float<Ew::Acos>); reg("atan", k_unary_float<Ew::Atan>);
    reg("sinh", k_unary_float<Ew::Sinh>); reg("cosh", k_unary_float<Ew::Cosh>); reg("erf", k_unary_float<Ew::Erf>);
    reg("erfc", k_unary_float<Ew::Erfc>); reg("frac", k_frac);
    reg("sign", k_unary_same<Ew::Sign>); reg("floor", k_unary_same<Ew::Floor>); reg("ceil", k_unary_same<Ew::Ceil>);
    reg("trunc", k_unary_same<Ew::Trunc>);
    reg("isnan", k_predicate<Ew::IsNan>); reg("isinf", k_predicate<Ew::IsInf>);
    reg("isfinite", k_predicate<Ew::IsFinite>); reg("logical_not", k_predicate<Ew::LogicalNot>);
    reg("pow", k_pow); reg("atan2", k_atan2); reg("remainder", k_rem<Ew::Remainder>); reg("fmod", k_rem<Ew::Fmod>);
    reg("clamp", k_clamp); reg("lerp", k_lerp); reg("addcmul", k_addc<Ew::Addcmul>); reg("addcdiv", k_addc<Ew::Addcdiv>);
    reg("masked_fill", k_masked_fill);
    reg("arange", k_arange); reg("linspace", k_linspace); reg("eye", k_eye);
    reg("rand", k_rand); reg("randn", k_randn); reg("randint", k_randint); reg("randperm", k_randperm);
    reg("normal_", k_normal_); reg("uniform_", k_uniform_);
    reg("bernoulli", k_bernoulli);
    reg("tril", k_tri<false>); reg("triu", k_tri<true>);
    reg("index_select", k_index_select); reg("gather", k_gather); reg("embedding", k_embedding);
    reg("addmm", k_addmm); reg("baddbmm", k_baddbmm); reg("linear", k_linear); reg("dot", k_dot);
    reg("var", k_var); reg("std", k_std); reg("logsumexp", k_logsumexp);
    reg("all", k_all_any<true>); reg("any", k_all_any<false>); reg("one_hot", k_one_hot);
    reg("cat", k_cat); reg("stack", k_stack);
    reg("argmax", k_argext<true>); reg("argmin", k_argext<false>);
    reg("max_dim", k_max_min_dim<true>); reg("min_dim", k_max_min_dim<false>);
    reg("prod", k_prod); reg("norm", k_norm); reg("cumsum", k_cum<false>); reg("cumprod", k_cum<true>);
    reg("flip", k_flip); reg("roll", k_roll); reg("repeat", k_repeat);
    reg("scatter", k_scatter); reg("scatter_add", k_scatter_add); reg("index_add", k_index_add);
    reg("masked_select", k_masked_select); reg("index", k_index); reg("index_put_", k_index_put_);
    reg("nonzero", k_nonzero);
    // sorting and multinomial: sort_ops.cpp, Note [CUDA sort] in sort.cu (msort is sort in Python)
    reg("sort", k_sort_cuda); reg("argsort", k_argsort_cuda); reg("topk", k_topk_cuda);
    reg("kthvalue", k_kthvalue_cuda); reg("multinomial", k_multinomial_cuda);
  });
}

}  // namespace vbt::cuda
