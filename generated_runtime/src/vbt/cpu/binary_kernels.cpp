// Binary and ternary elementwise ops: arithmetic, comparisons, logical/bitwise ops, where,
// clamp, lerp, addcmul, addcdiv. All follow PyTorch type promotion through TensorIterator
// (Note [Type promotion]); Python numbers arrive as wrapped 0-dim tensors. In-place variants
// are the same kernels with out=self (TensorIterator refuses to broadcast/resize self).
#include <cmath>
#include <optional>

#include "elementwise_loops.h"
#include "vec_math.h"

namespace vbt {

namespace {

bool wrapped(const Tensor& t) { return t.impl()->wrapped_number; }

TensorIterator make_binary(const char* op, const Tensor& out, const Tensor& a, const Tensor& b) {
  bool inplace = out.defined() && (out.is_same(a) || out.is_same(b));
  return TensorIteratorConfig(op).add_output(out).add_input(a, wrapped(a)).add_input(b, wrapped(b)).is_inplace(inplace).build();
}

template <typename T> constexpr bool is_low_float_v = std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>;

// PyTorch's CPU mul and div of a float16/bfloat16 tensor by a scalar (a 0-d CPU tensor second, e.g. a Python
// number) take the scalar's own value in float, not rounded to the tensor's dtype first: bfloat16 x * 0.7
// multiplies by 0.7f, not by 0.69921875. The scalar's value in float when that rule applies.
std::optional<float> low_float_scalar(const Tensor& x, const Tensor& y, const Tensor& out, ScalarType common) {
  if (common != ScalarType::Float16 && common != ScalarType::BFloat16) return std::nullopt;
  if (y.dim() != 0 || y.device().type != DeviceType::CPU || x.dtype() != common) return std::nullopt;
  if (out.defined() && (out.dtype() != common || out.is_same(y))) return std::nullopt;
  return static_cast<float>(item_of(y).to_double());
}
// out = f(x) elementwise, x and out of the 16-bit float dtype `common` (f works on floats).
template <typename F> Value low_float_unary(const char* op, const Tensor& out, const Tensor& x, ScalarType common, F f) {
  bool inplace = out.defined() && out.is_same(x);
  TensorIterator it = TensorIteratorConfig(op).add_output(out).add_input(x).set_common_dtype(common)
                          .is_inplace(inplace).build();
  if (common == ScalarType::Float16) unary_loop<Half, Half>(it, f);
  else unary_loop<BFloat16, BFloat16>(it, f);
  return finish_out(it, out);
}

// out = x + al * y for float/double with one rounding, as PyTorch's CPU add/sub with alpha != 1 (its vectorised
// loops are fused multiply-adds): vec::fma_array on contiguous runs (y contiguous or broadcast), std::fma elsewhere.
template <typename T> void fma_loop(TensorIterator& it, T al) {
  it.for_each([al](char** data, const int64_t* st, int64_t n) {
    if (st[0] == sizeof(T) && st[1] == sizeof(T) && (st[2] == sizeof(T) || st[2] == 0)) {
      vec::fma_array<T>(reinterpret_cast<T*>(data[0]), reinterpret_cast<const T*>(data[1]),
                        reinterpret_cast<const T*>(data[2]), st[2] == 0, al, n);
      return;
    }
    for (int64_t i = 0; i < n; ++i)
      *reinterpret_cast<T*>(data[0] + i * st[0]) = std::fma(al, *reinterpret_cast<const T*>(data[2] + i * st[2]),
                                                            *reinterpret_cast<const T*>(data[1] + i * st[1]));
  });
}
template <typename T> constexpr bool is_fma_float_v = std::is_same_v<T, float> || std::is_same_v<T, double>;

template <typename M> M floor_divide(M a, M b) {
  if constexpr (std::is_integral_v<M>) {
    M q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
    return q;
  } else {
    if (b == 0) return a / b;
    M mod = std::fmod(a, b);
    M div = (a - mod) / b;
    if (mod != 0 && (b < 0) != (mod < 0)) div -= 1;
    M fl;
    if (div != 0) {
      fl = std::floor(div);
      if (div - fl > M(0.5)) fl += 1;
    } else {
      fl = std::copysign(M(0), a / b);
    }
    return fl;
  }
}

// floor_divide with every step rounded to the 16-bit float type T (computed in float): PyTorch's CPU div floor of
// two float16/bfloat16 tensors runs its scalar loop in T, so 19 / -0.0894 floors to -214 in bfloat16, not -213.
template <typename T> float floor_divide_rounded(float a, float b) {
  auto r = [](float v) { return static_cast<float>(static_cast<T>(v)); };
  if (b == 0) return a / b;
  const float mod = r(std::fmod(a, b));
  float div = r(r(a - mod) / b);
  if (mod != 0 && (b < 0) != (mod < 0)) div = r(div - 1);
  if (div == 0) return std::copysign(0.0f, r(a / b));
  float fl = r(std::floor(div));
  if (r(div - fl) > 0.5f) fl = r(fl + 1);
  return fl;
}

template <typename M> M python_remainder(M a, M b) {
  if constexpr (std::is_integral_v<M>) {
    M r = a % b;
    if (r != 0 && ((r < 0) != (b < 0))) r += b;
    return r;
  } else {
    M r = std::fmod(a, b);
    if (r != 0 && ((b < 0) != (r < 0))) r += b;
    return r;
  }
}

void check_int_divisor(const TensorIterator& it, const Tensor& divisor, const char* op) {
  if (!is_integral(it.common_dtype(), true)) return;
  Tensor d = cast_to(divisor, ScalarType::Int64);
  d = contiguous_or_self(d);
  const int64_t* p = d.data<int64_t>();
  for (int64_t i = 0; i < d.numel(); ++i) VBT_CHECK(p[i] != 0, op, ": ZeroDivisionError (integer division by zero)");
}

template <typename M> M int_pow(M base, M exp) {
  M result = 1;
  while (exp > 0) {
    if (exp & 1) result *= base;
    base *= base;
    exp >>= 1;
  }
  return result;
}

}  // namespace

// add(Tensor self, Tensor other, *, Scalar alpha=1, Tensor? out=None) -> Tensor
Value k_add(const Args& a) {
  Tensor out = a.opt_tensor(3);
  TensorIterator it = make_binary("add", out, a.tensor(0), a.tensor(1));
  Scalar alpha = a.scalar(2);
  VBT_CHECK(!(alpha.is_floating() && is_integral(it.common_dtype(), true)),
            "add: For integral input tensors, argument alpha must not be a floating point number.");
  VBT_DISPATCH_ALL(it.common_dtype(), "add", [&]<typename T>() {
    using M = opmath_t<T>;
    if constexpr (std::is_same_v<T, bool>) {  // x + alpha * y in bool: x || (alpha && y)
      const bool al = alpha.to_double() != 0.0;
      binary_loop<T, T>(it, [al](bool x, bool y) { return x || (al && y); });
    } else {
      M al = alpha.to<M>();
      if constexpr (is_low_float_v<T>) al = static_cast<M>(static_cast<T>(al));  // PyTorch: alpha in the dtype
      if (al == M(1)) binary_loop<T, T>(it, [](M x, M y) { return x + y; });
      else if constexpr (is_fma_float_v<T>) fma_loop<T>(it, al);
      else binary_loop<T, T>(it, [al](M x, M y) { return x + al * y; });
    }
  });
  return finish_out(it, out);
}

// sub(Tensor self, Tensor other, *, Scalar alpha=1, Tensor? out=None) -> Tensor
Value k_sub(const Args& a) {
  Tensor out = a.opt_tensor(3);
  TensorIterator it = make_binary("sub", out, a.tensor(0), a.tensor(1));
  VBT_CHECK(a.tensor(0).dtype() != ScalarType::Bool || a.tensor(1).dtype() != ScalarType::Bool,
            "sub: Subtraction, the `-` operator, with two bool tensors is not supported. Use the `^` or "
            "`logical_xor()` operator instead.");
  VBT_CHECK(a.tensor(0).dtype() != ScalarType::Bool && a.tensor(1).dtype() != ScalarType::Bool,
            "sub: Subtraction, the `-` operator, with a bool tensor is not supported. If you are trying to invert a "
            "mask, use the `~` or `logical_not()` operator instead.");
  Scalar alpha = a.scalar(2);
  VBT_CHECK(!(alpha.is_floating() && is_integral(it.common_dtype(), true)),
            "sub: For integral input tensors, argument alpha must not be a floating point number.");
  VBT_DISPATCH_NUMERIC(it.common_dtype(), "sub", [&]<typename T>() {
    using M = opmath_t<T>;
    M al = alpha.to<M>();
    if constexpr (is_low_float_v<T>) al = static_cast<M>(static_cast<T>(al));  // PyTorch: alpha in the dtype
    if constexpr (is_fma_float_v<T>) {
      if (al != M(1)) return fma_loop<T>(it, -al);  // x - al * y = x + (-al) * y, one rounding
    }
    binary_loop<T, T>(it, [al](M x, M y) { return x - al * y; });
  });
  return finish_out(it, out);
}

// mul(Tensor self, Tensor other, *, Tensor? out=None) -> Tensor
Value k_mul(const Args& a) {
  Tensor out = a.opt_tensor(2);
  const Tensor &x = a.tensor(0), &y = a.tensor(1);
  ScalarType common = result_type({x, y}, {wrapped(x), wrapped(y)});
  if (std::optional<float> s = low_float_scalar(x, y, out, common))
    return low_float_unary("mul", out, x, common, [s = *s](float v) { return v * s; });
  TensorIterator it = make_binary("mul", out, x, y);
  VBT_DISPATCH_ALL(it.common_dtype(), "mul", [&]<typename T>() {
    using M = opmath_t<T>;
    if constexpr (std::is_same_v<T, bool>) binary_loop<T, T>(it, [](bool x, bool y) { return x && y; });
    else binary_loop<T, T>(it, [](M x, M y) { return x * y; });
  });
  return finish_out(it, out);
}

// div(Tensor self, Tensor other, *, str? rounding_mode=None, Tensor? out=None) -> Tensor
Value k_div(const Args& a) {
  Tensor out = a.opt_tensor(3);
  const Tensor &x = a.tensor(0), &y = a.tensor(1);
  std::string mode = a.is_none(2) ? "" : a.str(2);
  VBT_CHECK_VALUE(mode.empty() || mode == "trunc" || mode == "floor",
                  "div expected rounding_mode to be one of None, 'trunc', or 'floor' but found '", mode, "'");
  ScalarType rt = result_type({x, y}, {wrapped(x), wrapped(y)});
  if (std::optional<float> s = low_float_scalar(x, y, out, rt)) {
    if (mode.empty()) return low_float_unary("div", out, x, rt, [s = *s](float v) { return v / s; });
    if (mode == "trunc") return low_float_unary("div", out, x, rt, [s = *s](float v) { return std::trunc(v / s); });
    return low_float_unary("div", out, x, rt, [s = *s](float v) { return floor_divide<float>(v, s); });
  }
  if (mode.empty()) {
    ScalarType common = is_floating(rt) ? rt : default_float_dtype();
    bool inplace = out.defined() && (out.is_same(x) || out.is_same(y));
    TensorIterator it = TensorIteratorConfig("div").add_output(out).add_input(x).add_input(y)
                            .set_common_dtype(common).is_inplace(inplace).build();
    VBT_DISPATCH_FLOATING(common, "div", [&]<typename T>() {
      using M = opmath_t<T>;
      binary_loop<T, T>(it, [](M p, M q) { return p / q; });
    });
    return finish_out(it, out);
  }
  TensorIterator it = make_binary("div", out, x, y);
  check_int_divisor(it, y, "div");
  bool floor = mode == "floor";
  bool scalar_divisor = true;  // one value for every element: no dim of size > 1 moves through memory
  for (int64_t d = 0; d < y.dim(); ++d) scalar_divisor = scalar_divisor && (y.sizes()[d] <= 1 || y.strides()[d] == 0);
  VBT_DISPATCH_NUMERIC(it.common_dtype(), "div", [&]<typename T>() {
    using M = opmath_t<T>;
    if constexpr (is_low_float_v<T>) {
      if (floor) return binary_loop<T, T>(it, [](M p, M q) { return floor_divide_rounded<T>(p, q); });
    }
    if (floor) binary_loop<T, T>(it, [](M p, M q) { return floor_divide<M>(p, q); });
    else if constexpr (std::is_integral_v<M>) binary_loop<T, T>(it, [](M p, M q) { return static_cast<M>(p / q); });
    // PyTorch rounds the quotient to the storage type before truncating (half: 4.9997 -> 5.0 -> 5, not 4),
    // except when the divisor is one value for every element (a Python scalar, a 0-d, one-element or expanded
    // one-element tensor):
    // then it truncates the quotient in float (4.9997 -> 4). Same for bfloat16; float/double are unaffected.
    else if (scalar_divisor) binary_loop<T, T>(it, [](M p, M q) { return std::trunc(p / q); });
    else binary_loop<T, T>(it, [](M p, M q) { return std::trunc(static_cast<M>(static_cast<T>(p / q))); });
  });
  return finish_out(it, out);
}

// remainder(Tensor self, Tensor other, *, Tensor? out=None) -> Tensor
Value k_remainder(const Args& a) {
  Tensor out = a.opt_tensor(2);
  TensorIterator it = make_binary("remainder", out, a.tensor(0), a.tensor(1));
  check_int_divisor(it, a.tensor(1), "remainder");
  VBT_DISPATCH_NUMERIC(it.common_dtype(), "remainder", [&]<typename T>() {
    using M = opmath_t<T>;
    binary_loop<T, T>(it, [](M p, M q) { return python_remainder<M>(p, q); });
  });
  return finish_out(it, out);
}

// fmod(Tensor self, Tensor other, *, Tensor? out=None) -> Tensor
Value k_fmod(const Args& a) {
  Tensor out = a.opt_tensor(2);
  TensorIterator it = make_binary("fmod", out, a.tensor(0), a.tensor(1));
  check_int_divisor(it, a.tensor(1), "fmod");
  VBT_DISPATCH_NUMERIC(it.common_dtype(), "fmod", [&]<typename T>() {
    using M = opmath_t<T>;
    if constexpr (std::is_integral_v<M>) binary_loop<T, T>(it, [](M p, M q) { return static_cast<M>(p % q); });
    else binary_loop<T, T>(it, [](M p, M q) { return std::fmod(p, q); });
  });
  return finish_out(it, out);
}

// pow(Tensor self, Tensor exponent, *, Tensor? out=None) -> Tensor
Value k_pow(const Args& a) {
  Tensor out = a.opt_tensor(2);
  const Tensor& e = a.tensor(1);
  TensorIterator it = make_binary("pow", out, a.tensor(0), e);
  if (is_integral(it.common_dtype(), false)) {
    Tensor ei = contiguous_or_self(cast_to(e, ScalarType::Int64));
    for (int64_t i = 0; i < ei.numel(); ++i)
      VBT_CHECK(ei.data<int64_t>()[i] >= 0, "pow: Integers to negative integer powers are not allowed.");
  }
  VBT_DISPATCH_NUMERIC(it.common_dtype(), "pow", [&]<typename T>() {
    using M = opmath_t<T>;
    if constexpr (std::is_integral_v<M>) binary_loop<T, T>(it, [](M p, M q) { return int_pow<M>(p, q); });
    else binary_loop<T, T>(it, [](M p, M q) { return q == M(2) ? p * p : std::pow(p, q); });
  });
  return finish_out(it, out);
}

// atan2(Tensor self, Tensor other, *, Tensor? out=None) -> Tensor
Value k_atan2(const Args& a) {
  Tensor out = a.opt_tensor(2);
  const Tensor &x = a.tensor(0), &y = a.tensor(1);
  ScalarType rt = result_type({x, y}, {wrapped(x), wrapped(y)});
  TensorIterator it = TensorIteratorConfig("atan2").add_output(out).add_input(x).add_input(y)
                          .set_common_dtype(is_floating(rt) ? rt : default_float_dtype()).build();
  VBT_DISPATCH_FLOATING(it.common_dtype(), "atan2", [&]<typename T>() {
    using M = opmath_t<T>;
    binary_loop<T, T>(it, [](M p, M q) { return std::atan2(p, q); });
  });
  return finish_out(it, out);
}

#define VBT_MINMAX_KERNEL(kname, opname, CMP)                                                  \
  Value kname(const Args& a) {                                                                 \
    Tensor out = a.opt_tensor(2);                                                              \
    TensorIterator it = make_binary(opname, out, a.tensor(0), a.tensor(1));                    \
    VBT_DISPATCH_ALL(it.common_dtype(), opname, [&]<typename T>() {                            \
      using M = opmath_t<T>;                                                                   \
      if constexpr (std::is_floating_point_v<M>)                                               \
        binary_loop<T, T>(it, [](M p, M q) { return std::isnan(p) ? p : std::isnan(q) ? q : (p CMP q ? p : q); }); \
      else                                                                                     \
        binary_loop<T, T>(it, [](M p, M q) { return p CMP q ? p : q; });                       \
    });                                                                                        \
    return finish_out(it, out);                                                                \
  }
// maximum(Tensor self, Tensor other, *, Tensor? out=None) -> Tensor   (NaN propagates)
VBT_MINMAX_KERNEL(k_maximum, "maximum", >)
// minimum(Tensor self, Tensor other, *, Tensor? out=None) -> Tensor
VBT_MINMAX_KERNEL(k_minimum, "minimum", <)

#define VBT_COMPARE_KERNEL(kname, opname, EXPR)                                                   \
  Value kname(const Args& a) {                                                                    \
    Tensor out = a.opt_tensor(2);                                                                 \
    const Tensor &x = a.tensor(0), &y = a.tensor(1);                                              \
    TensorIterator it = TensorIteratorConfig(opname).add_output(out).add_input(x, wrapped(x))     \
                            .add_input(y, wrapped(y)).set_output_dtype(ScalarType::Bool).build(); \
    VBT_DISPATCH_ALL(it.common_dtype(), opname, [&]<typename T>() {                               \
      using M = opmath_t<T>;                                                                      \
      binary_loop<bool, T>(it, [](M p, M q) { return EXPR; });                                    \
    });                                                                                           \
    return finish_out(it, out);                                                                   \
  }
// eq/ne/lt/le/gt/ge(Tensor self, Tensor other, *, Tensor? out=None) -> Tensor   (bool result)
VBT_COMPARE_KERNEL(k_eq, "eq", p == q)
VBT_COMPARE_KERNEL(k_ne, "ne", p != q)
VBT_COMPARE_KERNEL(k_lt, "lt", p < q)
VBT_COMPARE_KERNEL(k_le, "le", p <= q)
VBT_COMPARE_KERNEL(k_gt, "gt", p > q)
VBT_COMPARE_KERNEL(k_ge, "ge", p >= q)
// logical_and/or/xor(Tensor self, Tensor other, *, Tensor? out=None) -> Tensor   (bool result)
VBT_COMPARE_KERNEL(k_logical_and, "logical_and", (p != M(0)) && (q != M(0)))
VBT_COMPARE_KERNEL(k_logical_or, "logical_or", (p != M(0)) || (q != M(0)))
VBT_COMPARE_KERNEL(k_logical_xor, "logical_xor", (p != M(0)) != (q != M(0)))

#define VBT_BITWISE_KERNEL(kname, opname, OP)                                          \
  Value kname(const Args& a) {                                                         \
    Tensor out = a.opt_tensor(2);                                                      \
    TensorIterator it = make_binary(opname, out, a.tensor(0), a.tensor(1));            \
    VBT_DISPATCH_INTEGRAL(it.common_dtype(), opname, [&]<typename T>() {               \
      binary_loop<T, T>(it, [](T p, T q) { return static_cast<T>(p OP q); });          \
    });                                                                                \
    return finish_out(it, out);                                                        \
  }
// bitwise_and/or/xor(Tensor self, Tensor other, *, Tensor? out=None) -> Tensor   (integral/bool only)
VBT_BITWISE_KERNEL(k_bitwise_and, "bitwise_and", &)
VBT_BITWISE_KERNEL(k_bitwise_or, "bitwise_or", |)
VBT_BITWISE_KERNEL(k_bitwise_xor, "bitwise_xor", ^)

// where(Tensor condition, Tensor self, Tensor other, *, Tensor? out=None) -> Tensor
Value k_where(const Args& a) {
  const Tensor &cond = a.tensor(0), &x = a.tensor(1), &y = a.tensor(2);
  Tensor out = a.opt_tensor(3);
  VBT_CHECK(cond.dtype() == ScalarType::Bool, "where: expected condition to be a boolean tensor, but got a tensor with dtype ",
            dtype_name(cond.dtype()));
  ScalarType rt = result_type({x, y}, {wrapped(x), wrapped(y)});
  TensorIterator it = TensorIteratorConfig("where").add_output(out).add_input(cond).add_input(cast_to(x, rt))
                          .add_input(cast_to(y, rt)).promote_inputs_to_common_dtype(false).set_common_dtype(rt).build();
  VBT_DISPATCH_ALL(rt, "where", [&]<typename T>() {
    it.for_each([](char** d, const int64_t* st, int64_t n) {
      for (int64_t i = 0; i < n; ++i)
        *reinterpret_cast<T*>(d[0] + i * st[0]) = *reinterpret_cast<const bool*>(d[1] + i * st[1])
                                                      ? *reinterpret_cast<const T*>(d[2] + i * st[2])
                                                      : *reinterpret_cast<const T*>(d[3] + i * st[3]);
    });
  });
  return finish_out(it, out);
}

// clamp(Tensor self, Tensor? min=None, Tensor? max=None, *, Tensor? out=None) -> Tensor
// NaN in self propagates; when min > max the result is max (PyTorch semantics).
Value k_clamp(const Args& a) {
  const Tensor& x = a.tensor(0);
  Tensor lo = a.opt_tensor(1), hi = a.opt_tensor(2), out = a.opt_tensor(3);
  VBT_CHECK(lo.defined() || hi.defined(), "clamp: At least one of 'min' or 'max' must not be None");
  VBT_CHECK(x.dtype() != ScalarType::Bool, "clamp is not supported for bool tensors");
  std::vector<Tensor> ops{x};
  std::vector<bool> wr{false};
  if (lo.defined()) { ops.push_back(lo); wr.push_back(wrapped(lo)); }
  if (hi.defined()) { ops.push_back(hi); wr.push_back(wrapped(hi)); }
  ScalarType rt = result_type(ops, wr);
  // absent bounds become +-inf (floats) or the type's extremes (integers)
  auto bound = [&](const Tensor& t, bool is_lo) -> Tensor {
    if (t.defined()) return t;
    return VBT_DISPATCH_NUMERIC(rt, "clamp", [&]<typename T>() -> Tensor {
      using M = opmath_t<T>;
      M v = is_lo ? (std::numeric_limits<M>::has_infinity ? -std::numeric_limits<M>::infinity() : std::numeric_limits<M>::lowest())
                  : (std::numeric_limits<M>::has_infinity ? std::numeric_limits<M>::infinity() : std::numeric_limits<M>::max());
      Tensor s = empty({}, rt);
      *s.data<T>() = static_cast<T>(v);
      return s;
    });
  };
  bool inplace = out.defined() && out.is_same(x);
  TensorIterator it = TensorIteratorConfig("clamp").add_output(out).add_input(x).add_input(bound(lo, true))
                          .add_input(bound(hi, false)).set_common_dtype(rt).is_inplace(inplace).build();
  VBT_DISPATCH_NUMERIC(rt, "clamp", [&]<typename T>() {
    using M = opmath_t<T>;
    ternary_loop<T, T>(it, [](M v, M l, M h) {
      if constexpr (std::is_floating_point_v<M>) {
        if (std::isnan(v)) return v;
        if (std::isnan(l)) return l;
        if (std::isnan(h)) return h;
      }
      M r = v < l ? l : v;
      return r > h ? h : r;
    });
  });
  return finish_out(it, out);
}

// lerp(Tensor self, Tensor end, Tensor weight, *, Tensor? out=None) -> Tensor
Value k_lerp(const Args& a) {
  const Tensor &x = a.tensor(0), &e = a.tensor(1), &w = a.tensor(2);
  Tensor out = a.opt_tensor(3);
  VBT_CHECK(x.dtype() == e.dtype(), "lerp: expected dtype ", dtype_name(x.dtype()), " for `end` but got dtype ",
            dtype_name(e.dtype()));
  VBT_CHECK(is_floating(x.dtype()), "lerp: expected a floating point input, got ", dtype_name(x.dtype()));
  bool inplace = out.defined() && out.is_same(x);
  // PyTorch's lerp: one fused multiply-add from the nearer end (std::fma; bit for bit on every float dtype)
  auto lerp = [](auto s, auto t, auto wt) {
    const auto d = t - s;
    return std::abs(wt) < decltype(wt)(0.5) ? std::fma(wt, d, s) : std::fma(-d, decltype(wt)(1) - wt, t);
  };
  if ((x.dtype() == ScalarType::Float16 || x.dtype() == ScalarType::BFloat16) && w.dim() == 0 &&
      w.device().type == DeviceType::CPU) {
    // a scalar weight of a 16-bit lerp is used in float, as PyTorch does, not rounded to the dtype first
    const float wv = static_cast<float>(item_of(w).to_double());
    TensorIterator it = TensorIteratorConfig("lerp").add_output(out).add_input(x).add_input(e)
                            .set_common_dtype(x.dtype()).is_inplace(inplace).build();
    auto f = [wv, lerp](float s, float t) { return lerp(s, t, wv); };
    if (x.dtype() == ScalarType::Float16) binary_loop<Half, Half>(it, f);
    else binary_loop<BFloat16, BFloat16>(it, f);
    return finish_out(it, out);
  }
  TensorIterator it = TensorIteratorConfig("lerp").add_output(out).add_input(x).add_input(e).add_input(w)
                          .set_common_dtype(x.dtype()).is_inplace(inplace).build();
  VBT_DISPATCH_FLOATING(x.dtype(), "lerp", [&]<typename T>() {
    using M = opmath_t<T>;
    ternary_loop<T, T, true>(it, [lerp](M s, M t, M wt) { return lerp(s, t, wt); });
  });
  return finish_out(it, out);
}

// addcmul(Tensor self, Tensor tensor1, Tensor tensor2, *, Scalar value=1, Tensor? out=None) -> Tensor
Value k_addcmul(const Args& a) {
  const Tensor &x = a.tensor(0), &t1 = a.tensor(1), &t2 = a.tensor(2);
  Tensor out = a.opt_tensor(4);
  bool inplace = out.defined() && out.is_same(x);
  TensorIterator it = TensorIteratorConfig("addcmul").add_output(out).add_input(x).add_input(t1).add_input(t2)
                          .is_inplace(inplace).build();
  Scalar value = a.scalar(3);
  VBT_DISPATCH_NUMERIC(it.common_dtype(), "addcmul", [&]<typename T>() {
    using M = opmath_t<T>;
    M v = value.to<M>();
    // PyTorch's float addcmul: (value * t1) rounded, then one fused multiply-add with t2 and self
    if constexpr (std::is_floating_point_v<M>)
      ternary_loop<T, T, true>(it, [v](M s, M p, M q) { return std::fma(v * p, q, s); });
    else ternary_loop<T, T>(it, [v](M s, M p, M q) { return s + v * p * q; });
  });
  return finish_out(it, out);
}

// addcdiv(Tensor self, Tensor tensor1, Tensor tensor2, *, Scalar value=1, Tensor? out=None) -> Tensor
Value k_addcdiv(const Args& a) {
  const Tensor &x = a.tensor(0), &t1 = a.tensor(1), &t2 = a.tensor(2);
  Tensor out = a.opt_tensor(4);
  VBT_CHECK(!(is_integral(t1.dtype(), true) && is_integral(t2.dtype(), true)),
            "addcdiv: Integer division with addcdiv is no longer supported; use floating point tensor1/tensor2");
  bool inplace = out.defined() && out.is_same(x);
  TensorIterator it = TensorIteratorConfig("addcdiv").add_output(out).add_input(x).add_input(t1).add_input(t2)
                          .is_inplace(inplace).build();
  Scalar value = a.scalar(3);
  VBT_DISPATCH_FLOATING(it.common_dtype(), "addcdiv", [&]<typename T>() {
    using M = opmath_t<T>;
    M v = value.to<M>();
    ternary_loop<T, T>(it, [v](M s, M p, M q) { return s + v * p / q; });  // PyTorch's order: (value * t1) / t2
  });
  return finish_out(it, out);
}

}  // namespace vbt
