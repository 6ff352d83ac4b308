// CUDA sorting (sort, argsort, msort, topk, kthvalue) on CUB's radix sorts, and multinomial's device
// kernels. The host side (dims, dtypes, checks, outputs) is sort_ops.cpp; the launchers' contract is in
// sort_launch.h.
//
// Note [CUDA sort]
// The host moves the sorted dim last into a contiguous [rows, cols] tensor (a copy only when needed); every
// row is sorted here, then the host moves the dim back. One sort for all dtypes and orders:
//  * Keys. Each element becomes an unsigned integer of its own width whose unsigned order is torch's order
//    (Note [Sort order] in src/vbt/cpu/sort_kernels.cpp): signed integers flip the sign bit; floats (float16,
//    bfloat16, float32, float64) flip the sign bit of non-negatives and every bit of negatives, after
//    mapping -0.0 to +0.0 (torch compares them equal, so they tie and keep index order) and every NaN, of
//    either sign and any payload, to the all-ones key, above +inf (torch puts NaN after +inf and NaNs tie).
//    Working on these keys, never on the floats, leaves nothing to CUB's own float handling. Descending
//    sorts complement the keys and sort ascending, so ties keep index order in both directions.
//  * Sort. Keys are paired with their int64 column and sorted stably: one row with cub::DeviceRadixSort (the
//    whole device on one segment), several rows with cub::DeviceSegmentedSort::StableSortPairs (per-segment
//    radix / merge sorts sized to the segments, so many short rows and few long rows are both fine). Every
//    sort is stable (torch's stable=True result); with stable=False torch leaves tie order unspecified, so
//    the stable order is a valid answer there too.
//  * Values are gathered from the input by the sorted columns, so they are bit-exact (-0.0, NaN payloads).
//  * Scratch (keys in/out, columns, segment offsets, CUB's temporary storage) is one block from the caching
//    allocator on the current stream (a tensor the host allocates, freed stream-ordered); nothing
//    synchronises the host, so sorts can be captured in CUDA graphs.
// topk and kthvalue sort the whole row and slice it (the host does this). For k much smaller than a long row
// a radix select (torch's approach) would do less work; this is the simple, exact first version.
//
// multinomial: weights are validated by one block per row (the host reads the flags back, see sort_ops.cpp).
// With replacement, each row's inclusive cumulative sum (double, a block scan per row) is searched for
// u * total per sample (u uniform in [0, 1)); a category of weight 0 never matches (a fix-up steps off one
// should rounding in the parallel scan make it look non-empty). Without replacement, the exponential race
// (as the CPU kernel): key_i = w_i / E_i with E_i ~ Exp(1); the n largest keys, largest first, are the draw
// (the host sorts keys with launch_sort_rows, descending); zero weights get key -1 so they come last, by
// index. Random numbers are counter-based: element c draws mix64(seed ^ mix64(c)) (splitmix64's finaliser, as
// the elementwise random kernels, RandomNote in elementwise.cu) with one 64-bit seed per call taken from the
// Generator, so a seed fixes the result independently of the launch geometry.
#include <cub/block/block_reduce.cuh>
#include <cub/block/block_scan.cuh>
#include <cub/device/device_radix_sort.cuh>
#include <cub/device/device_segmented_sort.cuh>

#include "device_types.cuh"
#include "sort_launch.h"

