// The generic elementwise CUDA kernel: a grid-stride loop over the linear index of a LoopGeometry
// (TensorIterator's coalesced shape and byte strides; the innermost dim first, so neighbouring threads
// touch neighbouring elements) whose functor reads the operands at their offsets. Every elementwise op
// and the strided copy/cast are instantiations of it (loops.h); unary and binary ops over dense operands
// take the vectorised contiguous path of VecNote instead.
#include <cmath>

#include "device_types.cuh"
#include "loops.h"
#include "pack_loops.cuh"

namespace vbt::cuda::ops {

namespace {

// Idx: the type of the index arithmetic, uint32_t when numel fits (32-bit division is several times cheaper
// than 64-bit), int64_t otherwise; offsets are always int64.
template <int NT, typename Idx, typename F>
__global__ void elementwise_kernel(LoopGeometry g, F f) {
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < g.numel; i += step) {
    int64_t off[NT];
    if (g.ndim == 1) {  // one (coalesced) dim: no index division
#pragma unroll
      for (int k = 0; k < NT; ++k) off[k] = i * g.strides[k][0];
    } else {
#pragma unroll
      for (int k = 0; k < NT; ++k) off[k] = 0;
      Idx r = static_cast<Idx>(i);
      for (int d = 0; d < g.ndim; ++d) {
        const Idx sz = static_cast<Idx>(g.sizes[d]);
        const Idx idx = r % sz;
        r /= sz;
#pragma unroll
        for (int k = 0; k < NT; ++k) off[k] += static_cast<int64_t>(idx) * g.strides[k][d];
      }
    }
    f(g.data, off);
  }
}

// ---- VecNote: the contiguous fast path of unary and binary functors (UnaryF/BinaryF: kVecInputs, calc()).
// When the loop is one dim (or two with a dense output, see below), the work is cut into packs of
// V = 16 / sizeof(input) neighbouring elements (one 16-byte vector for every dtype). Two kernels:
// * contig_fast_kernel, when every input is dense or a broadcast scalar (stride 0) and every pointer is aligned to
//   its pack (the common case): packs go in chunks of kContigUnroll * kContigThreads, one chunk per block, no
//   loop; thread t handles packs t and t + kContigThreads of its chunk and issues every load of both before
//   computing and storing any (several loads in flight per thread, which a memory-bound kernel needs). A scalar
//   input is loaded once per thread. An H200 run of tests/gpu/microbench/elementwise_bench.cu (2^28 float32) put
//   this one-pass shape at 97-103% of the cudaMemcpyAsync bandwidth for copy/add/relu/exp/mul-by-scalar/gelu,
//   against 76-93% for the grid-stride loop below (one load in flight per thread and input, and at 38-39
//   registers only 6 of its 8 blocks per SM resident: a partial last wave); U = 2 with 128 threads was within a
//   few % of the best shape for every op. A grid over the launch limit (2^31 - 1 blocks) strides over the chunks.
// * contig_kernel otherwise (row/column broadcasts, unaligned pointers): a grid-stride loop of 8 x SM count
//   256-thread blocks, one pack per iteration, 16-byte loads/stores where aligned and element loads otherwise.
// The < V tail elements go to the first threads of block 0. Same functor, same per-element arithmetic as the
// generic loop, so results are bit-identical.
// Broadcasts along one dim of a dense 2-D output (the loop's two coalesced dims: `inner` elements per row) take
// the same path: an input may also be a row vector repeated over the rows (a bias [C] against [N, C]: element i
// reads in[i % inner]) or a column repeated along the rows ([N, 1] against [N, C]: in[i / inner]). When inner is
// a multiple of V a pack never crosses a row: a row vector's pack is one vector load at i0 % inner, a column's
// one element; otherwise (or misaligned) each element computes its own index.
// Pack<T, V> and pack_align: pack_loops.cuh.

template <typename F, typename = void> struct VecInputs { static constexpr int n = 0; };
template <typename F> struct VecInputs<F, std::void_t<decltype(F::kVecInputs)>> {
  static constexpr int n = F::kVecInputs;
};

enum : int { kDense = 0, kScalar = 1, kRowVec = 2, kColVec = 3 };  // how an input of the contiguous path is read
constexpr int kContigThreads = 128;  // threads per block of contig_fast_kernel
constexpr int kContigUnroll = 2;     // packs per thread (all loaded before any is stored)
constexpr int64_t kMaxGridX = 2147483647;

template <typename To, typename Ti> struct ContigArgs {
  To* out;
  const Ti* in[2];
  bool bcast[2];  // mode[k] == kScalar
  int mode[2];
  int64_t n;
  int64_t inner;  // row length of the 2-D case (n for a 1-D loop)
  bool aligned;   // every dense/row-vector pointer aligned to its pack, and inner % V == 0 when a vector broadcasts
};

template <typename Ti> __device__ __forceinline__ int64_t contig_index(int mode, int64_t i, int64_t inner) {
  return mode == kDense ? i : mode == kScalar ? 0 : mode == kRowVec ? i % inner : i / inner;
}

template <int V, int NIN, typename To, typename Ti, typename F>
__global__ void contig_kernel(ContigArgs<To, Ti> c, F f) {
  const int64_t nvec = c.n / V;
  const int64_t tid = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t v = tid; v < nvec; v += step) {
    const int64_t i0 = v * V;
    Ti x[NIN][V];
#pragma unroll
    for (int k = 0; k < NIN; ++k) {
      const int mode = c.mode[k];
      if (c.bcast[k] || (mode == kColVec && c.aligned)) {  // one value for the whole pack
        const Ti s0 = c.in[k][mode == kColVec ? i0 / c.inner : 0];
#pragma unroll
        for (int u = 0; u < V; ++u) x[k][u] = s0;
      } else if (c.aligned) {
        const Pack<Ti, V> p = *reinterpret_cast<const Pack<Ti, V>*>(c.in[k] + (mode == kRowVec ? i0 % c.inner : i0));
#pragma unroll
        for (int u = 0; u < V; ++u) x[k][u] = p.v[u];
      } else if (mode == kDense) {
#pragma unroll
        for (int u = 0; u < V; ++u) x[k][u] = c.in[k][i0 + u];
      } else {
#pragma unroll
        for (int u = 0; u < V; ++u) x[k][u] = c.in[k][contig_index<Ti>(mode, i0 + u, c.inner)];
      }
    }
    Pack<To, V> o;
#pragma unroll
    for (int u = 0; u < V; ++u) {
      if constexpr (NIN == 1) o.v[u] = f.calc(x[0][u]);
      else o.v[u] = f.calc(x[0][u], x[1][u]);
    }
    if (c.aligned) {
      *reinterpret_cast<Pack<To, V>*>(c.out + i0) = o;
    } else {
#pragma unroll
      for (int u = 0; u < V; ++u) c.out[i0 + u] = o.v[u];
    }
  }
  const int64_t t = nvec * V + tid;
  if (t < c.n) {
    const Ti a = c.in[0][contig_index<Ti>(c.mode[0], t, c.inner)];
    if constexpr (NIN == 1) c.out[t] = f.calc(a);
    else c.out[t] = f.calc(a, c.in[1][contig_index<Ti>(c.mode[1], t, c.inner)]);
  }
}

