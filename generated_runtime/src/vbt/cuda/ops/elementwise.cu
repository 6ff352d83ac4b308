// The one generic elementwise CUDA kernel: a grid-stride loop over the linear index of a LoopGeometry
// (TensorIterator's coalesced shape and byte strides; the innermost dim first, so neighbouring threads
// touch neighbouring elements) whose functor reads the operands at their offsets. Every elementwise op
// and the strided copy/cast are instantiations of it (loops.h).
#include <cmath>

#include "device_types.cuh"
#include "loops.h"

namespace vbt::cuda::ops {

namespace {

template <int NT, typename F>
__global__ void elementwise_kernel(LoopGeometry g, F f) {
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < g.numel; i += step) {
    int64_t off[NT];
#pragma unroll
    for (int k = 0; k < NT; ++k) off[k] = 0;
    int64_t r = i;
    for (int d = 0; d < g.ndim; ++d) {
      const int64_t sz = g.sizes[d];
      const int64_t idx = r % sz;
      r /= sz;
#pragma unroll
      for (int k = 0; k < NT; ++k) off[k] += idx * g.strides[k][d];
    }
    f(g.data, off);
  }
}

template <int NT, typename F>
cudaError_t launch(const LoopGeometry& g, F f, cudaStream_t stream) {
  if (g.numel == 0) return cudaSuccess;
  if (g.ntensors != NT) return cudaErrorInvalidValue;
  const int threads = 256;
  int64_t blocks = (g.numel + threads - 1) / threads;
  if (blocks > 65536) blocks = 65536;
  elementwise_kernel<NT><<<static_cast<unsigned>(blocks), threads, 0, stream>>>(g, f);
  return cudaGetLastError();
}

template <typename T> __device__ __forceinline__ T load(const char* p) { return *reinterpret_cast<const T*>(p); }
template <typename T> __device__ __forceinline__ void store(char* p, T v) { *reinterpret_cast<T*>(p) = v; }

template <typename To, typename Ti, typename Op> struct UnaryF {
  Op op;
  __device__ void operator()(char* const* d, const int64_t* off) const {
    store<To>(d[0] + off[0], cvt<To>(op(up(load<Ti>(d[1] + off[1])))));
  }
};
template <typename To, typename Ti, typename Op> struct BinaryF {
  Op op;
  __device__ void operator()(char* const* d, const int64_t* off) const {
    store<To>(d[0] + off[0], cvt<To>(op(up(load<Ti>(d[1] + off[1])), up(load<Ti>(d[2] + off[2])))));
  }
};
template <typename T> struct WhereF {
  __device__ void operator()(char* const* d, const int64_t* off) const {
    store<T>(d[0] + off[0], load<bool>(d[1] + off[1]) ? load<T>(d[2] + off[2]) : load<T>(d[3] + off[3]));
  }
};
template <typename T> struct FillF {
  double v;
  int64_t iv;
  __device__ void operator()(char* const* d, const int64_t* off) const {
    if constexpr (std::is_integral_v<T>) store<T>(d[0] + off[0], cvt<T>(iv));
    else store<T>(d[0] + off[0], cvt<T>(v));
  }
};

// ---- op functors (A: the compute type)
struct Ident { template <typename A> __device__ A operator()(A x) const { return x; } };
struct NegOp { template <typename A> __device__ A operator()(A x) const { return -x; } };
struct AbsOp {
  template <typename A> __device__ A operator()(A x) const {
    if constexpr (std::is_unsigned_v<A>) return x;
    else return x < A(0) ? A(-x) : x;
  }
};
struct ReluOp {
  template <typename A> __device__ A operator()(A x) const { return is_nan(x) ? x : (x > A(0) ? x : A(0)); }
};
#define VBT_FLOAT_FN(Name, fexpr, dexpr)                                   \
  struct Name {                                                            \
    __device__ float operator()(float x) const { return fexpr; }           \
    __device__ double operator()(double x) const { return dexpr; }         \
  };
VBT_FLOAT_FN(ExpOp, expf(x), exp(x))
VBT_FLOAT_FN(LogOp, logf(x), log(x))
VBT_FLOAT_FN(SqrtOp, sqrtf(x), sqrt(x))
VBT_FLOAT_FN(SigmoidOp, 1.0f / (1.0f + expf(-x)), 1.0 / (1.0 + exp(-x)))
VBT_FLOAT_FN(TanhOp, tanhf(x), tanh(x))
VBT_FLOAT_FN(GeluOp, 0.5f * x * (1.0f + erff(x * 0.70710678118654752f)), 0.5 * x * (1.0 + erf(x * 0.70710678118654752)))
VBT_FLOAT_FN(GeluTanhOp, 0.5f * x * (1.0f + tanhf(0.79788456080286536f * (x + 0.044715f * x * x * x))),
             0.5 * x * (1.0 + tanh(0.79788456080286536 * (x + 0.044715 * x * x * x))))
VBT_FLOAT_FN(SiluOp, x / (1.0f + expf(-x)), x / (1.0 + exp(-x)))
VBT_FLOAT_FN(SinOp, sinf(x), sin(x))
VBT_FLOAT_FN(CosOp, cosf(x), cos(x))
VBT_FLOAT_FN(RsqrtOp, rsqrtf(x), rsqrt(x))
VBT_FLOAT_FN(ReciprocalOp, 1.0f / x, 1.0 / x)
#undef VBT_FLOAT_FN
struct SquareOp { template <typename A> __device__ A operator()(A x) const { return x * x; } };

struct AddOp {
  double a; int64_t ia;
  template <typename A> __device__ A operator()(A x, A y) const {
    if constexpr (std::is_floating_point_v<A>) return x + static_cast<A>(a) * y;
    else return static_cast<A>(x + static_cast<A>(ia) * y);
  }
};
struct SubOp {
  double a; int64_t ia;
  template <typename A> __device__ A operator()(A x, A y) const {
    if constexpr (std::is_floating_point_v<A>) return x - static_cast<A>(a) * y;
    else return static_cast<A>(x - static_cast<A>(ia) * y);
  }
};
struct MulOp { template <typename A> __device__ A operator()(A x, A y) const { return static_cast<A>(x * y); } };
struct DivOp { template <typename A> __device__ A operator()(A x, A y) const { return x / y; } };
struct DivTruncOp {
  template <typename A> __device__ A operator()(A x, A y) const {
    if constexpr (std::is_floating_point_v<A>) return trunc(x / y);
    else return y == A(0) ? A(0) : static_cast<A>(x / y);
  }
};
struct DivFloorOp {
  template <typename A> __device__ A operator()(A x, A y) const {
    if constexpr (std::is_floating_point_v<A>) return floor(x / y);
    else {
      if (y == A(0)) return A(0);
      A q = static_cast<A>(x / y);
      if constexpr (std::is_signed_v<A>) {
        if ((x % y != 0) && ((x < 0) != (y < 0))) q = static_cast<A>(q - 1);
      }
      return q;
    }
  }
};
struct MaxOp {
  template <typename A> __device__ A operator()(A x, A y) const { return is_nan(x) ? x : is_nan(y) ? y : (x > y ? x : y); }
};
struct MinOp {
  template <typename A> __device__ A operator()(A x, A y) const { return is_nan(x) ? x : is_nan(y) ? y : (x < y ? x : y); }
};
struct EqOp { template <typename A> __device__ bool operator()(A x, A y) const { return x == y; } };
struct NeOp { template <typename A> __device__ bool operator()(A x, A y) const { return x != y; } };
struct LtOp { template <typename A> __device__ bool operator()(A x, A y) const { return x < y; } };
struct LeOp { template <typename A> __device__ bool operator()(A x, A y) const { return x <= y; } };
struct GtOp { template <typename A> __device__ bool operator()(A x, A y) const { return x > y; } };
struct GeOp { template <typename A> __device__ bool operator()(A x, A y) const { return x >= y; } };

template <bool float_only, typename Op> cudaError_t unary_same(int dt, const LoopGeometry& g, Op op, cudaStream_t s) {
  auto f = [&](auto tag) {
    using T = typename decltype(tag)::type;
    return launch<2>(g, UnaryF<T, T, Op>{op}, s);
  };
  if constexpr (float_only) return dispatch_float(dt, f);
  else return dispatch_numeric(dt, f);
}
template <bool float_only, typename Op> cudaError_t binary_same(int dt, const LoopGeometry& g, Op op, cudaStream_t s) {
  auto f = [&](auto tag) {
    using T = typename decltype(tag)::type;
    return launch<3>(g, BinaryF<T, T, Op>{op}, s);
  };
  if constexpr (float_only) return dispatch_float(dt, f);
  else return dispatch_numeric(dt, f);
}
template <typename Op> cudaError_t compare(int in_dt, const LoopGeometry& g, Op op, cudaStream_t s) {
  return dispatch_all(in_dt, [&](auto tag) {
    using T = typename decltype(tag)::type;
    return launch<3>(g, BinaryF<bool, T, Op>{op}, s);
  });
}

}  // namespace

