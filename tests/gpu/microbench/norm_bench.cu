// norm_bench: row-wise normalisation kernels of generated_runtime/src/vbt/cuda/ops/reduce_gemm.cu against
// candidate rewrites, on an H200 (sm_90).
//
// Why: the fused CUDA layer_norm forward (layer_norm_kernel / launch_layer_norm_fwd, one block per row) reaches
// ~0.35x of torch on [16384, 1024] float32; softmax dim=-1 (softmax_rows_kernel) ~0.92x on [8192, 4096]; the
// layer_norm backward (ln_bwd_dx_kernel + ln_bwd_wb_partial_kernel + ln_bwd_wb_final_kernel) runs at the
// ViT / miniGPT paper-profile shape [8192, 256] (ViT: 128 images * 64 patches, dim 256; miniGPT: 64 sequences *
// 128 tokens, dim 256).
//
// What is compared (every table's first variant is today's kernel and launch, copied verbatim from
// reduce_gemm.cu, so a line's ratio predicts what the runtime change gives):
//  * ln_fwd  (float32, and bfloat16 in/out with float accumulation; with and without writing mean/rstd):
//      today        layer_norm_kernel, 32..256 threads per row (launch_layer_norm_fwd)
//      today-regs4  the same kernel and launch with kLnRegs = 4 instead of 16 (enough at these shapes): today's
//                   kernel needs 96 registers per thread (16 predicated slots, 64-bit indices, double rstd), so only
//                   2 blocks of 256 threads fit on an SM; this line shows how much of the gap is that occupancy
//      rowgrpL/NV   a group of L lanes per row (L = 32: a warp per row; L < 32: several rows per warp), 256-thread
//                   blocks = 256/L rows per block; 16-byte vector loads/stores, NV vectors per lane in registers,
//                   two-pass mean / variance of (x - mean) over the registers, group shuffles only (no shared
//                   memory, no __syncthreads); rstd = rsqrtf(var + eps) (torch's float rstd), or in double (+dbl)
//      blkvecNV     one block per row, 16-byte vectors, NV per thread, 2 __syncthreads per row (a separate shared
//                   slot for each of the two sums), rsqrtf
//  * softmax (dim=-1, float32 [8192, 4096]):
//      today        softmax_rows_kernel (launch_softmax_rows)
//      blkvecNV     one block per row, 16-byte vectors, NV per thread, 2 __syncthreads per row (+rcp: multiply by
//                   1/sum instead of dividing)
//  * ln_bwd  (float32 and bfloat16, [8192, 256], weight given, dx + dweight + dbias):
//      today        ln_bwd_dx_kernel + ln_bwd_wb_partial_kernel + ln_bwd_wb_final_kernel (launch_layer_norm_bwd);
//                   also its dx kernel alone ("today-dx") and its two dweight/dbias kernels alone ("today-wb")
//      dxrowL/NV    dx only: L lanes per row, vectors in registers, shuffles (then today's wb kernels: "+wb")
//      fusedL/NV/R  dx, dweight and dbias in one pass: each group of L lanes takes R consecutive rows, writes dx
//                   and keeps its columns' dweight/dbias partial sums in registers, then stores them as one chunk
//                   row of the [chunks, cols] workspace; a second kernel adds the chunks of each column in a fixed
//                   order (32 columns x 16 chunk-lanes per block, then a fixed shared-memory combine). The row ->
//                   chunk assignment depends on the shape only: deterministic.
// Timing: the [8192, 256] tensors fit in the 50 MB L2, so their GB/s can exceed the copy bandwidth (the variants
// of one case are still comparable); [16384, 1024] float32 streams from HBM.
// Correctness: every variant is compared with a double-precision host reference (ln_fwd / softmax: a sample of
// rows; ln_bwd: all rows, and dweight/dbias over all rows). "ulps" is max |out - ref| / ulp(max(|ref|, 1)) in the
// output type (ln) or max relative error / float eps (softmax); stats: max relative error of mean and rstd.
// A variant over tolerance prints WRONG.
//
// The port (reduce_gemm.cu after the winners moved in): namespace port holds the runtime's vector kernels and their
// dispatch copied verbatim (launch_layer_norm_fwd's ln_fwd_vec, launch_softmax_rows's softmax_vec, launch_layer_norm_
// bwd's ln_bwd_vec and layer_norm_bwd_chunks) and the fallback layer_norm_kernel (kLnRegs as the template parameter R,
// __launch_bounds__(256)); every table gets "runtime" lines (ln_fwd: runtime, runtime-fallback; softmax: runtime,
// runtime log_softmax; ln_bwd: runtime, runtime-dx, and a determinism line: two runs bit-equal). Extra shapes cover
// the other dispatch branches: ln_fwd [8192, 64 / 512 / 768], softmax [8192, 1000], [1024, 16384], ln_bwd
// [8192, 64 / 512]. Expected: runtime ~ the best variant of its table (ln_fwd f32 [16384,1024] ~35 us = blkvec2,
// [8192,256] ~5.0 us = rowgrp32/2; bf16 [16384,1024] ~20 us, [8192,256] ~4.0 us; softmax [8192,4096] ~68 us;
// ln_bwd [8192,256] ~13.4 us f32, ~13.5 us bf16), runtime-fallback ~ today-regs4.
//
// Build and run (on the GPU machine): bash tests/gpu/microbench/run.sh OUTDIR norm_bench
//   (= nvcc -O3 -std=c++17 -arch=sm_90 -lineinfo norm_bench.cu -o norm_bench -ldl; ./norm_bench)
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <unistd.h>

#include <algorithm>
#include <cfloat>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <string>
#include <type_traits>
#include <vector>

#define CK(x)                                                                                          \
  do {                                                                                                 \
    cudaError_t e_ = (x);                                                                              \
    if (e_ != cudaSuccess) {                                                                           \
      fprintf(stderr, "CUDA error %s at %s:%d: %s\n", #x, __FILE__, __LINE__, cudaGetErrorString(e_)); \
      exit(1);                                                                                         \
    }                                                                                                  \
  } while (0)

// ======================= today's code, copied from reduce_gemm.cu / device_types.cuh =======================
namespace today {

template <typename T> struct AccOf { using type = T; };
template <> struct AccOf<__nv_bfloat16> { using type = float; };
template <typename T> using acc_t = typename AccOf<T>::type;

template <typename T> __device__ __forceinline__ acc_t<T> up(T v) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) return __bfloat162float(v);
  else return v;
}
template <typename To, typename From> __device__ __forceinline__ To cvt(From v) {
  auto x = up(v);
  if constexpr (std::is_same_v<To, __nv_bfloat16>) return __float2bfloat16(static_cast<float>(x));
  else return static_cast<To>(x);
}
template <typename A> __device__ __forceinline__ bool is_nan(A v) { return v != v; }
template <typename A> __device__ A lowest() {
  if constexpr (std::is_same_v<A, float>) return -INFINITY;
  else return -HUGE_VAL;
}

