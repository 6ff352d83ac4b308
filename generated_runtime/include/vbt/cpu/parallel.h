// CPU parallelism: parallel_for splits [begin, end) into contiguous chunks over an OpenMP
// thread team, but only when the range is at least `grain` long (small work stays serial:
// a thread team costs microseconds). fn(chunk_begin, chunk_end) must be safe to run
// concurrently on disjoint chunks. Exceptions thrown inside fn are rethrown on the caller.
#pragma once
#include <cstdint>
#include <functional>

namespace vbt {

constexpr int64_t kParallelGrain = 32768;  // elements; below this, loops run serially

int get_num_threads();
void set_num_threads(int n);
void parallel_for(int64_t begin, int64_t end, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);
// How many thread teams parallel_for has started in this process (tests check that small work stays serial).
int64_t parallel_regions();

}  // namespace vbt
