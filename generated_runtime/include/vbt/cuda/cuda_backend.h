// CudaBackend: MemoryBackend on one CUDA device: cudaMalloc/cudaFree, cudaEvent* on cudaStream_t values
// (StreamId = the cudaStream_t bits), poison by cudaMemsetAsync, is_filled by a small counting kernel
// (fill_kernels.cu). cudaMalloc's out-of-memory becomes nullptr (the allocator then runs its GC); every
// other CUDA failure throws vbt::Error. Only compiled with CUDA enabled.
#pragma once
#include "vbt/cuda/memory_backend.h"

namespace vbt::cuda {

class CudaBackend final : public MemoryBackend {
 public:
  explicit CudaBackend(int device_index);
  const char* name() const override { return "cuda"; }
  std::size_t device_capacity() const override { return capacity_; }
  void* raw_alloc(std::size_t bytes) override;
  void raw_free(void* ptr) override;
  EventId create_event() override;
  void destroy_event(EventId event) override;
  void record_event(EventId event, StreamId stream) override;
  bool query_event(EventId event) override;
  void synchronize_event(EventId event) override;
  void fill(void* ptr, std::size_t bytes, std::uint8_t byte, StreamId stream) override;
  bool is_filled(const void* ptr, std::size_t bytes, std::uint8_t byte) override;

 private:
  int device_;
  std::size_t capacity_ = 0;
};

}  // namespace vbt::cuda
