// _fused_adam_ on CUDA (Note [Fused Adam] in src/vbt/cpu/optim_kernels.cpp): one launch updates many tensors.
//
// Note [Multi-tensor launch]
//   The tensors' pointers and sizes travel in the kernel's parameter block (AdamBatch, under 4 KiB). A batch holds
//   up to kAdamTensors tensors; each tensor is cut into chunks of kAdamChunk elements, one block per chunk, and
//   first_block[t] is the first block of tensor t, so a block finds its tensor by a scan of at most kAdamTensors
//   entries. The host fills a batch, launches it (as many blocks as the batch has chunks) and starts the next, so a
//   100-tensor model takes a few launches instead of eight per tensor. The chunks are small (32 elements per
//   thread) so that a model of a few million parameters fills the device: with 64Ki-element chunks and at most 256
//   blocks per launch, miniGPT's step spent 430 us in this kernel on the H200. The arithmetic is the CPU kernel's,
//   in the same order and precision.
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "device_types.cuh"
#include "loops.h"

namespace vbt::cuda::ops {

namespace {

constexpr int kAdamTensors = 24;
constexpr int64_t kAdamChunk = 8192;
constexpr int kAdamThreads = 256;

struct AdamBatch {
  void* p[kAdamTensors];
  const void* g[kAdamTensors];
  void* m[kAdamTensors];
  void* v[kAdamTensors];
  int64_t numel[kAdamTensors];
  int64_t first_block[kAdamTensors + 1];  // first_block[count] = the batch's number of blocks
  int count;
};
static_assert(sizeof(AdamBatch) + 128 <= 4096, "AdamBatch must fit the kernel parameter block");

template <typename T>
struct AdamConsts {
  T decay, wd, w, b2, c2, bc2, eps, neg_step;
  bool use_wd, decoupled, maximize;
};

template <typename T>
__global__ void fused_adam_kernel(AdamBatch batch, AdamConsts<T> c) {
  const int64_t b = blockIdx.x;
  int t = 0;
  while (t + 1 < batch.count && batch.first_block[t + 1] <= b) ++t;
  const int64_t begin = (b - batch.first_block[t]) * kAdamChunk;
  const int64_t n = batch.numel[t];
  const int64_t end = begin + kAdamChunk < n ? begin + kAdamChunk : n;
  T* p = static_cast<T*>(batch.p[t]);
  const T* g = static_cast<const T*>(batch.g[t]);
  T* m = static_cast<T*>(batch.m[t]);
  T* v = static_cast<T*>(batch.v[t]);
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
    T grad = c.maximize ? -g[i] : g[i];
    T param = p[i];
    if (c.use_wd) {
      if (c.decoupled) param = param * c.decay;
      else grad = grad + c.wd * param;
    }
    T avg = m[i];
    avg = fabs(c.w) < T(0.5) ? avg + c.w * (grad - avg) : grad - (grad - avg) * (T(1) - c.w);
    T sq = v[i] * c.b2;
    sq = sq + c.c2 * grad * grad;
    T denom = sqrt(sq) / c.bc2 + c.eps;
    p[i] = param + c.neg_step * (avg / denom);
    m[i] = avg;
    v[i] = sq;
  }
}

template <typename T>
cudaError_t run_batches(const AdamTensorPtrs* tensors, int64_t count, const AdamScalarsArg& s, cudaStream_t stream) {
  AdamConsts<T> c{static_cast<T>(1 - s.lr * s.weight_decay), static_cast<T>(s.weight_decay),
                  static_cast<T>(1 - s.beta1), static_cast<T>(s.beta2), static_cast<T>(1 - s.beta2),
                  static_cast<T>(s.bias_correction2_sqrt), static_cast<T>(s.eps), static_cast<T>(-s.step_size),
                  s.weight_decay != 0, s.decoupled, s.maximize};
  AdamBatch batch;
  batch.count = 0;
  int64_t blocks = 0;
  auto flush = [&]() -> cudaError_t {
    if (blocks == 0) return cudaSuccess;
    batch.first_block[batch.count] = blocks;
    // blocks <= kAdamTensors * ceil(numel / kAdamChunk): within the grid's x limit for any tensor the allocator holds
    fused_adam_kernel<T><<<static_cast<unsigned>(blocks), kAdamThreads, 0, stream>>>(batch, c);
    batch.count = 0;
    blocks = 0;
    return cudaGetLastError();
  };
  for (int64_t i = 0; i < count; ++i) {
    const int64_t n = tensors[i].numel;
    if (n == 0) continue;
    if (batch.count == kAdamTensors) {
      if (cudaError_t e = flush(); e != cudaSuccess) return e;
    }
    const int k = batch.count++;
    batch.p[k] = tensors[i].p;
    batch.g[k] = tensors[i].g;
    batch.m[k] = tensors[i].m;
    batch.v[k] = tensors[i].v;
    batch.numel[k] = n;
    batch.first_block[k] = blocks;
    blocks += (n + kAdamChunk - 1) / kAdamChunk;
  }
  return flush();
}

}  // namespace

cudaError_t launch_fused_adam(int dtype, const AdamTensorPtrs* tensors, int64_t count, const AdamScalarsArg& s,
                              cudaStream_t stream) {
  return dispatch_float(dtype, [&](auto tag) -> cudaError_t {
    using T = typename decltype(tag)::type;
    if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) return run_batches<T>(tensors, count, s, stream);
    else return cudaErrorInvalidValue;  // float32 and float64 only, as on the CPU
  });
}

}  // namespace vbt::cuda::ops