struct SumR {
  template <typename A> __device__ A init() const { return A(0); }
  template <typename A> __device__ A combine(A a, A b) const { return a + b; }
};
struct MaxR {
  template <typename A> __device__ A init() const { return lowest<A>(); }
  template <typename A> __device__ A combine(A a, A b) const { return is_nan(a) ? a : is_nan(b) ? b : (a > b ? a : b); }
};

constexpr int kLnRegs = 16;

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

constexpr int kLnColY = 8;

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

// launch_layer_norm_fwd's body
template <typename T>
void launch_ln_fwd(const T* in, const T* w, const T* b, T* out, float* mean, float* rstd, int64_t rows, int64_t cols,
                   double eps) {
  using A = acc_t<T>;
  int threads = 32;
  while (threads < 256 && threads * 4 < cols) threads *= 2;
  for (int64_t r0 = 0; r0 < rows; r0 += INT_MAX) {
    int64_t n = rows - r0 < INT_MAX ? rows - r0 : INT_MAX;
    layer_norm_kernel<T, A><<<static_cast<unsigned>(n), threads>>>(in + r0 * cols, w, b, out + r0 * cols, cols, eps,
                                                                 mean ? mean + r0 : nullptr, rstd ? rstd + r0 : nullptr);
  }
}

// launch_softmax_rows's body
template <typename T> void launch_softmax(const T* in, T* out, int64_t rows, int64_t cols, bool log) {
  using A = acc_t<T>;
  int threads = 32;
  while (threads < 256 && threads * 4 < cols) threads *= 2;
  for (int64_t r0 = 0; r0 < rows; r0 += INT_MAX) {
    int64_t n = rows - r0 < INT_MAX ? rows - r0 : INT_MAX;
    softmax_rows_kernel<T, A><<<static_cast<unsigned>(n), threads>>>(in + r0 * cols, out + r0 * cols, cols, log);
  }
}

int64_t layer_norm_bwd_chunks(int64_t rows) {
  const int64_t c = (rows + 63) / 64;
  return c < 1 ? 1 : c > 256 ? 256 : c;
}

// launch_layer_norm_bwd's body; do_dx / do_wb select its parts for the split timings
template <typename T>
void launch_ln_bwd(const T* grad, const T* in, const float* mean, const float* rstd, const T* w, int64_t rows,
                   int64_t cols, T* dx, T* dw, T* db, float* workspace, bool do_dx = true, bool do_wb = true) {
  using A = acc_t<T>;
  const int threads = row_threads(cols, 4, 256);
  if (do_dx)
    for (int64_t r0 = 0; r0 < rows; r0 += INT_MAX) {
      const int64_t nr = rows - r0 < INT_MAX ? rows - r0 : INT_MAX;
      ln_bwd_dx_kernel<T, A><<<static_cast<unsigned>(nr), threads>>>(grad + r0 * cols, in + r0 * cols, mean + r0,
                                                                    rstd + r0, w, cols, dx + r0 * cols);
    }
  if (do_wb && (dw || db)) {
    const int64_t nchunks = layer_norm_bwd_chunks(rows), per = (rows + nchunks - 1) / nchunks;
    A* pw = dw ? workspace : nullptr;
    A* pb = db ? workspace + nchunks * cols : nullptr;
    dim3 grid(static_cast<unsigned>((cols + 31) / 32), static_cast<unsigned>(nchunks));
    ln_bwd_wb_partial_kernel<T, A><<<grid, dim3(32, kLnColY)>>>(grad, in, mean, rstd, rows, cols, per, pw, pb);
    ln_bwd_wb_final_kernel<T, A><<<static_cast<unsigned>((cols + 255) / 256), 256>>>(pw, pb, nchunks, cols, dw, db);
  }
}

}  // namespace today