namespace vbt::cuda::ops {

namespace {

constexpr int kThreads = 256;
constexpr int64_t kAlign = 256;

unsigned blocks_for(int64_t n) {
  int64_t b = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned>(b < 1 ? 1 : b > 65536 ? 65536 : b);
}
int64_t align_up(int64_t x) { return (x + kAlign - 1) / kAlign * kAlign; }

// The unsigned type of a dtype's width.
template <typename T> struct KeyOf;
template <> struct KeyOf<bool> { using type = uint8_t; };
template <> struct KeyOf<uint8_t> { using type = uint8_t; };
template <> struct KeyOf<int8_t> { using type = uint8_t; };
template <> struct KeyOf<int16_t> { using type = uint16_t; };
template <> struct KeyOf<int32_t> { using type = uint32_t; };
template <> struct KeyOf<int64_t> { using type = uint64_t; };
template <> struct KeyOf<__half> { using type = uint16_t; };
template <> struct KeyOf<__nv_bfloat16> { using type = uint16_t; };
template <> struct KeyOf<float> { using type = uint32_t; };
template <> struct KeyOf<double> { using type = uint64_t; };
template <typename T> using sort_key_t = typename KeyOf<T>::type;

template <typename T> constexpr bool is_float_v =
    std::is_same_v<T, __half> || std::is_same_v<T, __nv_bfloat16> || std::is_floating_point_v<T>;

// The bits of +inf (exponent all ones, zero significand) of a float type; a magnitude above is NaN.
template <typename T> __host__ __device__ constexpr sort_key_t<T> inf_bits() {
  if constexpr (std::is_same_v<T, __half>) return 0x7c00u;
  else if constexpr (std::is_same_v<T, __nv_bfloat16>) return 0x7f80u;
  else if constexpr (std::is_same_v<T, float>) return 0x7f800000u;
  else return 0x7ff0000000000000ull;
}

// Note [CUDA sort]: the order-preserving unsigned key of an element given as its raw bits.
template <typename T> __host__ __device__ __forceinline__ sort_key_t<T> order_key(sort_key_t<T> b) {
  using U = sort_key_t<T>;
  constexpr U sign = static_cast<U>(U(1) << (sizeof(U) * 8 - 1));
  if constexpr (is_float_v<T>) {
    const U mag = static_cast<U>(b & static_cast<U>(~sign));
    if (mag > inf_bits<T>()) return static_cast<U>(~U(0));  // NaN: after +inf
    if (mag == 0) return sign;                               // -0.0 ties with +0.0
    return (b & sign) ? static_cast<U>(~b) : static_cast<U>(b | sign);
  } else if constexpr (std::is_signed_v<T>) {
    return static_cast<U>(b ^ sign);
  } else {
    return b;
  }
}

// keys[i] = the key of in[i] (complemented when descending), cols_in[i] = i's column, offsets[r] = r * cols
// for r <= rows (when offsets is not null).
template <typename T>
__global__ void make_keys_kernel(const sort_key_t<T>* in, sort_key_t<T>* keys, int64_t* cols_in, int64_t* offsets, int64_t n,
                                 int64_t rows, int64_t cols, bool descending) {
  const int64_t total = n > rows + 1 ? n : rows + 1;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    if (i < n) {
      const sort_key_t<T> k = order_key<T>(in[i]);
      keys[i] = descending ? static_cast<sort_key_t<T>>(~k) : k;
      cols_in[i] = i % cols;
    }
    if (offsets && i <= rows) offsets[i] = i * cols;
  }
}

// out[i] = in[row of i, idx[i]] (raw bits of the element width)
template <typename U>
__global__ void gather_rows_kernel(const U* in, const int64_t* idx, U* out, int64_t n, int64_t cols) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    out[i] = in[(i / cols) * cols + idx[i]];
}

// The scratch layout of one sort.
struct SortScratch {
  int64_t keys_in = 0, keys_out = 0, cols_in = 0, offsets = 0, temp = 0, total = 0;
  size_t temp_bytes = 0;
};

// CUB's temporary storage query (d_temp_storage null) or run.
template <typename U>
cudaError_t cub_sort(void* temp, size_t& temp_bytes, const U* keys_in, U* keys_out, const int64_t* cols_in,
                     int64_t* idx, const int64_t* offsets, int64_t rows, int64_t cols, cudaStream_t s) {
  const int64_t n = rows * cols;
  if (rows == 1)
    return cub::DeviceRadixSort::SortPairs(temp, temp_bytes, keys_in, keys_out, cols_in, idx, n, 0,
                                           int(sizeof(U) * 8), s);
  return cub::DeviceSegmentedSort::StableSortPairs(temp, temp_bytes, keys_in, keys_out, cols_in, idx, n, rows,
                                                   offsets, offsets + 1, s);
}

template <typename T> cudaError_t plan_sort(int64_t rows, int64_t cols, SortScratch& p) {
  using U = sort_key_t<T>;
  const int64_t n = rows * cols;
  size_t tb = 0;
  cudaError_t e = cub_sort<U>(nullptr, tb, nullptr, nullptr, nullptr, nullptr, nullptr, rows, cols, nullptr);
  if (e != cudaSuccess) return e;
  p.temp_bytes = tb;
  int64_t at = 0;
  p.keys_in = at;  at += align_up(n * int64_t(sizeof(U)));
  p.keys_out = at; at += align_up(n * int64_t(sizeof(U)));
  p.cols_in = at;  at += align_up(n * 8);
  p.offsets = at;  at += rows > 1 ? align_up((rows + 1) * 8) : 0;
  p.temp = at;     at += align_up(static_cast<int64_t>(tb));
  p.total = at;
  return cudaSuccess;
}

