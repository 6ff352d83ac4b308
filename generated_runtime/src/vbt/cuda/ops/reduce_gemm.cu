// CUDA reductions over rows, row-wise softmax / log_softmax, and a tiled shared-memory GEMM (batched,
// arbitrary element strides, so transposed operands need no copy). See loops.h. cuBLAS is not used.
#include <cfloat>
#include <climits>
#include <cmath>

#include "device_types.cuh"
#include "loops.h"

namespace vbt::cuda::ops {

namespace {

constexpr int kThreads = 256;

// Sum accumulates float types in float/double and integers (and bool) in int64.
template <typename T> struct SumAcc { using type = std::conditional_t<std::is_floating_point_v<acc_t<T>>, acc_t<T>, int64_t>; };

template <typename A> __device__ A lowest() {
  if constexpr (std::is_same_v<A, float>) return -INFINITY;
  else if constexpr (std::is_same_v<A, double>) return -HUGE_VAL;
  else if constexpr (std::is_same_v<A, bool>) return false;
  else return A(std::is_signed_v<A> ? (A(1) << (sizeof(A) * 8 - 1)) : 0);
}
template <typename A> __device__ A highest() {
  if constexpr (std::is_same_v<A, float>) return INFINITY;
  else if constexpr (std::is_same_v<A, double>) return HUGE_VAL;
  else if constexpr (std::is_same_v<A, bool>) return true;
  else return A(~lowest<A>());
}

struct SumR {
  template <typename A> __device__ A init() const { return A(0); }
  template <typename A> __device__ A combine(A a, A b) const { return a + b; }
};
struct MaxR {
  template <typename A> __device__ A init() const { return lowest<A>(); }
  template <typename A> __device__ A combine(A a, A b) const { return is_nan(a) ? a : is_nan(b) ? b : (a > b ? a : b); }
};
struct MinR {
  template <typename A> __device__ A init() const { return highest<A>(); }
  template <typename A> __device__ A combine(A a, A b) const { return is_nan(a) ? a : is_nan(b) ? b : (a < b ? a : b); }
};

template <typename A, typename R> __device__ A block_reduce(A v, R r, A* sh) {
  sh[threadIdx.x] = v;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) sh[threadIdx.x] = r.combine(sh[threadIdx.x], sh[threadIdx.x + s]);
    __syncthreads();
  }
  A out = sh[0];
  __syncthreads();
  return out;
}

template <typename Ti, typename To, typename A, typename R>
__global__ void reduce_rows_kernel(const Ti* in, To* out, int64_t cols, R r, bool mean) {
  __shared__ A sh[kThreads];
  const Ti* row = in + static_cast<int64_t>(blockIdx.x) * cols;
  A acc = r.template init<A>();
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) acc = r.combine(acc, static_cast<A>(up(row[j])));
  acc = block_reduce(acc, r, sh);
  if (threadIdx.x == 0) {
    if (mean) acc = static_cast<A>(acc / static_cast<A>(cols));
    out[blockIdx.x] = cvt<To>(acc);
  }
}

template <typename Ti, typename To, typename A, typename R>
cudaError_t reduce_launch(const void* in, void* out, int64_t rows, int64_t cols, R r, bool mean, cudaStream_t s) {
  if (rows == 0) return cudaSuccess;
  for (int64_t r0 = 0; r0 < rows; r0 += INT_MAX) {
    int64_t n = rows - r0 < INT_MAX ? rows - r0 : INT_MAX;
    reduce_rows_kernel<Ti, To, A, R><<<static_cast<unsigned>(n), kThreads, 0, s>>>(
        static_cast<const Ti*>(in) + r0 * cols, static_cast<To*>(out) + r0, cols, r, mean);
  }
  return cudaGetLastError();
}

template <typename T, typename A>
__global__ void softmax_rows_kernel(const T* in, T* out, int64_t cols, bool log) {
  __shared__ A sh[kThreads];
  const T* row = in + static_cast<int64_t>(blockIdx.x) * cols;
  T* orow = out + static_cast<int64_t>(blockIdx.x) * cols;
  A m = lowest<A>();
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) m = MaxR{}.combine(m, static_cast<A>(up(row[j])));
  m = block_reduce(m, MaxR{}, sh);
  A sum = 0;
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) sum += exp(static_cast<A>(up(row[j])) - m);
  sum = block_reduce(sum, SumR{}, sh);
  const A lse = log ? static_cast<A>(::log(sum)) : A(0);
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) {
    A x = static_cast<A>(up(row[j])) - m;
    orow[j] = cvt<T>(log ? x - lse : exp(x) / sum);
  }
}

