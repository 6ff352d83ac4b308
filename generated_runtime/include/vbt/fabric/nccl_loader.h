// NcclLibrary: NCCL loaded at run time with dlopen, so nothing links NCCL at build time and a build
// without NCCL is complete. Only the handful of entry points the fabric's checks need are resolved; their
// C signatures and the enum values used (ncclFloat32 = 7, ncclSum = 0) are those of NCCL 2.x's nccl.h.
//
// Where the library comes from, first hit wins:
//   1. $VBT_NCCL_LIBRARY (a path to libnccl.so.2); when set and unloadable, loading fails (no fallback),
//   2. python3's nvidia/nccl/lib/libnccl.so.2 (the pip package nvidia-nccl-cu*), found by asking python3,
//   3. "libnccl.so.2" through the dynamic loader's search path.
// available() false means "NCCL comparison not run", with reason() saying why; never "passed".
#pragma once
#include <cuda_runtime_api.h>

#include <cstddef>
#include <string>
#include <vector>

namespace vbt::fabric {

class NcclLibrary {
 public:
  NcclLibrary();  // tries to load; never throws
  ~NcclLibrary();
  NcclLibrary(const NcclLibrary&) = delete;
  NcclLibrary& operator=(const NcclLibrary&) = delete;

  bool available() const { return handle_ != nullptr; }
  const std::string& reason() const { return reason_; }  // why not available
  const std::string& path() const { return path_; }
  int version() const { return version_; }  // NCCL_VERSION_CODE style, e.g. 22703

  // One communicator per device of `devices` (ncclCommInitAll); throws std::runtime_error on failure.
  void init_comms(const std::vector<int>& devices);
  void destroy_comms();
  // In-place float32 sum over all comms, grouped (ncclGroupStart/End); streams[r] on devices[r].
  void allreduce_sum(const std::vector<float*>& buffers, std::size_t count,
                     const std::vector<cudaStream_t>& streams);

 private:
  void* handle_ = nullptr;
  std::string reason_, path_;
  int version_ = 0;
  std::vector<void*> comms_;
  // Resolved entry points (see nccl_loader.cpp for the signatures).
  void* get_version_ = nullptr;
  void* comm_init_all_ = nullptr;
  void* comm_destroy_ = nullptr;
  void* all_reduce_ = nullptr;
  void* group_start_ = nullptr;
  void* group_end_ = nullptr;
  void* error_string_ = nullptr;
};

}  // namespace vbt::fabric
