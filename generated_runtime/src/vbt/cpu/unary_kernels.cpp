// Unary elementwise ops. "Float" ops (exp, log, sin, sigmoid, ...) promote integer/bool inputs
// to the default float dtype, like PyTorch; "same-type" ops (neg, abs, sign, floor, relu...)
// keep the input dtype. Every kernel takes `Tensor? out`; in-place is out=self.
// Math runs in opmath (float for 16-bit floats, double for float64).
#include <cmath>

#include "elementwise_loops.h"
#include "vec_math.h"

namespace vbt {

namespace {

// f: generic lambda over the opmath type. Result dtype = float version of the input dtype.
// f32_array (optional): fn(float* out, const float* in, n) for float32, giving f's values up to its accuracy
// bound (a whole-array function compiled for a wider ISA, see vec_math.h). Strided float32 runs are copied
// through a small buffer into it too, so a float32 element's result never depends on the layout (the AVX2+FMA
// gelu takes another formula than the scalar one, Note [gelu fast path]).
template <typename F, typename A = std::nullptr_t> Value unary_float(const char* op, const Args& a, F f, A f32_array = nullptr) {
  const Tensor& x = a.tensor(0);
  Tensor out = a.opt_tensor(1);
  ScalarType dt = is_floating(x.dtype()) ? x.dtype() : default_float_dtype();
  TensorIterator it = TensorIteratorConfig(op).add_output(out).add_input(x).set_common_dtype(dt)
                          .is_inplace(out.defined() && out.is_same(x)).build();
  VBT_DISPATCH_FLOATING(dt, op, [&]<typename T>() {
    if constexpr (std::is_same_v<T, float> && !std::is_same_v<A, std::nullptr_t>) {
      it.for_each([f32_array](char** data, const int64_t* st, int64_t n) {
        if (st[0] == sizeof(float) && st[1] == sizeof(float)) {
          f32_array(reinterpret_cast<float*>(data[0]), reinterpret_cast<const float*>(data[1]), n);
        } else {
          constexpr int64_t kBuf = 256;
          float xb[kBuf], yb[kBuf];
          for (int64_t i0 = 0; i0 < n; i0 += kBuf) {
            const int64_t m = std::min(kBuf, n - i0);
            for (int64_t j = 0; j < m; ++j) xb[j] = *reinterpret_cast<const float*>(data[1] + (i0 + j) * st[1]);
            f32_array(yb, xb, m);
            for (int64_t j = 0; j < m; ++j) *reinterpret_cast<float*>(data[0] + (i0 + j) * st[0]) = yb[j];
          }
        }
      });
    } else {
      unary_loop<T, T>(it, f);
    }
  });
  return finish_out(it, out);
}

// Same-dtype op on all numeric types; `allow_bool` lets bool through (e.g. abs of bool is an error in torch).
template <typename F> Value unary_same(const char* op, const Args& a, F f, bool allow_bool) {
  const Tensor& x = a.tensor(0);
  Tensor out = a.opt_tensor(1);
  VBT_CHECK(allow_bool || x.dtype() != ScalarType::Bool, op, ": operation not supported for bool tensors");
  TensorIterator it = TensorIteratorConfig(op).add_output(out).add_input(x).set_common_dtype(x.dtype())
                          .is_inplace(out.defined() && out.is_same(x)).build();
  VBT_DISPATCH_ALL(x.dtype(), op, [&]<typename T>() { unary_loop<T, T>(it, [f](opmath_t<T> v) { return f(v); }); });
  return finish_out(it, out);
}

template <typename F> Value unary_predicate(const char* op, const Args& a, F f) {
  const Tensor& x = a.tensor(0);
  Tensor out = a.opt_tensor(1);
  TensorIterator it = TensorIteratorConfig(op).add_output(out).add_input(x).set_common_dtype(x.dtype())
                          .set_output_dtype(ScalarType::Bool).build();
  VBT_DISPATCH_ALL(x.dtype(), op, [&]<typename T>() { unary_loop<bool, T>(it, f); });
  return finish_out(it, out);
}

template <typename M> M round_half_even(M v) { return std::nearbyint(v); }

}  // namespace

#define VBT_UNARY_FLOAT(name, EXPR) \
  Value k_##name(const Args& a) { return unary_float(#name, a, [](auto x) { using M = decltype(x); (void)sizeof(M); return EXPR; }); }

// <op>(Tensor self, *, Tensor? out=None) -> Tensor
// exp(M x): the vectorisable float32 exp (vec_math.h, ~1 ulp) for float opmath, libm for double.
template <typename M> inline M exp_m(M x) {
  if constexpr (std::is_same_v<M, float>) return vec::exp_f32(x); else return std::exp(x);
}

Value k_exp(const Args& a) {
  return unary_float("exp", a, [](auto x) { return exp_m(x); },
                     [](float* o, const float* x, int64_t n) { vec::exp_f32_array(o, x, n, 0.0f); });
}
VBT_UNARY_FLOAT(exp2, std::exp2(x))
VBT_UNARY_FLOAT(log, std::log(x))
VBT_UNARY_FLOAT(log2, std::log2(x))
VBT_UNARY_FLOAT(log10, std::log10(x))
VBT_UNARY_FLOAT(log1p, std::log1p(x))
VBT_UNARY_FLOAT(expm1, std::expm1(x))
VBT_UNARY_FLOAT(sqrt, std::sqrt(x))
VBT_UNARY_FLOAT(rsqrt, M(1) / std::sqrt(x))
VBT_UNARY_FLOAT(reciprocal, M(1) / x)
VBT_UNARY_FLOAT(sin, std::sin(x))
VBT_UNARY_FLOAT(cos, std::cos(x))
VBT_UNARY_FLOAT(tan, std::tan(x))
VBT_UNARY_FLOAT(asin, std::asin(x))
VBT_UNARY_FLOAT(acos, std::acos(x))
VBT_UNARY_FLOAT(atan, std::atan(x))
VBT_UNARY_FLOAT(sinh, std::sinh(x))
VBT_UNARY_FLOAT(cosh, std::cosh(x))
VBT_UNARY_FLOAT(tanh, std::tanh(x))
VBT_UNARY_FLOAT(sigmoid, M(1) / (M(1) + exp_m(-x)))
VBT_UNARY_FLOAT(silu, x / (M(1) + exp_m(-x)))
VBT_UNARY_FLOAT(erf, std::erf(x))
VBT_UNARY_FLOAT(erfc, std::erfc(x))
#undef VBT_UNARY_FLOAT

#define VBT_UNARY_SAME(name, ALLOW_BOOL, EXPR)                                                       \
  Value k_##name(const Args& a) {                                                                     \
    return unary_same(#name, a, [](auto x) { using M = decltype(x); (void)sizeof(M); return EXPR; }, ALLOW_BOOL); \
  }
VBT_UNARY_SAME(neg, false, static_cast<M>(-x))
VBT_UNARY_SAME(abs, false, static_cast<M>(x < M(0) ? -x : x))
VBT_UNARY_SAME(sign, true, static_cast<M>((M(0) < x) - (x < M(0))))
VBT_UNARY_SAME(relu, false, static_cast<M>(x < M(0) ? M(0) : x))  // NaN and -0.0 pass through, as in PyTorch
VBT_UNARY_SAME(floor, false, [&] { if constexpr (std::is_floating_point_v<M>) return std::floor(x); else return x; }())
VBT_UNARY_SAME(ceil, false, [&] { if constexpr (std::is_floating_point_v<M>) return std::ceil(x); else return x; }())
VBT_UNARY_SAME(trunc, false, [&] { if constexpr (std::is_floating_point_v<M>) return std::trunc(x); else return x; }())
VBT_UNARY_SAME(frac, false, [&] { if constexpr (std::is_floating_point_v<M>) return x - std::trunc(x); else return M(0); }())
VBT_UNARY_SAME(square, true, static_cast<M>(x * x))
#undef VBT_UNARY_SAME

// round(Tensor self, *, int decimals=0, Tensor? out=None) -> Tensor   (half to even)
Value k_round(const Args& a) {
  int64_t decimals = a.integer(1);
  Args shifted{a[0], a[2]};
  if (decimals == 0)
    return unary_same("round", shifted, [](auto x) {
      using M = decltype(x);
      if constexpr (std::is_floating_point_v<M>) return round_half_even(x); else return x;
    }, false);
  VBT_CHECK(is_floating(a.tensor(0).dtype()), "round: decimals is only supported for floating point tensors");
  double scale = std::pow(10.0, static_cast<double>(std::llabs(decimals)));
  bool neg = decimals < 0;
  return unary_same("round", shifted, [scale, neg](auto x) {
    using M = decltype(x);
    if constexpr (std::is_floating_point_v<M>) {
      M s = static_cast<M>(scale);
      return neg ? round_half_even(x / s) * s : round_half_even(x * s) / s;
    } else {
      return x;
    }
  }, false);
}

// gelu(Tensor self, *, str approximate='none', Tensor? out=None) -> Tensor
Value k_gelu(const Args& a) {
  std::string approx = a.str(1);
  VBT_CHECK_VALUE(approx == "none" || approx == "tanh", "gelu: approximate argument must be either none or tanh, got '",
                  approx, "'");
  Args ua{a[0], a[2]};
  if (approx == "tanh")
    return unary_float("gelu", ua, [](auto x) {
      using M = decltype(x);
      const M k = M(0.7978845608028654), c = M(0.044715);
      // 0.5 * (1 + tanh(u)) == 1 / (1 + exp(-2u)): one exp, no cancellation, vectorisable for float.
      return x / (M(1) + exp_m(M(-2) * (k * (x + c * x * x * x))));
    });
  return unary_float("gelu", ua, [](auto x) {
    using M = decltype(x);
    if constexpr (std::is_same_v<M, float>) return vec::gelu_erf_f32(x);  // ~5.5e-7 relative, all-float (vec_math.h)
    else return x * M(0.5) * (M(1) + std::erf(x * M(0.7071067811865476)));
  }, [](float* o, const float* x, int64_t n) { vec::gelu_erf_f32_array(o, x, n); });
}

// softplus(Tensor self, Scalar beta=1, Scalar threshold=20, *, Tensor? out=None) -> Tensor
Value k_softplus(const Args& a) {
  double beta = a.real(1), threshold = a.real(2);
  Args ua{a[0], a[3]};
  return unary_float("softplus", ua, [beta, threshold](auto x) {
    using M = decltype(x);
    M b = static_cast<M>(beta);
    return x * b > static_cast<M>(threshold) ? x : std::log1p(std::exp(x * b)) / b;
  });
}

// isnan/isinf/isfinite(Tensor self) -> Tensor   (bool result)
Value k_isnan(const Args& a) {
  return unary_predicate("isnan", a, [](auto x) { if constexpr (std::is_floating_point_v<decltype(x)>) return std::isnan(x); else return false; });
}
Value k_isinf(const Args& a) {
  return unary_predicate("isinf", a, [](auto x) { if constexpr (std::is_floating_point_v<decltype(x)>) return std::isinf(x); else return false; });
}
Value k_isfinite(const Args& a) {
  return unary_predicate("isfinite", a, [](auto x) { if constexpr (std::is_floating_point_v<decltype(x)>) return std::isfinite(x); else return true; });
}
// logical_not(Tensor self, *, Tensor? out=None) -> Tensor
Value k_logical_not(const Args& a) {
  return unary_predicate("logical_not", a, [](auto x) { return x == decltype(x)(0); });
}

// bitwise_not(Tensor self, *, Tensor? out=None) -> Tensor
Value k_bitwise_not(const Args& a) {
  const Tensor& x = a.tensor(0);
  Tensor out = a.opt_tensor(1);
  TensorIterator it = TensorIteratorConfig("bitwise_not").add_output(out).add_input(x).set_common_dtype(x.dtype()).build();
  VBT_DISPATCH_INTEGRAL(x.dtype(), "bitwise_not", [&]<typename T>() {
    if constexpr (std::is_same_v<T, bool>) unary_loop<T, T>(it, [](bool v) { return !v; });
    else unary_loop<T, T>(it, [](T v) { return static_cast<T>(~v); });
  });
  return finish_out(it, out);
}

// nan_to_num(Tensor self, float? nan=None, float? posinf=None, float? neginf=None, *, Tensor? out=None) -> Tensor
Value k_nan_to_num(const Args& a) {
  const Tensor& x = a.tensor(0);
  Tensor out = a.opt_tensor(4);
  TensorIterator it = TensorIteratorConfig("nan_to_num").add_output(out).add_input(x).set_common_dtype(x.dtype())
                          .is_inplace(out.defined() && out.is_same(x)).build();
  double nanv = a.is_none(1) ? 0.0 : a.real(1);
  VBT_DISPATCH_ALL(x.dtype(), "nan_to_num", [&]<typename T>() {
    using M = opmath_t<T>;
    if constexpr (std::is_floating_point_v<M>) {
      M lim_hi = std::is_same_v<T, Half> ? M(65504.0f) : std::is_same_v<T, BFloat16> ? M(3.3895313892515355e38f) : std::numeric_limits<M>::max();
      M hi = a.is_none(2) ? lim_hi : static_cast<M>(a.real(2));
      M lo = a.is_none(3) ? -lim_hi : static_cast<M>(a.real(3));
      M nv = static_cast<M>(nanv);
      unary_loop<T, T>(it, [=](M v) { return std::isnan(v) ? nv : v == std::numeric_limits<M>::infinity() ? hi : v == -std::numeric_limits<M>::infinity() ? lo : v; });
    } else {
      unary_loop<T, T>(it, [](M v) { return v; });
    }
  });
  return finish_out(it, out);
}

}  // namespace vbt
