// Device code of scan_index.cu (loops.h): the kernels that walk one row or line sequentially per thread, and
// the block-per-row reductions for long rows. A header of its own so that
// tests/cpp/cuda/scan_index_emulation.cpp can run the same kernel bodies on the host (no GPU needed).
#pragma once
#include <climits>
#include <cmath>

#include "device_types.cuh"
#include "loops.h"
#include "row_reduce_ops.cuh"

namespace vbt::cuda::ops::scan_detail {

constexpr int kThreads = 256;

#define VBT_GRID_STRIDE(i, n)                                                                          \
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < (n);              \
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)

// The CPU's accumulator: double for floating types (half/bfloat16 included), int64 for integers.
template <typename T> using wide_t = std::conditional_t<std::is_floating_point_v<acc_t<T>>, double, int64_t>;

template <typename T> __device__ __forceinline__ wide_t<T> widen(T v) { return static_cast<wide_t<T>>(up(v)); }

// Rows of at least kBlockCols elements are reduced by one block of kThreads threads each (a strided partial
// result per thread, then a tree in shared memory); shorter rows by one thread each, unless there are at most
// kFewRows rows of at least kFewRowsMinCols elements (row reductions only): then one thread per row would leave
// the device idle while it walks (a 1-D tensor's norm took 40 us on the H200 that way), so a block takes each.
constexpr int64_t kBlockCols = 2048;
constexpr int64_t kFewRows = 4096, kFewRowsMinCols = 128;

// ---- argmax / argmin (and the values of max_dim / min_dim): the first NaN if there is one, else the first
// extreme. A partial result is (value, index), index -1 for none; combining two partial results of disjoint
// index sets keeps that rule whatever the sets are (ties and NaNs go to the lower index).
template <typename A> struct ArgPart {
  A v;
  int64_t i;
};
template <bool IsMax, typename A> __device__ __forceinline__ ArgPart<A> arg_combine(ArgPart<A> a, ArgPart<A> b) {
  if (a.i < 0) return b;
  if (b.i < 0) return a;
  if (b.i < a.i) {  // make `a` the earlier one
    ArgPart<A> t = a;
    a = b;
    b = t;
  }
  if (is_nan(a.v)) return a;
  if (is_nan(b.v)) return b;
  return (IsMax ? b.v > a.v : b.v < a.v) ? b : a;
}

template <typename T, bool IsMax>
__global__ void arg_rows_kernel(const T* in, int64_t* idx, T* vals, int64_t rows, int64_t cols) {
  using A = acc_t<T>;
  VBT_GRID_STRIDE(r, rows) {
    const T* row = in + r * cols;
    ArgPart<A> acc{A(0), -1};
    for (int64_t j = 0; j < cols; ++j) acc = arg_combine<IsMax>(acc, ArgPart<A>{up(row[j]), j});
    idx[r] = acc.i;
    if (vals) vals[r] = row[acc.i];
  }
}

template <typename T, bool IsMax>
__global__ void arg_rows_block_kernel(const T* in, int64_t* idx, T* vals, int64_t cols) {
  using A = acc_t<T>;
  __shared__ A sv[kThreads];
  __shared__ int64_t si[kThreads];
  const int64_t r = blockIdx.x;
  const T* row = in + r * cols;
  ArgPart<A> acc{A(0), -1};
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) acc = arg_combine<IsMax>(acc, ArgPart<A>{up(row[j]), j});
  sv[threadIdx.x] = acc.v;
  si[threadIdx.x] = acc.i;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) {
      ArgPart<A> c = arg_combine<IsMax>(ArgPart<A>{sv[threadIdx.x], si[threadIdx.x]},
                                        ArgPart<A>{sv[threadIdx.x + s], si[threadIdx.x + s]});
      sv[threadIdx.x] = c.v;
      si[threadIdx.x] = c.i;
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    idx[r] = si[0];
    if (vals) vals[r] = row[si[0]];
  }
}