cudaError_t launch_elementwise(Ew op, int out_dtype, int in_dtype, const LoopGeometry& g, EwScalars sc,
                               cudaStream_t s) {
  switch (op) {
    case Ew::Copy:
      return dispatch_all(out_dtype, [&](auto to) {
        using To = typename decltype(to)::type;
        return dispatch_all(in_dtype, [&](auto ti) {
          using Ti = typename decltype(ti)::type;
          return launch<2>(g, UnaryF<To, Ti, Ident>{Ident{}}, s);
        });
      });
    case Ew::Neg: return unary_same<false>(out_dtype, g, NegOp{}, s);
    case Ew::Abs: return unary_same<false>(out_dtype, g, AbsOp{}, s);
    case Ew::Relu: return unary_same<false>(out_dtype, g, ReluOp{}, s);
    case Ew::Square: return unary_same<false>(out_dtype, g, SquareOp{}, s);
    case Ew::Exp: return unary_same<true>(out_dtype, g, ExpOp{}, s);
    case Ew::Log: return unary_same<true>(out_dtype, g, LogOp{}, s);
    case Ew::Sqrt: return unary_same<true>(out_dtype, g, SqrtOp{}, s);
    case Ew::Sigmoid: return unary_same<true>(out_dtype, g, SigmoidOp{}, s);
    case Ew::Tanh: return unary_same<true>(out_dtype, g, TanhOp{}, s);
    case Ew::Gelu: return unary_same<true>(out_dtype, g, GeluOp{}, s);
    case Ew::GeluTanh: return unary_same<true>(out_dtype, g, GeluTanhOp{}, s);
    case Ew::Silu: return unary_same<true>(out_dtype, g, SiluOp{}, s);
    case Ew::Sin: return unary_same<true>(out_dtype, g, SinOp{}, s);
    case Ew::Cos: return unary_same<true>(out_dtype, g, CosOp{}, s);
    case Ew::Rsqrt: return unary_same<true>(out_dtype, g, RsqrtOp{}, s);
    case Ew::Reciprocal: return unary_same<true>(out_dtype, g, ReciprocalOp{}, s);
    case Ew::Add: return binary_same<false>(out_dtype, g, AddOp{sc.alpha, sc.ialpha}, s);
    case Ew::Sub: return binary_same<false>(out_dtype, g, SubOp{sc.alpha, sc.ialpha}, s);
    case Ew::Mul: return binary_same<false>(out_dtype, g, MulOp{}, s);
    case Ew::Div: return binary_same<true>(out_dtype, g, DivOp{}, s);
    case Ew::DivTrunc: return binary_same<false>(out_dtype, g, DivTruncOp{}, s);
    case Ew::DivFloor: return binary_same<false>(out_dtype, g, DivFloorOp{}, s);
    case Ew::Maximum: return binary_same<false>(out_dtype, g, MaxOp{}, s);
    case Ew::Minimum: return binary_same<false>(out_dtype, g, MinOp{}, s);
    case Ew::Eq: return compare(in_dtype, g, EqOp{}, s);
    case Ew::Ne: return compare(in_dtype, g, NeOp{}, s);
    case Ew::Lt: return compare(in_dtype, g, LtOp{}, s);
    case Ew::Le: return compare(in_dtype, g, LeOp{}, s);
    case Ew::Gt: return compare(in_dtype, g, GtOp{}, s);
    case Ew::Ge: return compare(in_dtype, g, GeOp{}, s);
    case Ew::Where:
      return dispatch_all(out_dtype, [&](auto tag) {
        using T = typename decltype(tag)::type;
        return launch<4>(g, WhereF<T>{}, s);
      });
    case Ew::Fill:
      return dispatch_all(out_dtype, [&](auto tag) {
        using T = typename decltype(tag)::type;
        return launch<1>(g, FillF<T>{sc.alpha, sc.ialpha}, s);
      });
  }
  return cudaErrorInvalidValue;
}

}  // namespace vbt::cuda::ops
