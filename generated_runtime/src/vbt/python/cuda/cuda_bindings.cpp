// Python binding of the CUDA subsystem, called from module.cpp as vbt_bind_cuda(m) under VBT_HAS_CUDA.
// Policy: private names only (leading '_'); the public API is vibetensor/torch/cuda (torch.cuda's names).
// Always bound (with or without CUDA): _cuda_is_built, _cuda_device_count, the OutOfMemoryError type and
// _HostCachingAllocator, the caching allocator on the host backend (the testing hook that lets CI exercise
// the Python-level allocator API without a GPU). With CUDA (VBT_WITH_CUDA): per-device allocator stats,
// snapshot, empty_cache and memory fraction, device/synchronize, _CudaStream, _CudaEvent, _CudaGraph and
// _CudaGraphPool (a graph pool handle, Note [Shared graph pools] in caching_allocator.h).
// Units: bytes; stream ids are the opaque StreamId integers the allocator keys blocks by.
#include <nanobind/nanobind.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <cstdint>
#include <memory>

#include "vbt/cuda/caching_allocator.h"
#include "vbt/cuda/host_backend.h"
#ifdef VBT_WITH_CUDA
#include <cuda_runtime_api.h>

#include <atomic>

#include "vbt/cuda/cuda_error.h"
#include "vbt/cuda/device_allocator.h"
#include "vbt/cuda/device_guard.h"
#include "vbt/cuda/event.h"
#include "vbt/cuda/pinned_allocator.h"
#include "vbt/cuda/stream.h"
#endif
#ifdef VBT_WITH_CUDA_AUTOGRAD
#include "vbt/cuda/autograd_streams.h"
#endif
#ifdef VBT_WITH_CUDA_OPS
#include <nanobind/stl/vector.h>

#include "vbt/cuda/ops.h"
#endif

namespace nb = nanobind;
using namespace vbt::cuda;

namespace {

// The testing hook: a HostBackend and a CachingAllocator on it, addresses as Python ints.
struct HostCachingAllocator {
  explicit HostCachingAllocator(std::size_t capacity)
      : backend(std::make_unique<HostBackend>(capacity)), alloc(std::make_unique<CachingAllocator>(*backend)) {}
  std::unique_ptr<HostBackend> backend;
  std::unique_ptr<CachingAllocator> alloc;
};

nb::dict pool_stats_dict(const GraphPoolStats& s) {
  nb::dict d;
  d["id"] = s.id;
  d["exists"] = s.exists;
  d["released"] = s.released;
  d["graphs"] = s.graphs;
  d["handles"] = s.handles;
  d["capturing"] = s.capturing >= 0 ? nb::object(nb::int_(s.capturing)) : nb::none();
  d["segments"] = s.segments;
  d["reserved_bytes"] = s.reserved_bytes;
  d["allocated_bytes"] = s.allocated_bytes;
  return d;
}

#ifdef VBT_WITH_CUDA
CachingAllocator& device_cache(int device) {
  if (device < 0) device = current_device();
  return cuda_caching_allocator(device).cache();
}

// A captured CUDA graph with its allocator pool. Note [Graph capture]: capture_begin starts stream capture
// (thread-local mode) on `stream` and routes that stream's allocations to the graph's private pool (new
// segments are cudaMalloc'ed in relaxed capture mode, CudaBackend::raw_alloc); capture_end ends both and
// instantiates the graph; replay launches it on the device's current stream (as torch does, so it is ordered
// with the eager work that refills the static inputs); reset (or destruction) frees the executable graph and
// releases the pool (segments with live blocks stay until freed).
// capture_abort ends a capture that failed (an op raised inside `with vt.cuda.graph(g)`, e.g. a host sync,
// Note [Host synchronization under graph capture] in cuda_ops.cpp): it ends the stream capture whatever its
// state (a capture invalidated by an illegal call included), drops what was captured, clears the CUDA error
// state and releases the pool, so the process, the allocator and this graph object stay usable. Each
// capture gets a fresh graph id, so a graph can be captured again after reset() or an aborted capture.
// Shared pools (Note [Shared graph pools] in caching_allocator.h): capture_begin(stream, pool) with pool >= 0
// captures into that pool (a _CudaGraphPool's id, or another graph's pool_id) instead of the graph's own pool,
// whose id is the graph's id; either way the graph holds one reference to its pool until reset/destruction.
// Graph ids and pool-handle ids come from one counter, so a graph's own pool never collides with a handle's.
GraphId next_graph_id() {
  static std::atomic<GraphId> counter{1};
  return counter++;
}

// A graph pool handle (vt.cuda.graph_pool_handle(), CUDAGraph.pool()): one retain_pool reference on a device's
// allocator for as long as it lives, so a capture can still start into the pool while no graph holds it.
class CudaGraphPool {
 public:
  CudaGraphPool(int device, PoolId id) : device_(device < 0 ? current_device() : device), id_(id) {
    if (id_ < 0) id_ = next_graph_id();
    device_cache(device_).retain_pool(id_);
  }
  ~CudaGraphPool() {
    try {
      device_cache(device_).release_pool(id_);
    } catch (...) {
    }
  }
  CudaGraphPool(const CudaGraphPool&) = delete;
  CudaGraphPool& operator=(const CudaGraphPool&) = delete;
  PoolId id() const { return id_; }
  int device() const { return device_; }