template <typename T> __device__ __forceinline__ double weight(const T* w, int64_t i) {
  return static_cast<double>(up(w[i]));
}

__device__ __forceinline__ uint64_t mix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
__device__ __forceinline__ uint64_t draw(uint64_t seed, uint64_t ctr) { return mix64(seed ^ mix64(ctr)); }

template <typename T> __global__ void multinomial_check_kernel(const T* w, int64_t rows, int64_t cols, int32_t* flags) {
  using Reduce = cub::BlockReduce<double, kThreads>;
  __shared__ typename Reduce::TempStorage tmp;
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    double s = 0.0;
    int bad = 0;
    for (int64_t c = threadIdx.x; c < cols; c += kThreads) {
      const double v = weight(w, r * cols + c);
      if (!(v >= 0.0) || isinf(v)) bad = 1;  // negative, NaN or inf
      else s += v;
    }
    const double total = Reduce(tmp).Sum(s);
    bad = __syncthreads_or(bad);
    if (threadIdx.x == 0) {
      if (bad) atomicOr(flags, 1);
      else if (!(total > 0.0)) atomicOr(flags, 2);
    }
    __syncthreads();
  }
}

template <typename T> __global__ void row_cumsum_kernel(const T* w, double* cs, int64_t rows, int64_t cols) {
  using Scan = cub::BlockScan<double, kThreads>;
  __shared__ typename Scan::TempStorage tmp;
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    double carry = 0.0;
    for (int64_t base = 0; base < cols; base += kThreads) {
      const int64_t c = base + threadIdx.x;
      const double v = c < cols ? weight(w, r * cols + c) : 0.0;
      double incl = 0.0, tile = 0.0;
      Scan(tmp).InclusiveSum(v, incl, tile);
      if (c < cols) cs[r * cols + c] = carry + incl;
      carry += tile;
      __syncthreads();
    }
  }
}

template <typename T>
__global__ void multinomial_sample_kernel(const T* w, const double* cs, int64_t* out, int64_t rows, int64_t cols,
                                          int64_t n, uint64_t seed) {
  const int64_t total_n = rows * n;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total_n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = i / n;
    const double* row = cs + r * cols;
    const double u = static_cast<double>(draw(seed, uint64_t(i)) >> 11) * (1.0 / 9007199254740992.0);
    const double target = u * row[cols - 1];
    int64_t lo = 0, hi = cols;  // the first column whose cumulative sum exceeds target
    while (lo < hi) {
      const int64_t mid = lo + (hi - lo) / 2;
      if (row[mid] <= target) lo = mid + 1;
      else hi = mid;
    }
    int64_t idx = lo < cols ? lo : cols - 1;
    const T* wr = w + r * cols;
    int64_t j = idx;
    while (j > 0 && weight(wr, j) == 0.0) --j;  // rounding only: never return a zero weight
    if (weight(wr, j) == 0.0) {
      j = idx;
      while (j < cols - 1 && weight(wr, j) == 0.0) ++j;
    }
    out[i] = j;
  }
}

template <typename T>
__global__ void multinomial_keys_kernel(const T* w, double* keys, int64_t n, uint64_t seed) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const double v = weight(w, i);
    if (!(v > 0.0)) {
      keys[i] = -1.0;
      continue;
    }
    // u in (0, 1], E = -log(u) ~ Exp(1); E == 0 gives +inf (drawn first)
    const double u = static_cast<double>((draw(seed, uint64_t(i)) >> 11) + 1) * (1.0 / 9007199254740992.0);
    keys[i] = v / -log(u);
  }
}

template <typename F> cudaError_t dispatch_sortable(int dt, F&& f) { return dispatch_all(dt, f); }

}  // namespace

cudaError_t sort_workspace_bytes(int dtype, int64_t rows, int64_t cols, int64_t* bytes) {
  return dispatch_sortable(dtype, [&](auto tag) -> cudaError_t {
    using T = typename decltype(tag)::type;
    SortScratch p;
    *bytes = 0;
    if (rows * cols == 0) return cudaSuccess;
    cudaError_t e = plan_sort<T>(rows, cols, p);
    if (e == cudaSuccess) *bytes = p.total;
    return e;
  });
}

