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

// ReduceNote: a reduction of a contiguous [outer, R, inner] input over R into outer * inner outputs.
//  * inner == 1 (rows): one block per row when there are many rows; with few long rows (a full reduction is one
//    row) each row is split into `splits` chunks of whole kChunkAlign-element pieces, one block per chunk writes
//    its partial (the accumulate type A) to the workspace, and a second kernel combines each row's partials,
//    one block per row.
//  * inner > 1 (columns, e.g. amax(dim=0)): a block owns 32 neighbouring columns (threadIdx.x, so a warp reads
//    128 consecutive bytes) and 8 slices of the reduced dim (threadIdx.y); with few columns R is also split
//    over gridDim.y and a second kernel combines the partials of each column, one thread per column.
// Every partial covers a fixed range with a fixed combining order (shape-only, never the device), so results
// are deterministic; no atomics. The mean divides the final accumulator by R in A, as the one-pass kernel did.
constexpr int kColX = 32, kColY = 8;
constexpr int64_t kChunkAlign = 4096;

template <typename Ti, typename To, typename A, typename R>
__global__ void reduce_rows_kernel(const Ti* in, To* out, int64_t cols, R r, bool mean) {
  __shared__ A sh[kThreads];
  const Ti* row = in + static_cast<int64_t>(blockIdx.x) * cols;
  A acc = r.template init<A>();
  const int64_t stride = blockDim.x;
  int64_t j = threadIdx.x;
  for (; j + 3 * stride < cols; j += 4 * stride) {  // four independent loads in flight per thread
    const A v0 = static_cast<A>(up(row[j])), v1 = static_cast<A>(up(row[j + stride]));
    const A v2 = static_cast<A>(up(row[j + 2 * stride])), v3 = static_cast<A>(up(row[j + 3 * stride]));
    acc = r.combine(acc, r.combine(r.combine(v0, v1), r.combine(v2, v3)));
  }
  for (; j < cols; j += stride) acc = r.combine(acc, static_cast<A>(up(row[j])));
  acc = block_reduce(acc, r, sh);
  if (threadIdx.x == 0) {
    if (mean) acc = static_cast<A>(acc / static_cast<A>(cols));
    out[blockIdx.x] = cvt<To>(acc);
  }
}

// Phase 1 of a split row: block (blockIdx.x = chunk, blockIdx.y = row) reduces elements [c0, c1) of its row
// into part[chunk * rows + row]. Four independent loads per thread per step keep enough bytes in flight.
template <typename Ti, typename A, typename R>
__global__ void reduce_rows_split_kernel(const Ti* in, A* part, int64_t rows, int64_t cols, int64_t chunk, R r) {
  __shared__ A sh[kThreads];
  const int64_t row_i = blockIdx.y;
  const Ti* row = in + row_i * cols;
  const int64_t c0 = static_cast<int64_t>(blockIdx.x) * chunk;
  const int64_t c1 = c0 + chunk < cols ? c0 + chunk : cols;
  A acc = r.template init<A>();
  int64_t j = c0 + threadIdx.x;
  const int64_t stride = blockDim.x;
  for (; j + 3 * stride < c1; j += 4 * stride) {
    const A v0 = static_cast<A>(up(row[j])), v1 = static_cast<A>(up(row[j + stride]));
    const A v2 = static_cast<A>(up(row[j + 2 * stride])), v3 = static_cast<A>(up(row[j + 3 * stride]));
    acc = r.combine(acc, r.combine(r.combine(v0, v1), r.combine(v2, v3)));
  }
  for (; j < c1; j += stride) acc = r.combine(acc, static_cast<A>(up(row[j])));
  acc = block_reduce(acc, r, sh);
  if (threadIdx.x == 0) part[static_cast<int64_t>(blockIdx.x) * rows + row_i] = acc;
}

// Phase 2 of split rows: block `row` combines part[s * rows + row] for s < splits.
template <typename To, typename A, typename R>
__global__ void reduce_rows_finish_kernel(const A* part, To* out, int64_t rows, int64_t splits, int64_t cols, R r,
                                          bool mean) {
  __shared__ A sh[kThreads];
  A acc = r.template init<A>();
  for (int64_t s = threadIdx.x; s < splits; s += blockDim.x) acc = r.combine(acc, part[s * rows + blockIdx.x]);
  acc = block_reduce(acc, r, sh);
  if (threadIdx.x == 0) {
    if (mean) acc = static_cast<A>(acc / static_cast<A>(cols));
    out[blockIdx.x] = cvt<To>(acc);
  }
}

