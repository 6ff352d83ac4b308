// The CUDA half of the ring all-reduce plugin (ring_cuda.cu): compiled only with the CUDA backend
// (VBT_RING_HAS_CUDA). Plain C++ interface so ring_plugin.cpp needs no CUDA headers.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

namespace vbt_ring {

// Checks that device `reader` can read device `owner`'s memory and enables that peer access (once per pair
// per process). Returns an empty string, or why it is impossible.
std::string enable_peer(int reader, int owner);

// Enqueues the in-place float32 sum all-reduce of buffers[r] (count elements on devices[r]) on streams[r]
// (cudaStream_t as void*; NULL = the legacy default stream of that device), ranks in list order, using the
// plan of vbt/fabric/ring_plan.h. Asynchronous; every stream waits for all ranks at entry and exit. Peer
// access must be enabled for (devices[r+1] reads devices[r]). Returns an empty string or the CUDA error.
std::string ring_all_reduce_cuda(const std::vector<int>& devices, const std::vector<float*>& buffers,
                                 std::size_t count, const std::vector<void*>& streams);

}  // namespace vbt_ring