constexpr int kTile = 16;

template <typename T, typename A>
__global__ void gemm_kernel(GemmArgs g, int64_t b0) {
  __shared__ A As[kTile][kTile + 1];
  __shared__ A Bs[kTile][kTile + 1];
  const int64_t b = b0 + blockIdx.z;
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int64_t row = static_cast<int64_t>(blockIdx.y) * kTile + ty;
  const int64_t col = static_cast<int64_t>(blockIdx.x) * kTile + tx;
  const T* Ab = static_cast<const T*>(g.A) + b * g.sa_b;
  const T* Bb = static_cast<const T*>(g.B) + b * g.sb_b;
  T* Cb = static_cast<T*>(g.C) + b * g.sc_b;
  A acc = 0;
  for (int64_t k0 = 0; k0 < g.K; k0 += kTile) {
    const int64_t ka = k0 + tx, kb = k0 + ty;
    As[ty][tx] = (row < g.M && ka < g.K) ? static_cast<A>(up(Ab[row * g.sa_m + ka * g.sa_k])) : A(0);
    Bs[ty][tx] = (kb < g.K && col < g.N) ? static_cast<A>(up(Bb[kb * g.sb_k + col * g.sb_n])) : A(0);
    __syncthreads();
#pragma unroll
    for (int k = 0; k < kTile; ++k) acc += As[ty][k] * Bs[k][tx];
    __syncthreads();
  }
  if (row < g.M && col < g.N) Cb[row * g.sc_m + col * g.sc_n] = cvt<T>(acc);
}

}  // namespace

cudaError_t launch_reduce_rows(Red op, int in_dtype, int out_dtype, const void* in, void* out, int64_t rows,
                               int64_t cols, cudaStream_t s) {
  return dispatch_all(in_dtype, [&](auto ti) -> cudaError_t {
    using Ti = typename decltype(ti)::type;
    if (op == Red::Sum || op == Red::Mean) {
      using A = typename SumAcc<Ti>::type;
      return dispatch_all(out_dtype, [&](auto to) {
        using To = typename decltype(to)::type;
        return reduce_launch<Ti, To, A>(in, out, rows, cols, SumR{}, op == Red::Mean, s);
      });
    }
    if (out_dtype != in_dtype) return cudaErrorInvalidValue;
    using A = acc_t<Ti>;
    if (op == Red::Max) return reduce_launch<Ti, Ti, A>(in, out, rows, cols, MaxR{}, false, s);
    return reduce_launch<Ti, Ti, A>(in, out, rows, cols, MinR{}, false, s);
  });
}

cudaError_t launch_softmax_rows(bool log, int in_dtype, int out_dtype, const void* in, void* out, int64_t rows,
                                int64_t cols, cudaStream_t s) {
  if (in_dtype != out_dtype) return cudaErrorInvalidValue;
  return dispatch_float(in_dtype, [&](auto tag) -> cudaError_t {
    using T = typename decltype(tag)::type;
    using A = acc_t<T>;
    if (rows == 0 || cols == 0) return cudaSuccess;
    for (int64_t r0 = 0; r0 < rows; r0 += INT_MAX) {
      int64_t n = rows - r0 < INT_MAX ? rows - r0 : INT_MAX;
      softmax_rows_kernel<T, A><<<static_cast<unsigned>(n), kThreads, 0, s>>>(
          static_cast<const T*>(in) + r0 * cols, static_cast<T*>(out) + r0 * cols, cols, log);
    }
    return cudaGetLastError();
  });
}

cudaError_t launch_gemm(int dtype, const GemmArgs& a, cudaStream_t s) {
  return dispatch_float(dtype, [&](auto tag) -> cudaError_t {
    using T = typename decltype(tag)::type;
    using A = acc_t<T>;
    if (a.batch == 0 || a.M == 0 || a.N == 0) return cudaSuccess;
    dim3 threads(kTile, kTile);
    for (int64_t b0 = 0; b0 < a.batch; b0 += 65535) {
      int64_t nb = a.batch - b0 < 65535 ? a.batch - b0 : 65535;
      dim3 grid(static_cast<unsigned>((a.N + kTile - 1) / kTile), static_cast<unsigned>((a.M + kTile - 1) / kTile),
                static_cast<unsigned>(nb));
      gemm_kernel<T, A><<<grid, threads, 0, s>>>(a, b0);
    }
    return cudaGetLastError();
  });
}

}  // namespace vbt::cuda::ops
