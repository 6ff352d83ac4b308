// Multi-tensor kernels on CUDA: _fused_adam_ (Note [Fused Adam] in src/vbt/cpu/optim_kernels.cpp) and clip_grad_norm_'s
// _stacked_norms / _foreach_mul_ (Note [Clip lists] there). One launch covers many tensors.
//
// Note [Multi-tensor launch]
//   The tensors' pointers and sizes travel in the kernel's parameter block (a batch struct, under 4 KiB). A batch
//   holds up to kListTensors tensors; each tensor is cut into chunks of kListChunk elements, one block per chunk,
//   and first_block[t] is the first block of tensor t, so a block finds its tensor by a scan of at most
//   kListTensors entries. The host fills a batch, launches it (as many blocks as the batch has chunks) and starts
//   the next, so a 100-tensor model takes a few launches where the per-tensor ops take eight per tensor (Adam) or
//   two (clip_grad_norm_'s norm and scaling). The chunks are small (32 elements per thread) so that a model of
//   a few million parameters fills the device: with 64Ki-element chunks and at most 256 blocks per launch,
//   miniGPT's step spent 430 us in the Adam kernel on the H200. The Adam arithmetic is the CPU kernel's
//   (adam_element in src/vbt/cpu/adam_step.h, one function for both).
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "../../cpu/adam_step.h"
#include "device_types.cuh"
#include "loops.h"
#include "row_reduce_ops.cuh"

namespace vbt::cuda::ops {

namespace {

constexpr int kListTensors = 24;
constexpr int64_t kListChunk = 8192;
constexpr int kListThreads = 256;

// Note [Multi-tensor launch]: one batch's tensors' sizes and first blocks.
struct BlockTable {
  int64_t numel[kListTensors];
  int64_t first_block[kListTensors + 1];  // first_block[count] = the batch's number of blocks
  int count;
  __device__ int tensor_of(int64_t b) const {
    int t = 0;
    while (t + 1 < count && first_block[t + 1] <= b) ++t;
    return t;
  }
};

// Cuts tensors [0, n) (numel(i) elements each; empty ones skipped) into batches of at most kListTensors:
// slot(k, i) puts tensor i into slot k of the batch being filled, launch(blocks, done) runs a full batch (done:
// the blocks of the batches before it).
template <typename Numel, typename Slot, typename Launch>
cudaError_t for_batches(BlockTable& tab, int64_t n, Numel numel, Slot slot, Launch launch) {
  tab.count = 0;
  int64_t blocks = 0, done = 0;
  auto flush = [&]() -> cudaError_t {
    if (blocks == 0) return cudaSuccess;
    tab.first_block[tab.count] = blocks;
    // blocks <= kListTensors * ceil(numel / kListChunk): within the grid's x limit for any tensor that fits memory
    const cudaError_t e = launch(blocks, done);
    done += blocks;
    tab.count = 0;
    blocks = 0;
    return e;
  };
  for (int64_t i = 0; i < n; ++i) {
    const int64_t m = numel(i);
    if (m == 0) continue;
    if (tab.count == kListTensors) {
      if (cudaError_t e = flush(); e != cudaSuccess) return e;
    }
    const int k = tab.count++;
    slot(k, i);
    tab.numel[k] = m;
    tab.first_block[k] = blocks;
    blocks += (m + kListChunk - 1) / kListChunk;
  }
  return flush();
}

// The element range [begin, end) of this block's chunk, and its tensor t.
__device__ __forceinline__ void chunk_of(const BlockTable& tab, int& t, int64_t& begin, int64_t& end) {
  const int64_t b = blockIdx.x;
  t = tab.tensor_of(b);
  begin = (b - tab.first_block[t]) * kListChunk;
  end = begin + kListChunk < tab.numel[t] ? begin + kListChunk : tab.numel[t];
}

struct AdamBatch {
  void* p[kListTensors];
  const void* g[kListTensors];
  void* m[kListTensors];
  void* v[kListTensors];
  BlockTable tab;
};
static_assert(sizeof(AdamBatch) + 128 <= 4096, "AdamBatch must fit the kernel parameter block");

template <typename T>
__global__ void fused_adam_kernel(AdamBatch batch, AdamConstants<T> c) {
  int t;
  int64_t begin, end;
  chunk_of(batch.tab, t, begin, end);
  T* p = static_cast<T*>(batch.p[t]);
  const T* g = static_cast<const T*>(batch.g[t]);
  T* m = static_cast<T*>(batch.m[t]);
  T* v = static_cast<T*>(batch.v[t]);
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) adam_element<T>(p[i], g[i], m[i], v[i], c);
}

template <typename T>
cudaError_t run_batches(const AdamTensorPtrs* tensors, int64_t count, const AdamScalarsArg& s, cudaStream_t stream) {
  const AdamConstants<T> c = adam_constants<T>(s.lr, s.beta1, s.beta2, s.eps, s.weight_decay, s.step_size,
                                               s.bias_correction2_sqrt, s.decoupled, s.maximize);
  AdamBatch batch;
  return for_batches(
      batch.tab, count, [&](int64_t i) { return tensors[i].numel; },
      [&](int k, int64_t i) {
        batch.p[k] = tensors[i].p;
        batch.g[k] = tensors[i].g;
        batch.m[k] = tensors[i].m;
        batch.v[k] = tensors[i].v;
      },
      [&](int64_t blocks, int64_t) {
        fused_adam_kernel<T><<<static_cast<unsigned>(blocks), kListThreads, 0, stream>>>(batch, c);
        return cudaGetLastError();
      });
}

// ---- _stacked_norms: each block reduces its chunk into part[done + block] (the row reductions' double
// accumulators), then one block per tensor combines its chunks' partials in a fixed order (deterministic).
struct NormBatch {
  const void* t[kListTensors];
  int64_t out[kListTensors];  // the tensor's index in the list
  BlockTable tab;
};

__device__ double block_combine(RowRed op, double acc, double* sh) {
  sh[threadIdx.x] = acc;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) sh[threadIdx.x] = scan_detail::rr_combine(op, sh[threadIdx.x], sh[threadIdx.x + s]);
    __syncthreads();
  }
  return sh[0];
}