// ================================================ candidates ================================================
namespace cand {
using today::cvt;
using today::up;

// today's layer_norm_kernel with kLnRegs as a parameter (the only change): with kLnRegs = 4 (exactly the 4 elements a
// thread of today's launch holds at cols = 4 * threads) it shows what the 16 predicated slots cost in registers
using today::block_sum;
template <typename T, typename A, int kLnRegs>
__global__ void layer_norm_kernel_r(const T* in, const T* w, const T* b, T* out, int64_t n, double eps,
                                  A* mean_out, A* rstd_out) {
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


// 16 bytes of T, loaded / stored as one vector instruction
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

// sum over the L lanes of a group (L a power of two <= 32, groups aligned in the warp); fixed butterfly order, the
// same value in every lane of the group
template <int L> __device__ __forceinline__ unsigned group_mask() {
  if constexpr (L == 32) return 0xffffffffu;
  else return ((1u << L) - 1u) << ((threadIdx.x % 32) & ~(L - 1));
}
template <int L> __device__ __forceinline__ float group_sum(float v, unsigned mask) {
#pragma unroll
  for (int o = L / 2; o > 0; o >>= 1) v += __shfl_xor_sync(mask, v, o, L);
  return v;
}

// layer_norm forward, L lanes per row, NV 16-byte vectors per lane (rows of at most L * NV * kVec elements,
// cols % kVec == 0, 16-byte aligned rows)
template <typename T, int L, int NV, bool kDoubleRstd>
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
    const int c = (k * L + lane) * V;
    if (c < n) {
#pragma unroll
      for (int e = 0; e < V; ++e) {
        const float d = v[k][e] - mean;
        ss += d * d;
      }
    }
  }
  ss = group_sum<L>(ss, mask);
  float rstd;
  if constexpr (kDoubleRstd) rstd = static_cast<float>(1.0 / sqrt(static_cast<double>(ss) / n + eps));
  else rstd = rsqrtf(ss / static_cast<float>(n) + eps);
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

// block-wide sum with its own shared slots (no reuse, so one __syncthreads per sum)
__device__ __forceinline__ float block_sum1(float v, float* sh) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) sh[warp] = v;
  __syncthreads();
  v = lane < static_cast<int>(blockDim.x / 32) ? sh[lane] : 0.f;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float block_max1(float v, float* sh) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = today::MaxR{}.combine(v, __shfl_xor_sync(0xffffffffu, v, o));
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) sh[warp] = v;
  __syncthreads();
  v = lane < static_cast<int>(blockDim.x / 32) ? sh[lane] : -INFINITY;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = today::MaxR{}.combine(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// layer_norm forward, one block per row, NV vectors per thread (rows of at most blockDim * NV * kVec elements)
template <typename T, int NV>
__global__ void __launch_bounds__(256) ln_fwd_blkvec(const T* __restrict__ in, const T* __restrict__ w,
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
  const float mean = block_sum1(s, sh[0]) / static_cast<float>(n);
  float ss = 0.f;
#pragma unroll
  for (int k = 0; k < NV; ++k) {
    const int c = (k * nt + threadIdx.x) * V;
    if (c < n) {
#pragma unroll
      for (int e = 0; e < V; ++e) {
        const float d = v[k][e] - mean;
        ss += d * d;
      }
    }
  }
  ss = block_sum1(ss, sh[1]);
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

// softmax dim=-1, one block per row, NV vectors per thread
template <typename T, int NV, bool kRcp>
__global__ void __launch_bounds__(1024) softmax_blkvec(const T* __restrict__ in, T* __restrict__ out, int n) {
  constexpr int V = kVec<T>;
  __shared__ float sh[2][32];
  const int64_t row = blockIdx.x;
  const T* x = in + row * n;
  const int nt = blockDim.x;
  float v[NV][V];
  float m = -INFINITY;
#pragma unroll
  for (int k = 0; k < NV; ++k) {
    const int c = (k * nt + threadIdx.x) * V;
    if (c < n) {
      load_up(x + c, v[k]);
    } else {
#pragma unroll
      for (int e = 0; e < V; ++e) v[k][e] = -INFINITY;
    }
#pragma unroll
    for (int e = 0; e < V; ++e) m = today::MaxR{}.combine(m, v[k][e]);
  }
  m = block_max1(m, sh[0]);
  float sum = 0.f;
#pragma unroll
  for (int k = 0; k < NV; ++k) {
    const int c = (k * nt + threadIdx.x) * V;
    if (c < n) {
#pragma unroll
      for (int e = 0; e < V; ++e) {
        v[k][e] = expf(v[k][e] - m);  // keep exp(x - max) for the output
        sum += v[k][e];
      }
    }
  }
  sum = block_sum1(sum, sh[1]);
  const float inv = 1.f / sum;
  T* y = out + row * n;
#pragma unroll
  for (int k = 0; k < NV; ++k) {
    const int c = (k * nt + threadIdx.x) * V;
    if (c < n) {
      float r[V];
#pragma unroll
      for (int e = 0; e < V; ++e) r[e] = kRcp ? v[k][e] * inv : v[k][e] / sum;
      store_cvt(y + c, r);
    }
  }
}

// layer_norm backward dx (and, when pw != nullptr, the dweight/dbias chunk partials of R rows per group): L lanes
// per row, NV vectors per lane. dx = rstd * (h - mean(h) - xhat * mean(h * xhat)), h = grad * w.
template <typename T, int L, int NV, bool kWb>
__global__ void __launch_bounds__(256) ln_bwd_rows(const T* __restrict__ grad, const T* __restrict__ in,
                                                    const float* __restrict__ mean, const float* __restrict__ rstd,
                                                    const T* __restrict__ w, int64_t rows, int n, int rows_per_group,
                                                    T* __restrict__ dx, float* __restrict__ pw,
                                                    float* __restrict__ pb) {
  constexpr int V = kVec<T>;
  const int64_t grp = static_cast<int64_t>(blockIdx.x) * (blockDim.x / L) + threadIdx.x / L;
  const int64_t r0 = grp * rows_per_group;
  if (r0 >= rows) return;  // whole groups leave together
  const int64_t r1 = r0 + rows_per_group < rows ? r0 + rows_per_group : rows;
  const unsigned mask = group_mask<L>();
  const int lane = threadIdx.x % L;
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
        if constexpr (kWb) {
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
  if constexpr (kWb) {
#pragma unroll
    for (int k = 0; k < NV; ++k) {
      const int c = (k * L + lane) * V;
      if (c < n) {
#pragma unroll
        for (int e = 0; e < V; e += 4) {
          *reinterpret_cast<float4*>(pw + grp * n + c + e) = make_float4(aw[k][e], aw[k][e + 1], aw[k][e + 2], aw[k][e + 3]);
          *reinterpret_cast<float4*>(pb + grp * n + c + e) = make_float4(ab[k][e], ab[k][e + 1], ab[k][e + 2], ab[k][e + 3]);
        }
      }
    }
  }
}

// dweight/dbias = the sum of the nchunks chunk rows of pw/pb per column: 32 columns x 16 chunk-lanes per block, each
// chunk-lane adds chunks y, y + 16, ... in order, then thread row 0 adds the 16 in order: deterministic.
template <typename T>
__global__ void ln_bwd_wb_final16(const float* __restrict__ pw, const float* __restrict__ pb, int64_t nchunks,
                                  int n, T* __restrict__ dw, T* __restrict__ db) {
  __shared__ float sw[16][33], sb[16][33];
  const int col = blockIdx.x * 32 + threadIdx.x;
  float tw = 0.f, tb = 0.f;
  if (col < n)
    for (int64_t c = threadIdx.y; c < nchunks; c += 16) {
      tw += pw[c * n + col];
      tb += pb[c * n + col];
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
  dw[col] = cvt<T>(tw);
  db[col] = cvt<T>(tb);
}

}  // namespace cand

// ============ the runtime's vector kernels and their dispatch, copied verbatim from reduce_gemm.cu ============
// (the port of the winners below: ln_fwd_vec = launch_layer_norm_fwd's vector path, softmax_vec =
// launch_softmax_rows's, ln_bwd_vec = launch_layer_norm_bwd's fused path; "runtime" lines in the tables)
namespace port {
using today::cvt;
using today::MaxR;
using today::SumR;
using today::up;
int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

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
template <int L> __device__ __forceinline__ float group_sum(float v, unsigned mask) {
#pragma unroll
  for (int o = L / 2; o > 0; o >>= 1) v += __shfl_xor_sync(mask, v, o, L);
  return v;
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

// softmax / log_softmax (SoftmaxNote), one block per row, NV vectors per thread (rows of at most blockDim * NV
// vectors): the row max (NaN propagates), the sum of exp(x - max), then exp(x - max) / sum or (x - max) - log(sum).
template <typename T, int NV>
__global__ void __launch_bounds__(1024) softmax_blk(const T* __restrict__ in, T* __restrict__ out, int n, bool log) {
  constexpr int V = kVec<T>;
  __shared__ float sh[2][32];
  const int64_t row = blockIdx.x;
  const T* x = in + row * n;
  const int nt = blockDim.x;
  float v[NV][V];
  float m = -INFINITY;
#pragma unroll
  for (int k = 0; k < NV; ++k) {
    const int c = (k * nt + threadIdx.x) * V;
    if (c < n) {
      load_up(x + c, v[k]);
    } else {
#pragma unroll
      for (int e = 0; e < V; ++e) v[k][e] = -INFINITY;
    }
#pragma unroll
    for (int e = 0; e < V; ++e) m = MaxR{}.combine(m, v[k][e]);
  }
  m = block_all1(m, MaxR{}, sh[0]);
  float sum = 0.f;
#pragma unroll
  for (int k = 0; k < NV; ++k) {
    if ((k * nt + threadIdx.x) * V < n) {
#pragma unroll
      for (int e = 0; e < V; ++e) {  // keep x - max (log) or exp(x - max) (softmax) for the output
        const float d = v[k][e] - m;
        v[k][e] = log ? d : expf(d);
        sum += log ? expf(d) : v[k][e];
      }
    }
  }
  sum = block_all1(sum, SumR{}, sh[1]);
  const float lse = log ? logf(sum) : 0.f;
  T* y = out + row * n;
#pragma unroll
  for (int k = 0; k < NV; ++k) {
    const int c = (k * nt + threadIdx.x) * V;
    if (c < n) {
      float r[V];
#pragma unroll
      for (int e = 0; e < V; ++e) r[e] = log ? v[k][e] - lse : v[k][e] / sum;
      store_cvt(y + c, r);
    }
  }
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
      const int L = nvec <= 64 ? pow2_at_least(ceil_div(nvec, 2), 4) : 32;
      const int NV = nvec <= 64 ? 2 : 4;
      const int64_t per_block = 256 / L;
      const int64_t blocks = ceil_div(rows, per_block);
      if (blocks > INT_MAX) return false;
      const dim3 grid(static_cast<unsigned>(blocks));
      if (NV == 4) ln_fwd_rows<T, 32, 4><<<grid, 256, 0, s>>>(in, w, b, out, rows, n, eps, mean, rstd);
      else if (L == 32) ln_fwd_rows<T, 32, 2><<<grid, 256, 0, s>>>(in, w, b, out, rows, n, eps, mean, rstd);
      else if (L == 16) ln_fwd_rows<T, 16, 2><<<grid, 256, 0, s>>>(in, w, b, out, rows, n, eps, mean, rstd);
      else if (L == 8) ln_fwd_rows<T, 8, 2><<<grid, 256, 0, s>>>(in, w, b, out, rows, n, eps, mean, rstd);
      else ln_fwd_rows<T, 4, 2><<<grid, 256, 0, s>>>(in, w, b, out, rows, n, eps, mean, rstd);
      return true;
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


// launch_softmax_rows's vector path (false: today's kernel runs)
template <typename T> bool softmax_vec(const T* in, T* out, int64_t rows, int64_t cols, bool log, cudaStream_t s) {
    if constexpr (!std::is_same_v<T, double>) {
      constexpr int V = kVec<T>, NV = 4;
      const int64_t threads = ceil_div(ceil_div(cols / V, NV), 32) * 32;
      if (vec_ok<T>(cols, {in, out}) && threads <= 1024) {
        for (int64_t r0 = 0; r0 < rows; r0 += INT_MAX) {
          const int64_t n = rows - r0 < INT_MAX ? rows - r0 : INT_MAX;
          softmax_blk<T, NV><<<static_cast<unsigned>(n), static_cast<unsigned>(threads), 0, s>>>(
              static_cast<const T*>(in) + r0 * cols, static_cast<T*>(out) + r0 * cols, static_cast<int>(cols), log);
        }
        return true;
      }
    }
    return false;
}

// launch_layer_norm_fwd's fallback (misaligned / double / long rows): today's kernel with kLnRegs = R as a template
// parameter and __launch_bounds__(256), R = 4 up to 1024 elements
using today::block_sum;
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

template <typename T>
void ln_fwd_fallback(const T* in, const T* w, const T* b, T* out, float* mean, float* rstd, int64_t rows,
                     int64_t cols, double eps) {
  using A = today::acc_t<T>;
  int threads = 32;
  while (threads < 256 && threads * 4 < cols) threads *= 2;
  for (int64_t r0 = 0; r0 < rows; r0 += INT_MAX) {
    int64_t n = rows - r0 < INT_MAX ? rows - r0 : INT_MAX;
    auto* x = in + r0 * cols;
    auto* y = out + r0 * cols;
    A* m = mean ? mean + r0 : nullptr;
    A* r = rstd ? rstd + r0 : nullptr;
    if (cols <= 4 * 256)
      layer_norm_kernel<T, A, 4><<<static_cast<unsigned>(n), threads>>>(x, w, b, y, cols, eps, m, r);
    else
      layer_norm_kernel<T, A, 16><<<static_cast<unsigned>(n), threads>>>(x, w, b, y, cols, eps, m, r);
  }
}

int64_t layer_norm_bwd_chunks(int64_t rows, int64_t cols) {
  const int64_t c = ln_bwd_col_chunks(rows);
  if (cols > kLnBwdMaxCols) return c;
  const int64_t f = ceil_div(rows < 1 ? 1 : rows, ln_bwd_rows_per_chunk(rows));
  return f > c ? f : c;  // the fused plan, or the per-row kernels' plan, whichever the launch takes
}

}  // namespace port


// =================================================== host ===================================================
static float bf2f(uint16_t h) {
  uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  memcpy(&f, &u, 4);
  return f;
}
static uint16_t f2bf(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}
template <typename T> static const char* tname() { return std::is_same_v<T, float> ? "f32" : "bf16"; }
template <typename T> static int mant_bits() { return std::is_same_v<T, float> ? 24 : 8; }
// round a float to T's precision (host data are kept as floats holding T values)
template <typename T> static float rnd(float f) { return std::is_same_v<T, float> ? f : bf2f(f2bf(f)); }

template <typename T> static T* upload(const std::vector<float>& h) {
  T* d = nullptr;
  CK(cudaMalloc(&d, h.size() * sizeof(T) + 16));
  if constexpr (std::is_same_v<T, float>) {
    CK(cudaMemcpy(d, h.data(), h.size() * 4, cudaMemcpyHostToDevice));
  } else {
    std::vector<uint16_t> t(h.size());
    for (size_t i = 0; i < h.size(); ++i) t[i] = f2bf(h[i]);
    CK(cudaMemcpy(d, t.data(), t.size() * 2, cudaMemcpyHostToDevice));
  }
  return d;
}
template <typename T> static std::vector<float> download(const T* d, size_t n) {
  std::vector<float> h(n);
  if constexpr (std::is_same_v<T, float>) {
    CK(cudaMemcpy(h.data(), d, n * 4, cudaMemcpyDeviceToHost));
  } else {
    std::vector<uint16_t> t(n);
    CK(cudaMemcpy(t.data(), d, n * 2, cudaMemcpyDeviceToHost));
    for (size_t i = 0; i < n; ++i) h[i] = bf2f(t[i]);
  }
  return h;
}

static uint64_t g_rng = 0x9e3779b97f4a7c15ull;
static float urand() {  // uniform in [-1, 1)
  g_rng = g_rng * 6364136223846793005ull + 1442695040888963407ull;
  return static_cast<float>((g_rng >> 40) & 0xffffff) / 8388608.f - 1.f;
}

// ulp of max(|r|, 1) at `bits` significand bits
static double ulp_of(double r, int bits) {
  int e;
  std::frexp(std::max(std::fabs(r), 1.0), &e);
  return std::ldexp(1.0, e - bits);
}

// median of 15 repeats of `iters` launches, microseconds per launch; also checks for launch errors
template <typename F> static double time_us(F&& launch, int iters = 20) {
  for (int i = 0; i < 3; ++i) launch();
  CK(cudaGetLastError());
  CK(cudaDeviceSynchronize());
  cudaEvent_t a, b;
  CK(cudaEventCreate(&a));
  CK(cudaEventCreate(&b));
  std::vector<float> t;
  for (int rep = 0; rep < 15; ++rep) {
    CK(cudaEventRecord(a));
    for (int i = 0; i < iters; ++i) launch();
    CK(cudaEventRecord(b));
    CK(cudaEventSynchronize(b));
    CK(cudaGetLastError());
    float ms = 0;
    CK(cudaEventElapsedTime(&ms, a, b));
    t.push_back(ms * 1000.f / iters);
  }
  CK(cudaEventDestroy(a));
  CK(cudaEventDestroy(b));
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

static double g_copy_gbs = 0;

static void print_line(const std::string& kase, const std::string& var, double us, double bytes, double base_us,
                       const std::string& check) {
  const double gbs = bytes / us * 1e-3;
  printf("%-34s %-22s %9.2f us %8.0f GB/s  x%5.2f today  %5.2f of copy  %s\n", kase.c_str(), var.c_str(), us, gbs,
         base_us / us, gbs / g_copy_gbs, check.c_str());
  fflush(stdout);
}

// ------------------------------------------------ layer_norm forward ------------------------------------------------
template <typename T> static void bench_ln_fwd(int64_t rows, int n) {
  const float eps = 1e-5f;
  std::vector<float> hx(rows * n), hw(n), hb(n);
  for (int64_t r = 0; r < rows; ++r) {
    // rows with a moderate offset and spread: float mean error then stays below the rstd / rounding errors, so
    // the ulps compare the variants' arithmetic (a large offset / small spread would add the same conditioning
    // error to every variant)
    const float off = 0.5f * urand(), sc = 1.f + 0.5f * urand();
    for (int j = 0; j < n; ++j) hx[r * n + j] = rnd<T>(off + sc * urand());
  }
  for (int j = 0; j < n; ++j) {
    hw[j] = rnd<T>(1.f + 0.5f * urand());
    hb[j] = rnd<T>(0.5f * urand());
  }
  T* x = upload<T>(hx);
  T* w = upload<T>(hw);
  T* b = upload<T>(hb);
  T* y = nullptr;
  float *dm = nullptr, *dr = nullptr;
  CK(cudaMalloc(&y, rows * n * sizeof(T)));
  CK(cudaMalloc(&dm, rows * 4));
  CK(cudaMalloc(&dr, rows * 4));
  // double reference on a sample of rows
  std::vector<int64_t> sample;
  for (int64_t r = 0; r < rows; r += 61) sample.push_back(r);
  sample.push_back(rows - 1);
  std::vector<double> rm(rows), rr(rows);
  for (int64_t r : sample) {
    double s = 0;
    for (int j = 0; j < n; ++j) s += hx[r * n + j];
    const double m = s / n;
    double ss = 0;
    for (int j = 0; j < n; ++j) ss += (hx[r * n + j] - m) * (hx[r * n + j] - m);
    rm[r] = m;
    rr[r] = 1.0 / std::sqrt(ss / n + eps);
  }
  auto check = [&](bool stats) -> std::string {
    CK(cudaDeviceSynchronize());
    std::vector<float> hy = download<T>(y, rows * n);
    double maxabs = 0, maxulp = 0, maxst = 0;
    for (int64_t r : sample)
      for (int j = 0; j < n; ++j) {
        const double ref = (hx[r * n + j] - rm[r]) * rr[r] * hw[j] + hb[j];
        const double err = std::fabs(hy[r * n + j] - ref);
        maxabs = std::max(maxabs, err);
        maxulp = std::max(maxulp, err / ulp_of(ref, mant_bits<T>()));
      }
    if (stats) {
      std::vector<float> hm(rows), hr(rows);
      CK(cudaMemcpy(hm.data(), dm, rows * 4, cudaMemcpyDeviceToHost));
      CK(cudaMemcpy(hr.data(), dr, rows * 4, cudaMemcpyDeviceToHost));
      for (int64_t r : sample) {
        maxst = std::max(maxst, std::fabs(hm[r] - rm[r]) / std::max(std::fabs(rm[r]), 1.0));
        maxst = std::max(maxst, std::fabs(hr[r] - rr[r]) / rr[r]);
      }
    }
    const bool bad = !(maxulp <= (std::is_same_v<T, float> ? 64.0 : 2.0)) || !(maxst <= 1e-5);
    char buf[160];
    snprintf(buf, sizeof buf, "maxabs %.2e ulps %.2f%s%s", maxabs, maxulp,
             stats ? (" stats-rel " + std::to_string(maxst)).c_str() : "", bad ? "  WRONG" : "");
    return buf;
  };
  for (int stats = 0; stats < 2; ++stats) {
    char kase[96];
    snprintf(kase, sizeof kase, "ln_fwd %s [%lld,%d]%s", tname<T>(), static_cast<long long>(rows), n,
             stats ? " +stats" : "");
    float* om = stats ? dm : nullptr;
    float* orr = stats ? dr : nullptr;
    const double bytes = 2.0 * rows * n * sizeof(T) + 2.0 * n * sizeof(T) + (stats ? 8.0 * rows : 0.0);
    double base = 0;
    auto run = [&](const std::string& name, auto&& launch) {
      CK(cudaMemset(y, 0, rows * n * sizeof(T)));
      CK(cudaMemset(dm, 0, rows * 4));
      CK(cudaMemset(dr, 0, rows * 4));
      launch();
      CK(cudaGetLastError());
      const std::string c = check(stats != 0);
      const double us = time_us(launch);
      if (base == 0) base = us;
      print_line(kase, name, us, bytes, base, c);
    };
    run("today", [&] { today::launch_ln_fwd<T>(x, w, b, y, om, orr, rows, n, eps); });
    // the runtime after the port: launch_layer_norm_fwd's dispatch (vector kernels), and its fallback kernel
    if (port::ln_fwd_vec<T>(x, w, b, y, om, orr, rows, n, eps, 0)) {
      CK(cudaDeviceSynchronize());
      run("runtime", [&] { port::ln_fwd_vec<T>(x, w, b, y, om, orr, rows, n, eps, 0); });
    } else {
      printf("%-34s runtime: the vector kernels do not take this shape\n", kase);
    }
    run("runtime-fallback", [&] { port::ln_fwd_fallback<T>(x, w, b, y, om, orr, rows, n, eps); });
    {  // today's kernel and launch, kLnRegs = 4 (fits these shapes: cols <= 4 * threads)
      int threads = 32;
      while (threads < 256 && threads * 4 < n) threads *= 2;
      if (n <= 4 * threads)
        run("today-regs4", [&] {
          cand::layer_norm_kernel_r<T, float, 4><<<static_cast<unsigned>(rows), threads>>>(x, w, b, y, n, eps, om, orr);
        });
    }
    constexpr int V = cand::kVec<T>;
    // L lanes per row with NV vectors each: a row of n needs L * NV * V >= n
    auto rows_var = [&](auto Lc, auto NVc, auto dbl) {
      constexpr int L = decltype(Lc)::value, NV = decltype(NVc)::value;
      constexpr bool D = decltype(dbl)::value;
      if (static_cast<int64_t>(L) * NV * V < n || static_cast<int64_t>(L) * (NV / 2) * V >= n)
        return;  // the row does not fit, or half the vectors would
      const unsigned grid = static_cast<unsigned>((rows + 256 / L - 1) / (256 / L));
      run(std::string("rowgrp") + std::to_string(L) + "/" + std::to_string(NV) + (D ? "+dbl" : ""), [&] {
        cand::ln_fwd_rows<T, L, NV, D><<<grid, 256>>>(x, w, b, y, rows, n, eps, om, orr);
      });
    };
    using L32 = std::integral_constant<int, 32>;
    using L16 = std::integral_constant<int, 16>;
    using L8 = std::integral_constant<int, 8>;
    using N1 = std::integral_constant<int, 1>;
    using N2 = std::integral_constant<int, 2>;
    using N4 = std::integral_constant<int, 4>;
    using N8 = std::integral_constant<int, 8>;
    rows_var(L32{}, N1{}, std::false_type{});
    rows_var(L32{}, N2{}, std::false_type{});
    rows_var(L32{}, N4{}, std::false_type{});
    rows_var(L32{}, N8{}, std::false_type{});
    rows_var(L32{}, N1{}, std::true_type{});
    rows_var(L32{}, N2{}, std::true_type{});
    rows_var(L32{}, N4{}, std::true_type{});
    rows_var(L32{}, N8{}, std::true_type{});
    rows_var(L16{}, N2{}, std::false_type{});
    rows_var(L16{}, N4{}, std::false_type{});
    rows_var(L16{}, N8{}, std::false_type{});
    rows_var(L8{}, N4{}, std::false_type{});
    rows_var(L8{}, N8{}, std::false_type{});
    auto blk_var = [&](auto NVc) {
      constexpr int NV = decltype(NVc)::value;
      int threads = static_cast<int>((n + NV * V - 1) / (NV * V));
      threads = std::max(32, (threads + 31) / 32 * 32);
      if (threads > 256) return;
      run(std::string("blkvec") + std::to_string(NV) + " (" + std::to_string(threads) + "thr)", [&] {
        cand::ln_fwd_blkvec<T, NV><<<static_cast<unsigned>(rows), threads>>>(x, w, b, y, n, eps, om, orr);
      });
    };
    blk_var(std::integral_constant<int, 1>{});
    blk_var(std::integral_constant<int, 2>{});
    blk_var(std::integral_constant<int, 4>{});
  }
  CK(cudaFree(x));
  CK(cudaFree(w));
  CK(cudaFree(b));
  CK(cudaFree(y));
  CK(cudaFree(dm));
  CK(cudaFree(dr));
}

// ------------------------------------------------------ softmax ------------------------------------------------------
static void bench_softmax(int64_t rows, int n) {
  using T = float;
  std::vector<float> hx(rows * n);
  for (auto& v : hx) v = 3.f * urand();
  T* x = upload<T>(hx);
  T* y = nullptr;
  CK(cudaMalloc(&y, rows * n * sizeof(T)));
  std::vector<int64_t> sample;
  for (int64_t r = 0; r < rows; r += 97) sample.push_back(r);
  sample.push_back(rows - 1);
  bool log_out = false;  // the runtime's log_softmax line: error relative to max(|ref|, 1)
  auto check = [&]() -> std::string {
    CK(cudaDeviceSynchronize());
    std::vector<float> hy = download<T>(y, rows * n);
    double maxrel = 0;
    for (int64_t r : sample) {
      double m = -HUGE_VAL, s = 0;
      for (int j = 0; j < n; ++j) m = std::max(m, static_cast<double>(hx[r * n + j]));
      for (int j = 0; j < n; ++j) s += std::exp(hx[r * n + j] - m);
      for (int j = 0; j < n; ++j) {
        if (log_out) {
          const double ref = hx[r * n + j] - m - std::log(s);
          maxrel = std::max(maxrel, std::fabs(hy[r * n + j] - ref) / std::max(std::fabs(ref), 1.0));
          continue;
        }
        const double ref = std::exp(hx[r * n + j] - m) / s;
        maxrel = std::max(maxrel, std::fabs(hy[r * n + j] - ref) / ref);
      }
    }
    const double ulps = maxrel / FLT_EPSILON;
    char buf[96];
    snprintf(buf, sizeof buf, "rel-ulps %.2f%s", ulps, ulps <= 64 ? "" : "  WRONG");
    return buf;
  };
  char kase[64];
  snprintf(kase, sizeof kase, "softmax f32 [%lld,%d]", static_cast<long long>(rows), n);
  const double bytes = 2.0 * rows * n * sizeof(T);
  double base = 0;
  auto run = [&](const std::string& name, auto&& launch) {
    CK(cudaMemset(y, 0, rows * n * sizeof(T)));
    launch();
    CK(cudaGetLastError());
    const std::string c = check();
    const double us = time_us(launch);
    if (base == 0) base = us;
    print_line(kase, name, us, bytes, base, c);
  };
  run("today", [&] { today::launch_softmax<T>(x, y, rows, n, false); });
  // the runtime after the port: launch_softmax_rows's dispatch (softmax_blk, 4 vectors per thread)
  if (port::softmax_vec<T>(x, y, rows, n, false, 0)) {
    CK(cudaDeviceSynchronize());
    run("runtime", [&] { port::softmax_vec<T>(x, y, rows, n, false, 0); });
    log_out = true;
    run("runtime log_softmax", [&] { port::softmax_vec<T>(x, y, rows, n, true, 0); });
    log_out = false;
  } else {
    printf("%-34s runtime: the vector kernel does not take this shape\n", kase);
  }
  auto blk = [&](auto NVc, auto rcp) {
    constexpr int NV = decltype(NVc)::value;
    constexpr bool R = decltype(rcp)::value;
    constexpr int V = cand::kVec<T>;
    int threads = std::max(32, ((n + NV * V - 1) / (NV * V) + 31) / 32 * 32);
    if (threads > 1024) return;
    run(std::string("blkvec") + std::to_string(NV) + (R ? "+rcp" : "") + " (" + std::to_string(threads) + "thr)",
        [&] { cand::softmax_blkvec<T, NV, R><<<static_cast<unsigned>(rows), threads>>>(x, y, n); });
  };
  blk(std::integral_constant<int, 2>{}, std::false_type{});
  blk(std::integral_constant<int, 4>{}, std::false_type{});
  blk(std::integral_constant<int, 8>{}, std::false_type{});
  blk(std::integral_constant<int, 4>{}, std::true_type{});
  blk(std::integral_constant<int, 8>{}, std::true_type{});
  CK(cudaFree(x));
  CK(cudaFree(y));
}

// ------------------------------------------------ layer_norm backward ------------------------------------------------
template <typename T> static void bench_ln_bwd(int64_t rows, int n) {
  const double eps = 1e-5;
  std::vector<float> hx(rows * n), hg(rows * n), hw(n), hm(rows), hr(rows);
  for (int64_t r = 0; r < rows; ++r) {
    const float off = 2.f * urand();
    for (int j = 0; j < n; ++j) {
      hx[r * n + j] = rnd<T>(off + urand());
      hg[r * n + j] = rnd<T>(urand());
    }
  }
  for (int j = 0; j < n; ++j) hw[j] = rnd<T>(1.f + 0.5f * urand());
  // saved statistics as the forward would (float), computed in double
  for (int64_t r = 0; r < rows; ++r) {
    double s = 0, ss = 0;
    for (int j = 0; j < n; ++j) s += hx[r * n + j];
    const double m = s / n;
    for (int j = 0; j < n; ++j) ss += (hx[r * n + j] - m) * (hx[r * n + j] - m);
    hm[r] = static_cast<float>(m);
    hr[r] = static_cast<float>(1.0 / std::sqrt(ss / n + eps));
  }
  // double reference from the same float statistics
  std::vector<double> rdx(rows * n), rdw(n, 0.0), rdb(n, 0.0), adw(n, 0.0), adb(n, 0.0);
  for (int64_t r = 0; r < rows; ++r) {
    double s1 = 0, s2 = 0;
    for (int j = 0; j < n; ++j) {
      const double xh = (hx[r * n + j] - static_cast<double>(hm[r])) * hr[r];
      const double h = static_cast<double>(hg[r * n + j]) * hw[j];
      s1 += h;
      s2 += h * xh;
      rdw[j] += hg[r * n + j] * xh;
      adw[j] += std::fabs(hg[r * n + j] * xh);
      rdb[j] += hg[r * n + j];
      adb[j] += std::fabs(hg[r * n + j]);
    }
    s1 /= n;
    s2 /= n;
    for (int j = 0; j < n; ++j) {
      const double xh = (hx[r * n + j] - static_cast<double>(hm[r])) * hr[r];
      rdx[r * n + j] = hr[r] * (static_cast<double>(hg[r * n + j]) * hw[j] - s1 - xh * s2);
    }
  }
  T* x = upload<T>(hx);
  T* g = upload<T>(hg);
  T* w = upload<T>(hw);
  float* dm = upload<float>(hm);
  float* dr = upload<float>(hr);
  T *dx = nullptr, *dw = nullptr, *db = nullptr;
  CK(cudaMalloc(&dx, rows * n * sizeof(T)));
  CK(cudaMalloc(&dw, n * sizeof(T)));
  CK(cudaMalloc(&db, n * sizeof(T)));
  const int64_t max_chunks = rows;  // workspace for up to one chunk per row
  float* ws = nullptr;
  CK(cudaMalloc(&ws, 2 * max_chunks * n * sizeof(float)));

  auto check = [&](bool cdx, bool cwb) -> std::string {
    CK(cudaDeviceSynchronize());
    double edx = 0, ewb = 0, udx = 0;
    bool bad = false;
    if (cdx) {
      std::vector<float> h = download<T>(dx, rows * n);
      for (int64_t i = 0; i < rows * n; ++i) {
        const double e = std::fabs(h[i] - rdx[i]);
        edx = std::max(edx, e);
        udx = std::max(udx, e / ulp_of(rdx[i], mant_bits<T>()));
      }
      bad |= !(udx <= (std::is_same_v<T, float> ? 64.0 : 2.0));
    }
    if (cwb) {
      std::vector<float> hdw = download<T>(dw, n), hdb = download<T>(db, n);
      for (int j = 0; j < n; ++j) {
        const double e1 = std::fabs(hdw[j] - rdw[j]), e2 = std::fabs(hdb[j] - rdb[j]);
        ewb = std::max({ewb, e1, e2});
        const double t1 = 1e-5 * adw[j] + (std::is_same_v<T, float> ? 0.0 : std::fabs(rdw[j]) / 128.0) + 1e-6;
        const double t2 = 1e-5 * adb[j] + (std::is_same_v<T, float> ? 0.0 : std::fabs(rdb[j]) / 128.0) + 1e-6;
        bad |= !(e1 <= t1) || !(e2 <= t2);
      }
    }
    char buf[128];
    snprintf(buf, sizeof buf, "%s%s%s", cdx ? ("dx maxabs " + std::to_string(edx) + " ulps " + std::to_string(udx)).c_str() : "",
             cwb ? (" dw/db maxabs " + std::to_string(ewb)).c_str() : "", bad ? "  WRONG" : "");
    return buf;
  };
  char kase[64];
  snprintf(kase, sizeof kase, "ln_bwd %s [%lld,%d]", tname<T>(), static_cast<long long>(rows), n);
  const double b_all = 3.0 * rows * n * sizeof(T) + 3.0 * n * sizeof(T) + 8.0 * rows;
  const double b_dx = b_all - 2.0 * n * sizeof(T);
  const double b_wb = 2.0 * rows * n * sizeof(T) + 8.0 * rows + 2.0 * n * sizeof(T);
  double base = 0, base_dx = 0, base_wb = 0;
  auto run = [&](const std::string& name, bool cdx, bool cwb, double bytes, double* basep, auto&& launch) {
    CK(cudaMemset(dx, 0, rows * n * sizeof(T)));
    CK(cudaMemset(dw, 0, n * sizeof(T)));
    CK(cudaMemset(db, 0, n * sizeof(T)));
    launch();
    CK(cudaGetLastError());
    const std::string c = check(cdx, cwb);
    const double us = time_us(launch);
    if (*basep == 0) *basep = us;
    print_line(kase, name, us, bytes, *basep, c);
  };
  run("today", true, true, b_all, &base, [&] { today::launch_ln_bwd<T>(g, x, dm, dr, w, rows, n, dx, dw, db, ws); });
  run("today-dx", true, false, b_dx, &base_dx,
      [&] { today::launch_ln_bwd<T>(g, x, dm, dr, w, rows, n, dx, dw, db, ws, true, false); });
  run("today-wb", false, true, b_wb, &base_wb,
      [&] { today::launch_ln_bwd<T>(g, x, dm, dr, w, rows, n, dx, dw, db, ws, false, true); });
  // the runtime after the port: launch_layer_norm_bwd's fused path (workspace of layer_norm_bwd_chunks(rows, cols)
  // chunk rows per half; ws holds rows >= that), and without dweight/dbias (dx only)
  if (port::ln_bwd_vec<T>(g, x, dm, dr, w, rows, n, dx, dw, db, ws, 0)) {
    CK(cudaDeviceSynchronize());
    run("runtime", true, true, b_all, &base, [&] { port::ln_bwd_vec<T>(g, x, dm, dr, w, rows, n, dx, dw, db, ws, 0); });
    run("runtime-dx", true, false, b_dx, &base_dx,
        [&] { port::ln_bwd_vec<T>(g, x, dm, dr, w, rows, n, dx, nullptr, nullptr, nullptr, 0); });
    // determinism: two runs give the same bits
    port::ln_bwd_vec<T>(g, x, dm, dr, w, rows, n, dx, dw, db, ws, 0);
    CK(cudaDeviceSynchronize());
    std::vector<float> d1 = download<T>(dw, n), x1 = download<T>(dx, rows * n);
    CK(cudaMemset(dw, 0, n * sizeof(T)));
    CK(cudaMemset(dx, 0, rows * n * sizeof(T)));
    port::ln_bwd_vec<T>(g, x, dm, dr, w, rows, n, dx, dw, db, ws, 0);
    CK(cudaDeviceSynchronize());
    std::vector<float> d2 = download<T>(dw, n), x2 = download<T>(dx, rows * n);
    printf("%-34s runtime: chunks %lld, two runs %s\n", kase,
           static_cast<long long>(port::layer_norm_bwd_chunks(rows, n)),
           d1 == d2 && x1 == x2 ? "bit-equal" : "DIFFER  WRONG");
  } else {
    printf("%-34s runtime: the fused kernel does not take this shape\n", kase);
  }
  constexpr int V = cand::kVec<T>;
  auto dx_var = [&](auto Lc, auto NVc) {
    constexpr int L = decltype(Lc)::value, NV = decltype(NVc)::value;
    if (static_cast<int64_t>(L) * NV * V < n || static_cast<int64_t>(L) * (NV / 2) * V >= n) return;
    const unsigned grid = static_cast<unsigned>((rows + 256 / L - 1) / (256 / L));
    auto dxl = [&] {
      cand::ln_bwd_rows<T, L, NV, false><<<grid, 256>>>(g, x, dm, dr, w, rows, n, 1, dx, nullptr, nullptr);
    };
    const std::string nm = "dxrow" + std::to_string(L) + "/" + std::to_string(NV);
    run(nm, true, false, b_dx, &base_dx, dxl);
    run(nm + "+wb", true, true, b_all, &base, [&] {
      dxl();
      today::launch_ln_bwd<T>(g, x, dm, dr, w, rows, n, dx, dw, db, ws, false, true);
    });
  };
  using L32 = std::integral_constant<int, 32>;
  using L16 = std::integral_constant<int, 16>;
  using N1 = std::integral_constant<int, 1>;
  using N2 = std::integral_constant<int, 2>;
  using N4 = std::integral_constant<int, 4>;
  dx_var(L32{}, N1{});
  dx_var(L32{}, N2{});
  dx_var(L16{}, N2{});
  dx_var(L16{}, N4{});
  auto fused = [&](auto Lc, auto NVc, int rpg) {
    constexpr int L = decltype(Lc)::value, NV = decltype(NVc)::value;
    if (static_cast<int64_t>(L) * NV * V < n || static_cast<int64_t>(L) * (NV / 2) * V >= n) return;
    const int64_t groups = (rows + rpg - 1) / rpg;  // = the chunks, a function of the shape only
    const unsigned grid = static_cast<unsigned>((groups + 256 / L - 1) / (256 / L));
    float* pw = ws;
    float* pb = ws + groups * n;
    run("fused" + std::to_string(L) + "/" + std::to_string(NV) + "/" + std::to_string(rpg), true, true, b_all, &base,
        [&] {
          cand::ln_bwd_rows<T, L, NV, true><<<grid, 256>>>(g, x, dm, dr, w, rows, n, rpg, dx, pw, pb);
          cand::ln_bwd_wb_final16<T><<<static_cast<unsigned>((n + 31) / 32), dim3(32, 16)>>>(pw, pb, groups, n, dw,
                                                                                              db);
        });
  };
  for (int rpg : {4, 8, 16, 32}) {
    fused(L32{}, N1{}, rpg);
    fused(L32{}, N2{}, rpg);
    fused(L16{}, N2{}, rpg);
    fused(L16{}, N4{}, rpg);
  }
  for (void* p : {static_cast<void*>(x), static_cast<void*>(g), static_cast<void*>(w), static_cast<void*>(dm),
                  static_cast<void*>(dr), static_cast<void*>(dx), static_cast<void*>(dw), static_cast<void*>(db),
                  static_cast<void*>(ws)})
    CK(cudaFree(p));
}

int main() {
  alarm(300);  // never hang: the process is killed after 5 minutes
  int dev = 0;
  CK(cudaGetDevice(&dev));
  cudaDeviceProp prop{};
  CK(cudaGetDeviceProperties(&prop, dev));
  {  // device-to-device copy bandwidth (read + write)
    const size_t bytes = size_t(512) << 20;
    void *a = nullptr, *b = nullptr;
    CK(cudaMalloc(&a, bytes));
    CK(cudaMalloc(&b, bytes));
    CK(cudaMemset(a, 1, bytes));
    const double us = time_us([&] { CK(cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice)); }, 5);
    g_copy_gbs = 2.0 * bytes / us * 1e-3;
    CK(cudaFree(a));
    CK(cudaFree(b));
  }
  printf("device %s (%d SMs), cudaMemcpyAsync D2D %.0f GB/s (read + write)\n", prop.name, prop.multiProcessorCount,
         g_copy_gbs);
  printf("GB/s = minimal bytes (read x [, grad, w, b] + write y [, stats]) / time; x today = today's time / this\n");
  printf("note: [8192,256] tensors (8-24 MB) fit in the L2, so back-to-back launches partly hit L2 there: compare the\n"
         "variants of one case with each other; [16384,1024] (64 MB + 64 MB in float32) streams from HBM\n\n");
  // miniGPT paper profile: batch 64 x context 128 = 8192 rows of dim 256 (the same shape as ViT's 128 x 64 patches)
  bench_ln_fwd<float>(16384, 1024);
  bench_ln_fwd<float>(8192, 256);
  bench_ln_fwd<__nv_bfloat16>(16384, 1024);
  bench_ln_fwd<__nv_bfloat16>(8192, 256);
  // shapes for the runtime's other dispatch branches (row groups of 4..16 lanes, 32 lanes x 4, block of 384 threads)
  bench_ln_fwd<float>(8192, 64);
  bench_ln_fwd<float>(8192, 512);
  bench_ln_fwd<float>(8192, 768);
  bench_ln_fwd<__nv_bfloat16>(8192, 768);
  printf("\n");
  bench_softmax(8192, 4096);
  bench_softmax(8192, 1000);
  bench_softmax(1024, 16384);
  printf("\n");
  bench_ln_bwd<float>(8192, 256);
  bench_ln_bwd<__nv_bfloat16>(8192, 256);
  bench_ln_bwd<float>(8192, 64);
  bench_ln_bwd<float>(8192, 512);
  bench_ln_bwd<__nv_bfloat16>(8192, 512);
  return 0;
}
