// CUDA reductions over rows, row-wise softmax / log_softmax, and a tiled shared-memory GEMM (batched,
// arbitrary element strides, so transposed operands need no copy). See loops.h. cuBLAS is not used.
#include <cfloat>
#include <climits>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <type_traits>

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

// ---- layer_norm forward (LayerNormNote). Two passes over registers: the row's mean, then the biased variance of
// (x - mean) (no cancellation), accumulated in A (float for float/half/bfloat16, double for double); y = (x - mean)
// * rstd * w + b in A. Three kernels, picked by launch_layer_norm_fwd from the shape, dtype and alignment:
//  * ln_fwd_rows (short rows): a group of L lanes per row (L = 4..32; L < 32: several rows per warp), 256-thread
//    blocks; each lane holds NV 16-byte vectors of its row in registers; group shuffles only (no shared memory,
//    no __syncthreads). Taken for float/half/bfloat16 rows of cols % kVec == 0 with 16-byte aligned in/out/w/b and
//    at most 127 vectors: nvec <= 64 -> NV = 2 and L the smallest power of two >= nvec / 2 (at least 4), else L = 32,
//    NV = 4 (norm_bench: [8192, 256] float32 x3.6, bfloat16 x4.5 over the one-block-per-row kernel).
//  * ln_fwd_blk (long rows, the same dtype/alignment conditions, 128 <= nvec <= 2048): one block per row, 2 vectors
//    per thread, 64..1024 threads, two block sums with their own shared slots ([16384, 1024] float32 x4.6,
//    bfloat16 x7.9).
//  * layer_norm_kernel (everything else: double, misaligned views, cols % kVec != 0, rows beyond 2048 vectors):
//    one block of 32..256 threads per row (a warp per 128 elements); rows of at most R * blockDim elements are read
//    once into registers (R = 4 up to 1024 elements, else 16), longer rows are read three times (L1/L2 hits).
// The vector kernels compute rstd = rsqrtf(var + eps) in float (as torch's float rstd); layer_norm_kernel computes
// 1 / sqrt(var + eps) in double. Each kernel's result depends only on the shape (and which kernel runs), not on the
// device: fixed reduction orders, no atomics.
constexpr int kLnRegs = 16;  // registers per thread of the one-block-per-row softmax / cross_entropy kernels

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

