// Optimizer kernels: one Adam/AdamW step over lists of tensors (spec 01, Note [Fused Adam]), and the list ops of
// clip_grad_norm_ (_stacked_norms, _foreach_mul_; Note [Clip lists]).
//
// Note [Fused Adam]
//   torch.optim.Adam's per-parameter update is eight elementwise ops (weight decay, lerp, mul, addcmul, sqrt, div,
//   add, addcdiv), each a dispatcher call, a pass over memory and, on a GPU, a kernel launch. _fused_adam_ does the
//   same arithmetic, in the same order and in the same precision (opmath_t), element by element in one pass, for
//   every tensor of the lists in one call. The scalars that depend on the step count (step_size = lr / (1 - beta1^t),
//   bias_correction2_sqrt = sqrt(1 - beta2^t)) come from the caller, which groups parameters by step count.
#include <cmath>

#include "adam_step.h"
#include "cpu_kernels.h"
#include "vbt/cpu/parallel.h"

namespace vbt {

namespace {

struct AdamScalars {
  double lr, beta1, beta2, eps, weight_decay, step_size, bias_correction2_sqrt;
  bool decoupled, maximize;
};

template <typename T>
void adam_range(T* p, const T* g, T* m, T* v, int64_t begin, int64_t end, const AdamScalars& s) {
  using M = opmath_t<T>;  // T is float or double, so M is T: each step rounds as the op would
  const AdamConstants<M> c = adam_constants<M>(s.lr, s.beta1, s.beta2, s.eps, s.weight_decay, s.step_size,
                                               s.bias_correction2_sqrt, s.decoupled, s.maximize);
  for (int64_t i = begin; i < end; ++i) adam_element<M>(p[i], g[i], m[i], v[i], c);
}

}  // namespace

// The lists' checks, shared with the CUDA kernel: one length; per index the same shape and dtype as params[i];
// contiguous; float32 or float64. Nothing is written before they pass.
void check_fused_adam_lists(const Args& a, const char* op) {
  const TensorList &params = a.tensor_list(0), &grads = a.tensor_list(1), &avgs = a.tensor_list(2),
                   &sqs = a.tensor_list(3);
  const size_t n = params.size();
  VBT_CHECK_VALUE(grads.size() == n && avgs.size() == n && sqs.size() == n,
                  op, ": expected lists of one length, got ", n, " params, ", grads.size(), " grads, ",
                  avgs.size(), " exp_avgs and ", sqs.size(), " exp_avg_sqs");
  for (size_t i = 0; i < n; ++i) {
    const Tensor* all[4] = {&params[i], &grads[i], &avgs[i], &sqs[i]};
    static const char* names[4] = {"params", "grads", "exp_avgs", "exp_avg_sqs"};
    for (int k = 0; k < 4; ++k) {
      const Tensor& t = *all[k];
      VBT_CHECK_VALUE(t.defined(), op, ": ", names[k], "[", i, "] is undefined");
      VBT_CHECK_VALUE(t.sizes() == params[i].sizes(), op, ": ", names[k], "[", i, "] has shape ",
                      shape_str(t.sizes()), " but params[", i, "] has shape ", shape_str(params[i].sizes()));
      VBT_CHECK_VALUE(t.dtype() == params[i].dtype(), op, ": ", names[k], "[", i, "] is ",
                      dtype_name(t.dtype()), " but params[", i, "] is ", dtype_name(params[i].dtype()));
      VBT_CHECK_VALUE(t.is_contiguous(), op, ": ", names[k], "[", i, "] is not contiguous");
    }
    VBT_CHECK_VALUE(params[i].dtype() == ScalarType::Float32 || params[i].dtype() == ScalarType::Float64,
                    op, ": expected float32 or float64 tensors, got ", dtype_name(params[i].dtype()),
                    " at params[", i, "]");
  }
}

// _fused_adam_(Tensor[] params, Tensor[] grads, Tensor[] exp_avgs, Tensor[] exp_avg_sqs, float lr, float beta1,
//              float beta2, float eps, float weight_decay, float step_size, float bias_correction2_sqrt,
//              bool decoupled=False, bool maximize=False) -> Tensor[]
Value k_fused_adam_(const Args& a) {
  const TensorList &params = a.tensor_list(0), &grads = a.tensor_list(1), &avgs = a.tensor_list(2),
                   &sqs = a.tensor_list(3);
  const AdamScalars s{a.real(4), a.real(5), a.real(6), a.real(7), a.real(8), a.real(9), a.real(10),
                      a.boolean(11), a.boolean(12)};
  check_fused_adam_lists(a, "_fused_adam_");
  const size_t n = params.size();
  for (size_t i = 0; i < n; ++i) {
    const int64_t numel = params[i].numel();
    VBT_DISPATCH_FLOATING(params[i].dtype(), "_fused_adam_", [&]<typename T>() {
      if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
        T* p = params[i].data<T>();
        const T* g = grads[i].data<T>();
        T* m = avgs[i].data<T>();
        T* v = sqs[i].data<T>();
        parallel_for(0, numel, kParallelGrain, [&](int64_t b, int64_t e) { adam_range<T>(p, g, m, v, b, e, s); });
      }
    });
    params[i].impl()->bump_version();
    avgs[i].impl()->bump_version();
    sqs[i].impl()->bump_version();
  }
  return params;
}