 private:
  int device_;
  PoolId id_;
};

class CudaGraph {
 public:
  CudaGraph() : id_(next_graph_id()) {}
  ~CudaGraph() {
    try {
      if (capturing_) capture_abort();
      reset();
    } catch (...) {
    }
  }
  void capture_begin(const Stream& stream, PoolId pool) {
    VBT_CHECK(!capturing_ && exec_ == nullptr, "CUDAGraph.capture_begin: this graph was already captured "
              "(call reset() first)");
    VBT_CHECK(stream.handle() != nullptr, "CUDAGraph.capture_begin: cannot capture on the default stream; use a "
              "vt.cuda.Stream() (torch.cuda.graph does this for you)");
    device_ = stream.device_index();
    stream_ = stream;
    DeviceGuard guard(device_);
    PoolId target = pool >= 0 ? pool : id_;
    device_cache(device_).begin_capture(id_, stream.id(), target);
    pool_ = target;
    pool_used_ = true;
    cudaError_t status = cudaStreamBeginCapture(stream.handle(), cudaStreamCaptureModeThreadLocal);
    if (status != cudaSuccess) {
      device_cache(device_).end_capture(id_);
      release_pool();
    }
    VBT_CUDA_CHECK(status);
    capturing_ = true;
  }
  void capture_end() {
    VBT_CHECK(capturing_, "CUDAGraph.capture_end: capture_begin was not called");
    DeviceGuard guard(device_);
    cudaGraph_t graph = nullptr;
    cudaError_t status = cudaStreamEndCapture(stream_.handle(), &graph);
    capturing_ = false;
    device_cache(device_).end_capture(id_);
    if (status != cudaSuccess) {
      if (graph != nullptr) (void)cudaGraphDestroy(graph);
      (void)cudaGetLastError();
      release_pool();
      vbt::throw_error(vbt::ErrorKind::Runtime, "CUDAGraph.capture_end: the capture failed: ",
                       cudaGetErrorString(status), " (an operation inside the captured region is not allowed "
                       "during capture, e.g. a host synchronization or a blocking copy); the graph was discarded");
    }
    graph_ = graph;
    status = cudaGraphInstantiate(&exec_, graph_, 0);
    if (status != cudaSuccess) {
      exec_ = nullptr;
      (void)cudaGetLastError();
      reset();
      vbt::throw_error(vbt::ErrorKind::Runtime, "CUDAGraph.capture_end: cudaGraphInstantiate failed: ",
                       cudaGetErrorString(status));
    }
  }
  void capture_abort() {
    if (!capturing_) return;
    DeviceGuard guard(device_);
    cudaGraph_t graph = nullptr;
    (void)cudaStreamEndCapture(stream_.handle(), &graph);
    if (graph != nullptr) (void)cudaGraphDestroy(graph);
    (void)cudaGetLastError();
    capturing_ = false;
    device_cache(device_).end_capture(id_);
    release_pool();
  }
  void replay() {
    VBT_CHECK(exec_ != nullptr, "CUDAGraph.replay: nothing was captured");
    DeviceGuard guard(device_);
    VBT_CUDA_CHECK(cudaGraphLaunch(exec_, current_stream(device_).handle()));  // ordered like eager work (torch)
  }
  void reset() {
    if (capturing_) capture_end();
    DeviceGuard guard(device_);
    if (exec_ != nullptr) (void)cudaGraphExecDestroy(exec_);
    if (graph_ != nullptr) (void)cudaGraphDestroy(graph_);
    exec_ = nullptr;
    graph_ = nullptr;
    release_pool();
  }
  bool capturing() const { return capturing_; }
  GraphId id() const { return id_; }
  PoolId pool_id() const { return pool_used_ ? pool_ : -1; }  // the pool this graph holds, -1 if none
  int device() const { return device_; }

