// CUDA op kernels: fills the CUDA column of the op table at runtime (Dispatcher::set_kernel) and
// registers the caching allocator as the memory source of "cuda:N" storages (vbt::set_device_allocator).
// Ops with a CUDA kernel: see register_cuda_ops() in src/vbt/cuda/ops/cuda_ops.cpp. Only compiled with
// CUDA enabled. Registration needs no GPU; running a kernel without one raises RuntimeError.
#pragma once
#include <string>
#include <vector>

#include "vbt/core/tensor_impl.h"

namespace vbt::cuda {

void register_cuda_ops();  // idempotent
// A copy of t on `device` (cpu or cuda[:N]), contiguous, same dtype; t itself when already there.
// non_blocking (Note [Non-blocking copies] in cuda_ops.cpp): host <-> device copies whose host side is pinned
// are asynchronous on the current stream; a CUDA -> CPU result is then pinned memory (as in torch), valid
// once the stream has been synchronized.
Tensor to_device(const Tensor& t, Device device, bool non_blocking = false);
// The calling thread's non-blocking flag for copy_ (k_copy_ has no such argument); returns the previous value.
bool set_non_blocking_copies(bool on);
class NonBlockingCopies {  // sets the flag for a scope
 public:
  explicit NonBlockingCopies(bool on) : previous_(set_non_blocking_copies(on)) {}
  ~NonBlockingCopies() { set_non_blocking_copies(previous_); }
  NonBlockingCopies(const NonBlockingCopies&) = delete;
  NonBlockingCopies& operator=(const NonBlockingCopies&) = delete;

 private:
  bool previous_;
};

// Pinned (page-locked) host memory from the caching pinned allocator (include/vbt/cuda/pinned_allocator.h).
Tensor empty_pinned(const Shape& sizes, ScalarType dtype);  // a contiguous CPU tensor in pinned memory
Tensor pin_memory(const Tensor& t);  // t itself when already pinned, else a pinned contiguous copy
bool is_pinned(const Tensor& t);      // a CPU tensor whose memory is page-locked (ours or cudaHostRegister'ed)

// Float matrix products (mm, bmm, matmul, addmm, baddbmm, linear, dot) run on cuBLAS when it can be loaded at
// run time, else on the built-in tiled kernel (Note [cuBLAS at run time] in src/vbt/cuda/ops/cublas_gemm.cpp).
std::string matmul_backend();  // "cublas" or "kernel": where the next float matmul goes (tries to load cuBLAS)
bool cublas_enabled();         // default: on, unless the environment has VBT_CUBLAS=0
void set_cublas_enabled(bool on);  // off: always the built-in kernel
// Candidate library files to try before the loader's search path (Python passes the pip wheels' files).
void set_cublas_search_paths(const std::vector<std::string>& paths);
std::string cublas_library();     // the loaded library's path, "" when none is loaded
std::string cublas_load_error();  // why none is loaded ("" when one is)
std::string cublas_version();     // "major.minor.patch" of the loaded library, "" when none

}  // namespace vbt::cuda