template <typename T>
__global__ void list_norm_partial_kernel(NormBatch batch, RowRed op, double p, double* part, int64_t done) {
  __shared__ double sh[kListThreads];
  int t;
  int64_t begin, end;
  chunk_of(batch.tab, t, begin, end);
  const T* x = static_cast<const T*>(batch.t[t]);
  double acc = scan_detail::rr_init<double>(op);
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x)
    acc = scan_detail::rr_step(op, acc, static_cast<double>(x[i]), p);
  acc = block_combine(op, acc, sh);
  if (threadIdx.x == 0) part[done + blockIdx.x] = acc;
}

template <typename T>
__global__ void list_norm_finish_kernel(NormBatch batch, RowRed op, double p, const double* part, int64_t done, T* out) {
  __shared__ double sh[kListThreads];
  const int t = blockIdx.x;
  const int64_t b0 = done + batch.tab.first_block[t], b1 = done + batch.tab.first_block[t + 1];
  double acc = scan_detail::rr_init<double>(op);
  for (int64_t b = b0 + threadIdx.x; b < b1; b += blockDim.x) acc = scan_detail::rr_combine(op, acc, part[b]);
  acc = block_combine(op, acc, sh);
  if (threadIdx.x == 0) out[batch.out[t]] = static_cast<T>(scan_detail::rr_finish(op, acc, p));
}

template <typename T>
cudaError_t run_list_norms(const void* const* tensors, const int64_t* numels, int64_t count, RowRed op, double p,
                           double* part, void* out, cudaStream_t stream) {
  NormBatch batch;
  return for_batches(
      batch.tab, count, [&](int64_t i) { return numels[i]; },
      [&](int k, int64_t i) {
        batch.t[k] = tensors[i];
        batch.out[k] = i;
      },
      [&](int64_t blocks, int64_t done) {
        list_norm_partial_kernel<T><<<static_cast<unsigned>(blocks), kListThreads, 0, stream>>>(batch, op, p, part, done);
        if (cudaError_t e = cudaGetLastError(); e != cudaSuccess) return e;
        list_norm_finish_kernel<T><<<static_cast<unsigned>(batch.tab.count), kListThreads, 0, stream>>>(
            batch, op, p, part, done, static_cast<T*>(out));
        return cudaGetLastError();
      });
}

// ---- _foreach_mul_: x *= *scale for every element of every tensor (the factor read on the device)
struct MulBatch {
  void* t[kListTensors];
  BlockTable tab;
};

template <typename T> __global__ void list_mul_kernel(MulBatch batch, const T* scale) {
  int t;
  int64_t begin, end;
  chunk_of(batch.tab, t, begin, end);
  T* x = static_cast<T*>(batch.t[t]);
  const T s = *scale;
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) x[i] = x[i] * s;
}

template <typename T>
cudaError_t run_list_mul(void* const* tensors, const int64_t* numels, int64_t count, const void* scale,
                         cudaStream_t stream) {
  MulBatch batch;
  return for_batches(
      batch.tab, count, [&](int64_t i) { return numels[i]; }, [&](int k, int64_t i) { batch.t[k] = tensors[i]; },
      [&](int64_t blocks, int64_t) {
        list_mul_kernel<T><<<static_cast<unsigned>(blocks), kListThreads, 0, stream>>>(batch, static_cast<const T*>(scale));
        return cudaGetLastError();
      });
}

template <typename F> cudaError_t dispatch_list(int dtype, F&& f) {  // float32 and float64 only, as on the CPU
  return dispatch_float(dtype, [&](auto tag) -> cudaError_t {
    using T = typename decltype(tag)::type;
    if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) return f(tag);
    else return cudaErrorInvalidValue;
  });
}

}  // namespace

int64_t list_chunks(int64_t numel) { return (numel + kListChunk - 1) / kListChunk; }

cudaError_t launch_list_norms(int dtype, const void* const* tensors, const int64_t* numels, int64_t count, RowRed op,
                              double p, double* part, void* out, cudaStream_t stream) {
  return dispatch_list(dtype, [&](auto tag) -> cudaError_t {
    using T = typename decltype(tag)::type;
    return run_list_norms<T>(tensors, numels, count, op, p, part, out, stream);
  });
}

cudaError_t launch_list_mul(int dtype, void* const* tensors, const int64_t* numels, int64_t count, const void* scale,
                            cudaStream_t stream) {
  return dispatch_list(dtype, [&](auto tag) -> cudaError_t {
    using T = typename decltype(tag)::type;
    return run_list_mul<T>(tensors, numels, count, scale, stream);
  });
}

cudaError_t launch_fused_adam(int dtype, const AdamTensorPtrs* tensors, int64_t count, const AdamScalarsArg& s,
                              cudaStream_t stream) {
  return dispatch_list(dtype, [&](auto tag) -> cudaError_t {
    using T = typename decltype(tag)::type;
    return run_batches<T>(tensors, count, s, stream);
  });
}

}  // namespace vbt::cuda::ops