 private:
  // Drops the graph's reference to its pool (once) and takes a fresh id for a later capture.
  void release_pool() {
    if (!pool_used_) return;
    pool_used_ = false;
    pool_ = -1;
    device_cache(device_).release_graph(id_);
    id_ = next_graph_id();
  }
  GraphId id_;
  PoolId pool_ = -1;
  int device_ = 0;
  Stream stream_ = Stream::default_stream(0);
  bool capturing_ = false;
  bool pool_used_ = false;  // begin_capture registered id_ with the allocator and it is not released yet
  cudaGraph_t graph_ = nullptr;
  cudaGraphExec_t exec_ = nullptr;
};
#endif

}  // namespace

void vbt_bind_cuda(nanobind::module_& m) {
  nb::exception<OutOfMemoryError>(m, "_CudaOutOfMemoryError", PyExc_RuntimeError);

#ifdef VBT_WITH_CUDA
  m.def("_cuda_is_built", [] { return true; });
  m.def("_cuda_device_count", [] { return device_count(); });
#else
  m.def("_cuda_is_built", [] { return false; });
  m.def("_cuda_device_count", [] { return 0; });
#endif

  nb::class_<HostCachingAllocator>(m, "_HostCachingAllocator")
      .def(nb::init<std::size_t>(), nb::arg("capacity"))
      .def("allocate", [](HostCachingAllocator& h, std::size_t n, StreamId s) {
             return reinterpret_cast<std::uintptr_t>(h.alloc->allocate(n, s));
           }, nb::arg("nbytes"), nb::arg("stream") = 0)
      .def("free", [](HostCachingAllocator& h, std::uintptr_t p) { h.alloc->free(reinterpret_cast<void*>(p)); })
      .def("record_stream", [](HostCachingAllocator& h, std::uintptr_t p, StreamId s) {
             h.alloc->record_stream(reinterpret_cast<void*>(p), s);
           })
      .def("complete_stream", [](HostCachingAllocator& h, StreamId s) { return h.backend->complete_stream(s).size(); })
      .def("block_size", [](HostCachingAllocator& h, std::uintptr_t p) {
             return h.alloc->block_size(reinterpret_cast<void*>(p));
           })
      .def("stats_json", [](HostCachingAllocator& h) { return stats_to_json(h.alloc->stats()); })
      .def("snapshot_json", [](HostCachingAllocator& h) { return h.alloc->snapshot_json(); })
      .def("empty_cache", [](HostCachingAllocator& h) { h.alloc->empty_cache(); })
      .def("reset_peak_stats", [](HostCachingAllocator& h) { h.alloc->reset_peak_stats(); })
      .def("set_memory_fraction", [](HostCachingAllocator& h, double f) { h.alloc->set_per_process_memory_fraction(f); })
      .def("memory_limit", [](HostCachingAllocator& h) { return h.alloc->memory_limit(); })
      .def("set_poison_on_free", [](HostCachingAllocator& h, bool on) { h.alloc->set_poison_on_free(on); })
      .def("is_filled", [](HostCachingAllocator& h, std::uintptr_t p, std::size_t n, int byte) {
             return h.backend->is_filled(reinterpret_cast<void*>(p), n, static_cast<std::uint8_t>(byte));
           })
      .def("write", [](HostCachingAllocator& h, std::uintptr_t p, std::size_t n, int byte) {
             h.alloc->block_size(reinterpret_cast<void*>(p));  // throws unless p is a live allocation
             h.backend->fill(reinterpret_cast<void*>(p), n, static_cast<std::uint8_t>(byte), 0);
           })
      .def("begin_capture", [](HostCachingAllocator& h, GraphId g, StreamId s, PoolId pool) {
             if (pool < 0) h.alloc->begin_capture(g, s);
             else h.alloc->begin_capture(g, s, pool);
           }, nb::arg("graph"), nb::arg("stream"), nb::arg("pool") = -1)
      .def("end_capture", [](HostCachingAllocator& h, GraphId g) { h.alloc->end_capture(g); })
      .def("release_graph", [](HostCachingAllocator& h, GraphId g) { h.alloc->release_graph(g); })
      .def("retain_pool", [](HostCachingAllocator& h, PoolId p) { h.alloc->retain_pool(p); })
      .def("release_pool", [](HostCachingAllocator& h, PoolId p) { h.alloc->release_pool(p); })
      .def("graph_pool", [](HostCachingAllocator& h, GraphId g) { return h.alloc->graph_pool(g); })
      .def("graph_pool_stats", [](HostCachingAllocator& h, PoolId p) {
             return pool_stats_dict(h.alloc->graph_pool_stats(p));
           })
      .def("raw_bytes_in_use", [](HostCachingAllocator& h) { return h.backend->raw_bytes_in_use(); })
      .def("live_events", [](HostCachingAllocator& h) { return h.backend->live_events(); });

#ifdef VBT_WITH_CUDA_OPS
  // CUDA op kernels: the op table's CUDA column and cuda:N storages (include/vbt/cuda/ops.h).
  vbt::cuda::register_cuda_ops();
#ifdef VBT_WITH_CUDA_AUTOGRAD
  // Backward on CUDA runs each node on its forward stream (Note [Autograd streams] in engine.cpp).
  vbt::cuda::install_autograd_stream_hooks();
#endif
  m.def("_cuda_has_ops", [] { return true; });
  m.def("_cuda_to_device", [](const vbt::Tensor& t, const std::string& device, bool non_blocking) {
    return vbt::cuda::to_device(t, vbt::Device::parse(device), non_blocking);
  }, nb::arg("t"), nb::arg("device"), nb::arg("non_blocking") = false);
  // Pinned host memory and non-blocking copies (vibetensor/torch/cuda/_tensors.py).
  m.def("_cuda_set_non_blocking", [](bool on) { return vbt::cuda::set_non_blocking_copies(on); });
  m.def("_cuda_pin_memory", [](const vbt::Tensor& t) { return vbt::cuda::pin_memory(t); });
  m.def("_cuda_is_pinned", [](const vbt::Tensor& t) { return vbt::cuda::is_pinned(t); });
  m.def("_cuda_empty_pinned", [](const std::vector<int64_t>& sizes, const vbt::Tensor& dtype_of) {
    return vbt::cuda::empty_pinned(sizes, dtype_of.dtype());
  });
  m.def("_cuda_pinned_stats", [] {
    PinnedStats s = pinned_host_allocator().stats();
    nb::dict d;
    d["allocated_bytes"] = s.allocated_bytes;
    d["cached_bytes"] = s.cached_bytes;
    d["pending_blocks"] = s.pending_blocks;
    d["num_allocs"] = s.num_allocs;
    d["num_raw_allocs"] = s.num_raw_allocs;
    d["num_raw_frees"] = s.num_raw_frees;
    d["num_recorded_uses"] = s.num_recorded_uses;
    return d;
  });
  m.def("_cuda_pinned_empty_cache", [] { pinned_host_allocator().empty_cache(); });
  // Matrix products: cuBLAS loaded at run time or the built-in kernel (vibetensor/torch/cuda/_blas.py).
  m.def("_cuda_matmul_backend", [] { return vbt::cuda::matmul_backend(); });
  m.def("_cuda_cublas_enabled", [] { return vbt::cuda::cublas_enabled(); });
  m.def("_cuda_set_cublas_enabled", [](bool on) { vbt::cuda::set_cublas_enabled(on); });
  m.def("_cuda_set_cublas_search_paths", [](const std::vector<std::string>& p) { vbt::cuda::set_cublas_search_paths(p); });
  m.def("_cuda_cublas_library", [] { return vbt::cuda::cublas_library(); });
  m.def("_cuda_cublas_load_error", [] { return vbt::cuda::cublas_load_error(); });
  m.def("_cuda_cublas_version", [] { return vbt::cuda::cublas_version(); });
  // Debug: the bytes at a device address (reads freed-but-cached blocks, for the poison-on-free check).
  m.def("_cuda_read_bytes", [](std::uintptr_t ptr, std::size_t n) {
    std::vector<std::uint8_t> out(n);
    if (n) VBT_CUDA_CHECK(cudaMemcpy(out.data(), reinterpret_cast<void*>(ptr), n, cudaMemcpyDeviceToHost));
    return out;
  });
#else
  m.def("_cuda_has_ops", [] { return false; });
#endif
#ifdef VBT_WITH_CUDA
  m.def("_cuda_current_device", [] { return current_device(); });
  m.def("_cuda_set_device", [](int d) { set_device(d); });
  m.def("_cuda_synchronize", [](int d) {
    DeviceGuard guard(d);
    VBT_CUDA_CHECK(cudaDeviceSynchronize());
  });
  m.def("_cuda_memory_stats_json", [](int d) { return stats_to_json(device_cache(d).stats()); });
  m.def("_cuda_memory_snapshot_json", [](int d) { return device_cache(d).snapshot_json(); });
  m.def("_cuda_empty_cache", [](int d) { device_cache(d).empty_cache(); });
  m.def("_cuda_reset_peak_memory_stats", [](int d) { device_cache(d).reset_peak_stats(); });
  m.def("_cuda_set_memory_fraction", [](double f, int d) { device_cache(d).set_per_process_memory_fraction(f); });
  m.def("_cuda_set_poison_on_free", [](bool on, int d) { device_cache(d).set_poison_on_free(on); });
  m.def("_cuda_mem_get_info", [](int d) {
    DeviceGuard guard(d);
    std::size_t free_b = 0, total = 0;
    VBT_CUDA_CHECK(cudaMemGetInfo(&free_b, &total));
    return std::vector<std::size_t>{free_b, total};
  });
  m.def("_cuda_device_name", [](int d) {
    cudaDeviceProp prop{};
    VBT_CUDA_CHECK(cudaGetDeviceProperties(&prop, d));
    return std::string(prop.name);
  });

  nb::class_<Stream>(m, "_CudaStream")
      .def_static("create", &Stream::create, nb::arg("device"), nb::arg("priority") = 0)
      .def_static("default", &Stream::default_stream, nb::arg("device"))
      .def_static("current", &current_stream, nb::arg("device"))
      .def_static("set_current", &set_current_stream)
      .def_prop_ro("id", &Stream::id)
      .def_prop_ro("device_index", &Stream::device_index)
      .def("query", &Stream::query)
      .def("synchronize", &Stream::synchronize)
      .def("__eq__", [](const Stream& a, const Stream& b) { return a == b; });

  nb::class_<Event>(m, "_CudaEvent")
      .def(nb::init<bool>(), nb::arg("enable_timing") = false)
      .def("record", &Event::record)
      .def("wait", &Event::wait)
      .def("query", &Event::query)
      .def("synchronize", &Event::synchronize)
      .def("elapsed_time", &Event::elapsed_ms);

  nb::class_<CudaGraphPool>(m, "_CudaGraphPool")
      .def(nb::init<int, PoolId>(), nb::arg("device") = -1, nb::arg("id") = -1)
      .def_prop_ro("id", &CudaGraphPool::id)
      .def_prop_ro("device", &CudaGraphPool::device);

  nb::class_<CudaGraph>(m, "_CudaGraph")
      .def(nb::init<>())
      .def("capture_begin", &CudaGraph::capture_begin, nb::arg("stream"), nb::arg("pool") = -1)
      .def("capture_end", &CudaGraph::capture_end)
      .def("replay", &CudaGraph::replay)
      .def("reset", &CudaGraph::reset)
      .def("capture_abort", &CudaGraph::capture_abort)
      .def_prop_ro("capturing", &CudaGraph::capturing)
      .def_prop_ro("id", &CudaGraph::id)
      .def_prop_ro("pool_id", &CudaGraph::pool_id)
      .def_prop_ro("device", &CudaGraph::device);
#endif
}
