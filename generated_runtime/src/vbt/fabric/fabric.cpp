// Fabric (see include/vbt/fabric/fabric.h): topology discovery, peer access, cross-device copy and add,
// stats and event snapshots. Every public op validates first (device range, pointer residency, peer
// access), counts a failure and rethrows when anything raises.
#include "vbt/fabric/fabric.h"

#include <algorithm>
#include <sstream>

#include "device_scope.h"
#include "kernels.h"

namespace vbt::fabric {

const char* to_string(FabricErrorKind kind) {
  switch (kind) {
    case FabricErrorKind::NoDevice: return "NoDevice";
    case FabricErrorKind::DeviceIndex: return "DeviceIndex";
    case FabricErrorKind::PeerUnsupported: return "PeerUnsupported";
    case FabricErrorKind::InvalidArgument: return "InvalidArgument";
    case FabricErrorKind::Cuda: return "Cuda";
  }
  return "Unknown";
}

void check_cuda(cudaError_t status, const char* expr, const char* file, int line) {
  if (status == cudaSuccess) return;
  (void)cudaGetLastError();  // clear the non-sticky error state
  std::ostringstream os;
  os << cudaGetErrorName(status) << " (" << cudaGetErrorString(status) << ") in " << expr << " at " << file
     << ":" << line;
  throw FabricError(FabricErrorKind::Cuda, os.str());
}

namespace {

using detail::DeviceScope;

std::string json_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

// For zero-size ops only: the device of `ptr` when CUDA attributes it to device memory, else `fallback`.
// A zero-size op reads and writes nothing, so its pointers may legitimately be null, host pointers, or one
// past the end of an allocation (e.g. `base + offset` of an empty range at the end of a buffer), which
// cudaPointerGetAttributes reports as unregistered memory.
int device_of_or(const void* ptr, int fallback) {
  if (ptr == nullptr) return fallback;
  cudaPointerAttributes attr{};
  if (cudaPointerGetAttributes(&attr, ptr) != cudaSuccess) {
    (void)cudaGetLastError();
    return fallback;
  }
  return attr.type == cudaMemoryTypeDevice ? attr.device : fallback;
}

}  // namespace

int visible_device_count() {
  int n = 0;
  const cudaError_t st = cudaGetDeviceCount(&n);
  if (st != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;  // no device, no driver, or a driver too old: nothing usable
  }
  return n;
}

Topology discover_topology() {
  Topology t;
  const int n = visible_device_count();
  for (int d = 0; d < n; ++d) {
    cudaDeviceProp p{};
    VBT_FABRIC_CUDA(cudaGetDeviceProperties(&p, d));
    DeviceInfo info;
    info.index = d;
    info.name = p.name;
    info.cc_major = p.major;
    info.cc_minor = p.minor;
    info.total_memory_bytes = p.totalGlobalMem;
    info.multiprocessor_count = p.multiProcessorCount;
    info.unified_addressing = p.unifiedAddressing != 0;
    char bus[32] = {0};
    if (cudaDeviceGetPCIBusId(bus, sizeof(bus), d) == cudaSuccess) {
      info.pci_bus_id = bus;
    } else {
      (void)cudaGetLastError();
    }
    t.devices.push_back(info);
  }
  t.links.assign(static_cast<std::size_t>(n), std::vector<PeerLink>(static_cast<std::size_t>(n)));
  for (int a = 0; a < n; ++a) {
    for (int b = 0; b < n; ++b) {
      PeerLink& l = t.links[a][b];
      if (a == b) {
        l.can_access = true;
        l.performance_rank = 0;
        l.native_atomics = true;
        l.cuda_array_access = true;
        continue;
      }
      int can = 0;
      VBT_FABRIC_CUDA(cudaDeviceCanAccessPeer(&can, a, b));
      l.can_access = can != 0;
      if (!l.can_access) continue;
      int v = 0;
      VBT_FABRIC_CUDA(cudaDeviceGetP2PAttribute(&v, cudaDevP2PAttrPerformanceRank, a, b));
      l.performance_rank = v;
      VBT_FABRIC_CUDA(cudaDeviceGetP2PAttribute(&v, cudaDevP2PAttrNativeAtomicSupported, a, b));
      l.native_atomics = v != 0;
      VBT_FABRIC_CUDA(cudaDeviceGetP2PAttribute(&v, cudaDevP2PAttrCudaArrayAccessSupported, a, b));
      l.cuda_array_access = v != 0;
    }
  }
  return t;
}

std::string Topology::to_json() const {
  std::ostringstream os;
  os << "{\"device_count\": " << devices.size() << ", \"devices\": [";
  for (std::size_t i = 0; i < devices.size(); ++i) {
    const DeviceInfo& d = devices[i];
    os << (i ? ", " : "") << "{\"index\": " << d.index << ", \"name\": \"" << json_escape(d.name)
       << "\", \"compute_capability\": \"" << d.cc_major << "." << d.cc_minor
       << "\", \"total_memory_bytes\": " << d.total_memory_bytes
       << ", \"multiprocessor_count\": " << d.multiprocessor_count << ", \"pci_bus_id\": \""
       << json_escape(d.pci_bus_id) << "\", \"unified_addressing\": " << (d.unified_addressing ? "true" : "false")
       << "}";
  }
  os << "], \"links\": [";
  bool first = true;
  for (std::size_t a = 0; a < links.size(); ++a) {
    for (std::size_t b = 0; b < links[a].size(); ++b) {
      if (a == b) continue;
      const PeerLink& l = links[a][b];
      os << (first ? "" : ", ") << "{\"accessor\": " << a << ", \"owner\": " << b
         << ", \"can_access\": " << (l.can_access ? "true" : "false")
         << ", \"performance_rank\": " << l.performance_rank
         << ", \"native_atomics\": " << (l.native_atomics ? "true" : "false")
         << ", \"cuda_array_access\": " << (l.cuda_array_access ? "true" : "false") << "}";
      first = false;
    }
  }
  os << "]}";
  return os.str();
}

std::string Topology::to_string() const {
  std::ostringstream os;
  os << devices.size() << " CUDA device(s)\n";
  for (const DeviceInfo& d : devices) {
    os << "  [" << d.index << "] " << d.name << " sm_" << d.cc_major << d.cc_minor << ", "
       << (d.total_memory_bytes >> 20) << " MiB, " << d.multiprocessor_count << " SMs, pci " << d.pci_bus_id
       << "\n";
  }
  if (!devices.empty()) {
    os << "peer access (row reads column; P<rank> = supported with performance rank, - = none):\n     ";
    for (std::size_t b = 0; b < devices.size(); ++b) os << "  d" << b << " ";
    os << "\n";
    for (std::size_t a = 0; a < links.size(); ++a) {
      os << "  d" << a << " ";
      for (std::size_t b = 0; b < links[a].size(); ++b) {
        if (a == b) {
          os << "   X ";
        } else if (links[a][b].can_access) {
          os << "  P" << links[a][b].performance_rank << " ";
        } else {
          os << "   - ";
        }
      }
      os << "\n";
    }
  }
  return os.str();
}

// ---- Fabric -------------------------------------------------------------------------------------

Fabric::Fabric(FabricOptions options) : options_(std::move(options)), topology_(discover_topology()) {
  const int n = device_count();
  if (n == 0) throw FabricError(FabricErrorKind::NoDevice, "no CUDA device is visible to this process");
  for (const auto& [a, o] : options_.deny_peer) {
    if (a < 0 || a >= n || o < 0 || o >= n) {
      throw FabricError(FabricErrorKind::DeviceIndex, "deny_peer names (" + std::to_string(a) + ", " +
                                                          std::to_string(o) + ") but there are " +
                                                          std::to_string(n) + " devices");
    }
  }
  enabled_.assign(static_cast<std::size_t>(n), std::vector<bool>(static_cast<std::size_t>(n), false));
  for (int d = 0; d < n; ++d) enabled_[d][d] = true;
  streams_.assign(static_cast<std::size_t>(n), nullptr);
}

Fabric::~Fabric() {
  for (int d = 0; d < static_cast<int>(streams_.size()); ++d) {
    if (streams_[d] == nullptr) continue;
    (void)cudaSetDevice(d);
    (void)cudaStreamSynchronize(streams_[d]);
    (void)cudaStreamDestroy(streams_[d]);
  }
  for (PendingOp& op : ops_) {
    if (op.start) (void)cudaEventDestroy(op.start);
    if (op.end) (void)cudaEventDestroy(op.end);
  }
  (void)cudaGetLastError();
}

void Fabric::check_device(int device) const {
  if (device < 0 || device >= device_count()) {
    throw FabricError(FabricErrorKind::DeviceIndex, "device index " + std::to_string(device) +
                                                        " is out of range (" + std::to_string(device_count()) +
                                                        " visible device(s))");
  }
}

int Fabric::device_of(const void* ptr) {
  if (ptr == nullptr) throw FabricError(FabricErrorKind::InvalidArgument, "null pointer");
  cudaPointerAttributes attr{};
  const cudaError_t st = cudaPointerGetAttributes(&attr, ptr);
  if (st != cudaSuccess) {
    (void)cudaGetLastError();
    throw FabricError(FabricErrorKind::InvalidArgument, "pointer is not known to CUDA");
  }
  if (attr.type != cudaMemoryTypeDevice) {
    throw FabricError(FabricErrorKind::InvalidArgument,
                      "pointer is not device memory (host, managed or unregistered memory)");
  }
  return attr.device;
}

bool Fabric::can_access_peer(int accessor, int owner) const {
  check_device(accessor);
  check_device(owner);
  if (accessor == owner) return true;
  for (const auto& [a, o] : options_.deny_peer) {
    if (a == accessor && o == owner) return false;
  }
  return topology_.links[accessor][owner].can_access;
}

bool Fabric::peer_enabled(int accessor, int owner) const {
  check_device(accessor);
  check_device(owner);
  return enabled_[accessor][owner];
}

void Fabric::enable_peer_access(int accessor, int owner) {
  if (accessor == owner) {
    check_device(accessor);
    return;
  }
  if (!can_access_peer(accessor, owner)) {
    const bool denied = topology_.links[accessor][owner].can_access;
    throw FabricError(FabricErrorKind::PeerUnsupported,
                      "device " + std::to_string(accessor) + " cannot access device " + std::to_string(owner) +
                          (denied ? " (denied by FabricOptions::deny_peer)"
                                  : " (cudaDeviceCanAccessPeer = 0: no P2P path between them)"));
  }
  if (enabled_[accessor][owner]) return;
  DeviceScope scope(accessor);
  const cudaError_t st = cudaDeviceEnablePeerAccess(owner, 0);
  if (st == cudaErrorPeerAccessAlreadyEnabled) {
    (void)cudaGetLastError();  // enabled earlier in this process (e.g. by another Fabric or NCCL)
  } else {
    VBT_FABRIC_CUDA(st);
  }
  enabled_[accessor][owner] = true;
}

int Fabric::enable_all_peer_access() {
  int count = 0;
  for (int a = 0; a < device_count(); ++a) {
    for (int o = 0; o < device_count(); ++o) {
      if (a == o || !can_access_peer(a, o)) continue;
      enable_peer_access(a, o);
      ++count;
    }
  }
  return count;
}

cudaStream_t Fabric::stream(int device) {
  check_device(device);
  if (streams_[device] == nullptr) {
    DeviceScope scope(device);
    VBT_FABRIC_CUDA(cudaStreamCreateWithFlags(&streams_[device], cudaStreamNonBlocking));
  }
  return streams_[device];
}

void Fabric::synchronize() {
  for (int d = 0; d < device_count(); ++d) {
    if (streams_[d] == nullptr) continue;
    DeviceScope scope(d);
    VBT_FABRIC_CUDA(cudaStreamSynchronize(streams_[d]));
  }
}

void Fabric::record_failure() {
  std::lock_guard<std::mutex> lock(mu_);
  ++stats_.failures;
}

std::uint64_t Fabric::begin_op(PendingOp& op, cudaStream_t s) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    op.snap.id = next_id_++;
  }
  if (options_.record_events) {
    VBT_FABRIC_CUDA(cudaEventCreate(&op.start));
    VBT_FABRIC_CUDA(cudaEventCreate(&op.end));
    VBT_FABRIC_CUDA(cudaEventRecord(op.start, s));
  }
  return op.snap.id;
}

