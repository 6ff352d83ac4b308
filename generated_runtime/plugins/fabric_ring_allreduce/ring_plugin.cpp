// Ring all-reduce of our own as a plugin (ABI 1.2), an example of the plugin ABI for collectives:
//   fabric::ring_all_reduce(Tensor[] tensors) -> ()
// sums the tensors element-wise and writes the sum into every one of them (in place, like
// torch.cuda.nccl.all_reduce(inputs) with op SUM). tensors: one per rank, all float32, contiguous, one shape.
//  * kDLCUDA kernel (registered with VBT_KERNEL_MULTI_DEVICE, only when the CUDA backend is built): one tensor
//    per GPU, each on a different device; ranks in list order form the ring r -> r+1. Reduce-scatter then
//    all-gather over peer access (ring_cuda.cu), enqueued on every device's current stream (ABI 1.2's
//    host->cuda_current_stream): the call returns before the GPUs finish, as torch's collectives do on the
//    current stream. Errors: a tensor on the CPU, two tensors on one device, shape/dtype/layout mismatch,
//    peer access impossible between ring neighbours.
//  * kDLCPU kernel: the same op over host buffers (ranks simulated by the tensors of the list, on the CPU),
//    following the same ring plan (vbt/fabric/ring_plan.h, compiled into the plugin): the chunking and the
//    ABI are checkable against numpy on any machine.
// An empty list is an error; one tensor is the identity; zero elements do nothing.
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "vbt/fabric/ring_plan.h"
#include "vbt/plugins/vbt_plugin.h"
#ifdef VBT_RING_HAS_CUDA
#include "ring_cuda.h"
#endif

extern "C" {
VBT_PLUGIN_DEFINE_ABI_VERSION()
}

