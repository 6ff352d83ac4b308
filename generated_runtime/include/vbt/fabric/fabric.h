// Fabric: the single-process multi-GPU layer of vibetensor.
//
// What exists (CUDA builds only; everything here needs the CUDA runtime, nothing needs a GPU to compile):
//   - discover_topology(): devices (cudaGetDeviceProperties) and the peer-access matrix
//     (cudaDeviceCanAccessPeer, cudaDeviceGetP2PAttribute: performance rank, native atomics, array access).
//   - Fabric: enables peer access where the topology allows it (optionally masked by a deny list), copies
//     between devices through peer access (cudaMemcpyPeerAsync) and within a device, and an elementwise
//     float32 add whose kernel runs on the output's device and reads operands on other devices through
//     peer access. Every op updates stats (ops, failures, bytes per (src, dst) pair) and, when enabled,
//     leaves an event snapshot (kind, devices, bytes, elapsed ms from timing events on the op's stream).
//   - Errors are FabricError with a kind: NoDevice, DeviceIndex (out of range), PeerUnsupported (the
//     topology or the deny list forbids the pair, or peer access was not enabled), InvalidArgument
//     (null / host / wrong-device pointers), Cuda (a failing CUDA call, with the call and file:line).
//   - ring_allreduce.h: our own ring all-reduce (float32 sum, in place, one process, N GPUs, reduce-scatter
//     then all-gather over peer reads), and nccl_loader.h: NCCL found at run time with dlopen (never linked)
//     to check and time the ring against ncclAllReduce.
//   - Tests: tests/cpp/fabric/ (plain executables; exit 77 "needs a GPU" where no GPU is present) and
//     tools/fabric_gpu_check.sh, which builds them, runs them with a benchmark and writes a JSON report.
//
// What does NOT exist (yet):
//   - Data-parallel training across GPUs (one process per GPU, NCCL all-reduce of gradients, broadcast of
//     parameters). It needs CUDA kernels for every op the workloads use, which the runtime does not have;
//     the reversal and miniGPT workloads therefore cannot be scaled across GPUs. Nothing here pretends to.
//   - The ring all-reduce as an operator plugin through the C plugin ABI (vbt_plugin.h): not written.
//   - A Python binding of the fabric, dtypes other than float32, multi-process (one process per GPU) use,
//     multi-node, and NVLink multicast (deliberately: NCCL_NVLS_ENABLE=0 and never cuMulticastCreate).
//
// Units: sizes in bytes where named `bytes`, in elements where named `count` / `n`. Pointers are raw
// device pointers owned by the caller; the Fabric never allocates user data. Device indices are CUDA
// runtime ordinals. Thread safety: one Fabric per thread (stats and snapshots are mutex-protected, the
// rest is not).
#pragma once
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace vbt::fabric {

enum class FabricErrorKind { NoDevice, DeviceIndex, PeerUnsupported, InvalidArgument, Cuda };
const char* to_string(FabricErrorKind kind);

class FabricError : public std::runtime_error {
 public:
  FabricError(FabricErrorKind kind, const std::string& message)
      : std::runtime_error(std::string(to_string(kind)) + ": " + message), kind_(kind) {}
  FabricErrorKind kind() const { return kind_; }

 private:
  FabricErrorKind kind_;
};

// Throws FabricError(Cuda) naming the call and file:line when `expr` is not cudaSuccess.
void check_cuda(cudaError_t status, const char* expr, const char* file, int line);
#define VBT_FABRIC_CUDA(expr) ::vbt::fabric::check_cuda((expr), #expr, __FILE__, __LINE__)

struct DeviceInfo {
  int index = -1;
  std::string name;
  int cc_major = 0, cc_minor = 0;
  std::size_t total_memory_bytes = 0;
  int multiprocessor_count = 0;
  std::string pci_bus_id;
  bool unified_addressing = false;
};

// links[a][b] describes device a accessing memory of device b (a != b). The diagonal is "self":
// can_access true, performance_rank 0.
struct PeerLink {
  bool can_access = false;
  int performance_rank = -1;  // cudaDevP2PAttrPerformanceRank (lower is better), -1 when no access
  bool native_atomics = false;
  bool cuda_array_access = false;
};

struct Topology {
  std::vector<DeviceInfo> devices;
  std::vector<std::vector<PeerLink>> links;
  int device_count() const { return static_cast<int>(devices.size()); }
  std::string to_json() const;
  std::string to_string() const;  // a human-readable matrix
};

// Zero devices (or no driver) give an empty topology, not an error.
Topology discover_topology();
// cudaGetDeviceCount, with "no device / no driver" mapped to 0.
int visible_device_count();

struct PairStats {
  std::uint64_t ops = 0;
  std::uint64_t bytes = 0;
};

struct FabricStats {
  std::uint64_t copies = 0;
  std::uint64_t adds = 0;
  std::uint64_t failures = 0;  // ops that raised a FabricError
  std::uint64_t bytes_copied = 0;
  std::map<std::pair<int, int>, PairStats> per_pair;  // (src device, dst device) -> copies/adds traffic
};

struct OpSnapshot {
  std::uint64_t id = 0;
  std::string kind;  // "copy" or "add"
  int src_device = -1, dst_device = -1, exec_device = -1;
  std::size_t bytes = 0;
  bool completed = false;
  float elapsed_ms = -1.0f;  // valid once completed
};

struct FabricOptions {
  bool record_events = true;                  // timing events per op (for snapshots)
  std::size_t max_snapshots = 4096;           // oldest resolved snapshots are dropped beyond this
  std::vector<std::pair<int, int>> deny_peer;  // (accessor, owner) pairs treated as unsupported
};

class Fabric {
 public:
  explicit Fabric(FabricOptions options = {});
  ~Fabric();
  Fabric(const Fabric&) = delete;
  Fabric& operator=(const Fabric&) = delete;

  const Topology& topology() const { return topology_; }
  int device_count() const { return topology_.device_count(); }

  // Whether `accessor` may read/write memory of `owner` (topology and deny list). Self is always true.
  bool can_access_peer(int accessor, int owner) const;
  bool peer_enabled(int accessor, int owner) const;
  // Throws PeerUnsupported when can_access_peer is false; a no-op when already enabled or accessor == owner.
  void enable_peer_access(int accessor, int owner);
  // Enables every supported ordered pair; returns how many pairs are enabled afterwards.
  int enable_all_peer_access();

  // The fabric's own non-blocking stream on `device` (created on first use).
  cudaStream_t stream(int device);
  void synchronize();

  // Copies `bytes` from src (on src_device) to dst (on dst_device). Across devices, needs peer access
  // dst_device -> src_device enabled. Enqueued on `stream` (a stream of dst_device), or the fabric's.
  // Ordering is the caller's: the fabric's streams are non-blocking, so work the caller issued elsewhere
  // (e.g. cudaMemset / pageable cudaMemcpy on the legacy default stream) must be complete or waited on
  // through events before the call. bytes == 0 is a valid no-op (pointers are then not checked, as with
  // cudaMemcpy); devices and peer access are still validated and the op is still counted.
  void copy(void* dst, int dst_device, const void* src, int src_device, std::size_t bytes,
            cudaStream_t stream = nullptr);
  // out[i] = a[i] + b[i], i < n, float32. Runs on out's device; a and b may live on any device that
  // out's device has peer access enabled to. Devices are taken from the pointers (cudaPointerGetAttributes).
  // n == 0 is a valid no-op: pointers CUDA does not attribute to a device (null, one past the end of an
  // allocation) are accepted and no peer access is required.
  void add(float* out, const float* a, const float* b, std::size_t n, cudaStream_t stream = nullptr);

  FabricStats stats() const;
  void reset_stats();
  // Resolves timing of completed ops (never blocks) and returns all retained snapshots, oldest first.
  std::vector<OpSnapshot> snapshots();

  // Validation shared with the collectives: throws DeviceIndex when out of range.
  void check_device(int device) const;
  // The device holding `ptr` (device memory only); throws InvalidArgument otherwise.
  static int device_of(const void* ptr);

 private:
  struct PendingOp {
    OpSnapshot snap;
    cudaEvent_t start = nullptr, end = nullptr;
  };
  void record_failure();
  std::uint64_t begin_op(PendingOp& op, cudaStream_t s);
  void end_op(PendingOp& op, cudaStream_t s);
  void resolve_locked();

  FabricOptions options_;
  Topology topology_;
  std::vector<std::vector<bool>> enabled_;
  std::vector<cudaStream_t> streams_;
  mutable std::mutex mu_;
  FabricStats stats_;
  std::vector<PendingOp> ops_;
  std::uint64_t next_id_ = 1;
};

}  // namespace vbt::fabric