void Fabric::end_op(PendingOp& op, cudaStream_t s) {
  if (options_.record_events) VBT_FABRIC_CUDA(cudaEventRecord(op.end, s));
  std::lock_guard<std::mutex> lock(mu_);
  if (op.snap.kind == "copy") {
    ++stats_.copies;
    stats_.bytes_copied += op.snap.bytes;
  } else {
    ++stats_.adds;
  }
  if (options_.record_events) {
    ops_.push_back(op);
    op.start = op.end = nullptr;  // owned by ops_ now
    resolve_locked();
  }
}

void Fabric::copy(void* dst, int dst_device, const void* src, int src_device, std::size_t bytes,
                  cudaStream_t s) {
  PendingOp op;
  try {
    check_device(dst_device);
    check_device(src_device);
    // A zero-byte copy touches no memory: like cudaMemcpy(dst, src, 0) it is a valid no-op whatever the
    // pointers are (null, or one past the end of an allocation, which CUDA attributes to no device), so
    // pointer residency is only checked when there are bytes to move. Device indices and peer access are
    // still validated, and the op is still counted and snapshotted.
    if (bytes > 0 && device_of(dst) != dst_device) {
      throw FabricError(FabricErrorKind::InvalidArgument,
                        "dst is not memory of device " + std::to_string(dst_device));
    }
    if (bytes > 0 && device_of(src) != src_device) {
      throw FabricError(FabricErrorKind::InvalidArgument,
                        "src is not memory of device " + std::to_string(src_device));
    }
    if (src_device != dst_device && !peer_enabled(dst_device, src_device)) {
      if (!can_access_peer(dst_device, src_device)) enable_peer_access(dst_device, src_device);  // throws
      throw FabricError(FabricErrorKind::PeerUnsupported,
                        "peer access " + std::to_string(dst_device) + " -> " + std::to_string(src_device) +
                            " is supported but not enabled: call enable_peer_access first");
    }
    if (s == nullptr) s = stream(dst_device);
    DeviceScope scope(dst_device);
    op.snap.kind = "copy";
    op.snap.src_device = src_device;
    op.snap.dst_device = dst_device;
    op.snap.exec_device = dst_device;
    op.snap.bytes = bytes;
    begin_op(op, s);
    if (bytes > 0) {
      if (src_device == dst_device) {
        VBT_FABRIC_CUDA(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, s));
      } else {
        VBT_FABRIC_CUDA(cudaMemcpyPeerAsync(dst, dst_device, src, src_device, bytes, s));
      }
    }
    end_op(op, s);
    std::lock_guard<std::mutex> lock(mu_);
    PairStats& p = stats_.per_pair[{src_device, dst_device}];
    ++p.ops;
    p.bytes += bytes;
  } catch (const FabricError&) {
    if (op.start) (void)cudaEventDestroy(op.start);
    if (op.end) (void)cudaEventDestroy(op.end);
    record_failure();
    throw;
  }
}

