// CUDA half of the ring all-reduce plugin (see ring_plugin.cpp for the op and ring_cuda.h for the interface).
// The schedule is vbt/fabric/ring_plan.h's (the same plan as vbt::fabric::RingAllReduce, whose Note [In-place
// ring over peer reads] explains why one event per rank suffices): reduce-scatter steps add the upstream
// rank's chunk into the downstream copy with a kernel reading peer memory, all-gather steps copy chunks with
// cudaMemcpyPeerAsync, each on the downstream rank's stream, after it waited for the upstream's previous step.
// Streams are the callers' current streams (host->cuda_current_stream, ABI 1.2): nothing synchronises a device.
#include <cuda_runtime_api.h>

#include <cstdint>
#include <mutex>
#include <set>
#include <string>
#include <utility>

#include "ring_cuda.h"
#include "vbt/fabric/ring_plan.h"

namespace vbt_ring {
namespace {

// dst[i] += src[i]; float4 when both pointers are 16-byte aligned (chunk bounds are multiples of 4 elements).
__global__ void accumulate_kernel(float* __restrict__ dst, const float* __restrict__ src, std::size_t n) {
  const std::size_t step = static_cast<std::size_t>(gridDim.x) * blockDim.x;
  std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  for (; i < n; i += step) dst[i] += src[i];
}

__global__ void accumulate4_kernel(float4* __restrict__ dst, const float4* __restrict__ src, std::size_t n4) {
  const std::size_t step = static_cast<std::size_t>(gridDim.x) * blockDim.x;
  for (std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n4; i += step) {
    float4 a = dst[i];
    const float4 b = src[i];
    a.x += b.x;
    a.y += b.y;
    a.z += b.z;
    a.w += b.w;
    dst[i] = a;
  }
}

cudaError_t launch_accumulate(float* dst, const float* src, std::size_t n, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  const int threads = 512;
  const bool vec = (reinterpret_cast<std::uintptr_t>(dst) % 16 == 0) &&
                   (reinterpret_cast<std::uintptr_t>(src) % 16 == 0) && n % 4 == 0;
  const std::size_t work = vec ? n / 4 : n;
  std::size_t blocks = (work + threads - 1) / threads;
  if (blocks > 1024) blocks = 1024;  // grid-stride: a few waves of the largest GPUs
  if (vec)
    accumulate4_kernel<<<static_cast<unsigned>(blocks), threads, 0, stream>>>(
        reinterpret_cast<float4*>(dst), reinterpret_cast<const float4*>(src), work);
  else
    accumulate_kernel<<<static_cast<unsigned>(blocks), threads, 0, stream>>>(dst, src, n);
  return cudaGetLastError();
}

// Restores the calling thread's current device on exit.
struct DeviceRestore {
  int saved = -1;
  DeviceRestore() {
    if (cudaGetDevice(&saved) != cudaSuccess) saved = -1;
  }
  ~DeviceRestore() {
    if (saved >= 0) (void)cudaSetDevice(saved);
  }
};

std::mutex g_mu;                        // guards the event cache and the peer set; serialises enqueues
std::set<std::pair<int, int>> g_peers;  // (reader, owner) pairs enabled by this plugin
cudaEvent_t g_events[64] = {};          // one "this rank reached point X" event per device, kept

std::string cuda_error(const char* what, cudaError_t e) {
  return std::string(what) + ": " + cudaGetErrorString(e);
}

}  // namespace

std::string enable_peer(int reader, int owner) {
  std::lock_guard<std::mutex> lock(g_mu);
  if (g_peers.count({reader, owner})) return {};
  int can = 0;
  cudaError_t e = cudaDeviceCanAccessPeer(&can, reader, owner);
  if (e != cudaSuccess) return cuda_error("cudaDeviceCanAccessPeer", e);
  if (!can)
    return "peer access cuda:" + std::to_string(reader) + " -> cuda:" + std::to_string(owner) +
           " is not possible on this machine (cudaDeviceCanAccessPeer is 0)";
  DeviceRestore restore;
  e = cudaSetDevice(reader);
  if (e == cudaSuccess) e = cudaDeviceEnablePeerAccess(owner, 0);
  if (e == cudaErrorPeerAccessAlreadyEnabled) {  // enabled by someone else in this process: fine
    (void)cudaGetLastError();
    e = cudaSuccess;
  }
  if (e != cudaSuccess) return cuda_error("cudaDeviceEnablePeerAccess", e);
  g_peers.insert({reader, owner});
  return {};
}

std::string ring_all_reduce_cuda(const std::vector<int>& devices, const std::vector<float*>& buffers,
                                 std::size_t count, const std::vector<void*>& streams) {
  using vbt::fabric::ring_chunk;
  using vbt::fabric::ring_step;
  const int n = static_cast<int>(devices.size());
  if (n <= 1 || count == 0) return {};
  std::lock_guard<std::mutex> lock(g_mu);
  DeviceRestore restore;
  std::vector<cudaStream_t> s(static_cast<std::size_t>(n));
  std::vector<cudaEvent_t> ev(static_cast<std::size_t>(n));
  for (int r = 0; r < n; ++r) {
    const int d = devices[r];
    if (d < 0 || d >= 64) return "device index " + std::to_string(d) + " out of range";
    s[r] = static_cast<cudaStream_t>(streams[r]);
    cudaError_t e = cudaSetDevice(d);
    if (e == cudaSuccess && !g_events[d]) e = cudaEventCreateWithFlags(&g_events[d], cudaEventDisableTiming);
    if (e != cudaSuccess) return cuda_error("event set-up", e);
    ev[r] = g_events[d];
  }
#define RING_CUDA(call)                                   \
  do {                                                    \
    cudaError_t e_ = (call);                              \
    if (e_ != cudaSuccess) return cuda_error(#call, e_);  \
  } while (0)
  auto barrier = [&]() -> std::string {
    for (int r = 0; r < n; ++r) {
      RING_CUDA(cudaSetDevice(devices[r]));
      RING_CUDA(cudaEventRecord(ev[r], s[r]));
    }
    for (int r = 0; r < n; ++r) {
      RING_CUDA(cudaSetDevice(devices[r]));
      for (int q = 0; q < n; ++q)
        if (q != r) RING_CUDA(cudaStreamWaitEvent(s[r], ev[q], 0));
    }
    return {};
  };
  std::string err = barrier();  // every rank's inputs are ready
  if (!err.empty()) return err;
  for (int phase = 0; phase < 2; ++phase) {
    const bool reduce = phase == 0;
    for (int step = 0; step + 1 < n; ++step) {
      const auto transfers = ring_step(n, step, reduce);
      for (const auto& t : transfers) {  // all waits first: they capture the upstream's previous step
        RING_CUDA(cudaSetDevice(devices[t.dst_rank]));
        RING_CUDA(cudaStreamWaitEvent(s[t.dst_rank], ev[t.src_rank], 0));
      }
      for (const auto& t : transfers) {
        const auto [b, e] = ring_chunk(count, n, t.chunk);
        RING_CUDA(cudaSetDevice(devices[t.dst_rank]));
        if (e > b) {
          float* dst = buffers[t.dst_rank] + b;
          const float* src = buffers[t.src_rank] + b;
          if (reduce)
            RING_CUDA(launch_accumulate(dst, src, e - b, s[t.dst_rank]));
          else
            RING_CUDA(cudaMemcpyPeerAsync(dst, devices[t.dst_rank], src, devices[t.src_rank], (e - b) * sizeof(float),
                                          s[t.dst_rank]));
        }
        RING_CUDA(cudaEventRecord(ev[t.dst_rank], s[t.dst_rank]));
      }
    }
  }
#undef RING_CUDA
  return barrier();  // no rank still reads a peer's buffer when the callers' streams move on
}

}  // namespace vbt_ring