template <typename T, typename A, int R>
__global__ void __launch_bounds__(256) layer_norm_kernel(const T* in, const T* w, const T* b, T* out, int64_t n,
                                                         double eps, A* mean_out, A* rstd_out) {
  __shared__ A sh[32];
  const int64_t row = blockIdx.x;
  const T* x = in + row * n;
  T* y = out + row * n;
  const int64_t nt = blockDim.x;
  A mean, rstd;
  if (n <= R * nt) {
    A v[R];
    A s = 0;
#pragma unroll
    for (int k = 0; k < R; ++k) {
      const int64_t j = threadIdx.x + k * nt;
      v[k] = j < n ? static_cast<A>(up(x[j])) : A(0);
      s += v[k];
    }
    mean = block_sum(s, sh) / static_cast<A>(n);
    A ss = 0;
#pragma unroll
    for (int k = 0; k < R; ++k) {
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
    for (int k = 0; k < R; ++k) {
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

// ---- 16-byte vector row kernels (layer_norm forward, softmax / log_softmax, layer_norm backward) for float, half
// and bfloat16 (computing in float): a row is cols / kVec vectors of 16 bytes; the launchers take them only when
// cols % kVec == 0 and every row pointer is 16-byte aligned (vec_ok), else the one-block-per-row kernels.
template <typename T> constexpr int kVec = 16 / static_cast<int>(sizeof(T));
template <typename T> struct alignas(16) Pack { T e[kVec<T>]; };

template <typename T> __device__ __forceinline__ void load_up(const T* p, float (&o)[kVec<T>]) {
  const Pack<T> v = *reinterpret_cast<const Pack<T>*>(p);
#pragma unroll
  for (int e = 0; e < kVec<T>; ++e) o[e] = up(v.e[e]);
}
template <typename T> __device__ __forceinline__ void store_cvt(T* p, const float (&o)[kVec<T>]) {
  Pack<T> v;
#pragma unroll
  for (int e = 0; e < kVec<T>; ++e) v.e[e] = cvt<T>(o[e]);
  *reinterpret_cast<Pack<T>*>(p) = v;
}

// The lanes of this thread's group of L (a power of two <= 32, groups aligned in the warp).
template <int L> __device__ __forceinline__ unsigned group_mask() {
  if constexpr (L == 32) return 0xffffffffu;
  else return ((1u << L) - 1u) << ((threadIdx.x % 32) & ~(L - 1));
}
// v summed over the group of L lanes; a fixed butterfly order, the same value in every lane of the group.
template <int L, typename R> __device__ __forceinline__ float group_all(float v, R r, unsigned mask) {
#pragma unroll
  for (int o = L / 2; o > 0; o >>= 1) v = r.combine(v, __shfl_xor_sync(mask, v, o, L));
  return v;
}
template <int L> __device__ __forceinline__ float group_sum(float v, unsigned mask) {
  return group_all<L>(v, SumR{}, mask);
}
// v combined over the block by r with its own shared slots sh[32] (not reused within the kernel, so one
// __syncthreads per reduction); fixed order, the same value in every thread.
template <typename R> __device__ __forceinline__ float block_all1(float v, R r, float* sh) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = r.combine(v, __shfl_xor_sync(0xffffffffu, v, o));
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) sh[warp] = v;
  __syncthreads();
  v = lane < static_cast<int>(blockDim.x / 32) ? sh[lane] : r.template init<float>();
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = r.combine(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// layer_norm forward, L lanes per row, NV vectors per lane (rows of at most L * NV vectors; LayerNormNote).
template <typename T, int L, int NV>
__global__ void __launch_bounds__(256) ln_fwd_rows(const T* __restrict__ in, const T* __restrict__ w,
                                                    const T* __restrict__ b, T* __restrict__ out, int64_t rows, int n,
                                                    float eps, float* __restrict__ mean_out,
                                                    float* __restrict__ rstd_out) {
  constexpr int V = kVec<T>;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * (blockDim.x / L) + threadIdx.x / L;
  if (row >= rows) return;  // whole groups leave together
  const unsigned mask = group_mask<L>();
  const int lane = threadIdx.x % L;
  const T* x = in + row * n;
  float v[NV][V];
  float s = 0.f;
#pragma unroll
  for (int k = 0; k < NV; ++k) {
    const int c = (k * L + lane) * V;
    if (c < n) {
      load_up(x + c, v[k]);
    } else {
#pragma unroll
      for (int e = 0; e < V; ++e) v[k][e] = 0.f;
    }
#pragma unroll
    for (int e = 0; e < V; ++e) s += v[k][e];
  }
  const float mean = group_sum<L>(s, mask) / static_cast<float>(n);
  float ss = 0.f;
#pragma unroll
  for (int k = 0; k < NV; ++k) {
    if ((k * L + lane) * V < n) {
#pragma unroll
      for (int e = 0; e < V; ++e) {
        const float d = v[k][e] - mean;
        ss += d * d;
      }
    }
  }
  ss = group_sum<L>(ss, mask);
  const float rstd = rsqrtf(ss / static_cast<float>(n) + eps);
  if (mean_out && lane == 0) {
    mean_out[row] = mean;
    rstd_out[row] = rstd;
  }
  T* y = out + row * n;
#pragma unroll
  for (int k = 0; k < NV; ++k) {
    const int c = (k * L + lane) * V;
    if (c < n) {
      float wv[V], bv[V], r[V];
      if (w) load_up(w + c, wv);
      if (b) load_up(b + c, bv);
#pragma unroll
      for (int e = 0; e < V; ++e) {
        r[e] = (v[k][e] - mean) * rstd;
        if (w) r[e] *= wv[e];
        if (b) r[e] += bv[e];
      }
      store_cvt(y + c, r);
    }
  }
}

// layer_norm forward, one block per row, NV vectors per thread (rows of at most blockDim * NV vectors).
template <typename T, int NV>
__global__ void __launch_bounds__(1024) ln_fwd_blk(const T* __restrict__ in, const T* __restrict__ w,
                                                    const T* __restrict__ b, T* __restrict__ out, int n, float eps,
                                                    float* __restrict__ mean_out, float* __restrict__ rstd_out) {
  constexpr int V = kVec<T>;
  __shared__ float sh[2][32];
  const int64_t row = blockIdx.x;
  const T* x = in + row * n;
  const int nt = blockDim.x;
  float v[NV][V];
  float s = 0.f;
#pragma unroll
  for (int k = 0; k < NV; ++k) {
    const int c = (k * nt + threadIdx.x) * V;
    if (c < n) {
      load_up(x + c, v[k]);
    } else {
#pragma unroll
      for (int e = 0; e < V; ++e) v[k][e] = 0.f;
    }
#pragma unroll
    for (int e = 0; e < V; ++e) s += v[k][e];
  }
  const float mean = block_all1(s, SumR{}, sh[0]) / static_cast<float>(n);
  float ss = 0.f;
#pragma unroll
  for (int k = 0; k < NV; ++k) {
    if ((k * nt + threadIdx.x) * V < n) {
#pragma unroll
      for (int e = 0; e < V; ++e) {
        const float d = v[k][e] - mean;
        ss += d * d;
      }
    }
  }
  ss = block_all1(ss, SumR{}, sh[1]);
  const float rstd = rsqrtf(ss / static_cast<float>(n) + eps);
  if (mean_out && threadIdx.x == 0) {
    mean_out[row] = mean;
    rstd_out[row] = rstd;
  }
  T* y = out + row * n;
#pragma unroll
  for (int k = 0; k < NV; ++k) {
    const int c = (k * nt + threadIdx.x) * V;
    if (c < n) {
      float wv[V], bv[V], r[V];
      if (w) load_up(w + c, wv);
      if (b) load_up(b + c, bv);
#pragma unroll
      for (int e = 0; e < V; ++e) {
        r[e] = (v[k][e] - mean) * rstd;
        if (w) r[e] *= wv[e];
        if (b) r[e] += bv[e];
      }
      store_cvt(y + c, r);
    }
  }
}

// softmax / log_softmax (SoftmaxNote) of one row held in registers, NV vectors per lane: the row max (NaN
// propagates), the sum of exp(x - max), then exp(x - max) / sum or (x - max) - log(sum). The vectors past the row's
// end hold -inf (max) and add nothing to the sum. reduce(v, r, slot) combines a lane's value over the row's lanes by
// r (a group's shuffles, or the block with its own shared slots per reduction).
template <typename T, int NV, typename Reduce>
__device__ __forceinline__ void softmax_row(const T* __restrict__ x, T* __restrict__ y, int n, int lane, int stride,
                                            bool log, Reduce reduce) {
  constexpr int V = kVec<T>;
  float v[NV][V];
  float m = -INFINITY;
#pragma unroll
  for (int k = 0; k < NV; ++k) {
    const int c = (k * stride + lane) * V;
    if (c < n) {
      load_up(x + c, v[k]);
    } else {
#pragma unroll
      for (int e = 0; e < V; ++e) v[k][e] = -INFINITY;
    }
#pragma unroll
    for (int e = 0; e < V; ++e) m = MaxR{}.combine(m, v[k][e]);
  }
  m = reduce(m, MaxR{}, 0);
  float sum = 0.f;
#pragma unroll
  for (int k = 0; k < NV; ++k) {
    if ((k * stride + lane) * V < n) {
#pragma unroll
      for (int e = 0; e < V; ++e) {  // keep x - max (log) or exp(x - max) (softmax) for the output
        const float d = v[k][e] - m;
        v[k][e] = log ? d : expf(d);
        sum += log ? expf(d) : v[k][e];
      }
    }
  }
  sum = reduce(sum, SumR{}, 1);
  const float lse = log ? logf(sum) : 0.f;
#pragma unroll
  for (int k = 0; k < NV; ++k) {
    const int c = (k * stride + lane) * V;
    if (c < n) {
      float r[V];
#pragma unroll
      for (int e = 0; e < V; ++e) r[e] = log ? v[k][e] - lse : v[k][e] / sum;
      store_cvt(y + c, r);
    }
  }
}
// L lanes per row (rows of at most L * NV vectors), several rows per block, shuffles only.
template <typename T, int L, int NV>
__global__ void __launch_bounds__(256) softmax_grp(const T* __restrict__ in, T* __restrict__ out, int64_t rows, int n,
                                                   bool log) {
  const int64_t row = static_cast<int64_t>(blockIdx.x) * (blockDim.x / L) + threadIdx.x / L;
  if (row >= rows) return;  // whole groups leave together
  const unsigned mask = group_mask<L>();
  softmax_row<T, NV>(in + row * n, out + row * n, n, threadIdx.x % L, L, log,
                     [mask](float v, auto r, int) { return group_all<L>(v, r, mask); });
}
// One block per row (rows of at most blockDim * NV vectors); each reduction has its own shared slots.
template <typename T, int NV>
__global__ void __launch_bounds__(1024) softmax_blk(const T* __restrict__ in, T* __restrict__ out, int n, bool log) {
  __shared__ float sh[2][32];
  float* shp = &sh[0][0];
  const int64_t row = blockIdx.x;
  softmax_row<T, NV>(in + row * n, out + row * n, n, threadIdx.x, blockDim.x, log,
                     [shp](float v, auto r, int slot) { return block_all1(v, r, shp + 32 * slot); });
}

// softmax / log_softmax backward (SoftmaxNote) of one row held in registers: s = sum(g * y) (softmax) or sum(g)
// (log_softmax) over the row, then dx = y * (g - s) or g - exp(y) * s. The vector kernels keep NV vectors of y and
// g per lane; `reduce` combines a lane's partial sum over the row's lanes (a group or the block).
template <typename T, int NV, typename Reduce>
__device__ __forceinline__ void softmax_bw_row(const T* __restrict__ y, const T* __restrict__ g, T* __restrict__ dx,
                                               int n, int lane, int stride, bool log, Reduce reduce) {
  constexpr int V = kVec<T>;
  float yv[NV][V], gv[NV][V];
  float s = 0.f;
#pragma unroll
  for (int k = 0; k < NV; ++k) {
    const int c = (k * stride + lane) * V;
    if (c < n) {
      load_up(y + c, yv[k]);
      load_up(g + c, gv[k]);
#pragma unroll
      for (int e = 0; e < V; ++e) s += log ? gv[k][e] : gv[k][e] * yv[k][e];
    }
  }
  s = reduce(s);
#pragma unroll
  for (int k = 0; k < NV; ++k) {
    const int c = (k * stride + lane) * V;
    if (c < n) {
      float r[V];
#pragma unroll
      for (int e = 0; e < V; ++e) r[e] = log ? gv[k][e] - expf(yv[k][e]) * s : yv[k][e] * (gv[k][e] - s);
      store_cvt(dx + c, r);
    }
  }
}
template <typename T, int L, int NV>
__global__ void __launch_bounds__(256) softmax_bw_grp(const T* __restrict__ y, const T* __restrict__ g,
                                                      T* __restrict__ dx, int64_t rows, int n, bool log) {
  const int64_t row = static_cast<int64_t>(blockIdx.x) * (blockDim.x / L) + threadIdx.x / L;
  if (row >= rows) return;
  const unsigned mask = group_mask<L>();
  softmax_bw_row<T, NV>(y + row * n, g + row * n, dx + row * n, n, threadIdx.x % L, L, log,
                        [mask](float v) { return group_all<L>(v, SumR{}, mask); });
}
template <typename T, int NV>
__global__ void __launch_bounds__(1024) softmax_bw_blk(const T* __restrict__ y, const T* __restrict__ g,
                                                       T* __restrict__ dx, int n, bool log) {
  __shared__ float sh[32];
  float* shp = sh;
  const int64_t row = blockIdx.x;
  softmax_bw_row<T, NV>(y + row * n, g + row * n, dx + row * n, n, threadIdx.x, blockDim.x, log,
                        [shp](float v) { return block_all1(v, SumR{}, shp); });
}

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }
// The vector kernels' condition: a float/half/bfloat16 row of whole 16-byte vectors, every pointer (null: absent)
// 16-byte aligned (then every row is, cols being a multiple of the vector).
template <typename T> bool vec_ok(int64_t cols, std::initializer_list<const void*> ptrs) {
  if constexpr (std::is_same_v<T, double>) {
    return false;
  } else {
    if (cols % kVec<T> != 0) return false;
    for (const void* p : ptrs)
      if (p && !aligned16(p)) return false;
    return true;
  }
}
int pow2_at_least(int64_t v, int lo) {
  int p = lo;
  while (p < v) p *= 2;
  return p;
}
// The lane-group kernels' shape (softmax_grp, softmax_bw_grp; as LayerNormNote's ln_fwd_rows): rows of nvec <= 128
// 16-byte vectors in 256-thread blocks; nvec <= 64: 2 vectors per lane and L = the smallest power of two >= nvec / 2
// (at least 4), else 32 lanes with 4 vectors. launch(L, NV, blocks) with L and NV as integral constants; false
// (nothing launched) when the grid would be too large.
template <typename F> bool row_groups(int64_t nvec, int64_t rows, F launch) {
  using std::integral_constant;
  const int L = nvec <= 64 ? pow2_at_least(ceil_div(nvec, 2), 4) : 32;
  const int64_t blocks = ceil_div(rows, 256 / L);
  if (blocks > INT_MAX) return false;
  if (nvec > 64) launch(integral_constant<int, 32>{}, integral_constant<int, 4>{}, blocks);
  else if (L == 32) launch(integral_constant<int, 32>{}, integral_constant<int, 2>{}, blocks);
  else if (L == 16) launch(integral_constant<int, 16>{}, integral_constant<int, 2>{}, blocks);
  else if (L == 8) launch(integral_constant<int, 8>{}, integral_constant<int, 2>{}, blocks);
  else launch(integral_constant<int, 4>{}, integral_constant<int, 2>{}, blocks);
  return true;
}

// ---- softmax / log_softmax (SoftmaxNote): the row max, then the sum of exp(x - max), both with shuffle
// reductions (max propagates NaN); out = exp(x - max) / sum or (x - max) - log(sum), in A. Three kernels by shape:
//  * softmax_grp: float/half/bfloat16 rows of whole 16-byte vectors with aligned pointers and at most 128 vectors
//    (attention's rows: 128 floats = 32 vectors) take a group of 4..32 lanes per row, several rows per 256-thread
//    block (row_groups), shuffles only. A block per row left most of a 32-thread block's SM idle: miniGPT's [.., 128]
//    float32 softmax took 48 us a launch on the H200 against torch's warp kernel's 22 us.
//  * softmax_blk: the same dtypes and alignment, up to 4096 vectors: a block per row, 4 vectors per thread,
//    32..1024 threads (norm_bench: [8192, 4096] float32 x1.74, 94% of a copy).
//  * softmax_rows_kernel, the rest: rows of at most kLnRegs * blockDim elements are read once into registers.
// The backward (_softmax_backward_data, _log_softmax_backward_data: s = sum(g * y) or sum(g) over the row, then
// dx = y * (g - s) or g - exp(y) * s) takes the same three shapes: softmax_bw_grp, softmax_bw_blk, and
// softmax_bw_rows_kernel, one pass over y and g instead of four ops (mul, sum, mul, sub) and their launches.
template <typename T, typename A>
__global__ void __launch_bounds__(256) softmax_rows_kernel(const T* in, T* out, int64_t cols, bool log) {
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

// softmax / log_softmax backward for what the vector kernels do not take (double, misaligned, cols % kVec != 0,
// long rows): one block per row, the sum over the row in A, then dx; y and g are read twice (L1/L2 hits).
template <typename T, typename A>
__global__ void __launch_bounds__(256) softmax_bw_rows_kernel(const T* y, const T* g, T* dx, int64_t cols, bool log) {
  __shared__ A sh[32];
  const int64_t off = static_cast<int64_t>(blockIdx.x) * cols;
  const int64_t nt = blockDim.x;
  A s = 0;
  for (int64_t j = threadIdx.x; j < cols; j += nt) {
    const A gv = static_cast<A>(up(g[off + j]));
    s += log ? gv : gv * static_cast<A>(up(y[off + j]));
  }
  s = block_sum(s, sh);
  for (int64_t j = threadIdx.x; j < cols; j += nt) {
    const A gv = static_cast<A>(up(g[off + j])), yv = static_cast<A>(up(y[off + j]));
    dx[off + j] = cvt<T>(log ? gv - exp(yv) * s : yv * (gv - s));
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
    if constexpr (!std::is_same_v<T, double>) {
      constexpr int V = kVec<T>, NV = 4;
      const int64_t threads = ceil_div(ceil_div(cols / V, NV), 32) * 32;
      const auto grp = [&](auto l, auto nv, int64_t blocks) {
        softmax_grp<T, decltype(l)::value, decltype(nv)::value><<<static_cast<unsigned>(blocks), 256, 0, s>>>(
            static_cast<const T*>(in), static_cast<T*>(out), rows, static_cast<int>(cols), log);
      };
      if (vec_ok<T>(cols, {in, out}) && cols / V <= 128 && row_groups(cols / V, rows, grp)) return cudaGetLastError();
      if (vec_ok<T>(cols, {in, out}) && threads <= 1024) {
        for (int64_t r0 = 0; r0 < rows; r0 += INT_MAX) {
          const int64_t n = rows - r0 < INT_MAX ? rows - r0 : INT_MAX;
          softmax_blk<T, NV><<<static_cast<unsigned>(n), static_cast<unsigned>(threads), 0, s>>>(
              static_cast<const T*>(in) + r0 * cols, static_cast<T*>(out) + r0 * cols, static_cast<int>(cols), log);
        }
        return cudaGetLastError();
      }
    }
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

cudaError_t launch_softmax_bw_rows(bool log, int dtype, const void* y_, const void* g_, void* dx_, int64_t rows,
                                   int64_t cols, cudaStream_t s) {
  return dispatch_float(dtype, [&](auto tag) -> cudaError_t {
    using T = typename decltype(tag)::type;
    using A = acc_t<T>;
    if (rows == 0 || cols == 0) return cudaSuccess;
    const T* y = static_cast<const T*>(y_);
    const T* g = static_cast<const T*>(g_);
    T* dx = static_cast<T*>(dx_);
    if constexpr (!std::is_same_v<T, double>) {
      constexpr int V = kVec<T>, NV = 4;
      const int64_t nvec = cols / V, threads = ceil_div(ceil_div(nvec, NV), 32) * 32;
      const int n = static_cast<int>(cols < INT_MAX ? cols : 0);
      const auto grp = [&](auto l, auto nv, int64_t blocks) {
        softmax_bw_grp<T, decltype(l)::value, decltype(nv)::value><<<static_cast<unsigned>(blocks), 256, 0, s>>>(
            y, g, dx, rows, n, log);
      };
      if (vec_ok<T>(cols, {y, g, dx}) && nvec <= 128 && row_groups(nvec, rows, grp)) return cudaGetLastError();
      if (vec_ok<T>(cols, {y, g, dx}) && threads <= 1024) {
        for (int64_t r0 = 0; r0 < rows; r0 += INT_MAX) {
          const int64_t nr = rows - r0 < INT_MAX ? rows - r0 : INT_MAX;
          softmax_bw_blk<T, NV><<<static_cast<unsigned>(nr), static_cast<unsigned>(threads), 0, s>>>(
              y + r0 * cols, g + r0 * cols, dx + r0 * cols, n, log);
        }
        return cudaGetLastError();
      }
    }
    int threads = 32;  // a warp per 128 elements, 32..256 threads per row
    while (threads < 256 && threads * 4 < cols) threads *= 2;
    for (int64_t r0 = 0; r0 < rows; r0 += INT_MAX) {
      const int64_t nr = rows - r0 < INT_MAX ? rows - r0 : INT_MAX;
      softmax_bw_rows_kernel<T, A><<<static_cast<unsigned>(nr), threads, 0, s>>>(y + r0 * cols, g + r0 * cols,
                                                                                  dx + r0 * cols, cols, log);
    }
    return cudaGetLastError();
  });
}

cudaError_t launch_layer_norm(int dtype, const void* in, const void* w, const void* b, void* out, int64_t rows,
                              int64_t cols, double eps, cudaStream_t s) {
  return launch_layer_norm_fwd(dtype, in, w, b, out, nullptr, nullptr, rows, cols, eps, s);
}

namespace {
// LayerNormNote's vector kernels: false when they do not take the shape / pointers (the caller falls back).
template <typename T>
bool ln_fwd_vec(const T* in, const T* w, const T* b, T* out, float* mean, float* rstd, int64_t rows, int64_t cols,
                double eps_d, cudaStream_t s) {
  if constexpr (std::is_same_v<T, double>) {
    return false;
  } else {
    constexpr int V = kVec<T>;
    if (!vec_ok<T>(cols, {in, w, b, out})) return false;
    const int64_t nvec = cols / V;
    const int n = static_cast<int>(cols < INT_MAX ? cols : 0);
    const float eps = static_cast<float>(eps_d);
    if (nvec < 128) {
      return row_groups(nvec, rows, [&](auto l, auto nv, int64_t blocks) {
        ln_fwd_rows<T, decltype(l)::value, decltype(nv)::value><<<static_cast<unsigned>(blocks), 256, 0, s>>>(
            in, w, b, out, rows, n, eps, mean, rstd);
      });
    }
    const int64_t threads = ceil_div(ceil_div(nvec, 2), 32) * 32;  // 2 vectors per thread
    if (threads > 1024) return false;
    for (int64_t r0 = 0; r0 < rows; r0 += INT_MAX) {
      const int64_t nr = rows - r0 < INT_MAX ? rows - r0 : INT_MAX;
      const T* x = in + r0 * cols;
      T* y = out + r0 * cols;
      float* m = mean ? mean + r0 : nullptr;
      float* r = rstd ? rstd + r0 : nullptr;
      ln_fwd_blk<T, 2><<<static_cast<unsigned>(nr), static_cast<unsigned>(threads), 0, s>>>(x, w, b, y, n, eps, m, r);
    }
    return true;
  }
}
}  // namespace

cudaError_t launch_layer_norm_fwd(int dtype, const void* in, const void* w, const void* b, void* out, void* mean,
                                  void* rstd, int64_t rows, int64_t cols, double eps, cudaStream_t s) {
  return dispatch_float(dtype, [&](auto tag) -> cudaError_t {
    using T = typename decltype(tag)::type;
    using A = acc_t<T>;
    if (rows == 0 || cols == 0) return cudaSuccess;
    if constexpr (!std::is_same_v<T, double>)
      if (ln_fwd_vec<T>(static_cast<const T*>(in), static_cast<const T*>(w), static_cast<const T*>(b),
                        static_cast<T*>(out), static_cast<A*>(mean), static_cast<A*>(rstd), rows, cols, eps, s))
        return cudaGetLastError();
    // a warp per 128 elements (4 each), 32..256 threads per row
    int threads = 32;
    while (threads < 256 && threads * 4 < cols) threads *= 2;
    for (int64_t r0 = 0; r0 < rows; r0 += INT_MAX) {
      int64_t n = rows - r0 < INT_MAX ? rows - r0 : INT_MAX;
      auto* x = static_cast<const T*>(in) + r0 * cols;
      auto* y = static_cast<T*>(out) + r0 * cols;
      A* m = mean ? static_cast<A*>(mean) + r0 : nullptr;
      A* r = rstd ? static_cast<A*>(rstd) + r0 : nullptr;
      if (cols <= 4 * 256)  // every row in registers with 4 per thread
        layer_norm_kernel<T, A, 4><<<static_cast<unsigned>(n), threads, 0, s>>>(
            x, static_cast<const T*>(w), static_cast<const T*>(b), y, cols, eps, m, r);
      else
        layer_norm_kernel<T, A, 16><<<static_cast<unsigned>(n), threads, 0, s>>>(
            x, static_cast<const T*>(w), static_cast<const T*>(b), y, cols, eps, m, r);
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
//  * layer_norm backward, fused (float/half/bfloat16 rows of whole 16-byte vectors, at most kLnBwdMaxCols = 512
//    elements, 16-byte aligned grad/in/w/dx/workspace): ln_bwd_rows, a group of L lanes (4..32) per chunk of
//    consecutive rows (8 per chunk, more beyond 2048 chunks: shape-only), NV vectors per lane, writes dx and keeps
//    its columns' dweight/dbias partials in registers, stored as the chunk's row of the [chunks, cols] workspace;
//    ln_bwd_wb_final16 adds the chunks of each column in a fixed order (norm_bench [8192, 256]: float32 x2.1,
//    bfloat16 x2.1 over the three kernels below). Without dweight/dbias: one row per group, dx only.
//  * layer_norm backward, otherwise: dx per row (two block sums: h and h * xhat); dweight/dbias in two
//    deterministic passes: a [chunk, column] grid of 32 x 8 blocks writes per-chunk column partials to the
//    workspace, then one thread per column adds its chunks in order.
//  The workspace: 2 * layer_norm_bwd_chunks(rows, cols) * cols accumulate-type elements, enough for both plans.
//  Either path's result depends only on the shape, the dtype and whether the fused path's alignment holds.
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

// layer_norm backward over rows of whole 16-byte vectors (FusedNnNote): each group of L lanes takes rows [r0, r1)
// (a chunk of rows_per_chunk consecutive rows), NV vectors per lane, and writes dx = rstd * (h - mean(h) - xhat *
// mean(h * xhat)), h = grad * w; with pw / pb it keeps its columns' dweight (sum grad * xhat) / dbias (sum grad)
// partials in registers and stores them as row `chunk` of the [chunks, cols] workspace halves.
template <typename T, int L, int NV>
__global__ void __launch_bounds__(256) ln_bwd_rows(const T* __restrict__ grad, const T* __restrict__ in,
                                                    const float* __restrict__ mean, const float* __restrict__ rstd,
                                                    const T* __restrict__ w, int64_t rows, int n,
                                                    int64_t rows_per_chunk, T* __restrict__ dx, float* __restrict__ pw,
                                                    float* __restrict__ pb) {
  constexpr int V = kVec<T>;
  const int64_t chunk = static_cast<int64_t>(blockIdx.x) * (blockDim.x / L) + threadIdx.x / L;
  const int64_t r0 = chunk * rows_per_chunk;
  if (r0 >= rows) return;  // whole groups leave together
  const int64_t r1 = r0 + rows_per_chunk < rows ? r0 + rows_per_chunk : rows;
  const unsigned mask = group_mask<L>();
  const int lane = threadIdx.x % L;
  const bool wb = pw || pb;
  float wv[NV][V], aw[NV][V], ab[NV][V];
#pragma unroll
  for (int k = 0; k < NV; ++k) {
    const int c = (k * L + lane) * V;
#pragma unroll
    for (int e = 0; e < V; ++e) {
      wv[k][e] = 1.f;
      aw[k][e] = ab[k][e] = 0.f;
    }
    if (w && c < n) load_up(w + c, wv[k]);
  }
  for (int64_t r = r0; r < r1; ++r) {
    const float mu = mean[r], rs = rstd[r];
    float xh[NV][V], gv[NV][V];
    float s1 = 0.f, s2 = 0.f;
#pragma unroll
    for (int k = 0; k < NV; ++k) {
      const int c = (k * L + lane) * V;
      if (c < n) {
        load_up(in + r * n + c, xh[k]);
        load_up(grad + r * n + c, gv[k]);
      } else {
#pragma unroll
        for (int e = 0; e < V; ++e) xh[k][e] = gv[k][e] = 0.f;
      }
#pragma unroll
      for (int e = 0; e < V; ++e) {
        xh[k][e] = (xh[k][e] - mu) * rs;
        const float h = gv[k][e] * wv[k][e];
        s1 += h;
        s2 += h * xh[k][e];
        if (wb) {
          aw[k][e] += gv[k][e] * xh[k][e];
          ab[k][e] += gv[k][e];
        }
      }
    }
    s1 = group_sum<L>(s1, mask) / static_cast<float>(n);
    s2 = group_sum<L>(s2, mask) / static_cast<float>(n);
#pragma unroll
    for (int k = 0; k < NV; ++k) {
      const int c = (k * L + lane) * V;
      if (c < n) {
        float o[V];
#pragma unroll
        for (int e = 0; e < V; ++e) o[e] = rs * (gv[k][e] * wv[k][e] - s1 - xh[k][e] * s2);
        store_cvt(dx + r * n + c, o);
      }
    }
  }
  if (!wb) return;
#pragma unroll
  for (int k = 0; k < NV; ++k) {
    const int c = (k * L + lane) * V;
    if (c < n) {
#pragma unroll
      for (int e = 0; e < V; e += 4) {
        if (pw) *reinterpret_cast<float4*>(pw + chunk * n + c + e) = make_float4(aw[k][e], aw[k][e + 1], aw[k][e + 2], aw[k][e + 3]);
        if (pb) *reinterpret_cast<float4*>(pb + chunk * n + c + e) = make_float4(ab[k][e], ab[k][e + 1], ab[k][e + 2], ab[k][e + 3]);
      }
    }
  }
}

// dweight / dbias = the sum over the nchunks rows of pw / pb per column: 32 columns x 16 chunk-lanes per block,
// chunk-lane y adds chunks y, y + 16, ... in order, then thread row 0 adds the 16 lanes in order: deterministic.
template <typename T>
__global__ void __launch_bounds__(512) ln_bwd_wb_final16(const float* __restrict__ pw, const float* __restrict__ pb,
                                                         int64_t nchunks, int64_t n, T* __restrict__ dw,
                                                         T* __restrict__ db) {
  __shared__ float sw[16][33], sb[16][33];
  const int64_t col = static_cast<int64_t>(blockIdx.x) * 32 + threadIdx.x;
  float tw = 0.f, tb = 0.f;
  if (col < n)
    for (int64_t c = threadIdx.y; c < nchunks; c += 16) {
      if (pw) tw += pw[c * n + col];
      if (pb) tb += pb[c * n + col];
    }
  sw[threadIdx.y][threadIdx.x] = tw;
  sb[threadIdx.y][threadIdx.x] = tb;
  __syncthreads();
  if (threadIdx.y != 0 || col >= n) return;
  tw = 0.f;
  tb = 0.f;
#pragma unroll
  for (int k = 0; k < 16; ++k) {
    tw += sw[k][threadIdx.x];
    tb += sb[k][threadIdx.x];
  }
  if (dw) dw[col] = cvt<T>(tw);
  if (db) db[col] = cvt<T>(tb);
}

// The fused backward's plan (shape-only): rows per chunk (at least kLnBwdRows, more when there would be over
// kLnBwdMaxChunks chunks), for rows of at most kLnBwdMaxCols elements.
constexpr int64_t kLnBwdRows = 8, kLnBwdMaxChunks = 2048, kLnBwdMaxCols = 512;
int64_t ln_bwd_rows_per_chunk(int64_t rows) {
  const int64_t r = ceil_div(rows, kLnBwdMaxChunks);
  return r < kLnBwdRows ? kLnBwdRows : r;
}
// today's two-kernel dweight/dbias plan (ln_bwd_wb_partial_kernel)
int64_t ln_bwd_col_chunks(int64_t rows) {
  const int64_t c = (rows + 63) / 64;
  return c < 1 ? 1 : c > 256 ? 256 : c;
}

// The fused kernels when they take the shape / pointers (false: the caller runs the per-row kernels).
template <typename T>
bool ln_bwd_vec(const T* grad, const T* in, const float* mean, const float* rstd, const T* w, int64_t rows,
                int64_t cols, T* dx, T* dw, T* db, float* ws, cudaStream_t s) {
  if constexpr (std::is_same_v<T, double>) {
    return false;
  } else {
    constexpr int V = kVec<T>;
    const bool wb = dw || db;
    if (cols > kLnBwdMaxCols || !vec_ok<T>(cols, {grad, in, w, dx}) || (wb && (!ws || !aligned16(ws)))) return false;
    const int64_t nvec = cols / V;
    const int L = pow2_at_least(nvec, 4) < 32 ? pow2_at_least(nvec, 4) : 32;
    const int NV = static_cast<int>(ceil_div(nvec, L));  // 1, or 2..4 with L = 32 (float: 4, half: 2 at most)
    const int64_t per = wb ? ln_bwd_rows_per_chunk(rows) : 1;
    const int64_t chunks = ceil_div(rows, per);
    const int64_t blocks = ceil_div(chunks, 256 / L);
    if (blocks > INT_MAX) return false;
    float* pw = dw ? ws : nullptr;
    float* pb = db ? ws + chunks * cols : nullptr;
    const dim3 grid(static_cast<unsigned>(blocks));
    const int n = static_cast<int>(cols);
    if (NV == 1) {
      if (L == 4) ln_bwd_rows<T, 4, 1><<<grid, 256, 0, s>>>(grad, in, mean, rstd, w, rows, n, per, dx, pw, pb);
      else if (L == 8) ln_bwd_rows<T, 8, 1><<<grid, 256, 0, s>>>(grad, in, mean, rstd, w, rows, n, per, dx, pw, pb);
      else if (L == 16) ln_bwd_rows<T, 16, 1><<<grid, 256, 0, s>>>(grad, in, mean, rstd, w, rows, n, per, dx, pw, pb);
      else ln_bwd_rows<T, 32, 1><<<grid, 256, 0, s>>>(grad, in, mean, rstd, w, rows, n, per, dx, pw, pb);
    } else if (NV == 2) {
      ln_bwd_rows<T, 32, 2><<<grid, 256, 0, s>>>(grad, in, mean, rstd, w, rows, n, per, dx, pw, pb);
    } else {
      if constexpr (V * 4 <= 16) ln_bwd_rows<T, 32, 4><<<grid, 256, 0, s>>>(grad, in, mean, rstd, w, rows, n, per, dx, pw, pb);
      else return false;  // unreachable: half rows of at most 512 need NV <= 2
    }
    if (wb)
      ln_bwd_wb_final16<T><<<static_cast<unsigned>(ceil_div(cols, 32)), dim3(32, 16), 0, s>>>(pw, pb, chunks, cols, dw,
                                                                                            db);
    return true;
  }
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

int64_t layer_norm_bwd_chunks(int64_t rows, int64_t cols) {
  const int64_t c = ln_bwd_col_chunks(rows);
  if (cols > kLnBwdMaxCols) return c;
  const int64_t f = ceil_div(rows < 1 ? 1 : rows, ln_bwd_rows_per_chunk(rows));
  return f > c ? f : c;  // the fused plan, or the per-row kernels' plan, whichever the launch takes
}

cudaError_t launch_layer_norm_bwd(int dtype, const void* grad, const void* in, const void* mean, const void* rstd,
                                  const void* w, int64_t rows, int64_t cols, void* dx, void* dw, void* db,
                                  void* workspace, cudaStream_t s) {
  return dispatch_float(dtype, [&](auto tag) -> cudaError_t {
    using T = typename decltype(tag)::type;
    using A = acc_t<T>;
    if (rows == 0 || cols == 0) return cudaSuccess;
    if constexpr (!std::is_same_v<T, double>)
      if (ln_bwd_vec<T>(static_cast<const T*>(grad), static_cast<const T*>(in), static_cast<const A*>(mean),
                        static_cast<const A*>(rstd), static_cast<const T*>(w), rows, cols, static_cast<T*>(dx),
                        static_cast<T*>(dw), static_cast<T*>(db), static_cast<A*>(workspace), s))
        return cudaGetLastError();
    const int threads = row_threads(cols, 4, 256);
    for (int64_t r0 = 0; r0 < rows; r0 += INT_MAX) {
      const int64_t nr = rows - r0 < INT_MAX ? rows - r0 : INT_MAX;
      ln_bwd_dx_kernel<T, A><<<static_cast<unsigned>(nr), threads, 0, s>>>(
          static_cast<const T*>(grad) + r0 * cols, static_cast<const T*>(in) + r0 * cols,
          static_cast<const A*>(mean) + r0, static_cast<const A*>(rstd) + r0, static_cast<const T*>(w), cols,
          static_cast<T*>(dx) + r0 * cols);
    }
    if (dw || db) {  // nchunks <= layer_norm_bwd_chunks(rows, cols): the workspace is large enough
      const int64_t nchunks = ln_bwd_col_chunks(rows), per = (rows + nchunks - 1) / nchunks;
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
