// Ring all-reduce of our own (float32 sum, in place) over peer access, one process driving N GPUs.
// Policy: an example of a collective built on the Fabric, checked and timed against NCCL; not a
// replacement for NCCL (no pipelining of slices, no multi-process, no multi-node).
//
// buffers[r] is `count` float32 elements on devices[r]; streams[r] is a stream of devices[r] (nullptr:
// the fabric's stream of that device). The call is asynchronous: on return the work is enqueued on the
// streams. Entry: every rank waits until all streams reached the call (inputs ready everywhere). Exit:
// every stream waits until all ranks finished (no peer still reads a buffer the caller may reuse).
// The constructor enables peer access rank r+1 -> rank r for every r (throws PeerUnsupported where the
// topology or the fabric's deny list forbids it) and rejects repeated devices; run() needs device
// pointers on the named devices (not checked when count == 0). N = 1 or count == 0 is the identity
// (nothing is enqueued).
#pragma once
#include <cuda_runtime_api.h>

#include <cstddef>
#include <vector>

#include "vbt/fabric/fabric.h"
#include "vbt/fabric/ring_plan.h"

namespace vbt::fabric {

class RingAllReduce {
 public:
  RingAllReduce(Fabric& fabric, std::vector<int> devices);
  ~RingAllReduce();
  RingAllReduce(const RingAllReduce&) = delete;
  RingAllReduce& operator=(const RingAllReduce&) = delete;

  int ranks() const { return static_cast<int>(devices_.size()); }
  const std::vector<int>& devices() const { return devices_; }
  void run(const std::vector<float*>& buffers, std::size_t count,
           const std::vector<cudaStream_t>& streams = {});

 private:
  Fabric& fabric_;
  std::vector<int> devices_;
  std::vector<cudaEvent_t> events_;  // one per rank, no timing: "this rank reached point X"
};

}  // namespace vbt::fabric