// ---- row reductions: rr_init / rr_step / rr_combine / rr_finish are in row_reduce_ops.cuh


template <typename T>
__global__ void row_reduce_kernel(RowRed op, const T* in, T* out, int64_t rows, int64_t cols, double p) {
  using W = wide_t<T>;
  VBT_GRID_STRIDE(r, rows) {
    const T* row = in + r * cols;
    W acc = rr_init<W>(op);
    for (int64_t j = 0; j < cols; ++j) acc = rr_step(op, acc, widen(row[j]), p);
    out[r] = cvt<T>(rr_finish(op, acc, p));
  }
}

template <typename T>
__global__ void row_reduce_block_kernel(RowRed op, const T* in, T* out, int64_t cols, double p) {
  using W = wide_t<T>;
  __shared__ W sh[kThreads];
  const int64_t r = blockIdx.x;
  const T* row = in + r * cols;
  W acc = rr_init<W>(op);
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) acc = rr_step(op, acc, widen(row[j]), p);
  sh[threadIdx.x] = acc;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) sh[threadIdx.x] = rr_combine(op, sh[threadIdx.x], sh[threadIdx.x + s]);
    __syncthreads();
  }
  if (threadIdx.x == 0) out[r] = cvt<T>(rr_finish(op, sh[0], p));
}

// Few long rows (a full norm or product is one row): each row is cut into `splits` chunks of whole
// kSplitAlign-element pieces, one block per chunk writes its partial (W) to part[chunk * rows + row], and
// row_reduce_finish_kernel combines each row's partials, one block per row, in a fixed order (deterministic).
// A chunk has at least 2 * kSplitAlign elements (8 per thread); with 4096 and 4 pieces a 256x1024 weight's norm
// got 16 blocks and took 30 us on the H200.
constexpr int64_t kSplitAlign = 1024;

template <typename T>
__global__ void row_reduce_split_kernel(RowRed op, const T* in, wide_t<T>* part, int64_t rows, int64_t cols,
                                        int64_t chunk, double p) {
  using W = wide_t<T>;
  __shared__ W sh[kThreads];
  const int64_t r = blockIdx.y;
  const T* row = in + r * cols;
  const int64_t c0 = static_cast<int64_t>(blockIdx.x) * chunk;
  const int64_t c1 = c0 + chunk < cols ? c0 + chunk : cols;
  W acc = rr_init<W>(op);
  for (int64_t j = c0 + threadIdx.x; j < c1; j += blockDim.x) acc = rr_step(op, acc, widen(row[j]), p);
  sh[threadIdx.x] = acc;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) sh[threadIdx.x] = rr_combine(op, sh[threadIdx.x], sh[threadIdx.x + s]);
    __syncthreads();
  }
  if (threadIdx.x == 0) part[static_cast<int64_t>(blockIdx.x) * rows + r] = sh[0];
}

template <typename T>
__global__ void row_reduce_finish_kernel(RowRed op, const wide_t<T>* part, T* out, int64_t rows, int64_t splits,
                                         double p) {
  using W = wide_t<T>;
  __shared__ W sh[kThreads];
  W acc = rr_init<W>(op);
  for (int64_t c = threadIdx.x; c < splits; c += blockDim.x) acc = rr_combine(op, acc, part[c * rows + blockIdx.x]);
  sh[threadIdx.x] = acc;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) sh[threadIdx.x] = rr_combine(op, sh[threadIdx.x], sh[threadIdx.x + s]);
    __syncthreads();
  }
  if (threadIdx.x == 0) out[blockIdx.x] = cvt<T>(rr_finish(op, sh[0], p));
}

// ---- inclusive scans along rows. Short rows: one thread per row. Rows of kBlockCols or more: chunks of
// kScanChunk elements; (1) one thread per chunk computes its total, (2) one thread per row turns the totals
// into exclusive prefixes (in place), (3) one thread per chunk scans it starting from its prefix.
constexpr int64_t kScanChunk = 1024;

