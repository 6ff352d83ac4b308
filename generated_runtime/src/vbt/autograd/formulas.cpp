// Backward formulas, one per differentiable op of the op table (src/vbt/ops/op_table.cpp).
// Each is written with dispatcher ops, so with create_graph the backward is itself recorded.
// Broadcasting and dtype are fixed up generically after a formula runs (FormulaNode::apply
// reduces a gradient to its input's shape and casts it to its dtype), so formulas may return
// gradients in the broadcast shape and the computation dtype.
#include <algorithm>
#include <cmath>

#include "formula_node.h"
#include "vbt/core/error.h"
#include "vbt/cpu/parallel.h"
#include "vbt/cpu/tensor_iterator.h"
#include "../cpu/vec_math.h"  // the runtime's vectorisable float32 exp/erfc (private header of src/vbt/cpu)

namespace vbt::autograd {

namespace {

using TL = std::vector<Tensor>;

Tensor op(const char* name, Args a) { return call_tensor_op(name, std::move(a)); }
Tensor num(double v) {
  Tensor t = scalar_to_tensor(Scalar(v), ScalarType::Float64);
  t.impl()->wrapped_number = true;
  return t;
}
Tensor add(const Tensor& a, const Tensor& b) { return op("add", {a, b}); }
Tensor sub(const Tensor& a, const Tensor& b) { return op("sub", {a, b}); }
Tensor mul(const Tensor& a, const Tensor& b) { return op("mul", {a, b}); }
Tensor mul(const Tensor& a, double s) { return s == 1.0 ? a : op("mul", {a, num(s)}); }
Tensor div(const Tensor& a, const Tensor& b) { return op("div", {a, b}); }
Tensor neg(const Tensor& a) { return op("neg", {a}); }
Tensor un(const char* name, const Tensor& a) { return op(name, {a}); }
Tensor where(const Tensor& c, const Tensor& a, const Tensor& b) { return op("where", {c, a, b}); }
Tensor cmp(const char* name, const Tensor& a, const Tensor& b) { return op(name, {a, b}); }
Tensor reshape(const Tensor& a, const Shape& s) { return a.sizes() == s ? a : op("reshape", {a, s}); }
Tensor expand(const Tensor& a, const Shape& s) { return a.sizes() == s ? a : op("expand", {a, s}); }
Tensor unsqueeze(const Tensor& a, int64_t d) { return op("unsqueeze", {a, d}); }
Tensor transpose(const Tensor& a, int64_t d0, int64_t d1) { return op("transpose", {a, d0, d1}); }
Tensor mT(const Tensor& a) { return transpose(a, -2, -1); }
Tensor matmul(const Tensor& a, const Tensor& b) { return op("matmul", {a, b}); }
Tensor sum(const Tensor& a, const Shape& dims, bool keepdim) { return op("sum", {a, dims, keepdim}); }
Tensor zeros(const Shape& s, ScalarType dt, Device dev = Device{}) { return op("zeros", {s, dt, dev}); }
Tensor zeros_of(const InputMeta& m) { return zeros(m.sizes, m.dtype, m.device); }
Tensor cast(const Tensor& a, ScalarType dt) { return a.dtype() == dt ? a : op("to_dtype", {a, dt, false}); }
// `host` (a tensor in host memory) on device `dev`: itself on the host, else a copy (index_put_ wants its
// indices on the device of the tensor it writes).
Tensor on_device(const Tensor& host, Device dev) {
  if (dev.type == DeviceType::CPU) return host;
  Tensor d = op("empty", {host.sizes(), host.dtype(), dev});
  call_op("copy_", {d, host});
  return d;
}
double scalar_of(const Value& v) {
  if (auto s = std::get_if<Scalar>(&v)) return s->to_double();
  if (auto d = std::get_if<double>(&v)) return *d;
  if (auto i = std::get_if<int64_t>(&v)) return static_cast<double>(*i);
  if (auto b = std::get_if<bool>(&v)) return *b ? 1.0 : 0.0;
  VBT_INTERNAL_ASSERT(false, "autograd: expected a number argument");
}

// Reduced dims of a reduction with an optional dim list (None or [] = all dims).
Shape reduced_dims(const Value& dimv, int64_t ndim) {
  Shape dims;
  const Shape* given = std::get_if<Shape>(&dimv);
  if (auto i = std::get_if<int64_t>(&dimv)) dims.push_back(wrap_dim(*i, std::max<int64_t>(ndim, 1), "autograd"));
  else if (!given || given->empty()) for (int64_t d = 0; d < ndim; ++d) dims.push_back(d);
  else for (int64_t d : *given) dims.push_back(wrap_dim(d, std::max<int64_t>(ndim, 1), "autograd"));
  if (ndim == 0) dims.clear();
  std::sort(dims.begin(), dims.end());
  dims.erase(std::unique(dims.begin(), dims.end()), dims.end());
  return dims;
}
// Brings a reduction's gradient (or result) back to the input's rank (before expanding).
Tensor unreduce(Tensor g, const Shape& dims, bool keepdim) {
  if (!keepdim)
    for (int64_t d : dims) g = unsqueeze(g, d);
  return g;
}
int64_t count_of(const Shape& shape, const Shape& dims) {
  int64_t n = 1;
  for (int64_t d : dims) n *= shape[d];
  return n;
}
// Gradient scattered into zeros of `m`'s shape along dim at the `count` positions start, start + step, ...
// (differentiable). The positions come from one arange on m's device: no host data, no copy.
Tensor scatter_along(const Tensor& g, const InputMeta& m, int64_t dim, int64_t start, int64_t step, int64_t count) {
  Tensor z = zeros_of(m);
  Tensor pos = op("arange", {start, start + step * count, step, ScalarType::Int64, m.device});
  return op("index_put_", {z, TL{pos}, Shape{dim}, g, false});
}

#define F(name) std::vector<Tensor> name(BwCtx& c)
#define OUT std::vector<Tensor> r(c.nslots())

// ---- copy / conversion
F(copy_bw) { OUT; if (c.needs(1)) r[1] = c.g(); return r; }  // self's old value receives no gradient
F(overwrite_bw) { OUT; return r; }  // fill_/zero_/random fills: the old values get no gradient
F(identity_bw) { OUT; r[0] = c.g(); return r; }

// ---- binary
F(add_bw) {
  OUT;
  if (c.needs(0)) r[0] = c.g();
  if (c.needs(1)) r[1] = mul(c.g(), c.real(2));
  return r;
}
F(sub_bw) {
  OUT;
  if (c.needs(0)) r[0] = c.g();
  if (c.needs(1)) r[1] = mul(c.g(), -c.real(2));
  return r;
}
F(mul_bw) {
  OUT;
  if (c.needs(0)) r[0] = mul(c.g(), c.arg(1));
  if (c.needs(1)) r[1] = mul(c.g(), c.arg(0));
  return r;
}
F(div_bw) {
  OUT;
  if (!c.none(2)) {  // rounding division: piecewise constant
    if (c.needs(0)) r[0] = zeros_of(c.meta(0));
    if (c.needs(1)) r[1] = zeros_of(c.meta(1));
    return r;
  }
  Tensor other = c.arg(1);
  if (c.needs(0)) r[0] = div(c.g(), other);
  if (c.needs(1)) r[1] = neg(div(mul(c.g(), c.arg(0)), mul(other, other)));
  return r;
}
F(remainder_bw) {
  OUT;
  if (c.needs(0)) r[0] = c.g();
  if (c.needs(1)) r[1] = neg(mul(c.g(), op("div", {c.arg(0), c.arg(1), std::string("floor")})));
  return r;
}
F(fmod_bw) {
  OUT;
  if (c.needs(0)) r[0] = c.g();
  if (c.needs(1)) r[1] = neg(mul(c.g(), op("div", {c.arg(0), c.arg(1), std::string("trunc")})));
  return r;
}
std::vector<Tensor> minmax_bw(BwCtx& c, bool is_max) {
  OUT;
  Tensor a = c.arg(0), b = c.arg(1), g = c.g();
  Tensor eq = cmp("eq", a, b);
  Tensor half = mul(g, 0.5);
  // torch: each side gets the gradient unless the other side strictly wins (so a NaN passes it to both sides)
  Tensor a_wins = cmp(is_max ? "gt" : "lt", a, b), b_wins = cmp(is_max ? "lt" : "gt", a, b);
  if (c.needs(0)) r[0] = where(eq, half, where(b_wins, num(0.0), g));
  if (c.needs(1)) r[1] = where(eq, half, where(a_wins, num(0.0), g));
  return r;
}
F(maximum_bw) { return minmax_bw(c, true); }
F(minimum_bw) { return minmax_bw(c, false); }
F(atan2_bw) {
  OUT;
  Tensor a = c.arg(0), b = c.arg(1);
  Tensor denom = add(mul(a, a), mul(b, b));
  if (c.needs(0)) r[0] = div(mul(c.g(), b), denom);
  if (c.needs(1)) r[1] = div(mul(c.g(), neg(a)), denom);
  return r;
}
F(pow_bw) {
  OUT;
  Tensor self = c.arg(0), e = c.arg(1), g = c.g();
  if (c.needs(0)) {
    // g * e * self^(e-1), zero where e == 0
    Tensor d = mul(e, op("pow", {self, sub(e, num(1.0))}));
    r[0] = where(cmp("eq", e, num(0.0)), num(0.0), mul(g, d));
  }
  if (c.needs(1)) {
    Tensor res = c.result();
    Tensor d = mul(res, un("log", self));
    // PyTorch: zero where self == 0 and exponent >= 0
    Tensor mask = op("logical_and", {cmp("eq", self, num(0.0)), cmp("ge", e, num(0.0))});
    r[1] = where(mask, num(0.0), mul(g, d));
  }
  return r;
}
F(where_bw) {
  OUT;
  Tensor cond = c.arg(0), g = c.g();
  if (c.needs(1)) r[1] = where(cond, g, num(0.0));
  if (c.needs(2)) r[2] = where(cond, num(0.0), g);
  return r;
}
F(clamp_bw) {
  OUT;
  Tensor self = c.arg(0), g = c.g();
  Tensor mn = c.none(1) ? Tensor() : c.arg(1), mx = c.none(2) ? Tensor() : c.arg(2);
  if (c.needs(0)) {
    Tensor keep;
    if (mn.defined()) keep = cmp("ge", self, mn);
    if (mx.defined()) {
      Tensor k2 = cmp("le", self, mx);
      keep = keep.defined() ? op("logical_and", {keep, k2}) : k2;
    }
    r[0] = keep.defined() ? where(keep, g, num(0.0)) : g;
  }
  if (mn.defined() && c.needs(1)) {
    Tensor m = cmp("lt", self, mn);
    if (mx.defined()) m = op("logical_and", {m, cmp("le", mn, mx)});
    r[c.slot(1)] = where(m, g, num(0.0));
  }
  if (mx.defined() && c.needs(2)) r[c.slot(2)] = where(cmp("gt", self, mx), g, num(0.0));
  return r;
}
F(lerp_bw) {
  OUT;
  Tensor w = c.arg(2), g = c.g();
  if (c.needs(0)) r[0] = mul(g, sub(num(1.0), w));
  if (c.needs(1)) r[1] = mul(g, w);
  if (c.needs(2)) r[2] = mul(g, sub(c.arg(1), c.arg(0)));
  return r;
}
F(addcmul_bw) {
  OUT;
  double v = c.real(3);
  Tensor g = c.g();
  if (c.needs(0)) r[0] = g;
  if (c.needs(1)) r[1] = mul(mul(g, c.arg(2)), v);
  if (c.needs(2)) r[2] = mul(mul(g, c.arg(1)), v);
  return r;
}
F(addcdiv_bw) {
  OUT;
  double v = c.real(3);
  Tensor g = c.g(), t2 = c.arg(2);
  if (c.needs(0)) r[0] = g;
  if (c.needs(1)) r[1] = mul(div(g, t2), v);
  if (c.needs(2)) r[2] = mul(neg(div(mul(g, c.arg(1)), mul(t2, t2))), v);
  return r;
}

// ---- unary (x = saved input, y = saved result)
#define UNARY_X(fname, expr) F(fname) { OUT; Tensor x = c.arg(0), g = c.g(); r[0] = (expr); return r; }
#define UNARY_Y(fname, expr) F(fname) { OUT; Tensor y = c.result(), g = c.g(); r[0] = (expr); return r; }
#define UNARY_G(fname, expr) F(fname) { OUT; Tensor g = c.g(); r[0] = (expr); return r; }
constexpr double kLn2 = 0.69314718055994530942, kLn10 = 2.30258509299404568402;
constexpr double kTwoOverSqrtPi = 1.12837916709551257390, kInvSqrt2 = 0.70710678118654752440;
constexpr double kInvSqrt2Pi = 0.39894228040143267794;
UNARY_Y(exp_bw, mul(g, y))
UNARY_Y(exp2_bw, mul(mul(g, y), kLn2))
UNARY_X(log_bw, div(g, x))
UNARY_X(log2_bw, div(g, mul(x, kLn2)))
UNARY_X(log10_bw, div(g, mul(x, kLn10)))
UNARY_X(log1p_bw, div(g, add(x, num(1.0))))
UNARY_Y(expm1_bw, mul(g, add(y, num(1.0))))
UNARY_Y(sqrt_bw, div(g, mul(y, 2.0)))
UNARY_Y(rsqrt_bw, mul(mul(g, mul(y, mul(y, y))), -0.5))
UNARY_Y(reciprocal_bw, neg(mul(g, mul(y, y))))
UNARY_X(sin_bw, mul(g, un("cos", x)))
UNARY_X(cos_bw, neg(mul(g, un("sin", x))))
UNARY_Y(tan_bw, mul(g, add(mul(y, y), num(1.0))))
UNARY_X(asin_bw, div(g, un("sqrt", sub(num(1.0), mul(x, x)))))
UNARY_X(acos_bw, neg(div(g, un("sqrt", sub(num(1.0), mul(x, x))))))
UNARY_X(atan_bw, div(g, add(mul(x, x), num(1.0))))
UNARY_X(sinh_bw, mul(g, un("cosh", x)))
UNARY_X(cosh_bw, mul(g, un("sinh", x)))
// Fused CPU loops for hot elementwise backward formulas, used when no graph of the backward is
// recorded (grad mode off) and x, g are same-shape float32/float64 CPU tensors: one pass instead
// of ~10 dispatcher ops. fn(x, g) -> dx in double precision; fn32 (optional) is the float32 form,
// written with the runtime's branch-free float math (cpu/vec_math.h) so the loop vectorises instead
// of calling libm per element; arr32 (optional) the same over a contiguous float32 chunk.
template <typename Fn, typename Fn32 = std::nullptr_t, typename Arr32 = std::nullptr_t>
Tensor fused_unary_bw(const Tensor& x_, const Tensor& g_, Fn fn, Fn32 fn32 = nullptr, Arr32 arr32 = nullptr) {
  if (GradMode::is_enabled() || x_.sizes() != g_.sizes() || x_.dtype() != g_.dtype() ||
      x_.device().type != DeviceType::CPU || g_.device().type != DeviceType::CPU || !is_floating(x_.dtype()))
    return Tensor();
  if (x_.dtype() == ScalarType::Float16 || x_.dtype() == ScalarType::BFloat16) {
    // reduced precision: compute in float32 (PyTorch's opmath), round once
    Tensor r = fused_unary_bw(cast(x_, ScalarType::Float32), cast(g_, ScalarType::Float32), fn, fn32, arr32);
    return r.defined() ? cast(r, x_.dtype()) : r;
  }
  if (x_.dtype() != ScalarType::Float32 && x_.dtype() != ScalarType::Float64) return Tensor();
  Tensor x = x_.is_contiguous() ? x_ : op("contiguous", {x_});
  Tensor g = g_.is_contiguous() ? g_ : op("contiguous", {g_});
  Tensor out = empty(x.sizes(), x.dtype(), x.device());
  auto run = [&](auto* xp, auto* gp, auto* op_) {
    using T = std::remove_reference_t<decltype(*op_)>;
    parallel_for(0, x.numel(), kParallelGrain, [&](int64_t b, int64_t e) {
      if constexpr (std::is_same_v<T, float> && !std::is_same_v<Arr32, std::nullptr_t>) {
        arr32(op_ + b, xp + b, gp + b, e - b);  // a whole-array float32 form (e.g. an AVX2+FMA build)
      } else if constexpr (std::is_same_v<T, float> && !std::is_same_v<Fn32, std::nullptr_t>) {
        for (int64_t i = b; i < e; ++i) op_[i] = fn32(xp[i], gp[i]);
      } else {
        for (int64_t i = b; i < e; ++i) op_[i] = static_cast<T>(fn(static_cast<double>(xp[i]), static_cast<double>(gp[i])));
      }
    });
  };
  if (x.dtype() == ScalarType::Float32) run(x.data<float>(), g.data<float>(), out.data<float>());
  else run(x.data<double>(), g.data<double>(), out.data<double>());
  return out;
}

// Backward formulas of the output y: fused loop when possible, else the composed form.
#define UNARY_Y_FUSED(fname, fused_expr, composed)                                                   \
  F(fname) {                                                                                         \
    OUT;                                                                                             \
    Tensor y = c.result(), g = c.g();                                                                \
    if (Tensor f = fused_unary_bw(y, g, [](double v, double gv) { return fused_expr; },              \
                                  [](float v, float gv) { return fused_expr; }); f.defined()) {      \
      r[0] = f;                                                                                      \
      return r;                                                                                      \
    }                                                                                                \
    r[0] = (composed);                                                                               \
    return r;                                                                                        \
  }
UNARY_Y_FUSED(tanh_bw, gv * (1 - v * v), mul(g, sub(num(1.0), mul(y, y))))
UNARY_Y_FUSED(sigmoid_bw, gv * (v * (1 - v)), mul(g, mul(y, sub(num(1.0), y))))
// threshold_backward: 0 where y <= 0 (even for a NaN gradient), the gradient elsewhere (NaN y passes it)
UNARY_Y_FUSED(relu_bw, vec::select(v <= 0, decltype(v)(0), gv), where(cmp("le", y, num(0.0)), num(0.0), g))
#undef UNARY_Y_FUSED

F(silu_bw) {
  OUT;
  Tensor x = c.arg(0), g = c.g();
  if (Tensor f = fused_unary_bw(x, g, [](double v, double gv) {
        double s = 1.0 / (1.0 + std::exp(-v));
        return gv * s * (1.0 + v * (1.0 - s));
      }, [](float v, float gv) {
        float s = 1.0f / (1.0f + vec::exp_f32(-v));
        return gv * s * (1.0f + v * (1.0f - s));
      }); f.defined()) {
    r[0] = f;
    return r;
  }
  Tensor s = un("sigmoid", x);
  r[0] = mul(g, mul(s, add(num(1.0), mul(x, sub(num(1.0), s)))));
  return r;
}
UNARY_X(erf_bw, mul(mul(g, un("exp", neg(mul(x, x)))), kTwoOverSqrtPi))
UNARY_X(erfc_bw, mul(mul(g, un("exp", neg(mul(x, x)))), -kTwoOverSqrtPi))
UNARY_G(neg_bw, neg(g))
UNARY_X(abs_bw, mul(g, un("sign", x)))
F(zero_bw) { OUT; r[0] = zeros_of(c.meta(0)); return r; }
UNARY_G(frac_bw, g)
UNARY_X(square_bw, mul(mul(g, x), 2.0))
F(gelu_bw) {
  OUT;
  Tensor x = c.arg(0), g = c.g();
  const std::string& approx = std::get<std::string>(c.val(1));
  Tensor fused = approx == "tanh"
      ? fused_unary_bw(x, g, [](double v, double gv) {
          const double kBeta = 0.79788456080286535588, kKappa = 0.044715;
          double inner = kBeta * (v + kKappa * v * v * v);
          double t = std::tanh(inner);
          double dinner = kBeta * (1.0 + 3.0 * kKappa * v * v);
          return gv * (0.5 * (1.0 + t) + 0.5 * v * (1.0 - t * t) * dinner);
        })
      : fused_unary_bw(x, g, [](double v, double gv) {
          double cdf = 0.5 * (1.0 + std::erf(v * kInvSqrt2));
          double pdf = std::exp(-0.5 * v * v) * kInvSqrt2Pi;
          return gv * (cdf + v * pdf);
        }, [](float v, float gv) { return gv * vec::gelu_erf_grad_f32(v); },  // float math, ~1e-6 relative
        [](float* o, const float* v, const float* gv, int64_t n) { vec::gelu_erf_backward_f32_array(o, v, gv, n); });
  if (fused.defined()) {
    r[0] = fused;
    return r;
  }
  if (approx == "tanh") {
    const double kBeta = std::sqrt(2.0 / M_PI), kKappa = 0.044715;
    Tensor x2 = mul(x, x);
    Tensor inner = mul(add(x, mul(mul(x2, x), kKappa)), kBeta);
    Tensor t = un("tanh", inner);
    Tensor left = mul(x, 0.5), right = add(t, num(1.0));
    Tensor left_d = mul(right, 0.5);
    Tensor tanh_d = sub(num(1.0), mul(t, t));
    Tensor inner_d = mul(add(num(1.0), mul(x2, 3.0 * kKappa)), kBeta);
    Tensor right_d = mul(mul(left, tanh_d), inner_d);
    r[0] = mul(g, add(left_d, right_d));
  } else {
    Tensor cdf = mul(add(un("erf", mul(x, kInvSqrt2)), num(1.0)), 0.5);
    Tensor pdf = mul(un("exp", mul(mul(x, x), -0.5)), kInvSqrt2Pi);
    r[0] = mul(g, add(cdf, mul(x, pdf)));
  }
  return r;
}
F(softplus_bw) {
  OUT;
  Tensor x = c.arg(0), g = c.g();
  double beta = c.real(1), threshold = c.real(2);
  Tensor bx = mul(x, beta);
  Tensor s = un("sigmoid", bx);
  r[0] = where(cmp("gt", bx, num(threshold)), g, mul(g, s));
  return r;
}
UNARY_X(nan_to_num_bw, where(un("isfinite", x), g, num(0.0)))

// ---- reductions
F(sum_bw) {
  OUT;
  const Shape& s = c.shape(0);
  Shape dims = reduced_dims(c.val(1), static_cast<int64_t>(s.size()));
  r[0] = expand(unreduce(c.g(), dims, std::get<bool>(c.val(2))), s);
  return r;
}
F(mean_bw) {
  OUT;
  const Shape& s = c.shape(0);
  Shape dims = reduced_dims(c.val(1), static_cast<int64_t>(s.size()));
  int64_t n = count_of(s, dims);
  r[0] = expand(mul(unreduce(c.g(), dims, std::get<bool>(c.val(2))), 1.0 / static_cast<double>(n)), s);
  return r;
}
F(prod_bw) {
  OUT;
  Tensor x = c.arg(0);
  Shape dims = reduced_dims(c.val(1), x.dim());
  bool keep = std::get<bool>(c.val(2));
  Tensor y = unreduce(c.result(), dims, keep), g = unreduce(c.g(), dims, keep);
  r[0] = div(mul(g, y), x);  // inputs without zeros
  return r;
}
std::vector<Tensor> amaxmin_bw(BwCtx& c) {
  OUT;
  Tensor x = c.arg(0);
  Shape dims = reduced_dims(c.val(1), x.dim());
  bool keep = std::get<bool>(c.val(2));
  Tensor y = unreduce(c.result(), dims, keep), g = unreduce(c.g(), dims, keep);
  Tensor mask = cmp("eq", x, y);
  if (dims.empty() || static_cast<int64_t>(dims.size()) == x.dim()) {
    // a full reduction (max(x), min(x)) spreads the gradient evenly over the elements equal to the result; when
    // the result is NaN, over the NaN elements (torch's evenly_distribute_backward)
    mask = op("logical_or", {mask, op("logical_and", {un("isnan", x), un("isnan", y)})});
  }
  Tensor cnt = sum(cast(mask, x.dtype()), dims, true);
  r[0] = div(where(mask, g, num(0.0)), cnt);
  return r;
}
F(amax_bw) { return amaxmin_bw(c); }
F(amin_bw) { return amaxmin_bw(c); }
F(maxmin_dim_bw) {
  OUT;
  const InputMeta& m = c.meta(0);
  int64_t dim = wrap_dim(c.integer(1), std::max<int64_t>(1, static_cast<int64_t>(m.sizes.size())), "max");
  bool keep = std::get<bool>(c.val(2));
  Tensor idx = c.result(1), g = c.g(0);
  if (m.sizes.empty()) { r[0] = reshape(g, m.sizes); return r; }
  if (!keep) { idx = unsqueeze(idx, dim); g = unsqueeze(g, dim); }
  r[0] = op("scatter", {zeros_of(m), dim, idx, g});
  return r;
}
F(var_bw) {
  OUT;
  Tensor x = c.arg(0);
  Shape dims = reduced_dims(c.val(1), x.dim());
  double corr = c.none(2) ? 1.0 : c.real(2);
  bool keep = std::get<bool>(c.val(3));
  int64_t n = count_of(x.sizes(), dims);
  Tensor centered = sub(x, op("mean", {x, dims, true}));
  r[0] = mul(mul(unreduce(c.g(), dims, keep), centered), 2.0 / (static_cast<double>(n) - corr));
  return r;
}
F(std_bw) {
  OUT;
  Tensor x = c.arg(0);
  Shape dims = reduced_dims(c.val(1), x.dim());
  double corr = c.none(2) ? 1.0 : c.real(2);
  bool keep = std::get<bool>(c.val(3));
  int64_t n = count_of(x.sizes(), dims);
  Tensor centered = sub(x, op("mean", {x, dims, true}));
  Tensor y = unreduce(c.result(), dims, keep);
  Tensor gy = div(unreduce(c.g(), dims, keep), mul(y, static_cast<double>(n) - corr));
  r[0] = where(cmp("eq", y, num(0.0)), num(0.0), mul(gy, centered));
  return r;
}
F(norm_bw) {
  OUT;
  Tensor x = c.arg(0);
  double p = c.real(1);
  Shape dims = reduced_dims(c.val(2), x.dim());
  bool keep = std::get<bool>(c.val(3));
  Tensor y = unreduce(c.result(), dims, keep), g = unreduce(c.g(), dims, keep);
  if (p == 0.0) { r[0] = zeros_of(c.meta(0)); return r; }
  if (p == 1.0) { r[0] = mul(g, un("sign", x)); return r; }
  if (std::isinf(p)) {
    Tensor ax = un("abs", x);
    Tensor mask = cmp("eq", ax, y);
    Tensor cnt = sum(cast(mask, x.dtype()), dims, true);
    r[0] = div(mul(where(mask, g, num(0.0)), un("sign", x)), cnt);
    return r;
  }
  Tensor zero = cmp("eq", y, num(0.0));
  if (p == 2.0) {
    r[0] = where(zero, num(0.0), div(mul(g, x), y));
  } else {
    Tensor ax = un("abs", x);
    Tensor num_ = mul(mul(x, op("pow", {ax, num(p - 2.0)})), g);
    r[0] = where(zero, num(0.0), div(num_, op("pow", {y, num(p - 1.0)})));
  }
  return r;
}
F(logsumexp_bw) {
  OUT;
  Tensor x = c.arg(0);
  Shape dims = reduced_dims(c.val(1), x.dim());
  bool keep = std::get<bool>(c.val(2));
  Tensor y = unreduce(c.result(), dims, keep), g = unreduce(c.g(), dims, keep);
  r[0] = mul(g, un("exp", sub(x, y)));
  return r;
}
F(cumsum_bw) {
  OUT;
  int64_t dim = c.integer(1);
  Shape d{dim};
  Tensor g = c.g();
  if (g.dim() == 0) { r[0] = g; return r; }
  r[0] = op("flip", {op("cumsum", {op("flip", {g, d}), dim}), d});
  return r;
}
F(cumprod_bw) {
  OUT;
  Tensor x = c.arg(0), y = c.result(), g = c.g();
  int64_t dim = c.integer(1);
  if (g.dim() == 0) { r[0] = g; return r; }
  Shape d{dim};
  Tensor s = op("flip", {op("cumsum", {op("flip", {mul(g, y), d}), dim}), d});
  r[0] = div(s, x);  // inputs without zeros
  return r;
}
// softmax/log_softmax backward without create_graph: one _softmax_backward_data / _log_softmax_backward_data call
// (one pass per row, on every device) instead of mul, sum, mul and sub; with create_graph (or operands of different
// shapes or dtypes) those differentiable ops, so the gradient can be differentiated again.
Tensor fused_softmax_bw(const Tensor& y, const Tensor& g, int64_t dim, bool log) {
  if (GradMode::is_enabled() || y.sizes() != g.sizes() || y.dtype() != g.dtype() || !is_floating(y.dtype()))
    return Tensor();
  return op(log ? "_log_softmax_backward_data" : "_softmax_backward_data", {g, y, dim, y.dtype()});
}

F(softmax_bw) {
  OUT;
  Tensor y = c.result(), g = c.g();
  int64_t dim = c.integer(1);
  if (Tensor f = fused_softmax_bw(y, g, dim, false); f.defined()) { r[0] = f; return r; }
  Tensor gy = mul(g, y);
  r[0] = sub(gy, mul(y, sum(gy, Shape{dim}, true)));
  return r;
}
F(log_softmax_bw) {
  OUT;
  Tensor y = c.result(), g = c.g();
  int64_t dim = c.integer(1);
  if (Tensor f = fused_softmax_bw(y, g, dim, true); f.defined()) { r[0] = f; return r; }
  r[0] = sub(g, mul(un("exp", y), sum(g, Shape{dim}, true)));
  return r;
}

// ---- fused NN ops (Note [Fused NN ops] in src/vbt/cpu/reduce_kernels.cpp): the backward is its own fused op
// (CPU and CUDA kernels); not differentiable twice (the backward op has no formula).
// (create_graph: the same gradient from differentiable ops, softmax and masks, so it can be differentiated again)
F(fused_cross_entropy_bw) {
  OUT;
  if (!c.needs(0)) return r;
  // outputs: loss, lse, total; only the loss's gradient flows (lse/total are internal)
  if (!GradMode::is_enabled()) {
    r[0] = op("_fused_cross_entropy_backward", {c.g(0), c.arg(0), c.arg(1), c.result(1), c.result(2), c.val(2),
                                                c.val(3), c.val(4)});
    return r;
  }
  Tensor x = c.arg(0), t = c.arg(1), g = c.g(0), total = c.result(2);
  const int64_t C = x.sizes()[1];
  const double eps = c.real(3);
  const std::string& red = std::get<std::string>(c.val(4));
  Tensor ign = scalar_to_tensor(Scalar(c.integer(2)), ScalarType::Int64);
  ign.impl()->wrapped_number = true;
  Tensor valid = cmp("ne", t, ign);
  Tensor safe = where(valid, t, zeros(Shape{}, t.dtype(), t.device()));
  Tensor oh = cast(op("one_hot", {safe, C}), x.dtype());
  Tensor d = sub(sub(op("softmax", {x, int64_t(1)}), mul(oh, 1.0 - eps)), num(eps / static_cast<double>(C)));
  Tensor scale = mul(g, cast(valid, x.dtype()));
  if (red == "mean") scale = div(scale, total);
  r[0] = mul(d, unsqueeze(scale, 1));
  return r;
}
F(fused_layer_norm_bw) {
  OUT;
  const bool has_w = !c.none(2), has_b = !c.none(3);
  if (!c.needs(0) && !(has_w && c.needs(2)) && !(has_b && c.needs(3))) return r;
  Value w = has_w ? Value(c.arg(2)) : Value();
  if (GradMode::is_enabled()) {  // create_graph: differentiable ops from the saved input (can be differentiated again)
    Tensor x = c.arg(0), g = c.g(0);
    const Shape& ns = c.int_list(1);
    Shape dims, rows;
    for (int64_t d = x.dim() - static_cast<int64_t>(ns.size()); d < x.dim(); ++d) dims.push_back(d);
    for (int64_t d = 0; d < x.dim() - static_cast<int64_t>(ns.size()); ++d) rows.push_back(d);
    Tensor xc = sub(x, op("mean", {x, dims, true}));
    Tensor rstd = un("rsqrt", add(op("mean", {mul(xc, xc), dims, true}), num(c.real(4))));
    Tensor xh = mul(xc, rstd);
    Tensor h = has_w ? mul(g, c.arg(2)) : g;
    if (c.needs(0))
      r[c.slot(0)] = mul(rstd, sub(sub(h, op("mean", {h, dims, true})), mul(xh, op("mean", {mul(h, xh), dims, true}))));
    if (has_w && c.needs(2)) r[c.slot(2)] = rows.empty() ? mul(g, xh) : sum(mul(g, xh), rows, false);
    if (has_b && c.needs(3)) r[c.slot(3)] = rows.empty() ? g : sum(g, rows, false);
    return r;
  }
  Value res = call_op("_fused_layer_norm_backward",
                      {c.g(0), c.arg(0), c.result(1), c.result(2), w, c.int_list(1), has_b});
  const TensorList& t = std::get<TensorList>(res);
  if (c.needs(0)) r[c.slot(0)] = t.at(0);
  if (has_w && c.needs(2)) r[c.slot(2)] = t.at(1);
  if (has_b && c.needs(3)) r[c.slot(3)] = t.at(has_w ? 2 : 1);
  return r;
}

// ---- linear algebra
F(mm_bw) {
  OUT;
  Tensor g = c.g();
  if (c.needs(0)) r[0] = op("mm", {g, op("t", {c.arg(1)})});
  if (c.needs(1)) r[1] = op("mm", {op("t", {c.arg(0)}), g});
  return r;
}
F(bmm_bw) {
  OUT;
  Tensor g = c.g();
  if (c.needs(0)) r[0] = op("bmm", {g, transpose(c.arg(1), 1, 2)});
  if (c.needs(1)) r[1] = op("bmm", {transpose(c.arg(0), 1, 2), g});
  return r;
}
F(matmul_bw) {
  OUT;
  Tensor a = c.arg(0), b = c.arg(1), g = c.g();
  bool a1 = a.dim() == 1, b1 = b.dim() == 1;
  if (a1 && b1) {  // dot
    if (c.needs(0)) r[0] = mul(g, b);
    if (c.needs(1)) r[1] = mul(g, a);
    return r;
  }
  Tensor A = a1 ? unsqueeze(a, 0) : a, B = b1 ? unsqueeze(b, -1) : b;
  Tensor G = g;
  if (a1) G = unsqueeze(G, G.dim() - 1);  // restore the row dim
  if (b1) G = unsqueeze(G, -1);
  if (c.needs(0)) r[0] = reshape(sum_to(matmul(G, mT(B)), A.sizes()), a.sizes());
  if (c.needs(1)) r[1] = reshape(sum_to(matmul(mT(A), G), B.sizes()), b.sizes());
  return r;
}
// Note [Batched matmul under autograd]
//   matmul's kernel folds a batched operand to [B, r, c] with reshape, which copies a strided operand (attention's
//   q.transpose(1, 2), k.transpose(-2, -1)). Recorded as one node, its backward (matmul_bw) multiplies the original
//   operands again and copies them again, and the incoming gradient twice (it arrives strided from the transpose
//   that follows). torch records matmul of a 3+-dim operand as its pieces instead, and so does this composite: the
//   batched operand times a matrix folds the batch into the rows (one mm) when that needs no copy or the matrix
//   needs a gradient (otherwise expanding the matrix over the batch would be the cheaper backward); every other
//   3+-dim case expands and folds both operands to 3-D and runs bmm. The bmm/mm nodes save the folded, contiguous
//   operands, so backward multiplies those; the reshape nodes bring gradients back to the original layouts, copying
//   once. The forward computes the same products as the kernel (bmm's per-batch GEMMs, or one GEMM over the rows).
//   Shapes or dtypes the kernel rejects return nullopt, so its error messages stay the ones users see.
bool folds_without_copy(const Tensor& t) {  // t.reshape(-1, t.size(-1)) is a view: its leading dims merge
  const Shape &sz = t.sizes(), &st = t.strides();
  int64_t inner = -1;  // the previous (inner) dim of size > 1 among the leading dims
  for (int64_t i = t.dim() - 2; i >= 0; --i) {
    if (sz[i] == 1) continue;
    if (inner >= 0 && st[i] != st[inner] * sz[inner]) return false;
    inner = i;
  }
  return true;
}
std::optional<Value> matmul_composite(const Args& args) {
  if (args.size() < 2 || !std::holds_alternative<Tensor>(args[0]) || !std::holds_alternative<Tensor>(args[1]))
    return std::nullopt;
  const Tensor &x = args.tensor(0), &y = args.tensor(1);
  if (x.dim() < 3 && y.dim() < 3) return std::nullopt;
  if (x.dim() == 0 || y.dim() == 0 || x.dtype() != y.dtype() || x.dtype() == ScalarType::Bool ||
      !(x.device() == y.device()))
    return std::nullopt;
  const Tensor xa = x.dim() == 1 ? unsqueeze(x, 0) : x, ya = y.dim() == 1 ? unsqueeze(y, 1) : y;
  const int64_t n = xa.sizes()[xa.dim() - 2], k = xa.sizes().back(), m = ya.sizes().back();
  if (ya.sizes()[ya.dim() - 2] != k) return std::nullopt;
  Shape out;
  if (x.dim() >= 3 && y.dim() <= 2 && (requires_grad(y) || folds_without_copy(x))) {
    out.assign(x.sizes().begin(), x.sizes().end() - 1);
    const int64_t rows = shape_numel(out);  // explicit: -1 is ambiguous when k == 0
    if (y.dim() == 2) out.push_back(m);
    return reshape(op("mm", {reshape(x, Shape{rows, k}), ya}), out);
  }
  const Shape xb(xa.sizes().begin(), xa.sizes().end() - 2), yb(ya.sizes().begin(), ya.sizes().end() - 2);
  const Shape batch = broadcast_shapes(xb, yb, "matmul");
  const int64_t B = shape_numel(batch);
  Shape xe = batch, ye = batch;
  xe.insert(xe.end(), {n, k});
  ye.insert(ye.end(), {k, m});
  Tensor r = op("bmm", {reshape(expand(xa, xe), Shape{B, n, k}), reshape(expand(ya, ye), Shape{B, k, m})});
  out = batch;
  if (x.dim() > 1) out.push_back(n);
  if (y.dim() > 1) out.push_back(m);
  return reshape(r, out);
}
F(addmm_bw) {
  OUT;
  Tensor g = c.g();
  double beta = c.real(3), alpha = c.real(4);
  if (c.needs(0)) r[0] = mul(g, beta);
  if (c.needs(1)) r[1] = mul(op("mm", {g, op("t", {c.arg(2)})}), alpha);
  if (c.needs(2)) r[2] = mul(op("mm", {op("t", {c.arg(1)}), g}), alpha);
  return r;
}
F(baddbmm_bw) {
  OUT;
  Tensor g = c.g();
  double beta = c.real(3), alpha = c.real(4);
  if (c.needs(0)) r[0] = mul(g, beta);
  if (c.needs(1)) r[1] = mul(op("bmm", {g, transpose(c.arg(2), 1, 2)}), alpha);
  if (c.needs(2)) r[2] = mul(op("bmm", {transpose(c.arg(1), 1, 2), g}), alpha);
  return r;
}
F(linear_bw) {
  OUT;
  Tensor g = c.g();
  const Shape& ws = c.shape(1);
  if (c.needs(0)) {
    const Shape& xs = c.shape(0);
    if (ws.size() == 2 && xs.size() > 2 && g.is_contiguous())  // one 2-D GEMM instead of a batched matmul
      r[0] = reshape(op("mm", {reshape(g, Shape{-1, ws[0]}), c.arg(1)}), xs);
    else
      r[0] = matmul(g, c.arg(1));
  }
  if (c.needs(1)) {
    Tensor x = c.arg(0);
    if (ws.size() == 2) {
      Tensor g2 = reshape(g, Shape{-1, ws[0]}), x2 = reshape(x, Shape{-1, ws[1]});
      r[1] = op("mm", {op("t", {g2}), x2});
    } else {
      r[1] = sum_to(mul(unsqueeze(g, -1), x), ws);
    }
  }
  if (!c.none(2) && c.needs(2)) r[2] = sum_to(g, c.shape(2));
  return r;
}
F(outer_bw) {
  OUT;
  Tensor g = c.g();
  if (c.needs(0)) r[0] = matmul(g, c.arg(1));
  if (c.needs(1)) r[1] = matmul(op("t", {g}), c.arg(0));
  return r;
}
F(dot_bw) {
  OUT;
  Tensor g = c.g();
  if (c.needs(0)) r[0] = mul(g, c.arg(1));
  if (c.needs(1)) r[1] = mul(g, c.arg(0));
  return r;
}

// ---- indexing
F(index_select_bw) {
  OUT;
  const InputMeta& m = c.meta(0);
  int64_t nd = static_cast<int64_t>(m.sizes.size());
  Tensor idx = reshape(c.arg(2), Shape{-1});
  if (nd == 0) { r[0] = reshape(sum(c.g(), Shape{}, false), m.sizes); return r; }
  int64_t dim = wrap_dim(c.integer(1), nd, "index_select");
  r[0] = op("index_put_", {zeros_of(m), TL{idx}, Shape{dim}, c.g(), true});
  return r;
}
F(gather_bw) {
  OUT;
  r[0] = op("scatter_add", {zeros_of(c.meta(0)), c.integer(1), c.arg(2), c.g()});
  return r;
}
F(scatter_bw) {
  OUT;
  Tensor idx = c.arg(2), g = c.g();
  int64_t dim = c.integer(1);
  if (c.needs(0)) r[0] = op("scatter", {g, dim, idx, num(0.0)});
  if (c.needs(3)) r[c.slot(3)] = op("gather", {g, dim, idx});
  return r;
}
F(scatter_add_bw) {
  OUT;
  Tensor g = c.g();
  if (c.needs(0)) r[0] = g;
  if (c.needs(3)) r[c.slot(3)] = op("gather", {g, c.integer(1), c.arg(2)});
  return r;
}
F(index_add_bw) {
  OUT;
  Tensor g = c.g();
  int64_t dim = c.integer(1);
  if (c.needs(0)) r[0] = g;
  if (c.needs(3)) {
    Tensor s = c.shape(0).empty() ? g : op("index_select", {g, dim, c.arg(2)});
    r[c.slot(3)] = reshape(mul(s, c.real(4)), c.shape(3));
  }
  return r;
}
F(masked_fill_bw) {
  OUT;
  Tensor mask = c.arg(1), g = c.g();
  if (c.needs(0)) r[0] = where(mask, num(0.0), g);
  if (c.needs(2)) r[2] = sum(where(mask, g, num(0.0)), Shape{}, false);
  return r;
}
F(index_bw) {
  OUT;
  TL idx = c.arg_list(1);
  if (c.needs(0)) r[0] = op("index_put_", {zeros_of(c.meta(0)), idx, c.int_list(2), c.g(), true});
  return r;
}
F(index_put_bw) {
  OUT;
  TL idx = c.arg_list(1);
  const Shape& dims = c.int_list(2);
  bool acc = std::get<bool>(c.val(4));
  Tensor g = c.g();
  if (c.needs(0)) r[0] = acc ? g : op("index_put_", {op("clone", {g}), idx, dims, num(0.0), false});
  int vs = c.slot(3);
  if (c.needs_slot(vs)) r[vs] = op("index", {g, idx, dims});
  return r;
}
F(embedding_bw) {
  OUT;
  const InputMeta& m = c.meta(0);
  Tensor idx = reshape(c.arg(1), Shape{-1});
  Tensor g2 = reshape(c.g(), Shape{-1, m.sizes.at(1)});
  r[0] = op("index_put_", {zeros_of(m), TL{idx}, Shape{0}, g2, true});
  return r;
}
F(take_along_dim_bw) {
  OUT;
  const InputMeta& m = c.meta(0);
  Tensor idx = c.arg(1), g = c.g();
  if (c.none(2)) {
    Tensor flat = zeros(Shape{shape_numel(m.sizes)}, m.dtype, m.device);
    Tensor s = op("scatter_add", {flat, int64_t(0), reshape(idx, Shape{-1}), reshape(g, Shape{-1})});
    r[0] = reshape(s, m.sizes);
    return r;
  }
  int64_t dim = wrap_dim(c.integer(2), static_cast<int64_t>(m.sizes.size()), "take_along_dim");
  Shape zs = g.sizes();
  zs[dim] = m.sizes[dim];
  Shape is = g.sizes();
  is[dim] = idx.sizes()[dim];
  Tensor s = op("scatter_add", {zeros(zs, m.dtype, m.device), dim, op("contiguous", {expand(idx, is)}), g});
  r[0] = s;  // reduced to self's shape by the generic fix-up
  return r;
}

// ---- shape ops that copy
F(cat_bw) {
  OUT;
  Tensor g = c.g();
  int n = c.node.arg_nslots.at(0);
  int64_t dim = c.integer(1);
  int64_t offset = 0;
  for (int i = 0; i < n; ++i) {
    const InputMeta& m = c.node.slot_meta[i];
    if (m.sizes.size() == 1 && m.sizes[0] == 0 && g.dim() != 1) continue;  // legacy empty input
    int64_t d = wrap_dim(dim, g.dim(), "cat");
    int64_t len = m.sizes.at(d);
    if (c.needs_slot(i)) r[i] = op("narrow", {g, d, offset, len});
    offset += len;
  }
  return r;
}
F(stack_bw) {
  OUT;
  Tensor g = c.g();
  int n = c.node.arg_nslots.at(0);
  int64_t dim = wrap_dim(c.integer(1), g.dim(), "stack");
  for (int i = 0; i < n; ++i)
    if (c.needs_slot(i)) r[i] = op("select", {g, dim, int64_t(i)});
  return r;
}
F(flip_bw) { OUT; r[0] = op("flip", {c.g(), c.int_list(1)}); return r; }
F(roll_bw) {
  OUT;
  Shape shifts = c.int_list(1);
  for (auto& s : shifts) s = -s;
  r[0] = op("roll", {c.g(), shifts, c.int_list(2)});
  return r;
}
F(tril_bw) { OUT; r[0] = op("tril", {c.g(), c.integer(1)}); return r; }
F(triu_bw) { OUT; r[0] = op("triu", {c.g(), c.integer(1)}); return r; }
F(repeat_bw) {
  OUT;
  const Shape& reps = c.int_list(1);
  Shape self = c.shape(0);
  Shape padded(reps.size() - self.size(), 1);
  padded.insert(padded.end(), self.begin(), self.end());
  Shape split, dims;
  for (size_t i = 0; i < reps.size(); ++i) {
    split.push_back(reps[i]);
    split.push_back(padded[i]);
    dims.push_back(static_cast<int64_t>(2 * i));
  }
  Tensor g = reshape(c.g(), split);
  r[0] = reshape(sum(g, dims, false), self);
  return r;
}

// ---- views
F(reshape_bw) { OUT; r[0] = reshape(c.g(), c.shape(0)); return r; }
F(permute_bw) {
  OUT;
  const Shape& p = c.int_list(1);
  int64_t n = static_cast<int64_t>(p.size());
  Shape inv(n);
  for (int64_t i = 0; i < n; ++i) inv[wrap_dim(p[i], n, "permute")] = i;
  r[0] = op("permute", {c.g(), inv});
  return r;
}
F(transpose_bw) { OUT; r[0] = transpose(c.g(), c.integer(1), c.integer(2)); return r; }
F(t_bw) { OUT; r[0] = op("t", {c.g()}); return r; }
F(expand_bw) { OUT; r[0] = sum_to(c.g(), c.shape(0)); return r; }
F(narrow_bw) {
  OUT;
  const InputMeta& m = c.meta(0);
  int64_t dim = wrap_dim(c.integer(1), static_cast<int64_t>(m.sizes.size()), "narrow");
  int64_t start = c.integer(2), len = c.integer(3);
  if (start < 0) start += m.sizes[dim];
  r[0] = scatter_along(c.g(), m, dim, start, 1, len);
  return r;
}
F(slice_bw) {
  OUT;
  const InputMeta& m = c.meta(0);
  int64_t dim = wrap_dim(c.integer(1), static_cast<int64_t>(m.sizes.size()), "slice");
  int64_t size = m.sizes[dim], step = c.integer(4);
  int64_t start = c.none(2) ? 0 : c.integer(2), end = c.none(3) ? size : c.integer(3);
  if (start < 0) start += size;
  if (end < 0) end += size;
  start = std::clamp<int64_t>(start, 0, size);
  end = std::clamp<int64_t>(end, start, size);
  int64_t count = (end - start + step - 1) / step;  // positions start, start + step, ... below end
  if (count == size) { r[0] = c.g(); return r; }
  r[0] = scatter_along(c.g(), m, dim, start, step, count);
  return r;
}
F(select_bw) {
  OUT;
  const InputMeta& m = c.meta(0);
  int64_t dim = wrap_dim(c.integer(1), static_cast<int64_t>(m.sizes.size()), "select");
  int64_t idx = c.integer(2);
  if (idx < 0) idx += m.sizes[dim];
  r[0] = scatter_along(unsqueeze(c.g(), dim), m, dim, idx, 1, 1);
  return r;
}
F(unsqueeze_bw) { OUT; r[0] = reshape(c.g(), c.shape(0)); return r; }
F(split_bw) {
  // split / split_with_sizes / chunk / unbind: concatenate the outputs' gradients.
  OUT;
  const InputMeta& m = c.meta(0);
  int64_t nd = static_cast<int64_t>(m.sizes.size());
  bool is_unbind = std::string(c.node.def->op) == "unbind";
  int64_t dim = wrap_dim(c.integer(is_unbind ? 1 : 2), nd, "split");
  TL parts;
  for (size_t k = 0; k < c.node.input_meta.size(); ++k) {
    Tensor gk = c.g(k);
    parts.push_back(is_unbind ? unsqueeze(gk, dim) : gk);
  }
  r[0] = parts.empty() ? zeros_of(m) : op("cat", {parts, dim});
  return r;
}
F(diagonal_bw) {
  OUT;
  const InputMeta& m = c.meta(0);
  Tensor z = zeros_of(m);
  Tensor view = op("diagonal", {z, c.integer(1), c.integer(2), c.integer(3)});
  call_op("copy_", {view, c.g()});
  r[0] = z;
  return r;
}
F(as_strided_bw) {
  OUT;
  Tensor x = c.arg(0), g = c.g();
  const Shape& size = c.int_list(1);
  const Shape& stride = c.int_list(2);
  int64_t offset = c.none(3) ? x.storage_offset() : c.integer(3);
  if (size == x.sizes() && stride == x.strides() && offset == x.storage_offset()) { r[0] = g; return r; }
  VBT_CHECK_KIND(ErrorKind::NotImplemented, x.is_contiguous(),
                 "the derivative of as_strided on a non-contiguous input is not implemented");
  // storage position of every output element, relative to the (contiguous) input
  int64_t n = shape_numel(size);
  Tensor pos = empty(Shape{n}, ScalarType::Int64);
  int64_t* p = pos.data<int64_t>();
  Shape ix(size.size(), 0);
  for (int64_t i = 0; i < n; ++i) {
    int64_t off = offset - x.storage_offset();
    for (size_t d = 0; d < size.size(); ++d) off += ix[d] * stride[d];
    p[i] = off;
    for (int64_t d = static_cast<int64_t>(size.size()) - 1; d >= 0; --d) {
      if (++ix[d] < size[d]) break;
      ix[d] = 0;
    }
  }
  Tensor flat = zeros(Shape{x.numel()}, x.dtype(), x.device());
  flat = op("index_put_", {flat, TL{on_device(pos, x.device())}, Shape{0}, reshape(g, Shape{-1}), true});
  r[0] = reshape(flat, x.sizes());
  return r;
}
F(masked_select_bw) {
  OUT;
  Tensor mask = c.arg(1), g = c.g();
  Shape b = broadcast_shapes(c.shape(0), mask.sizes(), "masked_select");
  Tensor nz = op("nonzero", {expand(mask, b)});
  TL idx;
  Shape dims;
  for (int64_t k = 0; k < static_cast<int64_t>(b.size()); ++k) {
    idx.push_back(op("select", {nz, int64_t(1), k}));
    dims.push_back(k);
  }
  Tensor z = zeros(b, c.meta(0).dtype, c.meta(0).device);
  r[0] = b.empty() ? where(mask, g, num(0.0)) : op("index_put_", {z, idx, dims, g, false});
  return r;
}
F(movedim_bw) { OUT; r[0] = op("movedim", {c.g(), c.int_list(2), c.int_list(1)}); return r; }
F(squeeze_bw) { OUT; r[0] = reshape(c.g(), c.shape(0)); return r; }

constexpr uint32_t A0 = 1u << 0, A1 = 1u << 1, A2 = 1u << 2, A3 = 1u << 3;

}  // namespace

// The formula table: op, node name, saved arguments (bit mask), save outputs, formula.
const std::vector<CompositeDef>& composite_table() {
  static const std::vector<CompositeDef> table = {{"matmul", matmul_composite}};
  return table;
}

const std::vector<FormulaDef>& formula_table() {
  static const std::vector<FormulaDef> table = {
      {"copy_", "CopyBackwards", 0, false, copy_bw},
      {"fill_", "FillBackward0", 0, false, overwrite_bw},
      {"zero_", "ZeroBackward0", 0, false, overwrite_bw},
      {"normal_", "NormalBackward0", 0, false, overwrite_bw},
      {"uniform_", "UniformBackward0", 0, false, overwrite_bw},
      {"to_dtype", "ToCopyBackward0", 0, false, identity_bw},
      {"contiguous", "CloneBackward0", 0, false, identity_bw},
      {"clone", "CloneBackward0", 0, false, identity_bw},
      {"add", "AddBackward0", 0, false, add_bw},
      {"sub", "SubBackward0", 0, false, sub_bw},
      {"mul", "MulBackward0", A0 | A1, false, mul_bw},
      {"div", "DivBackward0", A0 | A1, false, div_bw},
      {"remainder", "RemainderBackward0", A0 | A1, false, remainder_bw},
      {"fmod", "FmodBackward0", A0 | A1, false, fmod_bw},
      {"maximum", "MaximumBackward0", A0 | A1, false, maximum_bw},
      {"minimum", "MinimumBackward0", A0 | A1, false, minimum_bw},
      {"atan2", "Atan2Backward0", A0 | A1, false, atan2_bw},
      {"pow", "PowBackward1", A0 | A1, true, pow_bw},
      {"where", "WhereBackward0", A0, false, where_bw},
      {"clamp", "ClampBackward0", A0 | A1 | A2, false, clamp_bw},
      {"lerp", "LerpBackward1", A0 | A1 | A2, false, lerp_bw},
      {"addcmul", "AddcmulBackward0", A1 | A2, false, addcmul_bw},
      {"addcdiv", "AddcdivBackward0", A1 | A2, false, addcdiv_bw},
      {"exp", "ExpBackward0", 0, true, exp_bw},
      {"exp2", "Exp2Backward0", 0, true, exp2_bw},
      {"log", "LogBackward0", A0, false, log_bw},
      {"log2", "Log2Backward0", A0, false, log2_bw},
      {"log10", "Log10Backward0", A0, false, log10_bw},
      {"log1p", "Log1PBackward0", A0, false, log1p_bw},
      {"expm1", "Expm1Backward0", 0, true, expm1_bw},
      {"sqrt", "SqrtBackward0", 0, true, sqrt_bw},
      {"rsqrt", "RsqrtBackward0", 0, true, rsqrt_bw},
      {"reciprocal", "ReciprocalBackward0", 0, true, reciprocal_bw},
      {"sin", "SinBackward0", A0, false, sin_bw},
      {"cos", "CosBackward0", A0, false, cos_bw},
      {"tan", "TanBackward0", 0, true, tan_bw},
      {"asin", "AsinBackward0", A0, false, asin_bw},
      {"acos", "AcosBackward0", A0, false, acos_bw},
      {"atan", "AtanBackward0", A0, false, atan_bw},
      {"sinh", "SinhBackward0", A0, false, sinh_bw},
      {"cosh", "CoshBackward0", A0, false, cosh_bw},
      {"tanh", "TanhBackward0", 0, true, tanh_bw},
      {"sigmoid", "SigmoidBackward0", 0, true, sigmoid_bw},
      {"silu", "SiluBackward0", A0, false, silu_bw},
      {"erf", "ErfBackward0", A0, false, erf_bw},
      {"erfc", "ErfcBackward0", A0, false, erfc_bw},
      {"neg", "NegBackward0", 0, false, neg_bw},
      {"abs", "AbsBackward0", A0, false, abs_bw},
      {"sign", "SignBackward0", 0, false, zero_bw},
      {"relu", "ReluBackward0", 0, true, relu_bw},
      {"floor", "FloorBackward0", 0, false, zero_bw},
      {"ceil", "CeilBackward0", 0, false, zero_bw},
      {"trunc", "TruncBackward0", 0, false, zero_bw},
      {"round", "RoundBackward0", 0, false, zero_bw},
      {"frac", "FracBackward0", 0, false, frac_bw},
      {"square", "PowBackward0", A0, false, square_bw},
      {"gelu", "GeluBackward0", A0, false, gelu_bw},
      {"softplus", "SoftplusBackward0", A0, false, softplus_bw},
      {"nan_to_num", "NanToNumBackward0", A0, false, nan_to_num_bw},
      {"sum", "SumBackward1", 0, false, sum_bw},
      {"mean", "MeanBackward1", 0, false, mean_bw},
      {"prod", "ProdBackward1", A0, true, prod_bw},
      {"amax", "AmaxBackward0", A0, true, amax_bw},
      {"amin", "AminBackward0", A0, true, amin_bw},
      {"max_dim", "MaxBackward0", 0, true, maxmin_dim_bw},
      {"min_dim", "MinBackward0", 0, true, maxmin_dim_bw},
      {"var", "VarBackward0", A0, false, var_bw},
      {"std", "StdBackward0", A0, true, std_bw},
      {"norm", "NormBackward1", A0, true, norm_bw},
      {"logsumexp", "LogsumexpBackward0", A0, true, logsumexp_bw},
      {"cumsum", "CumsumBackward0", 0, false, cumsum_bw},
      {"cumprod", "CumprodBackward0", A0, true, cumprod_bw},
      {"softmax", "SoftmaxBackward0", 0, true, softmax_bw},
      {"log_softmax", "LogSoftmaxBackward0", 0, true, log_softmax_bw},
      {"_fused_cross_entropy", "NllLossBackward0", A0 | A1, true, fused_cross_entropy_bw},
      {"_fused_layer_norm_fwd", "NativeLayerNormBackward0", A0 | A2, true, fused_layer_norm_bw},
      {"mm", "MmBackward0", A0 | A1, false, mm_bw},
      {"bmm", "BmmBackward0", A0 | A1, false, bmm_bw},
      {"matmul", "MmBackward0", A0 | A1, false, matmul_bw},
      {"addmm", "AddmmBackward0", A1 | A2, false, addmm_bw},
      {"baddbmm", "BaddbmmBackward0", A1 | A2, false, baddbmm_bw},
      {"linear", "AddmmBackward0", A0 | A1, false, linear_bw},
      {"outer", "OuterBackward0", A0 | A1, false, outer_bw},
      {"dot", "DotBackward0", A0 | A1, false, dot_bw},
      {"index_select", "IndexSelectBackward0", A2, false, index_select_bw},
      {"gather", "GatherBackward0", A2, false, gather_bw},
      {"scatter", "ScatterBackward0", A2, false, scatter_bw},
      {"scatter_add", "ScatterAddBackward0", A2, false, scatter_add_bw},
      {"index_add", "IndexAddBackward0", A2, false, index_add_bw},
      {"masked_fill", "MaskedFillBackward0", A1, false, masked_fill_bw},
      {"index", "IndexBackward0", A1, false, index_bw},
      {"index_put_", "IndexPutBackward0", A1, false, index_put_bw},
      {"embedding", "EmbeddingBackward0", A1, false, embedding_bw},
      {"take_along_dim", "TakeAlongDimBackward0", A1, false, take_along_dim_bw},
      {"cat", "CatBackward0", 0, false, cat_bw},
      {"stack", "StackBackward0", 0, false, stack_bw},
      {"flip", "FlipBackward0", 0, false, flip_bw},
      {"roll", "RollBackward0", 0, false, roll_bw},
      {"tril", "TrilBackward0", 0, false, tril_bw},
      {"triu", "TriuBackward0", 0, false, triu_bw},
      {"repeat", "RepeatBackward0", 0, false, repeat_bw},
      {"view", "ViewBackward0", 0, false, reshape_bw},
      {"reshape", "ViewBackward0", 0, false, reshape_bw},
      {"flatten", "ViewBackward0", 0, false, reshape_bw},
      {"unflatten", "ViewBackward0", 0, false, reshape_bw},
      {"permute", "PermuteBackward0", 0, false, permute_bw},
      {"transpose", "TransposeBackward0", 0, false, transpose_bw},
      {"t", "TBackward0", 0, false, t_bw},
      {"expand", "ExpandBackward0", 0, false, expand_bw},
      {"narrow", "NarrowBackward0", 0, false, narrow_bw},
      {"slice", "SliceBackward0", 0, false, slice_bw},
      {"select", "SelectBackward0", 0, false, select_bw},
      {"squeeze", "SqueezeBackward0", 0, false, squeeze_bw},
      {"unsqueeze", "UnsqueezeBackward0", 0, false, unsqueeze_bw},
      {"split", "SplitBackward0", 0, false, split_bw},
      {"split_with_sizes", "SplitWithSizesBackward0", 0, false, split_bw},
      {"chunk", "SplitBackward0", 0, false, split_bw},
      {"unbind", "UnbindBackward0", 0, false, split_bw},
      {"diagonal", "DiagonalBackward0", 0, false, diagonal_bw},
      {"movedim", "PermuteBackward0", 0, false, movedim_bw},
      {"as_strided", "AsStridedBackward0", A0, false, as_strided_bw},
      {"masked_select", "MaskedSelectBackward0", A1, false, masked_select_bw},
  };
  return table;
}

// Ops whose outputs never carry a gradient (integer/bool results, factories, random draws).
const std::vector<std::string>& nondiff_table() {
  static const std::vector<std::string> names = {
      "item", "empty", "zeros", "ones", "full", "arange", "linspace", "eye", "rand", "randn", "randint", "randperm",
      "bernoulli", "eq", "ne", "lt", "le", "gt", "ge", "logical_and",
      "logical_or", "logical_xor", "bitwise_and", "bitwise_or", "bitwise_xor", "isnan", "isinf", "isfinite",
      "logical_not", "bitwise_not", "argmax", "argmin", "all", "any", "nonzero", "one_hot"};
  return names;
}

// ---- BwCtx / FormulaNode ------------------------------------------------------------------------

std::vector<Tensor> BwCtx::arg_list(size_t i) const {
  std::vector<Tensor> out;
  int s = node.arg_slot.at(i);
  for (int k = 0; k < node.arg_nslots.at(i); ++k) out.push_back(node.saved.at(s + k).unpack(&node));
  return out;
}

double BwCtx::real(size_t i) const { return scalar_of(node.args.at(i)); }

Tensor BwCtx::g(size_t k) {
  if (k >= grads.size()) grads.resize(k + 1);
  if (!grads[k].defined()) grads[k] = zeros_of(node.input_meta.at(k));
  return grads[k];
}

std::vector<Tensor> FormulaNode::apply(std::vector<Tensor>&& grads) {
  bool any = false;
  for (const Tensor& g : grads) any = any || g.defined();
  if (!any) return std::vector<Tensor>(next_edges.size());
  BwCtx ctx{*this, std::move(grads)};
  std::vector<Tensor> r = def->fn(ctx);
  r.resize(next_edges.size());
  for (size_t s = 0; s < r.size(); ++s) {
    if (!next_edges[s].valid()) { r[s] = Tensor(); continue; }
    if (!r[s].defined()) continue;
    const InputMeta& m = slot_meta[s];
    if (r[s].sizes() != m.sizes) r[s] = sum_to(r[s], m.sizes);
    if (r[s].dtype() != m.dtype) r[s] = cast(r[s], m.dtype);
  }
  return r;
}

void FormulaNode::release_variables() {
  for (auto& s : saved)
    if (s.defined()) s.reset();
  for (auto& s : saved_out)
    if (s.defined()) s.reset();
}

}  // namespace vbt::autograd