// Columns: blockIdx.x = o * ceil(inner / kColX) + column block, blockIdx.y = slice of R [r0, r1). Writes the
// final value (splits == 1) or the partial part[blockIdx.y * outer * inner + o * inner + i].
template <typename Ti, typename To, typename A, typename R>
__global__ void reduce_cols_kernel(const Ti* in, To* out, A* part, int64_t outer, int64_t red, int64_t inner,
                                   int64_t chunk, R r, bool mean) {
  __shared__ A sh[kColY][kColX + 1];
  const int64_t cblocks = (inner + kColX - 1) / kColX;
  const int64_t o = blockIdx.x / cblocks;
  const int64_t i = (blockIdx.x % cblocks) * kColX + threadIdx.x;
  const int64_t r0 = static_cast<int64_t>(blockIdx.y) * chunk;
  const int64_t r1 = r0 + chunk < red ? r0 + chunk : red;
  A acc = r.template init<A>();
  if (i < inner) {
    const Ti* p = in + o * red * inner + i;
    int64_t k = r0 + threadIdx.y;
    for (; k + 3 * kColY < r1; k += 4 * kColY) {
      const A v0 = static_cast<A>(up(p[k * inner])), v1 = static_cast<A>(up(p[(k + kColY) * inner]));
      const A v2 = static_cast<A>(up(p[(k + 2 * kColY) * inner])), v3 = static_cast<A>(up(p[(k + 3 * kColY) * inner]));
      acc = r.combine(acc, r.combine(r.combine(v0, v1), r.combine(v2, v3)));
    }
    for (; k < r1; k += kColY) acc = r.combine(acc, static_cast<A>(up(p[k * inner])));
  }
  sh[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y == 0 && i < inner) {
#pragma unroll
    for (int y = 1; y < kColY; ++y) acc = r.combine(acc, sh[y][threadIdx.x]);
    if (gridDim.y == 1) {
      if (mean) acc = static_cast<A>(acc / static_cast<A>(red));
      out[o * inner + i] = cvt<To>(acc);
    } else {
      part[static_cast<int64_t>(blockIdx.y) * outer * inner + o * inner + i] = acc;
    }
  }
}

// Phase 2 of split columns: one thread per output combines its splits in order.
template <typename To, typename A, typename R>
__global__ void reduce_cols_finish_kernel(const A* part, To* out, int64_t n, int64_t splits, int64_t red, R r,
                                          bool mean) {
  const int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= n) return;
  A acc = part[c];
  for (int64_t s = 1; s < splits; ++s) acc = r.combine(acc, part[s * n + c]);
  if (mean) acc = static_cast<A>(acc / static_cast<A>(red));
  out[c] = cvt<To>(acc);
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// The split plan of ReduceNote (shape-only): how many slices R is cut into, and the slice length.
struct Plan {
  int64_t splits = 1, chunk = 0;
};
Plan plan_reduce(int64_t outer, int64_t red, int64_t inner) {
  Plan p;
  p.chunk = red;
  if (outer <= 0 || red <= 0 || inner <= 0) return p;
  int64_t blocks = inner == 1 ? outer : outer * ceil_div(inner, kColX);
  const int64_t target = 2048;   // enough blocks to fill an H200 (132 SMs) several times over
  const int64_t min_piece = inner == 1 ? 4 * kChunkAlign : 256;  // elements of R per split at least
  if (blocks >= target || red < 2 * min_piece) return p;
  int64_t s = ceil_div(target, blocks);
  const int64_t max_s = red / min_piece;
  if (s > max_s) s = max_s;
  if (s > 65535) s = 65535;
  if (s <= 1) return p;
  int64_t chunk = ceil_div(red, s);
  if (inner == 1) chunk = ceil_div(chunk, kChunkAlign) * kChunkAlign;  // aligned, whole pieces per block
  p.chunk = chunk;
  p.splits = ceil_div(red, chunk);
  return p;
}