template <bool IsProd, typename W> __device__ __forceinline__ W scan_op(W acc, W x) {
  if constexpr (std::is_floating_point_v<W>) return IsProd ? acc * x : acc + x;
  else
    return static_cast<W>(IsProd ? static_cast<uint64_t>(acc) * static_cast<uint64_t>(x)
                                 : static_cast<uint64_t>(acc) + static_cast<uint64_t>(x));  // wraps like the CPU
}

template <typename T, bool IsProd>
__global__ void scan_rows_kernel(const T* in, T* out, int64_t rows, int64_t cols) {
  using W = wide_t<T>;
  VBT_GRID_STRIDE(r, rows) {
    const T* row = in + r * cols;
    T* orow = out + r * cols;
    W acc = IsProd ? W(1) : W(0);
    for (int64_t j = 0; j < cols; ++j) {
      acc = scan_op<IsProd>(acc, widen(row[j]));
      orow[j] = cvt<T>(acc);
    }
  }
}

template <typename T, bool IsProd>
__global__ void scan_chunk_totals_kernel(const T* in, wide_t<T>* tot, int64_t rows, int64_t cols, int64_t nchunks) {
  using W = wide_t<T>;
  VBT_GRID_STRIDE(t, rows * nchunks) {
    const int64_t r = t / nchunks, c = t % nchunks;
    const T* row = in + r * cols;
    const int64_t b = c * kScanChunk, e = b + kScanChunk < cols ? b + kScanChunk : cols;
    W acc = IsProd ? W(1) : W(0);
    for (int64_t j = b; j < e; ++j) acc = scan_op<IsProd>(acc, widen(row[j]));
    tot[t] = acc;
  }
}

template <typename W, bool IsProd>
__global__ void scan_chunk_prefix_kernel(W* tot, int64_t rows, int64_t nchunks) {
  VBT_GRID_STRIDE(r, rows) {
    W* tr = tot + r * nchunks;
    W acc = IsProd ? W(1) : W(0);
    for (int64_t c = 0; c < nchunks; ++c) {
      const W x = tr[c];
      tr[c] = acc;
      acc = scan_op<IsProd>(acc, x);
    }
  }
}

template <typename T, bool IsProd>
__global__ void scan_chunks_kernel(const T* in, T* out, const wide_t<T>* prefix, int64_t rows, int64_t cols,
                                   int64_t nchunks) {
  using W = wide_t<T>;
  VBT_GRID_STRIDE(t, rows * nchunks) {
    const int64_t r = t / nchunks, c = t % nchunks;
    const T* row = in + r * cols;
    T* orow = out + r * cols;
    const int64_t b = c * kScanChunk, e = b + kScanChunk < cols ? b + kScanChunk : cols;
    W acc = prefix[t];
    for (int64_t j = b; j < e; ++j) {
      acc = scan_op<IsProd>(acc, widen(row[j]));
      orow[j] = cvt<T>(acc);
    }
  }
}

// One scatter step into dst: set (last write wins) or add alpha * s, in the CPU kernel's arithmetic (bool: or;
// integers wrap).
template <typename T, bool Add> __device__ __forceinline__ void scatter_step(T& dst, T s, const ScatterArgs& a) {
  if constexpr (!Add) {
    dst = s;
  } else if constexpr (std::is_same_v<T, bool>) {
    dst = dst || (s && a.ialpha != 0);
  } else if constexpr (std::is_floating_point_v<acc_t<T>>) {
    using A = acc_t<T>;
    dst = cvt<T>(static_cast<A>(up(dst) + static_cast<A>(a.alpha) * up(s)));
  } else {
    dst = static_cast<T>(static_cast<uint64_t>(dst) + static_cast<uint64_t>(a.ialpha) * static_cast<uint64_t>(s));
  }
}

