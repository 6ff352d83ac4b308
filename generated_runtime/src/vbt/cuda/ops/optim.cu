// _fused_adam_ on CUDA (Note [Fused Adam] in src/vbt/cpu/optim_kernels.cpp): one launch updates many tensors.
//
// Note [Multi-tensor launch]
//   The tensors' pointers and sizes travel in the kernel's parameter block (AdamBatch, under 4 KiB), with a table
//   that gives every block its tensor and its chunk of kAdamChunk elements. A batch holds up to kAdamTensors tensors
//   and kAdamBlocks chunks; the host fills one, launches it and starts the next, so a 100-tensor model takes a few
//   launches instead of eight per tensor. The arithmetic is the CPU kernel's, in the same order and precision.
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "device_types.cuh"
#include "loops.h"

namespace vbt::cuda::ops {

namespace {

constexpr int kAdamTensors = 24;
constexpr int kAdamBlocks = 256;
constexpr int64_t kAdamChunk = 65536;
constexpr int kAdamThreads = 256;

struct AdamBatch {
  void* p[kAdamTensors];
  const void* g[kAdamTensors];
  void* m[kAdamTensors];
  void* v[kAdamTensors];
  int64_t numel[kAdamTensors];
  unsigned char block_tensor[kAdamBlocks];
  int block_chunk[kAdamBlocks];
};
static_assert(sizeof(AdamBatch) + 128 <= 4096, "AdamBatch must fit the kernel parameter block");

template <typename T>
struct AdamConsts {
  T decay, wd, w, b2, c2, bc2, eps, neg_step;
  bool use_wd, decoupled, maximize;
};

template <typename T>
__global__ void fused_adam_kernel(AdamBatch batch, AdamConsts<T> c) {
  const int t = batch.block_tensor[blockIdx.x];
  const int64_t begin = static_cast<int64_t>(batch.block_chunk[blockIdx.x]) * kAdamChunk;
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
  int tensors_in = 0, blocks = 0;
  auto flush = [&]() -> cudaError_t {
    if (blocks == 0) return cudaSuccess;
    fused_adam_kernel<T><<<blocks, kAdamThreads, 0, stream>>>(batch, c);
    tensors_in = blocks = 0;
    return cudaGetLastError();
  };
  for (int64_t i = 0; i < count; ++i) {
    const int64_t n = tensors[i].numel;
    if (n == 0) continue;
    const int64_t chunks = (n + kAdamChunk - 1) / kAdamChunk;
    for (int64_t ch = 0; ch < chunks; ++ch) {
      // a tensor enters the batch at its first chunk; a full batch (tensors or blocks) is launched first
      if (ch == 0 || blocks == 0) {
        if (tensors_in == kAdamTensors || blocks == kAdamBlocks) {
          if (cudaError_t e = flush(); e != cudaSuccess) return e;
        }
        batch.p[tensors_in] = tensors[i].p;
        batch.g[tensors_in] = tensors[i].g;
        batch.m[tensors_in] = tensors[i].m;
        batch.v[tensors_in] = tensors[i].v;
        batch.numel[tensors_in] = n;
        ++tensors_in;
      }
      batch.block_tensor[blocks] = static_cast<unsigned char>(tensors_in - 1);
      batch.block_chunk[blocks] = static_cast<int>(ch);
      if (++blocks == kAdamBlocks && ch + 1 < chunks) {
        if (cudaError_t e = flush(); e != cudaSuccess) return e;  // the rest of this tensor starts a new batch
      }
    }
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