template <typename Ti, typename To, typename A, typename R>
cudaError_t reduce_launch(const void* in_v, void* out_v, int64_t outer, int64_t red, int64_t inner, void* ws, R r,
                          bool mean, cudaStream_t s) {
  if (outer == 0 || inner == 0) return cudaSuccess;
  const Ti* in = static_cast<const Ti*>(in_v);
  To* out = static_cast<To*>(out_v);
  const Plan p = plan_reduce(outer, red, inner);
  A* part = static_cast<A*>(ws);
  if (p.splits > 1 && part == nullptr) return cudaErrorInvalidValue;
  if (inner == 1) {
    if (p.splits == 1) {
      for (int64_t r0 = 0; r0 < outer; r0 += INT_MAX) {
        int64_t n = outer - r0 < INT_MAX ? outer - r0 : INT_MAX;
        reduce_rows_kernel<Ti, To, A, R><<<static_cast<unsigned>(n), kThreads, 0, s>>>(in + r0 * red, out + r0, red,
                                                                                         r, mean);
      }
      return cudaGetLastError();
    }
    // plan_reduce splits only when outer < 2048 (grid.y limit 65535)
    dim3 grid(static_cast<unsigned>(p.splits), static_cast<unsigned>(outer));
    reduce_rows_split_kernel<Ti, A, R><<<grid, kThreads, 0, s>>>(in, part, outer, red, p.chunk, r);
    reduce_rows_finish_kernel<To, A, R><<<static_cast<unsigned>(outer), kThreads, 0, s>>>(part, out, outer, p.splits,
                                                                                          red, r, mean);
    return cudaGetLastError();
  }
  const int64_t cblocks = ceil_div(inner, kColX);
  const int64_t total = outer * cblocks;
  if (total > INT_MAX) return cudaErrorInvalidValue;  // the host takes the row path for such shapes
  dim3 grid(static_cast<unsigned>(total), static_cast<unsigned>(p.splits));
  reduce_cols_kernel<Ti, To, A, R><<<grid, dim3(kColX, kColY), 0, s>>>(in, out, part, outer, red, inner, p.chunk, r,
                                                                       mean);
  if (p.splits > 1) {
    const int64_t n = outer * inner;
    reduce_cols_finish_kernel<To, A, R><<<static_cast<unsigned>(ceil_div(n, kThreads)), kThreads, 0, s>>>(
        part, out, n, p.splits, red, r, mean);
  }
  return cudaGetLastError();
}

// ---- layer_norm forward (LayerNormNote): one block per row. Mean, then the biased variance of (x - mean) (two
// passes, no cancellation) accumulated in A (float for float/half/bfloat16, double for double) with warp-shuffle
// block sums; rstd = 1 / sqrt(var + eps) in double; y = (x - mean) * rstd * w + b in A. Rows of at most
// kLnRegs * blockDim elements are read once into registers; longer rows are read three times (L1/L2 hits).
constexpr int kLnRegs = 16;