// Note [Clip lists]
//   clip_grad_norm_ takes every gradient's norm, the norm of those, and scales every gradient by one coefficient:
//   two ops per parameter, and on a GPU two launches each. _stacked_norms(tensors, ord) gives the per-tensor norms
//   as one [N] tensor (what stack(norm(t) for t) gives) and _foreach_mul_(tensors, scale) multiplies every tensor
//   in place by a 0-d tensor (no host read of the coefficient). On the CPU they are those per-tensor ops; on CUDA
//   multi-tensor kernels (Note [Multi-tensor launch] in src/vbt/cuda/ops/optim.cu).
void check_tensor_list(const TensorList& ts, const char* op) {
  VBT_CHECK_VALUE(!ts.empty(), op, ": expected a non-empty list of tensors");
  for (size_t i = 0; i < ts.size(); ++i) {
    VBT_CHECK_VALUE(ts[i].defined(), op, ": tensors[", i, "] is undefined");
    VBT_CHECK_VALUE(ts[i].dtype() == ts[0].dtype(), op, ": tensors[", i, "] is ", dtype_name(ts[i].dtype()),
                    " but tensors[0] is ", dtype_name(ts[0].dtype()));
    VBT_CHECK(ts[i].device() == ts[0].device(), op, ": expected all tensors on the same device, got tensors[", i,
              "] on ", ts[i].device().str(), " and tensors[0] on ", ts[0].device().str());
  }
  VBT_CHECK_VALUE(ts[0].dtype() == ScalarType::Float32 || ts[0].dtype() == ScalarType::Float64, op,
                  ": expected float32 or float64 tensors, got ", dtype_name(ts[0].dtype()));
}

// _stacked_norms(Tensor[] tensors, float ord=2) -> Tensor
Value k_stacked_norms(const Args& a) {
  const TensorList& ts = a.tensor_list(0);
  check_tensor_list(ts, "_stacked_norms");
  TensorList norms;
  norms.reserve(ts.size());
  for (const Tensor& t : ts) norms.push_back(call_tensor_op("norm", {t, Scalar(a.real(1))}));
  return call_tensor_op("stack", {norms, int64_t(0)});
}

// _foreach_mul_(Tensor[] self, Tensor other) -> Tensor[]
Value k_foreach_mul_(const Args& a) {
  const TensorList& ts = a.tensor_list(0);
  const Tensor& scale = a.tensor(1);
  check_tensor_list(ts, "_foreach_mul_");
  VBT_CHECK_VALUE(scale.defined() && scale.dim() == 0, "_foreach_mul_: expected a 0-d tensor as the factor");
  for (const Tensor& t : ts) call_tensor_op("mul", {t, scale, t});  // out=t: in place, as Tensor.mul_
  return ts;
}

}  // namespace vbt
