// PinnedHostAllocator: a caching allocator of page-locked ("pinned") host memory, the source of
// Tensor.pin_memory() and of the outputs of non-blocking device-to-host copies. No CUDA headers: the
// policy runs on any MemoryBackend (CI tests it on HostBackend; with CUDA the backend is cudaHostAlloc).
//
// Note [Pinned host memory]
// * Sizes. A request of n bytes takes a block of the next power of two >= max(n, 512) bytes; one
//   raw_alloc per block (no splitting). Freed blocks are cached by size and handed out again to a
//   request of the same size class.
// * Asynchronous copies. A copy between a device and pinned memory returns before it has run. The copy
//   code calls record_use(ptr, stream) right after enqueueing it: an event is recorded on that stream and
//   attached to the block holding ptr (any address inside a live block). A freed block with such events
//   is "pending": it is not reused (nor released by empty_cache) until every one of its events has
//   completed, so a new pinned tensor never gets memory an earlier copy still reads or writes. Pending
//   blocks are re-examined (query_event, no waiting) on every allocate, free and empty_cache.
// * Out of memory. When raw_alloc returns nullptr the cached free blocks are released and the request
//   is retried once; then OutOfMemoryError (a RuntimeError for Python).
// Thread safety: every public method takes one mutex.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <vector>

#include "vbt/cuda/caching_allocator.h"
#include "vbt/cuda/memory_backend.h"

namespace vbt::cuda {

struct PinnedStats {
  std::int64_t allocated_bytes = 0;  // blocks held by tensors (block sizes)
  std::int64_t cached_bytes = 0;     // blocks freed and cached (free + pending)
  std::int64_t pending_blocks = 0;   // freed blocks whose recorded copies have not completed yet
  std::int64_t num_allocs = 0;       // allocate() calls that returned memory
  std::int64_t num_raw_allocs = 0;   // backend raw_alloc calls that succeeded (num_allocs - reuses)
  std::int64_t num_raw_frees = 0;
  std::int64_t num_recorded_uses = 0;  // record_use events
};

class PinnedHostAllocator {
 public:
  explicit PinnedHostAllocator(MemoryBackend& backend);
  ~PinnedHostAllocator();  // waits for pending events, returns every cached block to the backend
  PinnedHostAllocator(const PinnedHostAllocator&) = delete;
  PinnedHostAllocator& operator=(const PinnedHostAllocator&) = delete;

  void* allocate(std::size_t bytes);  // nullptr for 0 bytes; throws OutOfMemoryError
  void free(void* ptr);               // ptr: a pointer allocate() returned (nullptr is a no-op)
  // Records an event on `stream` after work that uses the block holding `ptr`; false (nothing recorded)
  // when ptr is not inside a live block of this allocator.
  bool record_use(const void* ptr, StreamId stream);
  bool contains(const void* ptr) const;           // inside a live (allocated) block
  std::size_t block_size(const void* ptr) const;  // that block's bytes; 0 when not inside one
  void empty_cache();                              // releases free cached blocks (pending ones stay)
  PinnedStats stats() const;
  static std::size_t round_size(std::size_t bytes);

 private:
  struct Block {
    std::uintptr_t addr = 0;
    std::size_t size = 0;
    bool allocated = false;
    std::vector<EventId> events;  // uses recorded while allocated; checked once freed
  };
  Block* find_block(const void* ptr) const;  // the block whose range holds ptr (any state)
  void process_events();                      // pending blocks whose events completed become free
  void release_free_blocks();

  MemoryBackend& backend_;
  mutable std::mutex mutex_;
  std::map<std::uintptr_t, Block*> blocks_;               // every block by base address
  std::multimap<std::size_t, Block*> free_;               // reusable blocks by size
  std::vector<Block*> pending_;                           // freed, waiting for their events
  PinnedStats stats_;
};

#ifdef VBT_WITH_CUDA
// The process-wide pinned allocator (cudaHostAlloc with cudaHostAllocPortable, events on the stream's
// device); never destroyed, so storages freed at exit still find it.
PinnedHostAllocator& pinned_host_allocator();
#endif

}  // namespace vbt::cuda
