/* Test plugins of ABI 1.2's Tensor[] arguments, `-> ()` ops and `ns::name` op names, selected at compile time:
 *   VBT_LIST_ok                 ABI 1.2:
 *                                 vbt_list_sum(Tensor[] xs, float scale=1.0) -> Tensor
 *                                   scale * (xs[0] + xs[1] + ...), float32/float64, same shape and dtype, any
 *                                   strides; an empty list is an error (no shape to take)
 *                                 vbt_list::scale_(Tensor[] xs, float alpha) -> ()
 *                                   multiplies every tensor in place (contiguous float32/float64)
 *                               its init also checks host->cuda_current_stream(CPU) == NULL
 *   VBT_LIST_abi11              built for ABI 1.1 (a plain op): must keep loading
 *   VBT_LIST_minor3             claims ABI 1.3: must be refused
 *   VBT_LIST_bad_int_list       schema with an unsupported list type (int[])
 *   VBT_LIST_bad_optional_list  schema with `Tensor[]?`
 *   VBT_LIST_multi_device_cpu   VBT_KERNEL_MULTI_DEVICE on a CPU kernel (refused: CUDA kernels only) */
#include <stdio.h>

#include "vbt/plugins/vbt_plugin.h"

#if defined(VBT_LIST_minor3)
VBT_PLUGIN_EXPORT void vbt_plugin_abi_version(uint32_t* major, uint32_t* minor) {
  *major = VBT_PLUGIN_ABI_MAJOR;
  *minor = 3;
}
#elif defined(VBT_LIST_abi11)
VBT_PLUGIN_EXPORT void vbt_plugin_abi_version(uint32_t* major, uint32_t* minor) {
  *major = 1;
  *minor = 1;
}
#else
VBT_PLUGIN_DEFINE_ABI_VERSION()
#endif

#define MAX_DIMS 8

static int32_t fail(const vbt_host_api* host, int32_t status, const char* msg) {
  host->set_error(msg);
  return status;
}

static int is_float(DLDataType d) { return d.code == kDLFloat && (d.bits == 32 || d.bits == 64) && d.lanes == 1; }

/* Element offset of flat index i (row-major over shape) for the given strides. */
static int64_t offset_of(int64_t i, int32_t ndim, const int64_t* shape, const int64_t* strides) {
  int64_t o = 0;
  for (int32_t d = ndim - 1; d >= 0; --d) {
    o += (i % shape[d]) * strides[d];
    i /= shape[d];
  }
  return o;
}

static int32_t list_sum_cpu(const vbt_host_api* host, const vbt_value* args, int32_t nargs, vbt_tensor* out, void* u) {
  (void)u;
  if (nargs != 2 || args[0].tag != VBT_VALUE_TENSOR_LIST || args[1].tag != VBT_VALUE_FLOAT)
    return fail(host, VBT_STATUS_INVALID_ARGUMENT, "vbt_list_sum: expected (Tensor[] xs, float scale)");
  const vbt_tensor_list* xs = args[0].u.list;
  if (xs->size == 0) return fail(host, VBT_STATUS_INVALID_ARGUMENT, "vbt_list_sum: xs is empty");
  vbt_tensor_info first, r;
  if (host->tensor_info(xs->data[0], &first)) return VBT_STATUS_RUNTIME_ERROR;
  if (!is_float(first.dtype)) return fail(host, VBT_STATUS_UNSUPPORTED, "vbt_list_sum: only float32 and float64");
  if (first.ndim > MAX_DIMS) return fail(host, VBT_STATUS_UNSUPPORTED, "vbt_list_sum: at most 8 dimensions");
  for (int64_t k = 1; k < xs->size; ++k) {
    vbt_tensor_info x;
    if (host->tensor_info(xs->data[k], &x)) return VBT_STATUS_RUNTIME_ERROR;
    int same = x.ndim == first.ndim && x.dtype.bits == first.dtype.bits && x.dtype.code == first.dtype.code;
    for (int32_t d = 0; same && d < x.ndim; ++d) same = x.shape[d] == first.shape[d];
    if (!same) {
      char msg[160];
      snprintf(msg, sizeof msg, "vbt_list_sum: xs[%lld] differs from xs[0] in shape or dtype", (long long)k);
      return fail(host, VBT_STATUS_INVALID_ARGUMENT, msg);
    }
  }
  vbt_tensor result = NULL;
  int32_t rc = host->empty(first.shape, first.ndim, first.dtype, first.device, &result);
  if (rc) return rc;
  host->tensor_info(result, &r);
  const double scale = args[1].u.f;
  for (int64_t i = 0; i < first.numel; ++i) {
    double acc = 0;
    for (int64_t k = 0; k < xs->size; ++k) {
      vbt_tensor_info x;
      host->tensor_info(xs->data[k], &x);
      const int64_t o = offset_of(i, x.ndim, x.shape, x.strides);
      acc += first.dtype.bits == 32 ? (double)((const float*)x.data)[o] : ((const double*)x.data)[o];
    }
    if (first.dtype.bits == 32) ((float*)r.data)[i] = (float)(scale * acc);
    else ((double*)r.data)[i] = scale * acc;
  }
  *out = result;
  return VBT_STATUS_OK;
}

