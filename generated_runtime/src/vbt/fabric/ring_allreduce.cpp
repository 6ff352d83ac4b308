// Ring all-reduce over peer access (see ring_allreduce.h and ring_plan.h for the schedule).
//
// Note [In-place ring over peer reads]: rank r+1 reads rank r's buffer directly (no staging buffers).
// Within a step no rank writes a chunk its downstream reads (checked by ring_allreduce_host). Across steps
// a rank may run ahead of its downstream, but it only ever writes a chunk its downstream still has to read
// once that chunk's final value exists, and the final value depends (through the event chain) on the
// downstream's pending read having completed. So the only ordering needed is "downstream waits for the
// upstream's previous step", one event per rank, plus entry and exit barriers across all ranks.
#include "vbt/fabric/ring_allreduce.h"

#include <string>

#include "device_scope.h"
#include "kernels.h"

namespace vbt::fabric {

using detail::DeviceScope;

RingAllReduce::RingAllReduce(Fabric& fabric, std::vector<int> devices)
    : fabric_(fabric), devices_(std::move(devices)) {
  if (devices_.empty()) throw FabricError(FabricErrorKind::InvalidArgument, "ring of zero devices");
  const int n = ranks();
  for (int r = 0; r < n; ++r) {
    fabric_.check_device(devices_[r]);
    for (int q = 0; q < r; ++q) {
      if (devices_[q] == devices_[r]) {
        throw FabricError(FabricErrorKind::InvalidArgument,
                          "device " + std::to_string(devices_[r]) + " appears twice in the ring");
      }
    }
  }
  if (n > 1) {
    for (int r = 0; r < n; ++r) {
      const int down = devices_[(r + 1) % n];
      fabric_.enable_peer_access(down, devices_[r]);  // throws PeerUnsupported with the reason
    }
  }
  events_.assign(static_cast<std::size_t>(n), nullptr);
  for (int r = 0; r < n; ++r) {
    DeviceScope scope(devices_[r]);
    VBT_FABRIC_CUDA(cudaEventCreateWithFlags(&events_[r], cudaEventDisableTiming));
  }
}

RingAllReduce::~RingAllReduce() {
  for (cudaEvent_t e : events_) {
    if (e) (void)cudaEventDestroy(e);
  }
  (void)cudaGetLastError();
}

void RingAllReduce::run(const std::vector<float*>& buffers, std::size_t count,
                        const std::vector<cudaStream_t>& streams) {
  const int n = ranks();
  if (static_cast<int>(buffers.size()) != n) {
    throw FabricError(FabricErrorKind::InvalidArgument, "ring of " + std::to_string(n) + " ranks given " +
                                                            std::to_string(buffers.size()) + " buffers");
  }
  if (!streams.empty() && static_cast<int>(streams.size()) != n) {
    throw FabricError(FabricErrorKind::InvalidArgument, "ring of " + std::to_string(n) + " ranks given " +
                                                            std::to_string(streams.size()) + " streams");
  }
  // count == 0 touches no memory: like cudaMemcpy of 0 bytes it is a valid no-op whatever the pointers
  // are (an empty buffer's pointer may be null or one past the end of an allocation, which CUDA does not
  // attribute to any device).
  if (count == 0) return;
  for (int r = 0; r < n; ++r) {
    if (Fabric::device_of(buffers[r]) != devices_[r]) {
      throw FabricError(FabricErrorKind::InvalidArgument,
                        "buffer of rank " + std::to_string(r) + " is not on device " + std::to_string(devices_[r]));
    }
  }
  if (n == 1 || count == 0) return;  // identity
  for (int r = 0; r < n; ++r) {
    const int down = devices_[(r + 1) % n];
    if (!fabric_.peer_enabled(down, devices_[r])) {
      throw FabricError(FabricErrorKind::PeerUnsupported,
                        "ring needs peer access " + std::to_string(down) + " -> " + std::to_string(devices_[r]) +
                            ": call Fabric::enable_peer_access (or enable_all_peer_access) first");
    }
  }
  std::vector<cudaStream_t> s(static_cast<std::size_t>(n));
  for (int r = 0; r < n; ++r) {
    s[r] = (streams.empty() || streams[r] == nullptr) ? fabric_.stream(devices_[r]) : streams[r];
  }

  auto barrier = [&] {
    for (int r = 0; r < n; ++r) {
      DeviceScope scope(devices_[r]);
      VBT_FABRIC_CUDA(cudaEventRecord(events_[r], s[r]));
    }
    for (int r = 0; r < n; ++r) {
      DeviceScope scope(devices_[r]);
      for (int q = 0; q < n; ++q) {
        if (q != r) VBT_FABRIC_CUDA(cudaStreamWaitEvent(s[r], events_[q], 0));
      }
    }
  };

  barrier();  // inputs ready on every rank
  for (int phase = 0; phase < 2; ++phase) {
    const bool reduce = phase == 0;
    for (int step = 0; step + 1 < n; ++step) {
      const auto transfers = ring_step(n, step, reduce);
      // All waits first (they capture the upstream's previous-step record), then the work and new records.
      for (const RingTransfer& t : transfers) {
        DeviceScope scope(devices_[t.dst_rank]);
        VBT_FABRIC_CUDA(cudaStreamWaitEvent(s[t.dst_rank], events_[t.src_rank], 0));
      }
      for (const RingTransfer& t : transfers) {
        const auto [b, e] = ring_chunk(count, n, t.chunk);
        DeviceScope scope(devices_[t.dst_rank]);
        if (e > b) {
          float* dst = buffers[t.dst_rank] + b;
          const float* src = buffers[t.src_rank] + b;
          if (reduce) {
            VBT_FABRIC_CUDA(detail::launch_accumulate(dst, src, e - b, s[t.dst_rank]));
          } else {
            VBT_FABRIC_CUDA(cudaMemcpyPeerAsync(dst, devices_[t.dst_rank], src, devices_[t.src_rank],
                                                (e - b) * sizeof(float), s[t.dst_rank]));
          }
        }
        VBT_FABRIC_CUDA(cudaEventRecord(events_[t.dst_rank], s[t.dst_rank]));
      }
    }
  }
  barrier();  // no rank still reads a peer's buffer when the caller's streams move on
}

}  // namespace vbt::fabric
