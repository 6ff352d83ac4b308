/* Example plugin: a CUDA op (with the same op's CPU kernel for comparison), written against the C plugin ABI.
 *   vbt_example_bias_gelu(Tensor x, Tensor bias) -> Tensor
 * computes gelu(x + bias) (the exact, erf-based GELU, torch.nn.functional.gelu's default) with `bias` a 1-d
 * tensor of x's last-dimension size, added along the last dimension (a fused bias + activation). x and bias:
 * same dtype (float32 or float64) and device, any strides, x with 1..8 dimensions; the result is contiguous.
 * Kernels: kDLCPU (a plain loop) and kDLCUDA (one thread per output element, grid-stride loop).
 *
 * Streams: ABI 1.1 passes no CUDA stream to kernels. The CUDA kernel therefore waits for the device (all
 * streams, so inputs written on any vibetensor stream are complete), runs on the legacy default stream and
 * waits for it before returning, so the result is ready for whichever stream reads it next. Correct, not fast:
 * a real plugin would launch on the caller's current stream once the ABI exposes it.
 * Built by cmake/plugins.cmake only when the CUDA backend is enabled (VBT_CUDA_ENABLED). */
#include <cuda_runtime_api.h>

#include <math.h>
#include <stdio.h>

#include "vbt/plugins/vbt_plugin.h"

extern "C" {
VBT_PLUGIN_DEFINE_ABI_VERSION()
}

namespace {

constexpr int kMaxDims = 8;

// Geometry of x (sizes and strides in elements) and the stride of bias, passed to the kernel by value.
struct Geometry {
  int32_t ndim;
  int64_t sizes[kMaxDims];
  int64_t x_strides[kMaxDims];
  int64_t bias_stride;
  int64_t numel;
};

template <typename T>
__host__ __device__ inline T gelu(T v) {
  return static_cast<T>(0.5) * v * (static_cast<T>(1) + erf(v * static_cast<T>(0.70710678118654752440)));
}

// Offsets of element i (row-major order over x's sizes) in x and bias.
__host__ __device__ inline void offsets(const Geometry& g, int64_t i, int64_t* ox, int64_t* ob) {
  int64_t o = 0, last = 0;
  for (int32_t d = g.ndim - 1; d >= 0; --d) {
    const int64_t idx = i % g.sizes[d];
    i /= g.sizes[d];
    o += idx * g.x_strides[d];
    if (d == g.ndim - 1) last = idx;
  }
  *ox = o;
  *ob = last * g.bias_stride;
}

template <typename T>
__global__ void bias_gelu_kernel(const T* x, const T* bias, T* out, Geometry g) {
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < g.numel; i += step) {
    int64_t ox, ob;
    offsets(g, i, &ox, &ob);
    out[i] = gelu<T>(x[ox] + bias[ob]);
  }
}

template <typename T>
void bias_gelu_cpu(const T* x, const T* bias, T* out, const Geometry& g) {
  for (int64_t i = 0; i < g.numel; ++i) {
    int64_t ox, ob;
    offsets(g, i, &ox, &ob);
    out[i] = gelu<T>(x[ox] + bias[ob]);
  }
}

int32_t cuda_failed(const vbt_host_api* host, cudaError_t e, const char* what) {
  char msg[256];
  snprintf(msg, sizeof msg, "vbt_example_bias_gelu: %s failed: %s", what, cudaGetErrorString(e));
  host->set_error(msg);
  return VBT_STATUS_RUNTIME_ERROR;
}

// Checks the arguments, fills the geometry and allocates the result (on x's device).
int32_t prepare(const vbt_host_api* host, const vbt_value* args, int32_t nargs, vbt_tensor_info* x,
                vbt_tensor_info* b, Geometry* g, vbt_tensor* result, vbt_tensor_info* r) {
  if (nargs != 2 || args[0].tag != VBT_VALUE_TENSOR || args[1].tag != VBT_VALUE_TENSOR) {
    host->set_error("vbt_example_bias_gelu: expected (Tensor x, Tensor bias)");
    return VBT_STATUS_INVALID_ARGUMENT;
  }
  if (host->tensor_info(args[0].u.tensor, x) || host->tensor_info(args[1].u.tensor, b)) return VBT_STATUS_RUNTIME_ERROR;
  if (x->dtype.code != kDLFloat || (x->dtype.bits != 32 && x->dtype.bits != 64) || x->dtype.lanes != 1) {
    host->set_error("vbt_example_bias_gelu: only float32 and float64 are supported");
    return VBT_STATUS_UNSUPPORTED;
  }
  if (b->dtype.code != x->dtype.code || b->dtype.bits != x->dtype.bits) {
    host->set_error("vbt_example_bias_gelu: x and bias must have the same dtype");
    return VBT_STATUS_INVALID_ARGUMENT;
  }
  if (x->ndim < 1 || x->ndim > kMaxDims) {
    host->set_error("vbt_example_bias_gelu: x must have 1 to 8 dimensions");
    return VBT_STATUS_INVALID_ARGUMENT;
  }
  if (b->ndim != 1 || b->shape[0] != x->shape[x->ndim - 1]) {
    char msg[200];
    snprintf(msg, sizeof msg, "vbt_example_bias_gelu: bias must be 1-d with %lld elements (x's last dimension)",
             (long long)x->shape[x->ndim - 1]);
    host->set_error(msg);
    return VBT_STATUS_INVALID_ARGUMENT;
  }
  g->ndim = x->ndim;
  g->numel = x->numel;
  g->bias_stride = b->strides[0];
  for (int32_t d = 0; d < x->ndim; ++d) {
    g->sizes[d] = x->shape[d];
    g->x_strides[d] = x->strides[d];
  }
  int32_t rc = host->empty(x->shape, x->ndim, x->dtype, x->device, result);
  if (rc) return rc;
  host->tensor_info(*result, r);
  return VBT_STATUS_OK;
}