// Blocks for a grid-stride kernel of 256-thread blocks: enough to fill every SM (8 blocks = 2048 threads each),
// fewer when the work is smaller. The SM count is read once per device.
int64_t grid_blocks(int64_t work_items) {
  static int sms[64] = {};
  int dev = 0;
  int64_t cap = 65536;
  if (cudaGetDevice(&dev) == cudaSuccess && dev >= 0 && dev < 64) {
    if (sms[dev] == 0) {
      int v = 0;
      if (cudaDeviceGetAttribute(&v, cudaDevAttrMultiProcessorCount, dev) == cudaSuccess && v > 0) sms[dev] = v;
    }
    if (sms[dev] > 0) cap = static_cast<int64_t>(sms[dev]) * 8;
  }
  int64_t blocks = (work_items + 255) / 256;
  if (blocks < 1) blocks = 1;
  return blocks < cap ? blocks : cap;
}

// The fast variant (every input dense or a broadcast scalar, every pointer aligned to its pack): U packs per
// thread, one pass over the grid. Kept apart from contig_kernel (which also reads row/column broadcasts and
// unaligned data, one pack per iteration of a grid-stride loop) so the unrolled loads carry no mode branches: the
// U = 2 general kernel tripled the compile time of this file (nvcc, ~180 s -> ~540 s on 2 cores).
template <int V, int NIN, typename To, typename Ti, typename F>
__global__ void __launch_bounds__(kContigThreads) contig_fast_kernel(ContigArgs<To, Ti> c, F f) {
  constexpr int U = kContigUnroll;
  const int64_t nvec = c.n / V;
  const int64_t chunk = static_cast<int64_t>(U) * kContigThreads;
  const int64_t nchunks = (nvec + chunk - 1) / chunk;
  Ti s[NIN];  // the broadcast scalars, one load per thread
#pragma unroll
  for (int k = 0; k < NIN; ++k) s[k] = c.bcast[k] ? c.in[k][0] : Ti{};
  for (int64_t ch = blockIdx.x; ch < nchunks; ch += gridDim.x) {  // one pass unless the grid was capped
    const int64_t base = ch * chunk + threadIdx.x;
    Pack<Ti, V> x[NIN][U];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int64_t v = base + static_cast<int64_t>(u) * kContigThreads;
#pragma unroll
      for (int k = 0; k < NIN; ++k)
        if (v < nvec && !c.bcast[k]) x[k][u] = *reinterpret_cast<const Pack<Ti, V>*>(c.in[k] + v * V);
    }
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int64_t v = base + static_cast<int64_t>(u) * kContigThreads;
      if (v >= nvec) continue;
      Pack<To, V> o;
#pragma unroll
      for (int e = 0; e < V; ++e) {
        const Ti a = c.bcast[0] ? s[0] : x[0][u].v[e];
        if constexpr (NIN == 1) o.v[e] = f.calc(a);
        else o.v[e] = f.calc(a, c.bcast[1] ? s[1] : x[1][u].v[e]);
      }
      *reinterpret_cast<Pack<To, V>*>(c.out + v * V) = o;
    }
  }
  const int64_t t = nvec * V + static_cast<int64_t>(blockIdx.x) * kContigThreads + threadIdx.x;
  if (t < c.n) {  // the < V tail
    const Ti a = c.bcast[0] ? s[0] : c.in[0][t];
    if constexpr (NIN == 1) c.out[t] = f.calc(a);
    else c.out[t] = f.calc(a, c.bcast[1] ? s[1] : c.in[1][t]);
  }
}

// Blocks of contig_fast_kernel for n elements in packs of V: one per chunk of kContigUnroll * kContigThreads
// packs (at least one, for the tail), capped at the launch limit (the kernel then strides over the chunks).
template <int V> int64_t contig_blocks(int64_t n) {
  const int64_t chunk = static_cast<int64_t>(kContigUnroll) * kContigThreads;
  int64_t blocks = (n / V + chunk - 1) / chunk;
  if (blocks < 1) blocks = 1;
  return blocks < kMaxGridX ? blocks : kMaxGridX;
}

