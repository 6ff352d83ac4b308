// One element of the Adam/AdamW step (Note [Fused Adam] in optim_kernels.cpp): the arithmetic of torch's per-op update,
// in the same order and precision, written once for the CPU kernel (optim_kernels.cpp) and the CUDA kernel
// (src/vbt/cuda/ops/optim.cu), which both include this header. M is float or double (opmath of the dtype).
#pragma once
#include <cmath>

#if defined(__CUDACC__)
#define VBT_ADAM_HD __host__ __device__ __forceinline__
#else
#define VBT_ADAM_HD inline
#endif

namespace vbt {

// The step's constants, from (lr, beta1, beta2, eps, weight_decay, step_size, bias_correction2_sqrt) in M.
template <typename M> struct AdamConstants {
  M decay, wd, w, b2, c2, bc2, eps, neg_step;
  bool use_wd, decoupled, maximize;
};

template <typename M>
AdamConstants<M> adam_constants(double lr, double beta1, double beta2, double eps, double weight_decay, double step_size,
                                double bias_correction2_sqrt, bool decoupled, bool maximize) {
  return {static_cast<M>(1 - lr * weight_decay), static_cast<M>(weight_decay), static_cast<M>(1 - beta1),
          static_cast<M>(beta2), static_cast<M>(1 - beta2), static_cast<M>(bias_correction2_sqrt), static_cast<M>(eps),
          static_cast<M>(-step_size), weight_decay != 0, decoupled, maximize};
}

// p, m, v: the parameter and its moments, updated in place; g: the gradient.
template <typename M> VBT_ADAM_HD void adam_element(M& p, M g, M& m, M& v, const AdamConstants<M>& c) {
#if defined(__CUDA_ARCH__)
  using ::fabs;
  using ::sqrt;
#else
  using std::fabs;
  using std::sqrt;
#endif
  M grad = c.maximize ? -g : g;
  M param = p;
  if (c.use_wd) {
    if (c.decoupled) param = param * c.decay;  // p.mul_(1 - lr * wd)
    else grad = grad + c.wd * param;           // grad = grad.add(p, alpha=wd)
  }
  M avg = m;  // exp_avg.lerp_(grad, 1 - beta1), torch's two-sided formula
  avg = fabs(c.w) < M(0.5) ? avg + c.w * (grad - avg) : grad - (grad - avg) * (M(1) - c.w);
  M sq = v * c.b2;              // exp_avg_sq.mul_(beta2)
  sq = sq + c.c2 * grad * grad;  // .addcmul_(grad, grad, value=1 - beta2)
  const M denom = sqrt(sq) / c.bc2 + c.eps;  // (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps)
  p = param + c.neg_step * (avg / denom);    // p.addcdiv_(exp_avg, denom, value=-step_size)
  m = avg;
  v = sq;
}

}  // namespace vbt

#undef VBT_ADAM_HD