int32_t bias_gelu_cpu_kernel(const vbt_host_api* host, const vbt_value* args, int32_t nargs, vbt_tensor* out,
                             void* user) {
  (void)user;
  vbt_tensor_info x, b, r;
  Geometry g;
  vbt_tensor result = nullptr;
  int32_t rc = prepare(host, args, nargs, &x, &b, &g, &result, &r);
  if (rc) return rc;
  if (x.dtype.bits == 32)
    bias_gelu_cpu(static_cast<const float*>(x.data), static_cast<const float*>(b.data), static_cast<float*>(r.data), g);
  else
    bias_gelu_cpu(static_cast<const double*>(x.data), static_cast<const double*>(b.data), static_cast<double*>(r.data), g);
  *out = result;
  return VBT_STATUS_OK;
}

int32_t bias_gelu_cuda_kernel(const vbt_host_api* host, const vbt_value* args, int32_t nargs, vbt_tensor* out,
                              void* user) {
  (void)user;
  vbt_tensor_info x, b, r;
  Geometry g;
  vbt_tensor result = nullptr;
  int32_t rc = prepare(host, args, nargs, &x, &b, &g, &result, &r);
  if (rc) return rc;
  if (g.numel == 0) {
    *out = result;
    return VBT_STATUS_OK;
  }
  int previous = 0;
  cudaError_t e = cudaGetDevice(&previous);
  if (e == cudaSuccess && previous != x.device.device_id) e = cudaSetDevice(x.device.device_id);
  if (e == cudaSuccess) e = cudaDeviceSynchronize();  // inputs complete on every stream (see the header)
  if (e != cudaSuccess) {
    host->release_tensor(result);
    return cuda_failed(host, e, "device set-up");
  }
  const int threads = 256;
  const int64_t wanted = (g.numel + threads - 1) / threads;
  const int blocks = static_cast<int>(wanted < 65535 ? wanted : 65535);
  if (x.dtype.bits == 32)
    bias_gelu_kernel<float><<<blocks, threads, 0, cudaStreamLegacy>>>(
        static_cast<const float*>(x.data), static_cast<const float*>(b.data), static_cast<float*>(r.data), g);
  else
    bias_gelu_kernel<double><<<blocks, threads, 0, cudaStreamLegacy>>>(
        static_cast<const double*>(x.data), static_cast<const double*>(b.data), static_cast<double*>(r.data), g);
  e = cudaGetLastError();
  if (e == cudaSuccess) e = cudaStreamSynchronize(cudaStreamLegacy);
  if (previous != x.device.device_id) cudaSetDevice(previous);
  if (e != cudaSuccess) {
    host->release_tensor(result);
    return cuda_failed(host, e, "kernel");
  }
  *out = result;
  return VBT_STATUS_OK;
}

}  // namespace

extern "C" VBT_PLUGIN_EXPORT int32_t vbt_plugin_init(const vbt_host_api* host, vbt_registrar reg) {
  if (host->abi_major != VBT_PLUGIN_ABI_MAJOR) return VBT_STATUS_UNSUPPORTED;
  int32_t rc = host->define_op(reg, "vbt_example_bias_gelu(Tensor x, Tensor bias) -> Tensor");
  if (rc) return rc;
  rc = host->register_kernel(reg, "vbt_example_bias_gelu", kDLCPU, bias_gelu_cpu_kernel, nullptr);
  if (rc) return rc;
  return host->register_kernel(reg, "vbt_example_bias_gelu", kDLCUDA, bias_gelu_cuda_kernel, nullptr);
}