namespace {

constexpr const char* kOp = "fabric::ring_all_reduce";

int32_t fail(const vbt_host_api* host, int32_t status, const std::string& msg) {
  host->set_error((std::string(kOp) + ": " + msg).c_str());
  return status;
}

std::string device_str(DLDevice d) {
  return d.device_type == kDLCPU ? std::string("cpu") : "cuda:" + std::to_string(d.device_id);
}

std::string shape_str(const vbt_tensor_info& t) {
  std::string s = "[";
  for (int32_t d = 0; d < t.ndim; ++d) s += (d ? ", " : "") + std::to_string(t.shape[d]);
  return s + "]";
}

bool contiguous(const vbt_tensor_info& t) {
  if (t.numel == 0) return true;  // no element to address (torch counts empty tensors as contiguous)
  int64_t expected = 1;
  for (int32_t d = t.ndim - 1; d >= 0; --d) {
    if (t.shape[d] != 1 && t.strides[d] != expected) return false;
    expected *= t.shape[d];
  }
  return true;
}

// Reads the list argument and checks what both kernels need: a non-empty list of contiguous float32
// tensors of one shape.
int32_t read_tensors(const vbt_host_api* host, const vbt_value* args, int32_t nargs,
                     std::vector<vbt_tensor_info>* out) {
  if (nargs != 1 || args[0].tag != VBT_VALUE_TENSOR_LIST)
    return fail(host, VBT_STATUS_INVALID_ARGUMENT, "expected (Tensor[] tensors)");
  const vbt_tensor_list* list = args[0].u.list;
  if (list->size == 0) return fail(host, VBT_STATUS_INVALID_ARGUMENT, "tensors is empty (one tensor per rank)");
  out->resize(static_cast<size_t>(list->size));
  for (int64_t i = 0; i < list->size; ++i) {
    vbt_tensor_info& t = (*out)[i];
    if (host->tensor_info(list->data[i], &t)) return VBT_STATUS_RUNTIME_ERROR;
    if (t.dtype.code != kDLFloat || t.dtype.bits != 32 || t.dtype.lanes != 1)
      return fail(host, VBT_STATUS_UNSUPPORTED, "tensors[" + std::to_string(i) + "] is not float32 (only float32 "
                                                "is supported)");
    if (!contiguous(t))
      return fail(host, VBT_STATUS_INVALID_ARGUMENT, "tensors[" + std::to_string(i) + "] is not contiguous");
    const vbt_tensor_info& f = (*out)[0];
    bool same = t.ndim == f.ndim;
    for (int32_t d = 0; same && d < t.ndim; ++d) same = t.shape[d] == f.shape[d];
    if (!same)
      return fail(host, VBT_STATUS_INVALID_ARGUMENT, "tensors[" + std::to_string(i) + "] has shape " + shape_str(t) +
                                                         " but tensors[0] has shape " + shape_str(f));
  }
  return VBT_STATUS_OK;
}

// ---- CPU: the ring over host buffers --------------------------------------------------------------------

int32_t ring_cpu(const vbt_host_api* host, const vbt_value* args, int32_t nargs, vbt_tensor* out, void* user) {
  (void)out;  // an op returning ()
  (void)user;
  std::vector<vbt_tensor_info> ts;
  if (int32_t rc = read_tensors(host, args, nargs, &ts)) return rc;
  const int n = static_cast<int>(ts.size());
  const size_t count = static_cast<size_t>(ts[0].numel);
  for (int r = 0; r < n; ++r) {
    if (ts[r].device.device_type != kDLCPU)
      return fail(host, VBT_STATUS_INVALID_ARGUMENT,
                  "tensors[" + std::to_string(r) + "] is on " + device_str(ts[r].device) +
                      " while others are on the CPU (the CPU kernel needs every tensor on the CPU)");
    for (int q = 0; q < r && count > 0; ++q) {  // ranks need their own buffers
      const char* a = static_cast<const char*>(ts[q].data);
      const char* b = static_cast<const char*>(ts[r].data);
      if (a < b + count * sizeof(float) && b < a + count * sizeof(float))
        return fail(host, VBT_STATUS_INVALID_ARGUMENT,
                    "tensors[" + std::to_string(q) + "] and tensors[" + std::to_string(r) + "] overlap in memory");
    }
  }
  if (n == 1 || count == 0) return VBT_STATUS_OK;
  try {
    // In place, transfer by transfer: within a step no rank writes a chunk its downstream reads in that step
    // (the plan's invariant, checked by ring_allreduce_host), so sequential execution equals the GPUs' one.
    for (int phase = 0; phase < 2; ++phase) {
      const bool reduce = phase == 0;
      for (int step = 0; step + 1 < n; ++step) {
        for (const auto& t : vbt::fabric::ring_step(n, step, reduce)) {
          const auto [b, e] = vbt::fabric::ring_chunk(count, n, t.chunk);
          float* dst = static_cast<float*>(ts[t.dst_rank].data);
          const float* src = static_cast<const float*>(ts[t.src_rank].data);
          for (size_t i = b; i < e; ++i) dst[i] = reduce ? dst[i] + src[i] : src[i];
        }
      }
    }
  } catch (const std::exception& e) {  // no C++ exception crosses the ABI
    return fail(host, VBT_STATUS_RUNTIME_ERROR, e.what());
  }
  return VBT_STATUS_OK;
}

// ---- CUDA: one tensor per GPU, peer access, current streams -----------------------------------------------

#ifdef VBT_RING_HAS_CUDA
int32_t ring_cuda(const vbt_host_api* host, const vbt_value* args, int32_t nargs, vbt_tensor* out, void* user) {
  (void)out;
  (void)user;
  std::vector<vbt_tensor_info> ts;
  if (int32_t rc = read_tensors(host, args, nargs, &ts)) return rc;
  const int n = static_cast<int>(ts.size());
  std::vector<int> devices(static_cast<size_t>(n));
  std::vector<float*> buffers(static_cast<size_t>(n));
  std::vector<void*> streams(static_cast<size_t>(n));
  for (int r = 0; r < n; ++r) {
    if (ts[r].device.device_type != kDLCUDA)
      return fail(host, VBT_STATUS_INVALID_ARGUMENT,
                  "tensors[" + std::to_string(r) + "] is on " + device_str(ts[r].device) +
                      "; every tensor must be on a CUDA device (one tensor per GPU)");
    devices[r] = ts[r].device.device_id;
    for (int q = 0; q < r; ++q)
      if (devices[q] == devices[r])
        return fail(host, VBT_STATUS_INVALID_ARGUMENT,
                    "tensors[" + std::to_string(q) + "] and tensors[" + std::to_string(r) + "] are both on " +
                        device_str(ts[r].device) + " (one tensor per GPU)");
    buffers[r] = static_cast<float*>(ts[r].data);
    streams[r] = host->cuda_current_stream(ts[r].device);
  }
  const size_t count = static_cast<size_t>(ts[0].numel);
  if (n == 1 || count == 0) return VBT_STATUS_OK;
  try {
    for (int r = 0; r < n; ++r) {  // rank r+1 reads rank r's buffer
      const int reader = devices[(r + 1) % n], owner = devices[r];
      std::string why = vbt_ring::enable_peer(reader, owner);
      if (!why.empty()) return fail(host, VBT_STATUS_UNSUPPORTED, why);
    }
    std::string err = vbt_ring::ring_all_reduce_cuda(devices, buffers, count, streams);
    if (!err.empty()) return fail(host, VBT_STATUS_RUNTIME_ERROR, err);
  } catch (const std::exception& e) {
    return fail(host, VBT_STATUS_RUNTIME_ERROR, e.what());
  }
  return VBT_STATUS_OK;
}
#endif

}  // namespace

extern "C" VBT_PLUGIN_EXPORT int32_t vbt_plugin_init(const vbt_host_api* host, vbt_registrar reg) {
  if (host->abi_major != VBT_PLUGIN_ABI_MAJOR || host->abi_minor < 2) {
    host->set_error("fabric_ring_allreduce needs plugin ABI 1.2 (Tensor[] arguments, cuda_current_stream)");
    return VBT_STATUS_UNSUPPORTED;
  }
  int32_t rc = host->define_op(reg, "fabric::ring_all_reduce(Tensor[] tensors) -> ()");
  if (!rc) rc = host->register_kernel(reg, kOp, kDLCPU, ring_cpu, nullptr);
#ifdef VBT_RING_HAS_CUDA
  if (!rc) rc = host->register_kernel_ex(reg, kOp, kDLCUDA, ring_cuda, nullptr, VBT_KERNEL_MULTI_DEVICE);
#endif
  return rc;
}
