// CUDA kernels that walk one line of elements sequentially per thread (see loops.h): arg-reductions and
// max/min with indices, products and norms with the CPU's accumulators (double for floating types, int64
// for integers), cumulative sums/products, scatter / scatter_add / index_add along one dim, and the
// compaction of masked_select / nonzero. One thread owns one row (or one line of a scatter), so there are no
// atomics, duplicate indices resolve exactly as on the CPU (in index order), and every loop uses int64
// indexing. Rows of kBlockCols elements or more are reduced by a block each. The kernels themselves are in
// scan_index_kernels.cuh; this file has the launchers.
#include "scan_index_kernels.cuh"

namespace vbt::cuda::ops {

namespace {

using namespace scan_detail;

unsigned blocks_for(int64_t n) {
  int64_t b = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned>(b > 65536 ? 65536 : b);
}

template <typename F> cudaError_t dispatch_size(int elem_size, F&& f) {
  switch (elem_size) {
    case 1: return f(Tag<uint8_t>{});
    case 2: return f(Tag<uint16_t>{});
    case 4: return f(Tag<uint32_t>{});
    case 8: return f(Tag<uint64_t>{});
  }
  return cudaErrorInvalidValue;
}

}  // namespace

cudaError_t launch_arg_rows(bool is_max, int dtype, const void* in, int64_t* idx, void* vals, int64_t rows,
                            int64_t cols, cudaStream_t s) {
  return dispatch_all(dtype, [&](auto tag) -> cudaError_t {
    using T = typename decltype(tag)::type;
    if (rows == 0) return cudaSuccess;
    if (cols <= 0) return cudaErrorInvalidValue;  // the host rejects empty reductions first
    const T* x = static_cast<const T*>(in);
    T* v = static_cast<T*>(vals);
    if (cols >= kBlockCols && rows <= INT_MAX) {
      const unsigned g = static_cast<unsigned>(rows);
      if (is_max) arg_rows_block_kernel<T, true><<<g, kThreads, 0, s>>>(x, idx, v, cols);
      else arg_rows_block_kernel<T, false><<<g, kThreads, 0, s>>>(x, idx, v, cols);
    } else {
      if (is_max) arg_rows_kernel<T, true><<<blocks_for(rows), kThreads, 0, s>>>(x, idx, v, rows, cols);
      else arg_rows_kernel<T, false><<<blocks_for(rows), kThreads, 0, s>>>(x, idx, v, rows, cols);
    }
    return cudaGetLastError();
  });
}

namespace {
// The split of few long rows (row_reduce_split_kernel): chunk length (a multiple of kSplitAlign) and count,
// from the shape only; splits == 1: one block per row (or one thread per short row), no workspace.
struct RowSplit {
  int64_t splits = 1, chunk = 0;
};
RowSplit row_split(int64_t rows, int64_t cols) {
  RowSplit rs;
  rs.chunk = cols;
  if (rows <= 0 || rows >= 1024 || cols < 8 * kSplitAlign) return rs;
  int64_t n = (2048 + rows - 1) / rows;
  if (n > cols / (2 * kSplitAlign)) n = cols / (2 * kSplitAlign);
  if (n > 65535) n = 65535;
  if (n <= 1) return rs;
  int64_t chunk = (cols + n - 1) / n;
  chunk = (chunk + kSplitAlign - 1) / kSplitAlign * kSplitAlign;
  rs.chunk = chunk;
  rs.splits = (cols + chunk - 1) / chunk;
  return rs;
}
}  // namespace

int64_t row_reduce_workspace_bytes(int64_t rows, int64_t cols) {
  const RowSplit rs = row_split(rows, cols);
  return rs.splits > 1 ? rs.splits * rows * 8 : 0;  // one double or int64 per chunk
}

cudaError_t launch_row_reduce(RowRed op, int dtype, const void* in, void* out, int64_t rows, int64_t cols, double p,
                              void* workspace, cudaStream_t s) {
  auto run = [&](auto tag) -> cudaError_t {
    using T = typename decltype(tag)::type;
    using W = wide_t<T>;
    if (rows == 0) return cudaSuccess;
    const T* x = static_cast<const T*>(in);
    T* y = static_cast<T*>(out);
    const RowSplit rs = row_split(rows, cols);
    if (rs.splits > 1) {
      if (workspace == nullptr) return cudaErrorInvalidValue;
      W* part = static_cast<W*>(workspace);
      dim3 grid(static_cast<unsigned>(rs.splits), static_cast<unsigned>(rows));  // rows < 1024
      row_reduce_split_kernel<T><<<grid, kThreads, 0, s>>>(op, x, part, rows, cols, rs.chunk, p);
      row_reduce_finish_kernel<T><<<static_cast<unsigned>(rows), kThreads, 0, s>>>(op, part, y, rows, rs.splits, p);
    } else if ((cols >= kBlockCols || (rows <= kFewRows && cols >= kFewRowsMinCols)) && rows <= INT_MAX) {
      row_reduce_block_kernel<T><<<static_cast<unsigned>(rows), kThreads, 0, s>>>(op, x, y, cols, p);
    } else {
      row_reduce_kernel<T><<<blocks_for(rows), kThreads, 0, s>>>(op, x, y, rows, cols, p);
    }
    return cudaGetLastError();
  };
  if (op == RowRed::Prod) return dispatch_numeric(dtype, run);
  return dispatch_float(dtype, run);
}

int64_t scan_workspace_bytes(int64_t rows, int64_t cols) {
  if (cols < kBlockCols) return 0;
  return rows * ((cols + kScanChunk - 1) / kScanChunk) * 8;  // one double or int64 per chunk
}

cudaError_t launch_scan_rows(bool prod, int dtype, const void* in, void* out, int64_t rows, int64_t cols,
                             void* workspace, cudaStream_t s) {
  return dispatch_numeric(dtype, [&](auto tag) -> cudaError_t {
    using T = typename decltype(tag)::type;
    using W = wide_t<T>;
    if (rows == 0 || cols == 0) return cudaSuccess;
    const T* x = static_cast<const T*>(in);
    T* y = static_cast<T*>(out);
    if (cols >= kBlockCols) {
      if (workspace == nullptr) return cudaErrorInvalidValue;
      W* tot = static_cast<W*>(workspace);
      const int64_t nchunks = (cols + kScanChunk - 1) / kScanChunk, n = rows * nchunks;
      if (prod) {
        scan_chunk_totals_kernel<T, true><<<blocks_for(n), kThreads, 0, s>>>(x, tot, rows, cols, nchunks);
        scan_chunk_prefix_kernel<W, true><<<blocks_for(rows), kThreads, 0, s>>>(tot, rows, nchunks);
        scan_chunks_kernel<T, true><<<blocks_for(n), kThreads, 0, s>>>(x, y, tot, rows, cols, nchunks);
      } else {
        scan_chunk_totals_kernel<T, false><<<blocks_for(n), kThreads, 0, s>>>(x, tot, rows, cols, nchunks);
        scan_chunk_prefix_kernel<W, false><<<blocks_for(rows), kThreads, 0, s>>>(tot, rows, nchunks);
        scan_chunks_kernel<T, false><<<blocks_for(n), kThreads, 0, s>>>(x, y, tot, rows, cols, nchunks);
      }
      return cudaGetLastError();
    }
    if (prod) scan_rows_kernel<T, true><<<blocks_for(rows), kThreads, 0, s>>>(x, y, rows, cols);
    else scan_rows_kernel<T, false><<<blocks_for(rows), kThreads, 0, s>>>(x, y, rows, cols);
    return cudaGetLastError();
  });
}

// The number of lines a scatter walks (the product of the sizes other than a.dim); -1 when a's dims are invalid.
static int64_t lines_of(const ScatterArgs& a) {
  if (a.ndim < 1 || a.ndim > kMaxDims || a.dim < 0 || a.dim >= a.ndim) return -1;
  int64_t lines = 1;
  for (int d = 0; d < a.ndim; ++d)
    if (d != a.dim) lines *= a.sizes[d];
  return lines;
}

cudaError_t launch_scatter_lines(bool add, int dtype, const ScatterArgs& a, cudaStream_t s) {
  return dispatch_all(dtype, [&](auto tag) -> cudaError_t {
    using T = typename decltype(tag)::type;
    const int64_t lines = lines_of(a);
    if (lines < 0) return cudaErrorInvalidValue;
    if (lines == 0 || a.sizes[a.dim] == 0) return cudaSuccess;
    if (add) scatter_lines_kernel<T, true><<<blocks_for(lines), kThreads, 0, s>>>(a, lines);
    else scatter_lines_kernel<T, false><<<blocks_for(lines), kThreads, 0, s>>>(a, lines);
    return cudaGetLastError();
  });
}

cudaError_t launch_sorted_scatter(bool add, int dtype, const ScatterArgs& a, const int64_t* keys, const int64_t* pos,
                                  cudaStream_t s) {
  return dispatch_all(dtype, [&](auto tag) -> cudaError_t {
    using T = typename decltype(tag)::type;
    const int64_t lines = lines_of(a);
    if (lines < 0) return cudaErrorInvalidValue;
    const int64_t n = a.sizes[a.dim];
    if (lines == 0 || n == 0) return cudaSuccess;
    if (add) sorted_lines_kernel<T, true><<<blocks_for(n * lines), kThreads, 0, s>>>(a, keys, pos, n, lines);
    else sorted_lines_kernel<T, false><<<blocks_for(n * lines), kThreads, 0, s>>>(a, keys, pos, n, lines);
    return cudaGetLastError();
  });
}

cudaError_t launch_masked_compact(int elem_size, const void* src, const bool* mask, const int64_t* pos, void* out,
                                  int64_t n, cudaStream_t s) {
  return dispatch_size(elem_size, [&](auto tag) -> cudaError_t {
    using T = typename decltype(tag)::type;
    if (n == 0) return cudaSuccess;
    compact_kernel<T><<<blocks_for(n), kThreads, 0, s>>>(static_cast<const T*>(src), mask, pos, static_cast<T*>(out), n);
    return cudaGetLastError();
  });
}

cudaError_t launch_nonzero(const bool* mask, const int64_t* pos, int64_t* out, int64_t n, const NonzeroArgs& a,
                           cudaStream_t s) {
  if (a.ndim < 0 || a.ndim > kMaxDims) return cudaErrorInvalidValue;
  if (n == 0 || a.ndim == 0) return cudaSuccess;
  nonzero_kernel<<<blocks_for(n), kThreads, 0, s>>>(mask, pos, out, n, a);
  return cudaGetLastError();
}

}  // namespace vbt::cuda::ops