void Fabric::add(float* out, const float* a, const float* b, std::size_t n, cudaStream_t s) {
  PendingOp op;
  try {
    int exec = 0, da = 0, db = 0;
    if (n > 0) {
      exec = device_of(out);
      da = device_of(a);
      db = device_of(b);
    } else {
      // n == 0 reads and writes nothing (no kernel is launched), so pointers CUDA cannot attribute to a
      // device (null, one past the end of an allocation) are accepted: the op runs on out's device when
      // that is known, else on the current device, and unattributable operands count as local.
      int current = 0;
      VBT_FABRIC_CUDA(cudaGetDevice(&current));
      exec = device_of_or(out, current);
      da = device_of_or(a, exec);
      db = device_of_or(b, exec);
    }
    check_device(exec);
    for (int d : {da, db}) {
      check_device(d);
      if (n > 0 && d != exec && !peer_enabled(exec, d)) {
        if (!can_access_peer(exec, d)) enable_peer_access(exec, d);  // throws PeerUnsupported with the reason
        throw FabricError(FabricErrorKind::PeerUnsupported,
                          "add on device " + std::to_string(exec) + " reads device " + std::to_string(d) +
                              " but peer access is not enabled: call enable_peer_access first");
      }
    }
    if (s == nullptr) s = stream(exec);
    DeviceScope scope(exec);
    op.snap.kind = "add";
    op.snap.src_device = da != exec ? da : db;
    op.snap.dst_device = exec;
    op.snap.exec_device = exec;
    op.snap.bytes = n * sizeof(float) * 3;
    begin_op(op, s);
    VBT_FABRIC_CUDA(detail::launch_add(out, a, b, n, s));
    end_op(op, s);
    std::lock_guard<std::mutex> lock(mu_);
    for (int d : {da, db}) {
      PairStats& p = stats_.per_pair[{d, exec}];
      ++p.ops;
      p.bytes += n * sizeof(float);
    }
  } catch (const FabricError&) {
    if (op.start) (void)cudaEventDestroy(op.start);
    if (op.end) (void)cudaEventDestroy(op.end);
    record_failure();
    throw;
  }
}