// The offsets (idx, src, out) of line l: row-major over the dims other than a.dim.
__device__ __forceinline__ void line_offsets(const ScatterArgs& a, int64_t l, int64_t& oi, int64_t& os, int64_t& oo) {
  int64_t rem = l;
  oi = os = oo = 0;
  for (int d = a.ndim - 1; d >= 0; --d) {
    if (d == a.dim) continue;
    const int64_t c = rem % a.sizes[d];
    rem /= a.sizes[d];
    oi += c * a.idx_st[d];
    os += c * a.src_st[d];
    oo += c * a.out_st[d];
  }
}

// ---- scatter along a.dim: one thread per line (all index positions that differ only in dim)
template <typename T, bool Add>
__global__ void scatter_lines_kernel(ScatterArgs a, int64_t lines) {
  const T* src = static_cast<const T*>(a.src);
  T* out = static_cast<T*>(a.out);
  const int64_t len = a.sizes[a.dim];
  VBT_GRID_STRIDE(l, lines) {
    int64_t oi, os, oo;
    line_offsets(a, l, oi, os, oo);
    for (int64_t k = 0; k < len; ++k) {
      int64_t v = a.idx[oi + k * a.idx_st[a.dim]];
      if (v < 0) v += a.out_size;  // the host checked -out_size <= v < out_size
      scatter_step<T, Add>(out[oo + v * a.out_st[a.dim]], src[os + k * a.src_st[a.dim]], a);
    }
  }
}

// ---- the same scatter for an index that varies along a.dim only (index_put_, index_add), with many indices:
// keys[0..n) are the index values (never negative) sorted stably and pos[i] the position along a.dim that key
// i came from, so equal keys form runs in index order. One thread per (run, line) walks its run in order from
// the old value: the result is scatter_lines_kernel's bit for bit, with n * lines threads' parallelism instead
// of lines. Thread t is (i = t / lines, l = t % lines), so neighbouring threads touch neighbouring elements.
template <typename T, bool Add>
__global__ void sorted_lines_kernel(ScatterArgs a, const int64_t* keys, const int64_t* pos, int64_t n, int64_t lines) {
  const T* src = static_cast<const T*>(a.src);
  T* out = static_cast<T*>(a.out);
  VBT_GRID_STRIDE(t, n * lines) {
    const int64_t i = t / lines, l = t % lines;
    const int64_t v = keys[i];
    if (i > 0 && keys[i - 1] == v) continue;  // not the start of a run
    int64_t oi, os, oo;
    line_offsets(a, l, oi, os, oo);
    T acc = out[oo + v * a.out_st[a.dim]];
    for (int64_t j = i; j < n && keys[j] == v; ++j) scatter_step<T, Add>(acc, src[os + pos[j] * a.src_st[a.dim]], a);
    out[oo + v * a.out_st[a.dim]] = acc;
  }
}

// ---- masked_select's compaction: pos is the inclusive prefix count of mask
template <typename T>
__global__ void compact_kernel(const T* src, const bool* mask, const int64_t* pos, T* out, int64_t n) {
  VBT_GRID_STRIDE(i, n) {
    if (mask[i]) out[pos[i] - 1] = src[i];
  }
}

// ---- nonzero: the row-major coordinates of each set element, at row pos[i] - 1 of out [count, ndim]
__global__ void nonzero_kernel(const bool* mask, const int64_t* pos, int64_t* out, int64_t n, NonzeroArgs a) {
  VBT_GRID_STRIDE(i, n) {
    if (!mask[i]) continue;
    int64_t* row = out + (pos[i] - 1) * a.ndim;
    int64_t rem = i;
    for (int d = a.ndim - 1; d >= 0; --d) {
      row[d] = rem % a.sizes[d];
      rem /= a.sizes[d];
    }
  }
}

}  // namespace vbt::cuda::ops::scan_detail