cudaError_t launch_sort_rows(int dtype, const void* in, void* values, int64_t* idx, int64_t rows, int64_t cols,
                             bool descending, void* workspace, int64_t workspace_bytes, cudaStream_t s) {
  return dispatch_sortable(dtype, [&](auto tag) -> cudaError_t {
    using T = typename decltype(tag)::type;
    using U = sort_key_t<T>;
    const int64_t n = rows * cols;
    if (n == 0) return cudaSuccess;
    SortScratch p;
    cudaError_t e = plan_sort<T>(rows, cols, p);
    if (e != cudaSuccess) return e;
    if (workspace_bytes < p.total) return cudaErrorInvalidValue;
    char* ws = static_cast<char*>(workspace);
    U* keys_in = reinterpret_cast<U*>(ws + p.keys_in);
    U* keys_out = reinterpret_cast<U*>(ws + p.keys_out);
    int64_t* cols_in = reinterpret_cast<int64_t*>(ws + p.cols_in);
    int64_t* offsets = rows > 1 ? reinterpret_cast<int64_t*>(ws + p.offsets) : nullptr;
    const U* raw = static_cast<const U*>(in);
    make_keys_kernel<T><<<blocks_for(n > rows + 1 ? n : rows + 1), kThreads, 0, s>>>(raw, keys_in, cols_in, offsets, n,
                                                                                     rows, cols, descending);
    if ((e = cudaGetLastError()) != cudaSuccess) return e;
    size_t tb = p.temp_bytes;
    e = cub_sort<U>(ws + p.temp, tb, keys_in, keys_out, cols_in, idx, offsets, rows, cols, s);
    if (e != cudaSuccess) return e;
    if (values) {
      gather_rows_kernel<U><<<blocks_for(n), kThreads, 0, s>>>(raw, idx, static_cast<U*>(values), n, cols);
      e = cudaGetLastError();
    }
    return e;
  });
}

cudaError_t launch_multinomial_check(int dtype, const void* w, int64_t rows, int64_t cols, int32_t* flags,
                                     cudaStream_t s) {
  return dispatch_float(dtype, [&](auto tag) -> cudaError_t {
    using T = typename decltype(tag)::type;
    if (rows == 0) return cudaSuccess;
    const unsigned grid = static_cast<unsigned>(rows < 65536 ? rows : 65536);
    multinomial_check_kernel<T><<<grid, kThreads, 0, s>>>(static_cast<const T*>(w), rows, cols, flags);
    return cudaGetLastError();
  });
}

cudaError_t launch_multinomial_replacement(int dtype, const void* w, double* cumsum, int64_t* out, int64_t rows,
                                           int64_t cols, int64_t n, uint64_t seed, cudaStream_t s) {
  return dispatch_float(dtype, [&](auto tag) -> cudaError_t {
    using T = typename decltype(tag)::type;
    if (rows == 0 || n == 0) return cudaSuccess;
    if (cols <= 0) return cudaErrorInvalidValue;  // the host rejects empty rows first
    const T* wp = static_cast<const T*>(w);
    const unsigned grid = static_cast<unsigned>(rows < 65536 ? rows : 65536);
    row_cumsum_kernel<T><<<grid, kThreads, 0, s>>>(wp, cumsum, rows, cols);
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) return e;
    multinomial_sample_kernel<T><<<blocks_for(rows * n), kThreads, 0, s>>>(wp, cumsum, out, rows, cols, n, seed);
    return cudaGetLastError();
  });
}

cudaError_t launch_multinomial_keys(int dtype, const void* w, double* keys, int64_t rows, int64_t cols, uint64_t seed,
                                    cudaStream_t s) {
  return dispatch_float(dtype, [&](auto tag) -> cudaError_t {
    using T = typename decltype(tag)::type;
    const int64_t n = rows * cols;
    if (n == 0) return cudaSuccess;
    multinomial_keys_kernel<T><<<blocks_for(n), kThreads, 0, s>>>(static_cast<const T*>(w), keys, n, seed);
    return cudaGetLastError();
  });
}

}  // namespace vbt::cuda::ops
