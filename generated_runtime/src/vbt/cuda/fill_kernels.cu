// Device kernels of the CUDA backend. count_mismatched_bytes: a grid-stride loop; each thread counts the
// bytes it sees that differ from the poison byte and adds its count atomically (one atomic per thread).
#include "fill_kernels.h"

namespace vbt::cuda::detail {

namespace {
__global__ void count_mismatched_bytes(const unsigned char* data, std::size_t n, unsigned char byte,
                                       unsigned long long* count) {
  unsigned long long mine = 0;
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < n;
       i += std::size_t(gridDim.x) * blockDim.x)
    mine += data[i] != byte;
  if (mine != 0) atomicAdd(count, mine);
}
}  // namespace

cudaError_t launch_count_mismatched_bytes(const void* ptr, std::size_t bytes, std::uint8_t byte,
                                          unsigned long long* device_count, cudaStream_t stream) {
  if (bytes == 0) return cudaSuccess;
  constexpr int kThreads = 256;
  std::size_t wanted = (bytes + kThreads - 1) / kThreads;
  int blocks = static_cast<int>(wanted < 1024 ? wanted : 1024);
  count_mismatched_bytes<<<blocks, kThreads, 0, stream>>>(static_cast<const unsigned char*>(ptr), bytes, byte,
                                                          device_count);
  return cudaGetLastError();
}

}  // namespace vbt::cuda::detail