// v combined over the block (blockDim.x a multiple of 32, at most 1024) by r, the same value in every thread;
// sh: >= 32 slots. A fixed butterfly order (a + b == b + a bit for bit, so all lanes agree): deterministic.
template <typename A, typename R> __device__ A block_all(A v, R r, A* sh) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = r.combine(v, __shfl_xor_sync(0xffffffffu, v, o));
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  __syncthreads();  // earlier readers of sh are done
  if (lane == 0) sh[warp] = v;
  __syncthreads();
  v = lane < static_cast<int>(blockDim.x / 32) ? sh[lane] : r.template init<A>();
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = r.combine(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
template <typename A> __device__ A block_sum(A v, A* sh) { return block_all(v, SumR{}, sh); }

template <typename T, typename A>
__global__ void layer_norm_kernel(const T* in, const T* w, const T* b, T* out, int64_t n, double eps,
                                  A* mean_out = nullptr, A* rstd_out = nullptr) {
  __shared__ A sh[32];
  const int64_t row = blockIdx.x;
  const T* x = in + row * n;
  T* y = out + row * n;
  const int64_t nt = blockDim.x;
  A mean, rstd;
  if (n <= kLnRegs * nt) {
    A v[kLnRegs];
    A s = 0;
#pragma unroll
    for (int k = 0; k < kLnRegs; ++k) {
      const int64_t j = threadIdx.x + k * nt;
      v[k] = j < n ? static_cast<A>(up(x[j])) : A(0);
      s += v[k];
    }
    mean = block_sum(s, sh) / static_cast<A>(n);
    A ss = 0;
#pragma unroll
    for (int k = 0; k < kLnRegs; ++k) {
      const int64_t j = threadIdx.x + k * nt;
      const A d = v[k] - mean;
      if (j < n) ss += d * d;
    }
    ss = block_sum(ss, sh);
    rstd = static_cast<A>(1.0 / sqrt(static_cast<double>(ss) / static_cast<double>(n) + eps));
    if (mean_out && threadIdx.x == 0) {  // the fused forward with a backward saves the row statistics
      mean_out[row] = mean;
      rstd_out[row] = rstd;
    }
#pragma unroll
    for (int k = 0; k < kLnRegs; ++k) {
      const int64_t j = threadIdx.x + k * nt;
      if (j < n) {
        A r = (v[k] - mean) * rstd;
        if (w) r *= static_cast<A>(up(w[j]));
        if (b) r += static_cast<A>(up(b[j]));
        y[j] = cvt<T>(r);
      }
    }
    return;
  }
  A s = 0;
  for (int64_t j = threadIdx.x; j < n; j += nt) s += static_cast<A>(up(x[j]));
  mean = block_sum(s, sh) / static_cast<A>(n);
  A ss = 0;
  for (int64_t j = threadIdx.x; j < n; j += nt) {
    const A d = static_cast<A>(up(x[j])) - mean;
    ss += d * d;
  }
  ss = block_sum(ss, sh);
  rstd = static_cast<A>(1.0 / sqrt(static_cast<double>(ss) / static_cast<double>(n) + eps));
  if (mean_out && threadIdx.x == 0) {
    mean_out[row] = mean;
    rstd_out[row] = rstd;
  }
  for (int64_t j = threadIdx.x; j < n; j += nt) {
    A r = (static_cast<A>(up(x[j])) - mean) * rstd;
    if (w) r *= static_cast<A>(up(w[j]));
    if (b) r += static_cast<A>(up(b[j]));
    y[j] = cvt<T>(r);
  }
}

// ---- softmax / log_softmax (SoftmaxNote): one block per row; the row max, then the sum of exp(x - max), both
// with warp-shuffle block reductions (max propagates NaN); out = exp(x - max) / sum or (x - max) - log(sum), in
// A. Rows of at most kLnRegs * blockDim elements are read once into registers.
template <typename T, typename A>
__global__ void softmax_rows_kernel(const T* in, T* out, int64_t cols, bool log) {
  __shared__ A sh[32];
  const T* row = in + static_cast<int64_t>(blockIdx.x) * cols;
  T* orow = out + static_cast<int64_t>(blockIdx.x) * cols;
  const int64_t nt = blockDim.x;
  if (cols <= kLnRegs * nt) {
    A v[kLnRegs];
    A m = lowest<A>();
#pragma unroll
    for (int k = 0; k < kLnRegs; ++k) {
      const int64_t j = threadIdx.x + k * nt;
      v[k] = j < cols ? static_cast<A>(up(row[j])) : lowest<A>();
      m = MaxR{}.combine(m, v[k]);
    }
    m = block_all(m, MaxR{}, sh);
    A sum = 0;
#pragma unroll
    for (int k = 0; k < kLnRegs; ++k) {
      const int64_t j = threadIdx.x + k * nt;
      if (j < cols) sum += exp(v[k] - m);
    }
    sum = block_sum(sum, sh);
    const A lse = log ? static_cast<A>(::log(sum)) : A(0);
#pragma unroll
    for (int k = 0; k < kLnRegs; ++k) {
      const int64_t j = threadIdx.x + k * nt;
      if (j < cols) {
        const A x = v[k] - m;
        orow[j] = cvt<T>(log ? x - lse : exp(x) / sum);
      }
    }
    return;
  }
  A m = lowest<A>();
  for (int64_t j = threadIdx.x; j < cols; j += nt) m = MaxR{}.combine(m, static_cast<A>(up(row[j])));
  m = block_all(m, MaxR{}, sh);
  A sum = 0;
  for (int64_t j = threadIdx.x; j < cols; j += nt) sum += exp(static_cast<A>(up(row[j])) - m);
  sum = block_sum(sum, sh);
  const A lse = log ? static_cast<A>(::log(sum)) : A(0);
  for (int64_t j = threadIdx.x; j < cols; j += nt) {
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

int64_t reduce_workspace_bytes(int64_t outer, int64_t red, int64_t inner) {
  const Plan p = plan_reduce(outer, red, inner);
  return p.splits > 1 ? p.splits * outer * inner * 8 : 0;  // 8: the widest accumulate type
}

cudaError_t launch_reduce(Red op, int in_dtype, int out_dtype, const void* in, void* out, int64_t outer, int64_t red,
                          int64_t inner, void* workspace, cudaStream_t s) {
  return dispatch_all(in_dtype, [&](auto ti) -> cudaError_t {
    using Ti = typename decltype(ti)::type;
    if (op == Red::Sum || op == Red::Mean) {
      using A = typename SumAcc<Ti>::type;
      return dispatch_all(out_dtype, [&](auto to) {
        using To = typename decltype(to)::type;
        return reduce_launch<Ti, To, A>(in, out, outer, red, inner, workspace, SumR{}, op == Red::Mean, s);
      });
    }
    if (out_dtype != in_dtype) return cudaErrorInvalidValue;
    using A = acc_t<Ti>;
    if (op == Red::Max) return reduce_launch<Ti, Ti, A>(in, out, outer, red, inner, workspace, MaxR{}, false, s);
    return reduce_launch<Ti, Ti, A>(in, out, outer, red, inner, workspace, MinR{}, false, s);
  });
}

cudaError_t launch_softmax_rows(bool log, int in_dtype, int out_dtype, const void* in, void* out, int64_t rows,
                                int64_t cols, cudaStream_t s) {
  if (in_dtype != out_dtype) return cudaErrorInvalidValue;
  return dispatch_float(in_dtype, [&](auto tag) -> cudaError_t {
    using T = typename decltype(tag)::type;
    using A = acc_t<T>;
    if (rows == 0 || cols == 0) return cudaSuccess;
    int threads = 32;  // a warp per 128 elements (4 each), 32..256 threads per row
    while (threads < 256 && threads * 4 < cols) threads *= 2;
    for (int64_t r0 = 0; r0 < rows; r0 += INT_MAX) {
      int64_t n = rows - r0 < INT_MAX ? rows - r0 : INT_MAX;
      softmax_rows_kernel<T, A><<<static_cast<unsigned>(n), threads, 0, s>>>(
          static_cast<const T*>(in) + r0 * cols, static_cast<T*>(out) + r0 * cols, cols, log);
    }
    return cudaGetLastError();
  });
}

cudaError_t launch_layer_norm(int dtype, const void* in, const void* w, const void* b, void* out, int64_t rows,
                              int64_t cols, double eps, cudaStream_t s) {
  return launch_layer_norm_fwd(dtype, in, w, b, out, nullptr, nullptr, rows, cols, eps, s);
}

cudaError_t launch_layer_norm_fwd(int dtype, const void* in, const void* w, const void* b, void* out, void* mean,
                                  void* rstd, int64_t rows, int64_t cols, double eps, cudaStream_t s) {
  return dispatch_float(dtype, [&](auto tag) -> cudaError_t {
    using T = typename decltype(tag)::type;
    using A = acc_t<T>;
    if (rows == 0 || cols == 0) return cudaSuccess;
    // a warp per 128 elements (4 each), 32..256 threads per row
    int threads = 32;
    while (threads < 256 && threads * 4 < cols) threads *= 2;
    for (int64_t r0 = 0; r0 < rows; r0 += INT_MAX) {
      int64_t n = rows - r0 < INT_MAX ? rows - r0 : INT_MAX;
      layer_norm_kernel<T, A><<<static_cast<unsigned>(n), threads, 0, s>>>(
          static_cast<const T*>(in) + r0 * cols, static_cast<const T*>(w), static_cast<const T*>(b),
          static_cast<T*>(out) + r0 * cols, cols, eps, mean ? static_cast<A*>(mean) + r0 : nullptr,
          rstd ? static_cast<A*>(rstd) + r0 : nullptr);
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

// ---- fused cross_entropy and layer_norm backward (FusedNnNote; the math: Note [Fused NN ops] in
// src/vbt/cpu/reduce_kernels.cpp, whose CPU kernels are the reference). One block per row, warp-shuffle block
// sums (block_all), accumulation in A (float for float/half/bfloat16, double for double): deterministic.
//  * cross_entropy forward: row max, then sum exp(x - max) (and sum x for label smoothing); rows of at most
//    kLnRegs * blockDim elements are read once into registers. Thread 0 writes the row's stats (max m, ls = log of
//    the sum; lse = m + ls) and its loss (0 for an
//    ignored row, NaN for an out-of-range target: no host sync to raise). A one-block kernel sums the row losses
//    and counts the non-ignored rows (total) for mean/sum.
//  * cross_entropy backward: dx = s * (exp(x - m) * exp(-ls) - eps / C - (1 - eps) [j == t]), s from grad (and
//    total).
//  * layer_norm backward: dx per row (two block sums: h and h * xhat); dweight/dbias in two deterministic
//    passes: a [chunk, column] grid of 32 x 8 blocks writes per-chunk column partials to the workspace, then one
//    thread per column adds its chunks in order.
namespace {

template <typename T, typename A>
__global__ void __launch_bounds__(1024) ce_fwd_kernel(const T* in, const int64_t* tgt, int64_t C, int64_t ignore,
                                                      A eps, A* lse_out, A* rowloss, T* out_none) {
  __shared__ A sh[32];
  const int64_t row = blockIdx.x;
  const T* x = in + row * C;
  const int64_t nt = blockDim.x;
  A m = lowest<A>(), s = 0, sx = 0;
  if (C <= kLnRegs * nt) {
    A v[kLnRegs];
#pragma unroll
    for (int k = 0; k < kLnRegs; ++k) {
      const int64_t j = threadIdx.x + k * nt;
      v[k] = j < C ? static_cast<A>(up(x[j])) : lowest<A>();
      m = MaxR{}.combine(m, v[k]);
    }
    m = block_all(m, MaxR{}, sh);
    const A ms = isinf(m) ? A(0) : m;  // all -inf (or a +inf): shift by 0, the sum is then 0 / inf / NaN
#pragma unroll
    for (int k = 0; k < kLnRegs; ++k) {
      const int64_t j = threadIdx.x + k * nt;
      if (j < C) {
        s += exp(v[k] - ms);
        sx += v[k];
      }
    }
    m = ms;
  } else {
    for (int64_t j = threadIdx.x; j < C; j += nt) m = MaxR{}.combine(m, static_cast<A>(up(x[j])));
    m = block_all(m, MaxR{}, sh);
    if (isinf(m)) m = A(0);
    for (int64_t j = threadIdx.x; j < C; j += nt) {
      const A v = static_cast<A>(up(x[j]));
      s += exp(v - m);
      sx += v;
    }
  }
  s = block_sum(s, sh);
  if (eps != A(0)) sx = block_sum(sx, sh);
  if (threadIdx.x != 0) return;
  const A ls = static_cast<A>(::log(s));
  lse_out[2 * row] = m;
  lse_out[2 * row + 1] = ls;
  const int64_t t = tgt[row];
  A loss;
  if (t == ignore) {
    loss = A(0);
  } else if (t < 0 || t >= C) {
    loss = A(NAN);
  } else {
    const A xt = static_cast<A>(up(x[t]));
    loss = (m - xt) + ls + eps * xt - (eps != A(0) ? eps / static_cast<A>(C) * sx : A(0));
  }
  if (out_none) out_none[row] = cvt<T>(loss);
  else rowloss[row] = loss;
}

// Sums the row losses (when rowloss != nullptr) into out (mean: divided by total) and counts the non-ignored rows
// into total[0]. One block of 1024 threads.
template <typename T, typename A>
__global__ void __launch_bounds__(1024) ce_total_kernel(const A* rowloss, const int64_t* tgt, int64_t M,
                                                        int64_t ignore, bool mean, T* out, A* total) {
  __shared__ A sh[32];
  A s = 0, cnt = 0;
  for (int64_t i = threadIdx.x; i < M; i += blockDim.x) {
    if (rowloss) s += rowloss[i];
    cnt += tgt[i] != ignore ? A(1) : A(0);
  }
  cnt = block_sum(cnt, sh);
  if (rowloss) s = block_sum(s, sh);
  if (threadIdx.x != 0) return;
  total[0] = cnt;
  if (out) out[0] = cvt<T>(mean ? s / cnt : s);
}

template <typename T, typename A>
__global__ void __launch_bounds__(512) ce_bwd_kernel(const T* grad, bool grad_per_row, const T* in,
                                                     const int64_t* tgt, const A* lse, const A* total, int64_t C,
                                                     int64_t ignore, A eps, bool mean, T* dx) {
  const int64_t row = blockIdx.x;
  const T* x = in + row * C;
  T* y = dx + row * C;
  const int64_t t = tgt[row];
  if (t == ignore) {
    for (int64_t j = threadIdx.x; j < C; j += blockDim.x) y[j] = cvt<T>(A(0));
    return;
  }
  A g = static_cast<A>(up(grad[grad_per_row ? row : 0]));
  if (mean) g /= total[0];
  if (t < 0 || t >= C) g = A(NAN);
  const A m = lse[2 * row], f = exp(-lse[2 * row + 1]) * g, sm = eps / static_cast<A>(C) * g, st = (A(1) - eps) * g;
  for (int64_t j = threadIdx.x; j < C; j += blockDim.x) {
    A v = exp(static_cast<A>(up(x[j])) - m) * f - sm;
    if (j == t) v -= st;
    y[j] = cvt<T>(v);
  }
}

template <typename T, typename A>
__global__ void ln_bwd_dx_kernel(const T* grad, const T* in, const A* mean, const A* rstd, const T* w, int64_t n,
                                 T* dx) {
  __shared__ A sh[32];
  const int64_t row = blockIdx.x;
  const T* x = in + row * n;
  const T* g = grad + row * n;
  T* y = dx + row * n;
  const A mu = mean[row], rs = rstd[row];
  A s1 = 0, s2 = 0;
  for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
    const A xh = (static_cast<A>(up(x[j])) - mu) * rs;
    A h = static_cast<A>(up(g[j]));
    if (w) h *= static_cast<A>(up(w[j]));
    s1 += h;
    s2 += h * xh;
  }
  s1 = block_sum(s1, sh) / static_cast<A>(n);
  s2 = block_sum(s2, sh) / static_cast<A>(n);
  for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
    const A xh = (static_cast<A>(up(x[j])) - mu) * rs;
    A h = static_cast<A>(up(g[j]));
    if (w) h *= static_cast<A>(up(w[j]));
    y[j] = cvt<T>(rs * (h - s1 - xh * s2));
  }
}

constexpr int kLnColY = 8;  // rows per step of a dweight/dbias partial block (32 columns x 8 rows of threads)

template <typename T, typename A>
__global__ void ln_bwd_wb_partial_kernel(const T* grad, const T* in, const A* mean, const A* rstd, int64_t rows,
                                         int64_t n, int64_t rows_per_chunk, A* pw, A* pb) {
  __shared__ A sw[kLnColY][33], sb[kLnColY][33];
  const int64_t col = static_cast<int64_t>(blockIdx.x) * 32 + threadIdx.x;
  const int64_t chunk = blockIdx.y;
  const int64_t r0 = chunk * rows_per_chunk;
  const int64_t r1 = r0 + rows_per_chunk < rows ? r0 + rows_per_chunk : rows;
  A aw = 0, ab = 0;
  if (col < n) {
    for (int64_t r = r0 + threadIdx.y; r < r1; r += kLnColY) {
      const A gv = static_cast<A>(up(grad[r * n + col]));
      if (pw) aw += gv * (static_cast<A>(up(in[r * n + col])) - mean[r]) * rstd[r];
      ab += gv;
    }
  }
  sw[threadIdx.y][threadIdx.x] = aw;
  sb[threadIdx.y][threadIdx.x] = ab;
  __syncthreads();
  if (threadIdx.y != 0 || col >= n) return;
  A tw = 0, tb = 0;
#pragma unroll
  for (int k = 0; k < kLnColY; ++k) {
    tw += sw[k][threadIdx.x];
    tb += sb[k][threadIdx.x];
  }
  if (pw) pw[chunk * n + col] = tw;
  if (pb) pb[chunk * n + col] = tb;
}

template <typename T, typename A>
__global__ void ln_bwd_wb_final_kernel(const A* pw, const A* pb, int64_t nchunks, int64_t n, T* dw, T* db) {
  const int64_t col = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (col >= n) return;
  A tw = 0, tb = 0;
  for (int64_t c = 0; c < nchunks; ++c) {
    if (pw) tw += pw[c * n + col];
    if (pb) tb += pb[c * n + col];
  }
  if (dw) dw[col] = cvt<T>(tw);
  if (db) db[col] = cvt<T>(tb);
}

int row_threads(int64_t cols, int per_thread, int max_threads) {
  int threads = 32;
  while (threads < max_threads && static_cast<int64_t>(threads) * per_thread < cols) threads *= 2;
  return threads;
}

}  // namespace

cudaError_t launch_cross_entropy_fwd(int dtype, const void* in, const int64_t* tgt, int64_t rows, int64_t cols,
                                     int64_t ignore, double eps, int reduction, void* out, void* lse, void* rowloss,
                                     void* total, cudaStream_t s) {
  return dispatch_float(dtype, [&](auto tag) -> cudaError_t {
    using T = typename decltype(tag)::type;
    using A = acc_t<T>;
    if (rows > 0 && cols > 0) {
      // 8 elements per thread (kLnRegs = 16 leaves room): rows up to 16384 classes stay in registers
      const int threads = row_threads(cols, 8, 1024);
      for (int64_t r0 = 0; r0 < rows; r0 += INT_MAX) {
        const int64_t nr = rows - r0 < INT_MAX ? rows - r0 : INT_MAX;
        ce_fwd_kernel<T, A><<<static_cast<unsigned>(nr), threads, 0, s>>>(
            static_cast<const T*>(in) + r0 * cols, tgt + r0, cols, ignore, static_cast<A>(eps),
            static_cast<A*>(lse) + 2 * r0, reduction == 0 ? nullptr : static_cast<A*>(rowloss) + r0,
            reduction == 0 ? static_cast<T*>(out) + r0 : nullptr);
      }
    }
    ce_total_kernel<T, A><<<1, 1024, 0, s>>>(reduction == 0 || cols == 0 ? nullptr : static_cast<const A*>(rowloss),
                                            tgt, cols == 0 ? 0 : rows, ignore, reduction == 1,
                                            reduction == 0 ? nullptr : static_cast<T*>(out), static_cast<A*>(total));
    return cudaGetLastError();
  });
}

cudaError_t launch_cross_entropy_bwd(int dtype, const void* grad, bool grad_per_row, const void* in,
                                     const int64_t* tgt, const void* lse, const void* total, int64_t rows,
                                     int64_t cols, int64_t ignore, double eps, bool mean, void* dx, cudaStream_t s) {
  return dispatch_float(dtype, [&](auto tag) -> cudaError_t {
    using T = typename decltype(tag)::type;
    using A = acc_t<T>;
    if (rows == 0 || cols == 0) return cudaSuccess;
    const int threads = row_threads(cols, 4, 512);
    for (int64_t r0 = 0; r0 < rows; r0 += INT_MAX) {
      const int64_t nr = rows - r0 < INT_MAX ? rows - r0 : INT_MAX;
      ce_bwd_kernel<T, A><<<static_cast<unsigned>(nr), threads, 0, s>>>(
          static_cast<const T*>(grad) + (grad_per_row ? r0 : 0), grad_per_row, static_cast<const T*>(in) + r0 * cols,
          tgt + r0, static_cast<const A*>(lse) + 2 * r0, static_cast<const A*>(total), cols, ignore, static_cast<A>(eps),
          mean, static_cast<T*>(dx) + r0 * cols);
    }
    return cudaGetLastError();
  });
}

int64_t layer_norm_bwd_chunks(int64_t rows) {
  const int64_t c = (rows + 63) / 64;
  return c < 1 ? 1 : c > 256 ? 256 : c;
}

cudaError_t launch_layer_norm_bwd(int dtype, const void* grad, const void* in, const void* mean, const void* rstd,
                                  const void* w, int64_t rows, int64_t cols, void* dx, void* dw, void* db,
                                  void* workspace, cudaStream_t s) {
  return dispatch_float(dtype, [&](auto tag) -> cudaError_t {
    using T = typename decltype(tag)::type;
    using A = acc_t<T>;
    if (rows == 0 || cols == 0) return cudaSuccess;
    const int threads = row_threads(cols, 4, 256);
    for (int64_t r0 = 0; r0 < rows; r0 += INT_MAX) {
      const int64_t nr = rows - r0 < INT_MAX ? rows - r0 : INT_MAX;
      ln_bwd_dx_kernel<T, A><<<static_cast<unsigned>(nr), threads, 0, s>>>(
          static_cast<const T*>(grad) + r0 * cols, static_cast<const T*>(in) + r0 * cols,
          static_cast<const A*>(mean) + r0, static_cast<const A*>(rstd) + r0, static_cast<const T*>(w), cols,
          static_cast<T*>(dx) + r0 * cols);
    }
    if (dw || db) {
      const int64_t nchunks = layer_norm_bwd_chunks(rows), per = (rows + nchunks - 1) / nchunks;
      A* pw = dw ? static_cast<A*>(workspace) : nullptr;
      A* pb = db ? static_cast<A*>(workspace) + nchunks * cols : nullptr;
      dim3 grid(static_cast<unsigned>((cols + 31) / 32), static_cast<unsigned>(nchunks));
      ln_bwd_wb_partial_kernel<T, A><<<grid, dim3(32, kLnColY), 0, s>>>(
          static_cast<const T*>(grad), static_cast<const T*>(in), static_cast<const A*>(mean),
          static_cast<const A*>(rstd), rows, cols, per, pw, pb);
      ln_bwd_wb_final_kernel<T, A><<<static_cast<unsigned>((cols + 255) / 256), 256, 0, s>>>(
          pw, pb, nchunks, cols, static_cast<T*>(dw), static_cast<T*>(db));
    }
    return cudaGetLastError();
  });
}

}  // namespace vbt::cuda::ops