// Returns true (and the launch status in *err) when g qualifies for the contiguous path of VecNote.
template <int NT, typename F> bool try_contig(const LoopGeometry& g, const F& f, cudaStream_t stream, cudaError_t* err) {
  constexpr int NIN = VecInputs<F>::n;
  if constexpr (NIN == 0 || NIN != NT - 1) {
    return false;
  } else {
    using To = typename F::out_t;
    using Ti = typename F::in_t;
    constexpr int V = sizeof(Ti) >= 16 ? 1 : static_cast<int>(16 / sizeof(Ti));
    if (g.ndim < 1 || g.ndim > 2 || g.strides[0][0] != static_cast<int64_t>(sizeof(To))) return false;
    const int64_t inner = g.sizes[0];
    if (g.ndim == 2 && g.strides[0][1] != inner * static_cast<int64_t>(sizeof(To))) return false;  // dense output
    ContigArgs<To, Ti> c{};
    c.out = reinterpret_cast<To*>(g.data[0]);
    c.n = g.numel;
    c.inner = inner;
    bool aligned = reinterpret_cast<uintptr_t>(g.data[0]) % pack_align<To, V>() == 0;
    bool vec_bcast = false;
    const int64_t es = static_cast<int64_t>(sizeof(Ti));
    for (int k = 0; k < NIN; ++k) {
      const int64_t s0 = g.strides[k + 1][0], s1 = g.ndim == 2 ? g.strides[k + 1][1] : s0 * inner;
      int mode;
      if (s0 == es && s1 == inner * es) mode = kDense;
      else if (s0 == 0 && s1 == 0) mode = kScalar;
      else if (s0 == es && s1 == 0) mode = kRowVec;
      else if (s0 == 0 && s1 == es) mode = kColVec;
      else return false;
      if (g.ndim == 1 && mode != kDense && mode != kScalar) return false;
      c.in[k] = reinterpret_cast<const Ti*>(g.data[k + 1]);
      c.mode[k] = mode;
      c.bcast[k] = mode == kScalar;
      vec_bcast = vec_bcast || mode == kRowVec || mode == kColVec;
      if ((mode == kDense || mode == kRowVec) && reinterpret_cast<uintptr_t>(g.data[k + 1]) % pack_align<Ti, V>() != 0)
        aligned = false;
    }
    if (vec_bcast && inner % V != 0) aligned = false;
    c.aligned = aligned;
    if (aligned && !vec_bcast) {  // every input dense or a scalar: the one-pass kernel
      const int64_t blocks = contig_blocks<V>(g.numel);
      contig_fast_kernel<V, NIN, To, Ti, F><<<static_cast<unsigned>(blocks), kContigThreads, 0, stream>>>(c, f);
    } else {
      const int64_t blocks = grid_blocks(g.numel / V > 0 ? g.numel / V : 1);
      contig_kernel<V, NIN, To, Ti, F><<<static_cast<unsigned>(blocks), 256, 0, stream>>>(c, f);
    }
    *err = cudaGetLastError();
    return true;
  }
}

// The pack loops (pack_loops.cuh): one grid-stride kernel, Body(p, i) moving pack i; 256-thread blocks, at most
// 65536 of them (the kernel strides over the rest), the 32-bit index arithmetic when the pack count fits.
template <typename P, void (*Body)(const P&, int64_t)>
__global__ void __launch_bounds__(256) pack_kernel(P p) {
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < p.npacks; i += step) Body(p, i);
}
template <typename P, void (*Body32)(const P&, int64_t), void (*Body64)(const P&, int64_t)>
cudaError_t launch_packs(const P& p, cudaStream_t stream) {
  int64_t blocks = (p.npacks + 255) / 256;
  if (blocks > 65536) blocks = 65536;
  if (p.npacks <= static_cast<int64_t>(UINT32_MAX)) pack_kernel<P, Body32><<<static_cast<unsigned>(blocks), 256, 0, stream>>>(p);
  else pack_kernel<P, Body64><<<static_cast<unsigned>(blocks), 256, 0, stream>>>(p);
  return cudaGetLastError();
}

// PackCopyNote: a same-dtype copy of rows contiguous in both operands, in 16/8/4-byte packs.
template <typename W> cudaError_t launch_pack_copy_w(const pack_loops::Plan& p, cudaStream_t stream) {
  return launch_packs<pack_loops::Plan, pack_loops::move_pack<W, uint32_t>, pack_loops::move_pack<W, int64_t>>(p, stream);
}
// Returns true (and the launch status in *err) when g takes the pack copy.
bool try_pack_copy(const LoopGeometry& g, int64_t elem, cudaStream_t stream, cudaError_t* err) {
  pack_loops::Plan p;
  if (!pack_loops::plan(g, elem, &p)) return false;
  *err = p.bytes == 16 ? launch_pack_copy_w<uint4>(p, stream)
       : p.bytes == 8  ? launch_pack_copy_w<uint2>(p, stream)
                       : launch_pack_copy_w<unsigned int>(p, stream);
  return true;
}

// PackWhereNote: where(cond, a, b) in packs of 16 bytes of the output along the innermost dim.
template <typename U> cudaError_t launch_pack_where_u(const pack_loops::WherePlan& p, cudaStream_t stream) {
  return launch_packs<pack_loops::WherePlan, pack_loops::where_pack<U, uint32_t>, pack_loops::where_pack<U, int64_t>>(
      p, stream);
}
bool try_pack_where(const LoopGeometry& g, int64_t elem, cudaStream_t stream, cudaError_t* err) {
  pack_loops::WherePlan p;
  if (!pack_loops::plan_where(g, elem, &p)) return false;
  *err = p.elem == 8 ? launch_pack_where_u<uint64_t>(p, stream)
       : p.elem == 4 ? launch_pack_where_u<uint32_t>(p, stream)
       : p.elem == 2 ? launch_pack_where_u<uint16_t>(p, stream)
                     : launch_pack_where_u<uint8_t>(p, stream);
  return true;
}

template <int NT, typename F>
cudaError_t launch(const LoopGeometry& g, F f, cudaStream_t stream) {
  if (g.numel == 0) return cudaSuccess;
  if (g.ntensors != NT) return cudaErrorInvalidValue;
  cudaError_t err = cudaSuccess;
  if (try_contig<NT>(g, f, stream, &err)) return err;
  const int threads = 256;
  int64_t blocks = (g.numel + threads - 1) / threads;
  if (blocks > 65536) blocks = 65536;
  if (g.numel <= static_cast<int64_t>(UINT32_MAX))  // every size divides a linear index < numel
    elementwise_kernel<NT, uint32_t><<<static_cast<unsigned>(blocks), threads, 0, stream>>>(g, f);
  else
    elementwise_kernel<NT, int64_t><<<static_cast<unsigned>(blocks), threads, 0, stream>>>(g, f);
  return cudaGetLastError();
}

template <typename T> __device__ __forceinline__ T load(const char* p) { return *reinterpret_cast<const T*>(p); }
template <typename T> __device__ __forceinline__ void store(char* p, T v) { *reinterpret_cast<T*>(p) = v; }

