// Ring plan: the pure (host-only, CUDA-free) schedule of the ring all-reduce, so it can be checked on a
// machine without a GPU. Ranks 0..N-1 form the ring r -> r+1 (mod N). The `count` elements are split into
// N chunks whose boundaries are multiples of kChunkAlign elements (16-byte aligned for float32, so the
// kernels can use vector loads); trailing chunks may be short or empty (count < N * kChunkAlign).
//
// Reduce-scatter, step s = 0..N-2: rank r+1 adds rank r's chunk (r - s) mod N into its own copy.
//   After it, rank r holds the full sum of chunk (r + 1) mod N.
// All-gather, step s = 0..N-2: rank r+1 copies rank r's chunk (r + 1 - s) mod N into its own copy.
// Each step reads only what the previous step on the upstream rank wrote, so one event per rank per step
// (upstream's "step done") orders the whole thing; see ring_allreduce.cu for why in-place is safe.
#pragma once
#include <cstddef>
#include <utility>
#include <vector>

namespace vbt::fabric {

inline constexpr std::size_t kChunkAlign = 4;  // elements

// [begin, end) of chunk c of `count` elements split for `ranks` ranks.
std::pair<std::size_t, std::size_t> ring_chunk(std::size_t count, int ranks, int chunk);

struct RingTransfer {
  int src_rank;  // read from
  int dst_rank;  // written (reduced into, or copied into)
  int chunk;
};

// The transfers of one step; `reduce` selects reduce-scatter (true) or all-gather (false).
std::vector<RingTransfer> ring_step(int ranks, int step, bool reduce);

// Runs the plan on host vectors (the reference the plan test uses): data[r] is rank r's buffer.
// Every step reads a snapshot of the previous state, as the GPUs would with only the plan's ordering.
void ring_allreduce_host(std::vector<std::vector<float>>& data);

}  // namespace vbt::fabric
