// Ring plan (see ring_plan.h): chunking and per-step transfers of the ring all-reduce, host only.
#include "vbt/fabric/ring_plan.h"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace vbt::fabric {

namespace {
int mod(int a, int n) { return ((a % n) + n) % n; }
}  // namespace

std::pair<std::size_t, std::size_t> ring_chunk(std::size_t count, int ranks, int chunk) {
  if (ranks <= 0 || chunk < 0 || chunk >= ranks) {
    throw std::invalid_argument("ring_chunk: chunk " + std::to_string(chunk) + " of " +
                                std::to_string(ranks) + " ranks");
  }
  const std::size_t n = static_cast<std::size_t>(ranks);
  std::size_t per = (count + n - 1) / n;
  per = (per + kChunkAlign - 1) / kChunkAlign * kChunkAlign;
  const std::size_t c = static_cast<std::size_t>(chunk);
  return {std::min(c * per, count), std::min((c + 1) * per, count)};
}

std::vector<RingTransfer> ring_step(int ranks, int step, bool reduce) {
  if (ranks <= 0 || step < 0 || step > ranks - 2) {
    throw std::invalid_argument("ring_step: step " + std::to_string(step) + " of a ring of " +
                                std::to_string(ranks));
  }
  std::vector<RingTransfer> out;
  out.reserve(static_cast<std::size_t>(ranks));
  for (int r = 0; r < ranks; ++r) {
    const int chunk = reduce ? mod(r - step, ranks) : mod(r + 1 - step, ranks);
    out.push_back({r, mod(r + 1, ranks), chunk});
  }
  return out;
}

void ring_allreduce_host(std::vector<std::vector<float>>& data) {
  const int ranks = static_cast<int>(data.size());
  if (ranks <= 1) return;
  const std::size_t count = data[0].size();
  for (const auto& d : data) {
    if (d.size() != count) throw std::invalid_argument("ring_allreduce_host: ranks differ in size");
  }
  for (int phase = 0; phase < 2; ++phase) {
    const bool reduce = phase == 0;
    for (int s = 0; s + 1 < ranks; ++s) {
      const auto transfers = ring_step(ranks, s, reduce);
      // Within a step, no rank may write a chunk that its downstream reads in the same step.
      for (const auto& t : transfers) {
        for (const auto& u : transfers) {
          if (u.dst_rank == t.src_rank && u.chunk == t.chunk) {
            throw std::logic_error("ring plan: rank " + std::to_string(t.src_rank) + " chunk " +
                                   std::to_string(t.chunk) + " read and written in one step");
          }
        }
      }
      const auto prev = data;  // every transfer of a step reads the state before the step
      for (const auto& t : transfers) {
        const auto [b, e] = ring_chunk(count, ranks, t.chunk);
        for (std::size_t i = b; i < e; ++i) {
          data[t.dst_rank][i] = reduce ? prev[t.dst_rank][i] + prev[t.src_rank][i] : prev[t.src_rank][i];
        }
      }
    }
  }
}

}  // namespace vbt::fabric