template <typename To, typename Ti, typename Op> struct UnaryF {
  Op op;
  using out_t = To;
  using in_t = Ti;
  static constexpr int kVecInputs = 1;
  __device__ __forceinline__ To calc(Ti a) const { return cvt<To>(op(up(a))); }
  __device__ void operator()(char* const* d, const int64_t* off) const {
    store<To>(d[0] + off[0], cvt<To>(op(up(load<Ti>(d[1] + off[1])))));
  }
};
template <typename To, typename Ti, typename Op> struct BinaryF {
  Op op;
  using out_t = To;
  using in_t = Ti;
  static constexpr int kVecInputs = 2;
  __device__ __forceinline__ To calc(Ti a, Ti b) const { return cvt<To>(op(up(a), up(b))); }
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
// GeluNote: gelu(x) = x * Phi(x), written exactly as torch's CUDA kernel (ActivationGeluKernel.cu) writes it, in
// the same compute type (float for float/half/bfloat16, double for double): x * 0.5 * (1 + erf(x * M_SQRT1_2)),
// so the results are torch's on CUDA bit for bit (an H200 run of tests/gpu/microbench/elementwise_bench.cu: 0 ulp
// from torch's formula over 2^28 inputs), and it is the cheaper form: the earlier 0.5*x*erfc(-x/sqrt2) (chosen for
// its accuracy in the negative tail, where 1 + erf(x) cancels and gives 0 below x ~ -5.9 instead of ~-1e-8)
// kept the contiguous kernel at 76-84% of the copy bandwidth in every loop shape, this form at 98%.
// No special-value guard: erff/erf(+-inf) are exactly +-1 (CUDA math API), so gelu(-inf) = -inf * 0 = NaN,
// gelu(+inf) = +inf, NaN stays NaN, gelu(-0) = -0 * 1 = -0 and a large negative x gives -0, as in torch.
// The tanh approximation likewise follows torch's expression tree (x * x * x first, kKappa * x_cube added to x,
// kBeta = sqrt(2) * 2/sqrt(pi) * 0.5 rounded to the compute type), so nvcc contracts the same multiply-adds.
VBT_FLOAT_FN(GeluOp, x * 0.5f * (1.0f + erff(x * 0.70710678118654752f)),
             x * 0.5 * (1.0 + erf(x * 0.70710678118654752440)))
VBT_FLOAT_FN(GeluTanhOp, 0.5f * x * (1.0f + tanhf(0.79788456080286536f * (x + 0.044715f * (x * x * x)))),
             0.5 * x * (1.0 + tanh(0.79788456080286537 * (x + 0.044715 * (x * x * x)))))
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
// div trunc of two 16-bit float tensors, as torch's CUDA kernel: the quotient rounded to the storage type T first
// (2.9999 -> 3.0 in bfloat16 -> 3, where the float quotient would truncate to 2).
template <typename T> struct DivTruncStoredOp {
  template <typename A> __device__ A operator()(A x, A y) const { return trunc(static_cast<A>(up(cvt<T>(x / y)))); }
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
// ScalarArithNote: when one operand of mul, div (true, trunc, floor), add or sub is a CPU scalar (a Python number or
// any 0-d CPU tensor) and the dtype is floating, torch.cuda's kernels take the scalar in the compute type A (float
// for float16/bfloat16/float32, double for float64), not rounded to the tensor's dtype first, and divide by it by
// multiplying with its reciprocal 1/s computed in A; div floor goes through fmod with the scalar and 1/s, its floor
// held in the storage type. Not for a CPU scalar dividend (torch.div(s, x)) or comparisons: torch.cuda rounds those
// scalars to the dtype, as the generic path does. These ops do the same arithmetic, so the bits are torch's
// (tests/gpu/scalar_ops_cuda.py asks torch which arithmetic its kernels do and compares; bfloat16 x * 0.7 multiplies
// by 0.7f, not 0.69921875).
struct ScalarArith {  // the scalar and its reciprocal in both compute types, rounded once on the host
  float f, inv_f;
  double d, inv_d;
  static ScalarArith of(double s) { return {static_cast<float>(s), 1.0f / static_cast<float>(s), s, 1.0 / s}; }
  template <typename A> __device__ A v() const {
    if constexpr (std::is_same_v<A, double>) return d; else return f;
  }
  template <typename A> __device__ A inv() const {
    if constexpr (std::is_same_v<A, double>) return inv_d; else return inv_f;
  }
};
struct MulSOp {
  ScalarArith s;
  template <typename A> __device__ A operator()(A x) const { return x * s.v<A>(); }
};
struct DivSOp {
  ScalarArith s;
  template <typename A> __device__ A operator()(A x) const { return x * s.inv<A>(); }
};
struct DivTruncSOp {
  ScalarArith s;
  template <typename A> __device__ A operator()(A x) const { return trunc(x * s.inv<A>()); }
};
template <typename T> struct DivFloorSOp {  // T: the storage type, which holds the floor
  ScalarArith s;
  template <typename A> __device__ A operator()(A x) const {
    const A b = s.v<A>(), inv = s.inv<A>();
    if (b == A(0)) return x * inv;  // x / 0 (inv is an infinity)
    const A mod = fmod(x, b);
    A div = (x - mod) * inv;
    if (mod != A(0) && (b < A(0)) != (mod < A(0))) div -= A(1);
    if (div == A(0)) return copysign(A(0), x * inv);
    A fl = up(cvt<T>(floor(div)));
    if (div - fl > A(0.5)) fl = up(cvt<T>(fl + A(1)));
    return fl;
  }
};
struct AddSOp {  // x + alpha * s, or s + alpha * x (scalar first); sub passes -alpha
  ScalarArith s, alpha;
  bool scalar_first;
  template <typename A> __device__ A operator()(A x) const {
    return scalar_first ? s.v<A>() + alpha.v<A>() * x : x + alpha.v<A>() * s.v<A>();
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
struct LogicalAndOp { template <typename A> __device__ bool operator()(A x, A y) const { return x != A(0) && y != A(0); } };
struct LogicalOrOp { template <typename A> __device__ bool operator()(A x, A y) const { return x != A(0) || y != A(0); } };
struct LogicalXorOp { template <typename A> __device__ bool operator()(A x, A y) const { return (x != A(0)) != (y != A(0)); } };


// softplus as the CPU kernel and torch compute it: linear above the threshold (in units of x * beta)
struct SoftplusOp {
  double beta, threshold;
  __device__ float operator()(float x) const {
    const float b = static_cast<float>(beta), xb = x * b;
    return xb > static_cast<float>(threshold) ? x : log1pf(expf(xb)) / b;
  }
  __device__ double operator()(double x) const {
    const double xb = x * beta;
    return xb > threshold ? x : log1p(exp(xb)) / beta;
  }
};
struct BitAndOp { template <typename A> __device__ A operator()(A x, A y) const { return static_cast<A>(x & y); } };
struct BitOrOp { template <typename A> __device__ A operator()(A x, A y) const { return static_cast<A>(x | y); } };
struct BitXorOp { template <typename A> __device__ A operator()(A x, A y) const { return static_cast<A>(x ^ y); } };
struct BitNotOp {
  template <typename A> __device__ A operator()(A x) const {
    if constexpr (std::is_same_v<A, bool>) return !x;
    else return static_cast<A>(~x);
  }
};
struct NanToNumOp {  // replacements given as doubles, converted to the compute type (as the CPU kernel does)
  double nan, posinf, neginf;
  template <typename A> __device__ A operator()(A x) const {
    if constexpr (std::is_floating_point_v<A>) {
      if (x != x) return static_cast<A>(nan);
      if (isinf(x)) return static_cast<A>(x > A(0) ? posinf : neginf);
    }
    return x;
  }
};

// ---- more functors (the generic kernel above runs them all)
template <typename T, typename Op> struct TernaryF {
  Op op;
  __device__ void operator()(char* const* d, const int64_t* off) const {
    store<T>(d[0] + off[0], cvt<T>(op(up(load<T>(d[1] + off[1])), up(load<T>(d[2] + off[2])), up(load<T>(d[3] + off[3])))));
  }
};
// Nullary ops whose value depends on the element's linear index (the output is contiguous, so the index
// is its byte offset over the item size).
template <typename T, typename Op> struct IndexF {
  Op op;
  __device__ void operator()(char* const* d, const int64_t* off) const {
    store<T>(d[0] + off[0], cvt<T>(op(off[0] / static_cast<int64_t>(sizeof(T)))));
  }
};

// RandomNote: random numbers come from a counter-based generator: element c of a call draws
// mix64(seed ^ mix64(offset + c)) (splitmix64's finaliser), so each element is independent of the launch
// geometry and the result is deterministic for a (seed, offset). The host takes `seed` from the Generator
// (one next_u64() per call). The stream differs from PyTorch's CUDA Philox stream: compare statistics.
__device__ __forceinline__ uint64_t mix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
__device__ __forceinline__ double u01(uint64_t seed, uint64_t ctr) {  // [0, 1) with 53 bits
  return static_cast<double>(mix64(seed ^ mix64(ctr)) >> 11) * (1.0 / 9007199254740992.0);
}
// uniform: u keeps only as many random bits as T's significand holds, so a [0, 1) draw never rounds up to 1
template <typename T> __host__ __device__ constexpr int significand_bits() {
  if constexpr (std::is_same_v<T, __half>) return 11;
  else if constexpr (std::is_same_v<T, __nv_bfloat16>) return 8;
  else if constexpr (std::is_same_v<T, float>) return 24;
  else return 53;
}
template <typename T> struct UniformF {
  double lo, hi; uint64_t seed, offset;
  __device__ void operator()(char* const* d, const int64_t* off) const {
    constexpr int bits = significand_bits<T>();
    const int64_t i = off[0] / static_cast<int64_t>(sizeof(T));
    const uint64_t h = mix64(seed ^ mix64(offset + uint64_t(i)));
    const double u = static_cast<double>(h >> (64 - bits)) * (1.0 / static_cast<double>(uint64_t(1) << bits));
    store<T>(d[0] + off[0], cvt<T>(lo + (hi - lo) * u));
  }
};
struct NormalOp {
  double mean, sd; uint64_t seed, offset;
  __device__ double operator()(int64_t i) const {
    const uint64_t c = 2 * (offset + uint64_t(i));
    const double u1 = 1.0 - u01(seed, c), u2 = u01(seed, c + 1);  // u1 in (0, 1]
    return mean + sd * sqrt(-2.0 * log(u1)) * cospi(2.0 * u2);
  }
};
struct RandintOp {  // low + draw mod range, the range as uint64 (high - low may exceed int64's range)
  int64_t low; uint64_t range, seed, offset;
  __device__ int64_t operator()(int64_t i) const {
    return static_cast<int64_t>(static_cast<uint64_t>(low) + mix64(seed ^ mix64(offset + uint64_t(i))) % range);
  }
};
struct BernoulliOp {
  double p; uint64_t seed, offset;
  __device__ double operator()(int64_t i) const { return u01(seed, offset + uint64_t(i)) < p ? 1.0 : 0.0; }
};
template <typename T> struct BernoulliTF {  // p from operand 1, out of the same dtype
  uint64_t seed, offset;
  __device__ void operator()(char* const* d, const int64_t* off) const {
    const int64_t i = off[0] / static_cast<int64_t>(sizeof(T));
    const double p = static_cast<double>(up(load<T>(d[1] + off[1])));
    store<T>(d[0] + off[0], cvt<T>(u01(seed, offset + uint64_t(i)) < p ? 1.0 : 0.0));
  }
};
template <typename A> struct ArangeOp {
  A start, step;
  __device__ A operator()(int64_t i) const { return static_cast<A>(start + static_cast<A>(i) * step); }
};
struct LinspaceOp {  // torch's symmetric formula: the first half from start, the second from end
  double start, end; int64_t steps;
  __device__ double operator()(int64_t i) const {
    const double step = steps > 1 ? (end - start) / static_cast<double>(steps - 1) : 0.0;
    if (steps == 1) return start;  // torch: a single step is the start
    return i < steps / 2 ? start + step * static_cast<double>(i) : end - step * static_cast<double>(steps - 1 - i);
  }
};
struct EyeOp {
  int64_t m;
  __device__ int64_t operator()(int64_t i) const { return (i / m) == (i % m) ? 1 : 0; }
};
template <typename T> struct TrilF {
  int64_t n, m, k; bool upper;
  __device__ void operator()(char* const* d, const int64_t* off) const {
    const int64_t i = off[0] / static_cast<int64_t>(sizeof(T));
    const int64_t col = i % m, row = (i / m) % n;
    const bool keep = upper ? (col - row >= k) : (col - row <= k);
    store<T>(d[0] + off[0], keep ? load<T>(d[1] + off[1]) : cvt<T>(0));
  }
};
template <typename T> struct GatherF {
  int64_t stride_bytes;
  __device__ void operator()(char* const* d, const int64_t* off) const {
    const int64_t idx = load<int64_t>(d[2] + off[2]);
    store<T>(d[0] + off[0], load<T>(d[1] + off[1] + idx * stride_bytes));
  }
};

#define VBT_FLOAT_FN(Name, fexpr, dexpr)                                   \
  struct Name {                                                            \
    __device__ float operator()(float x) const { return fexpr; }           \
    __device__ double operator()(double x) const { return dexpr; }         \
  };
VBT_FLOAT_FN(Exp2Op, exp2f(x), exp2(x))
VBT_FLOAT_FN(Log2Op, log2f(x), log2(x))
VBT_FLOAT_FN(Log10Op, log10f(x), log10(x))
VBT_FLOAT_FN(Log1pOp, log1pf(x), log1p(x))
VBT_FLOAT_FN(Expm1Op, expm1f(x), expm1(x))
VBT_FLOAT_FN(TanOp, tanf(x), tan(x))
VBT_FLOAT_FN(AsinOp, asinf(x), asin(x))
VBT_FLOAT_FN(AcosOp, acosf(x), acos(x))
VBT_FLOAT_FN(AtanOp, atanf(x), atan(x))
VBT_FLOAT_FN(SinhOp, sinhf(x), sinh(x))
VBT_FLOAT_FN(CoshOp, coshf(x), cosh(x))
VBT_FLOAT_FN(ErfOp, erff(x), erf(x))
VBT_FLOAT_FN(ErfcOp, erfcf(x), erfc(x))
VBT_FLOAT_FN(FracOp, x - truncf(x), x - trunc(x))
#undef VBT_FLOAT_FN
struct SignOp { template <typename A> __device__ A operator()(A x) const { return static_cast<A>((A(0) < x) - (x < A(0))); } };
struct FloorOp { template <typename A> __device__ A operator()(A x) const { if constexpr (std::is_floating_point_v<A>) return floor(x); else return x; } };
struct CeilOp { template <typename A> __device__ A operator()(A x) const { if constexpr (std::is_floating_point_v<A>) return ceil(x); else return x; } };
struct RoundOp { template <typename A> __device__ A operator()(A x) const { if constexpr (std::is_floating_point_v<A>) return rint(x); else return x; } };
struct TruncOp { template <typename A> __device__ A operator()(A x) const { if constexpr (std::is_floating_point_v<A>) return trunc(x); else return x; } };
struct IsNanOp { template <typename A> __device__ bool operator()(A x) const { return is_nan(x); } };
struct IsInfOp {
  template <typename A> __device__ bool operator()(A x) const { if constexpr (std::is_floating_point_v<A>) return isinf(x); else return false; }
};
struct IsFiniteOp {
  template <typename A> __device__ bool operator()(A x) const { if constexpr (std::is_floating_point_v<A>) return isfinite(x); else return true; }
};
struct LogicalNotOp { template <typename A> __device__ bool operator()(A x) const { return x == A(0); } };
struct PowOp {
  template <typename A> __device__ A operator()(A x, A y) const {
    if constexpr (std::is_floating_point_v<A>) return pow(x, y);
    else {
      if constexpr (std::is_signed_v<A>) {
        if (y < 0) return x == A(1) ? A(1) : x == A(-1) ? ((y & 1) ? A(-1) : A(1)) : A(0);
      }
      A r = 1, b = x;
      for (auto e = y; e > 0; e >>= 1) {
        if (e & 1) r = static_cast<A>(r * b);
        b = static_cast<A>(b * b);
      }
      return r;
    }
  }
};
struct Atan2Op { template <typename A> __device__ A operator()(A x, A y) const { return atan2(x, y); } };
struct RemainderOp {
  template <typename A> __device__ A operator()(A x, A y) const {
    if constexpr (std::is_floating_point_v<A>) {
      A r = fmod(x, y);
      if (r != A(0) && ((r < A(0)) != (y < A(0)))) r += y;
      return r;
    } else {
      if (y == A(0)) return A(0);
      A r = static_cast<A>(x % y);
      if constexpr (std::is_signed_v<A>) {
        if (r != 0 && ((r < 0) != (y < 0))) r = static_cast<A>(r + y);
      }
      return r;
    }
  }
};
struct FmodOp {
  template <typename A> __device__ A operator()(A x, A y) const {
    if constexpr (std::is_floating_point_v<A>) return fmod(x, y);
    else return y == A(0) ? A(0) : static_cast<A>(x % y);
  }
};
struct AxpbyOp {
  double a, b; int64_t ia, ib;
  template <typename A> __device__ A operator()(A x, A y) const {
    if constexpr (std::is_floating_point_v<A>) return static_cast<A>(a) * x + static_cast<A>(b) * y;
    else return static_cast<A>(ia * x + ib * y);
  }
};
// torch's lerp: from the nearer end, by |w| < 0.5 (a weight of -0.7 starts from the end), in the compute type
struct LerpOp {
  template <typename A> __device__ A operator()(A s, A e, A w) const {
    return (fabs(w) < A(0.5)) ? s + w * (e - s) : e - (e - s) * (A(1) - w);
  }
};
struct LerpSOp {  // a CPU scalar weight, in the compute type (a 16-bit lerp does not round it to the dtype)
  ScalarArith w;
  template <typename A> __device__ A operator()(A s, A e) const { return LerpOp{}(s, e, w.v<A>()); }
};
struct AddcmulOp {
  double a; int64_t ia;
  template <typename A> __device__ A operator()(A x, A y, A z) const {
    if constexpr (std::is_floating_point_v<A>) return x + static_cast<A>(a) * y * z;
    else return static_cast<A>(x + ia * y * z);
  }
};
struct AddcdivOp {
  double a;
  template <typename A> __device__ A operator()(A x, A y, A z) const { return x + static_cast<A>(a) * (y / z); }
};

template <bool float_only, typename Op> cudaError_t ternary_same(int dt, const LoopGeometry& g, Op op, cudaStream_t s) {
  auto f = [&](auto tag) {
    using T = typename decltype(tag)::type;
    return launch<4>(g, TernaryF<T, Op>{op}, s);
  };
  if constexpr (float_only) return dispatch_float(dt, f);
  else return dispatch_numeric(dt, f);
}
template <typename Op> cudaError_t predicate(int in_dt, const LoopGeometry& g, Op op, cudaStream_t s) {
  return dispatch_all(in_dt, [&](auto tag) {
    using T = typename decltype(tag)::type;
    return launch<2>(g, UnaryF<bool, T, Op>{op}, s);
  });
}
template <typename Op> cudaError_t indexed(int dt, const LoopGeometry& g, Op op, cudaStream_t s) {
  return dispatch_all(dt, [&](auto tag) {
    using T = typename decltype(tag)::type;
    return launch<1>(g, IndexF<T, Op>{op}, s);
  });
}

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
template <typename Op> cudaError_t bitwise_binary(int dt, const LoopGeometry& g, Op op, cudaStream_t s) {
  return dispatch_integral(dt, [&](auto tag) {
    using T = typename decltype(tag)::type;
    return launch<3>(g, BinaryF<T, T, Op>{op}, s);
  });
}
template <typename Op> cudaError_t compare(int in_dt, const LoopGeometry& g, Op op, cudaStream_t s) {
  return dispatch_all(in_dt, [&](auto tag) {
    using T = typename decltype(tag)::type;
    return launch<3>(g, BinaryF<bool, T, Op>{op}, s);
  });
}

constexpr int64_t kDtypeBytes[10] = {1, 1, 1, 2, 4, 8, 2, 2, 4, 8};  // dtype codes Bool..Float64 -> bytes

}  // namespace

cudaError_t launch_elementwise(Ew op, int out_dtype, int in_dtype, const LoopGeometry& g, EwScalars sc,
                               cudaStream_t s) {
  switch (op) {
    case Ew::Copy:
      if (out_dtype == in_dtype && out_dtype >= 0 && out_dtype < 10) {  // a 1-D (dense) loop stays on VecNote's path
        cudaError_t err = cudaSuccess;
        if (try_pack_copy(g, kDtypeBytes[out_dtype], s, &err)) return err;
      }
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
    case Ew::DivTrunc:
      if (sc.n == 1 && out_dtype == 6) return launch<3>(g, BinaryF<__half, __half, DivTruncStoredOp<__half>>{}, s);
      if (sc.n == 1 && out_dtype == 7)
        return launch<3>(g, BinaryF<__nv_bfloat16, __nv_bfloat16, DivTruncStoredOp<__nv_bfloat16>>{}, s);
      return binary_same<false>(out_dtype, g, DivTruncOp{}, s);
    case Ew::DivFloor: return binary_same<false>(out_dtype, g, DivFloorOp{}, s);
    case Ew::MulS: return unary_same<true>(out_dtype, g, MulSOp{ScalarArith::of(sc.alpha)}, s);
    case Ew::DivS: return unary_same<true>(out_dtype, g, DivSOp{ScalarArith::of(sc.alpha)}, s);
    case Ew::DivTruncS: return unary_same<true>(out_dtype, g, DivTruncSOp{ScalarArith::of(sc.alpha)}, s);
    case Ew::DivFloorS:
      return dispatch_float(out_dtype, [&](auto tag) {
        using T = typename decltype(tag)::type;
        return launch<2>(g, UnaryF<T, T, DivFloorSOp<T>>{DivFloorSOp<T>{ScalarArith::of(sc.alpha)}}, s);
      });
    case Ew::AddS:
      return unary_same<true>(out_dtype, g, AddSOp{ScalarArith::of(sc.alpha), ScalarArith::of(sc.beta), sc.n == 1},
                              s);
    case Ew::Maximum: return binary_same<false>(out_dtype, g, MaxOp{}, s);
    case Ew::Minimum: return binary_same<false>(out_dtype, g, MinOp{}, s);
    case Ew::Eq: return compare(in_dtype, g, EqOp{}, s);
    case Ew::Ne: return compare(in_dtype, g, NeOp{}, s);
    case Ew::Lt: return compare(in_dtype, g, LtOp{}, s);
    case Ew::Le: return compare(in_dtype, g, LeOp{}, s);
    case Ew::Gt: return compare(in_dtype, g, GtOp{}, s);
    case Ew::Ge: return compare(in_dtype, g, GeOp{}, s);
    case Ew::LogicalAnd: return compare(in_dtype, g, LogicalAndOp{}, s);
    case Ew::LogicalOr: return compare(in_dtype, g, LogicalOrOp{}, s);
    case Ew::LogicalXor: return compare(in_dtype, g, LogicalXorOp{}, s);
    case Ew::Exp2: return unary_same<true>(out_dtype, g, Exp2Op{}, s);
    case Ew::Log2: return unary_same<true>(out_dtype, g, Log2Op{}, s);
    case Ew::Log10: return unary_same<true>(out_dtype, g, Log10Op{}, s);
    case Ew::Log1p: return unary_same<true>(out_dtype, g, Log1pOp{}, s);
    case Ew::Expm1: return unary_same<true>(out_dtype, g, Expm1Op{}, s);
    case Ew::Tan: return unary_same<true>(out_dtype, g, TanOp{}, s);
    case Ew::Asin: return unary_same<true>(out_dtype, g, AsinOp{}, s);
    case Ew::Acos: return unary_same<true>(out_dtype, g, AcosOp{}, s);
    case Ew::Atan: return unary_same<true>(out_dtype, g, AtanOp{}, s);
    case Ew::Sinh: return unary_same<true>(out_dtype, g, SinhOp{}, s);
    case Ew::Cosh: return unary_same<true>(out_dtype, g, CoshOp{}, s);
    case Ew::Erf: return unary_same<true>(out_dtype, g, ErfOp{}, s);
    case Ew::Erfc: return unary_same<true>(out_dtype, g, ErfcOp{}, s);
    case Ew::Frac: return unary_same<true>(out_dtype, g, FracOp{}, s);
    case Ew::Sign: return unary_same<false>(out_dtype, g, SignOp{}, s);
    case Ew::Floor: return unary_same<false>(out_dtype, g, FloorOp{}, s);
    case Ew::Round: return unary_same<false>(out_dtype, g, RoundOp{}, s);
    case Ew::Ceil: return unary_same<false>(out_dtype, g, CeilOp{}, s);
    case Ew::Trunc: return unary_same<false>(out_dtype, g, TruncOp{}, s);
    case Ew::IsNan: return predicate(in_dtype, g, IsNanOp{}, s);
    case Ew::IsInf: return predicate(in_dtype, g, IsInfOp{}, s);
    case Ew::IsFinite: return predicate(in_dtype, g, IsFiniteOp{}, s);
    case Ew::LogicalNot: return predicate(in_dtype, g, LogicalNotOp{}, s);
    case Ew::Pow: return binary_same<false>(out_dtype, g, PowOp{}, s);
    case Ew::Atan2: return binary_same<true>(out_dtype, g, Atan2Op{}, s);
    case Ew::Remainder: return binary_same<false>(out_dtype, g, RemainderOp{}, s);
    case Ew::Fmod: return binary_same<false>(out_dtype, g, FmodOp{}, s);
    case Ew::Axpby: return binary_same<false>(out_dtype, g, AxpbyOp{sc.alpha, sc.beta, sc.ialpha, sc.ibeta}, s);
    case Ew::Lerp: return ternary_same<true>(out_dtype, g, LerpOp{}, s);
    case Ew::LerpS: return binary_same<true>(out_dtype, g, LerpSOp{ScalarArith::of(sc.alpha)}, s);
    case Ew::Addcmul: return ternary_same<false>(out_dtype, g, AddcmulOp{sc.alpha, sc.ialpha}, s);
    case Ew::Addcdiv: return ternary_same<true>(out_dtype, g, AddcdivOp{sc.alpha}, s);
    case Ew::Arange:
      return dispatch_numeric(out_dtype, [&](auto tag) {
        using T = typename decltype(tag)::type;
        if constexpr (std::is_integral_v<T>) return launch<1>(g, IndexF<T, ArangeOp<int64_t>>{{sc.ialpha, sc.ibeta}}, s);
        else return launch<1>(g, IndexF<T, ArangeOp<double>>{{sc.alpha, sc.beta}}, s);
      });
    case Ew::Linspace: return indexed(out_dtype, g, LinspaceOp{sc.alpha, sc.beta, sc.n}, s);
    case Ew::Eye: return indexed(out_dtype, g, EyeOp{sc.m}, s);
    case Ew::Uniform:
      return dispatch_float(out_dtype, [&](auto tag) {
        using T = typename decltype(tag)::type;
        return launch<1>(g, UniformF<T>{sc.alpha, sc.beta, sc.seed, sc.offset}, s);
      });
    case Ew::Normal:
      return dispatch_float(out_dtype, [&](auto tag) {
        using T = typename decltype(tag)::type;
        return launch<1>(g, IndexF<T, NormalOp>{{sc.alpha, sc.beta, sc.seed, sc.offset}}, s);
      });
    case Ew::Bernoulli: return indexed(out_dtype, g, BernoulliOp{sc.alpha, sc.seed, sc.offset}, s);
    case Ew::BernoulliT:
      return dispatch_float(out_dtype, [&](auto tag) {
        using T = typename decltype(tag)::type;
        return launch<2>(g, BernoulliTF<T>{sc.seed, sc.offset}, s);
      });
    case Ew::Tril:
      return dispatch_all(out_dtype, [&](auto tag) {
        using T = typename decltype(tag)::type;
        return launch<2>(g, TrilF<T>{sc.n, sc.m, sc.k, sc.ialpha != 0}, s);
      });
    case Ew::GatherIdx:
      return dispatch_all(out_dtype, [&](auto tag) {
        using T = typename decltype(tag)::type;
        return launch<3>(g, GatherF<T>{sc.n}, s);
      });
    case Ew::Where:
      if (out_dtype >= 0 && out_dtype < 10) {
        cudaError_t err = cudaSuccess;
        if (try_pack_where(g, kDtypeBytes[out_dtype], s, &err)) return err;
      }
      return dispatch_all(out_dtype, [&](auto tag) {
        using T = typename decltype(tag)::type;
        return launch<4>(g, WhereF<T>{}, s);
      });
    case Ew::Fill:
      return dispatch_all(out_dtype, [&](auto tag) {
        using T = typename decltype(tag)::type;
        return launch<1>(g, FillF<T>{sc.alpha, sc.ialpha}, s);
      });
    case Ew::Softplus: return unary_same<true>(out_dtype, g, SoftplusOp{sc.alpha, sc.beta}, s);
    case Ew::BitAnd: return bitwise_binary(out_dtype, g, BitAndOp{}, s);
    case Ew::BitOr: return bitwise_binary(out_dtype, g, BitOrOp{}, s);
    case Ew::BitXor: return bitwise_binary(out_dtype, g, BitXorOp{}, s);
    case Ew::BitNot:
      return dispatch_integral(out_dtype, [&](auto tag) {
        using T = typename decltype(tag)::type;
        return launch<2>(g, UnaryF<T, T, BitNotOp>{BitNotOp{}}, s);
      });
    case Ew::NanToNum:
      return dispatch_all(out_dtype, [&](auto tag) {
        using T = typename decltype(tag)::type;
        return launch<2>(g, UnaryF<T, T, NanToNumOp>{NanToNumOp{sc.alpha, sc.beta, sc.gamma}}, s);
      });
    case Ew::Randint:
      return indexed(out_dtype, g, RandintOp{sc.ialpha, static_cast<uint64_t>(sc.ibeta), sc.seed, sc.offset}, s);
  }
  return cudaErrorInvalidValue;
}

}  // namespace vbt::cuda::ops