FabricStats Fabric::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void Fabric::reset_stats() {
  std::lock_guard<std::mutex> lock(mu_);
  stats_ = FabricStats{};
}

void Fabric::resolve_locked() {
  for (PendingOp& op : ops_) {
    if (op.snap.completed || op.end == nullptr) continue;
    const cudaError_t st = cudaEventQuery(op.end);
    if (st == cudaErrorNotReady) {
      (void)cudaGetLastError();
      continue;
    }
    if (st == cudaSuccess) {
      float ms = -1.0f;
      if (cudaEventElapsedTime(&ms, op.start, op.end) == cudaSuccess) op.snap.elapsed_ms = ms;
    }
    (void)cudaGetLastError();
    op.snap.completed = true;
    (void)cudaEventDestroy(op.start);
    (void)cudaEventDestroy(op.end);
    op.start = op.end = nullptr;
  }
  // Keep at most max_snapshots: drop the oldest completed ones.
  std::size_t excess = ops_.size() > options_.max_snapshots ? ops_.size() - options_.max_snapshots : 0;
  if (excess > 0) {
    std::vector<PendingOp> kept;
    kept.reserve(ops_.size());
    for (PendingOp& op : ops_) {
      if (excess > 0 && op.snap.completed) {
        --excess;
        continue;
      }
      kept.push_back(op);
    }
    ops_.swap(kept);
  }
}

std::vector<OpSnapshot> Fabric::snapshots() {
  std::lock_guard<std::mutex> lock(mu_);
  resolve_locked();
  std::vector<OpSnapshot> out;
  out.reserve(ops_.size());
  for (const PendingOp& op : ops_) out.push_back(op.snap);
  return out;
}

}  // namespace vbt::fabric
