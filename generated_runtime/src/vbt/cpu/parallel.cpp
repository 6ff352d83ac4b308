// OpenMP-backed parallel_for (see parallel.h), the runtime's one CPU thread pool (Note [One thread pool]).
#include "vbt/cpu/parallel.h"

#include <atomic>
#include <exception>
#include <mutex>

#ifdef _OPENMP
#include <omp.h>
#endif

// Note [One thread pool]
//   OpenBLAS (cblas_?gemm, linalg_kernels.cpp) has a thread pool of its own. Its threads and the OpenMP team of
//   parallel_for both spin-wait after their work, on the same cores: on 2 cores a small miniGPT's training step
//   took 600-700 ms with 2 threads against 224 ms with one (torch: 107-153 ms with 2). So OpenBLAS is kept at one
//   thread, from the runtime's load on, and large GEMMs are split over the OpenMP team
//   instead (batched_gemm in linalg_kernels.cpp), as torch runs its BLAS on its own OpenMP team. Declared here,
//   weak, rather than taken from cblas.h: only OpenBLAS has it, and a BLAS without it leaves the call out.
extern "C" {
__attribute__((weak)) void openblas_set_num_threads(int);
}

namespace vbt {

namespace {
std::atomic<int64_t> g_parallel_regions{0};
// OpenBLAS single-threaded (Note [One thread pool]), at load, before any kernel runs.
[[maybe_unused]] const bool g_blas_single = [] {
  if (openblas_set_num_threads) openblas_set_num_threads(1);
  return true;
}();
}

int64_t parallel_regions() { return g_parallel_regions.load(std::memory_order_relaxed); }

int get_num_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

// Like torch.set_num_threads: the team size of parallel_for, which also runs the large matrix products (Note [One
// thread pool]); OpenBLAS stays at one thread.
void set_num_threads(int n) {
  if (n <= 0) return;
#ifdef _OPENMP
  omp_set_num_threads(n);
#endif
  if (openblas_set_num_threads) openblas_set_num_threads(1);
}

void parallel_for(int64_t begin, int64_t end, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  int64_t n = end - begin;
  if (n <= 0) return;
  int threads = get_num_threads();
#ifdef _OPENMP
  // One chunk per `grain` items, at most one per thread; parallel only when that makes two or more (as
  // at::parallel_for). A range of at most one grain (a tiny tensor, the single 64Ki-element chunk of a small sum)
  // runs on the calling thread and never pays for waking the pool: tens of microseconds when the workers sleep
  // (OMP_WAIT_POLICY=PASSIVE), where a 4-element sum took 75 us at 2 threads when one chunk was split in two.
  const int64_t chunks = threads > 1 ? std::min<int64_t>(threads, (n + std::max<int64_t>(grain, 1) - 1) /
                                                                     std::max<int64_t>(grain, 1)) : 1;
  if (chunks >= 2 && !omp_in_parallel()) {
    g_parallel_regions.fetch_add(1, std::memory_order_relaxed);
    std::exception_ptr error;
    std::mutex mu;
#pragma omp parallel for num_threads(static_cast<int>(chunks)) schedule(static, 1)
    for (int64_t c = 0; c < chunks; ++c) {
      int64_t b = begin + n * c / chunks, e = begin + n * (c + 1) / chunks;
      try {
        fn(b, e);
      } catch (...) {
        std::lock_guard<std::mutex> g(mu);
        if (!error) error = std::current_exception();
      }
    }
    if (error) std::rethrow_exception(error);
    return;
  }
#endif
  (void)threads;
  (void)grain;
  fn(begin, end);
}

}  // namespace vbt