static int32_t list_scale_cpu(const vbt_host_api* host, const vbt_value* args, int32_t nargs, vbt_tensor* out, void* u) {
  (void)u;
  (void)out; /* an op returning (): no output */
  if (nargs != 2 || args[0].tag != VBT_VALUE_TENSOR_LIST || args[1].tag != VBT_VALUE_FLOAT)
    return fail(host, VBT_STATUS_INVALID_ARGUMENT, "vbt_list::scale_: expected (Tensor[] xs, float alpha)");
  const vbt_tensor_list* xs = args[0].u.list;
  for (int64_t k = 0; k < xs->size; ++k) {
    vbt_tensor_info x;
    if (host->tensor_info(xs->data[k], &x)) return VBT_STATUS_RUNTIME_ERROR;
    if (!is_float(x.dtype)) return fail(host, VBT_STATUS_UNSUPPORTED, "vbt_list::scale_: only float32 and float64");
    for (int64_t i = 0; i < x.numel; ++i) {
      const int64_t o = offset_of(i, x.ndim, x.shape, x.strides);
      if (x.dtype.bits == 32) ((float*)x.data)[o] *= (float)args[1].u.f;
      else ((double*)x.data)[o] *= args[1].u.f;
    }
  }
  return VBT_STATUS_OK;
}

static int32_t neg_cpu(const vbt_host_api* host, const vbt_value* args, int32_t nargs, vbt_tensor* out, void* u) {
  (void)u;
  vbt_tensor_info x, r;
  if (nargs != 1 || args[0].tag != VBT_VALUE_TENSOR || host->tensor_info(args[0].u.tensor, &x))
    return fail(host, VBT_STATUS_INVALID_ARGUMENT, "vbt_list_abi11_neg: expected (Tensor x)");
  if (x.dtype.code != kDLFloat || x.dtype.bits != 32)
    return fail(host, VBT_STATUS_UNSUPPORTED, "vbt_list_abi11_neg: only float32");
  vbt_tensor result = NULL;
  int32_t rc = host->empty(x.shape, x.ndim, x.dtype, x.device, &result);
  if (rc) return rc;
  host->tensor_info(result, &r);
  for (int64_t i = 0; i < x.numel; ++i)
    ((float*)r.data)[i] = -((const float*)x.data)[offset_of(i, x.ndim, x.shape, x.strides)];
  *out = result;
  return VBT_STATUS_OK;
}

VBT_PLUGIN_EXPORT int32_t vbt_plugin_init(const vbt_host_api* host, vbt_registrar reg) {
  int32_t rc;
#if defined(VBT_LIST_ok)
  DLDevice cpu = {kDLCPU, 0};
  if (host->abi_minor < 2) return fail(host, VBT_STATUS_UNSUPPORTED, "needs plugin ABI 1.2");
  if (host->cuda_current_stream(cpu) != NULL)
    return fail(host, VBT_STATUS_RUNTIME_ERROR, "cuda_current_stream(cpu) must be NULL");
  rc = host->define_op(reg, "vbt_list_sum(Tensor[] xs, float scale=1.0) -> Tensor");
  if (!rc) rc = host->register_kernel(reg, "vbt_list_sum", kDLCPU, list_sum_cpu, NULL);
  if (!rc) rc = host->define_op(reg, "vbt_list::scale_(Tensor[] xs, float alpha) -> ()");
  if (!rc) rc = host->register_kernel(reg, "vbt_list::scale_", kDLCPU, list_scale_cpu, NULL);
  (void)neg_cpu;
  return rc;
#elif defined(VBT_LIST_abi11) || defined(VBT_LIST_minor3)
  rc = host->define_op(reg, "vbt_list_abi11_neg(Tensor x) -> Tensor");
  if (!rc) rc = host->register_kernel(reg, "vbt_list_abi11_neg", kDLCPU, neg_cpu, NULL);
  (void)list_sum_cpu; (void)list_scale_cpu;
  return rc;
#elif defined(VBT_LIST_bad_int_list)
  (void)list_scale_cpu; (void)neg_cpu;
  rc = host->define_op(reg, "vbt_list_bad(int[] xs) -> Tensor");
  if (!rc) rc = host->register_kernel(reg, "vbt_list_bad", kDLCPU, list_sum_cpu, NULL);
  return rc;
#elif defined(VBT_LIST_bad_optional_list)
  (void)list_scale_cpu; (void)neg_cpu;
  rc = host->define_op(reg, "vbt_list_bad(Tensor[]? xs) -> Tensor");
  if (!rc) rc = host->register_kernel(reg, "vbt_list_bad", kDLCPU, list_sum_cpu, NULL);
  return rc;
#elif defined(VBT_LIST_multi_device_cpu)
  (void)list_scale_cpu; (void)neg_cpu;
  rc = host->define_op(reg, "vbt_list_bad(Tensor[] xs, float scale=1.0) -> Tensor");
  if (!rc) rc = host->register_kernel_ex(reg, "vbt_list_bad", kDLCPU, list_sum_cpu, NULL, VBT_KERNEL_MULTI_DEVICE);
  return rc;
#else
#error "select a mode with -DVBT_LIST_<mode>=1"
#endif
}
