/* Example plugin: a CPU elementwise op written directly against tensor metadata (no helpers).
 *   vbt_example_axpby(Tensor x, Tensor y, float alpha=1.0, float beta=1.0) -> Tensor
 * computes alpha * x + beta * y for x and y of the same shape and dtype (float32 or float64), any
 * strides; the result is contiguous. */
#include <stdio.h>

#include "vbt/plugins/vbt_plugin.h"

VBT_PLUGIN_DEFINE_ABI_VERSION()

static int32_t axpby_cpu(const vbt_host_api* host, const vbt_value* args, int32_t nargs, vbt_tensor* out, void* user) {
  (void)user;
  if (nargs != 4 || args[0].tag != VBT_VALUE_TENSOR || args[1].tag != VBT_VALUE_TENSOR) {
    host->set_error("vbt_example_axpby: expected (Tensor, Tensor, float, float)");
    return VBT_STATUS_INVALID_ARGUMENT;
  }
  vbt_tensor_info x, y;
  if (host->tensor_info(args[0].u.tensor, &x) || host->tensor_info(args[1].u.tensor, &y)) return VBT_STATUS_RUNTIME_ERROR;
  const double alpha = args[2].u.f, beta = args[3].u.f;
  int same = x.ndim == y.ndim && x.dtype.code == y.dtype.code && x.dtype.bits == y.dtype.bits;
  for (int32_t d = 0; same && d < x.ndim; ++d) same = x.shape[d] == y.shape[d];
  if (!same) {
    host->set_error("vbt_example_axpby: x and y must have the same shape and dtype");
    return VBT_STATUS_INVALID_ARGUMENT;
  }
  if (x.dtype.code != kDLFloat || (x.dtype.bits != 32 && x.dtype.bits != 64)) {
    host->set_error("vbt_example_axpby: only float32 and float64 are supported");
    return VBT_STATUS_UNSUPPORTED;
  }
  vbt_tensor result = NULL;
  int32_t rc = host->empty(x.shape, x.ndim, x.dtype, x.device, &result);
  if (rc) return rc;
  vbt_tensor_info r;
  host->tensor_info(result, &r);
  int64_t index[64] = {0};
  if (x.ndim > 64) {
    host->release_tensor(result);
    host->set_error("vbt_example_axpby: too many dimensions");
    return VBT_STATUS_UNSUPPORTED;
  }
  for (int64_t i = 0; i < x.numel; ++i) {
    int64_t ox = 0, oy = 0;
    for (int32_t d = 0; d < x.ndim; ++d) {
      ox += index[d] * x.strides[d];
      oy += index[d] * y.strides[d];
    }
    if (x.dtype.bits == 32)
      ((float*)r.data)[i] = (float)(alpha * ((const float*)x.data)[ox] + beta * ((const float*)y.data)[oy]);
    else
      ((double*)r.data)[i] = alpha * ((const double*)x.data)[ox] + beta * ((const double*)y.data)[oy];
    for (int32_t d = x.ndim - 1; d >= 0; --d) { /* row-major increment */
      if (++index[d] < x.shape[d]) break;
      index[d] = 0;
    }
  }
  *out = result;
  return VBT_STATUS_OK;
}

VBT_PLUGIN_EXPORT int32_t vbt_plugin_init(const vbt_host_api* host, vbt_registrar reg) {
  if (host->abi_major != VBT_PLUGIN_ABI_MAJOR) return VBT_STATUS_UNSUPPORTED;
  int32_t rc = host->define_op(reg, "vbt_example_axpby(Tensor x, Tensor y, float alpha=1.0, float beta=1.0) -> Tensor");
  if (rc) return rc;
  return host->register_kernel(reg, "vbt_example_axpby", kDLCPU, axpby_cpu, NULL);
}
