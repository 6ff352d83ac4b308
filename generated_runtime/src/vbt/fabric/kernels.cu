// Fabric kernels: elementwise float32 add and accumulate (out may alias a), grid-stride, 16-byte vector accesses when every
// pointer is 16-byte aligned (scalar tail and scalar fallback otherwise). Operands may be peer memory.
#include <cstdint>

#include "kernels.h"

namespace vbt::fabric::detail {
namespace {

constexpr int kThreads = 512;

__global__ void add_vec4(float4* out, const float4* a, const float4* b,
                         std::size_t n4) {
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < n4;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
    const float4 x = a[i];
    const float4 y = b[i];
    out[i] = make_float4(x.x + y.x, x.y + y.y, x.z + y.z, x.w + y.w);
  }
}

__global__ void add_scalar(float* out, const float* a, const float* b, std::size_t n) {
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
    out[i] = a[i] + b[i];
  }
}

bool aligned16(const void* p) { return (reinterpret_cast<std::uintptr_t>(p) & 15u) == 0; }

int grid_for(std::size_t work) {
  static const int sms = [] {
    int dev = 0, v = 0;
    if (cudaGetDevice(&dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&v, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess || v <= 0) {
      (void)cudaGetLastError();
      v = 80;
    }
    return v;
  }();
  const std::size_t blocks = (work + kThreads - 1) / kThreads;
  const std::size_t cap = static_cast<std::size_t>(sms) * 4;
  return static_cast<int>(blocks < cap ? (blocks == 0 ? 1 : blocks) : cap);
}

}  // namespace

cudaError_t launch_add(float* out, const float* a, const float* b, std::size_t n, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  std::size_t done = 0;
  if (aligned16(out) && aligned16(a) && aligned16(b) && n >= 4) {
    const std::size_t n4 = n / 4;
    add_vec4<<<grid_for(n4), kThreads, 0, stream>>>(reinterpret_cast<float4*>(out),
                                                    reinterpret_cast<const float4*>(a),
                                                    reinterpret_cast<const float4*>(b), n4);
    done = n4 * 4;
  }
  if (done < n) {
    add_scalar<<<grid_for(n - done), kThreads, 0, stream>>>(out + done, a + done, b + done, n - done);
  }
  return cudaGetLastError();
}

cudaError_t launch_accumulate(float* dst, const float* src, std::size_t n, cudaStream_t stream) {
  return launch_add(dst, dst, src, n, stream);
}

}  // namespace vbt::fabric::detail
