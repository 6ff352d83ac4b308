/* Test plugins for ABI 1.1's built-in override (register_kernel_ex + VBT_KERNEL_OVERRIDE_BUILTIN), one
 * behaviour each, selected at compile time. The override kernel is deliberately observable: it replaces
 * the CPU kernel of `mul` with self * other + 1 (float32/float64), so a test can tell it ran.
 *   VBT_OVERRIDE_ok          overrides mul's CPU kernel (explicit flag) and defines vbt_override_probe
 *   VBT_OVERRIDE_init_fails  overrides mul, defines an op, then fails: nothing may stay registered
 *   VBT_OVERRIDE_no_flag     register_kernel on "mul" without the flag: refused, the load is rejected
 *   VBT_OVERRIDE_abi10       reports ABI 1.0 (an old plugin) and defines vbt_override_old_abi: still loads */
#include "vbt/plugins/vbt_plugin.h"

#if defined(VBT_OVERRIDE_abi10)
VBT_PLUGIN_EXPORT void vbt_plugin_abi_version(uint32_t* major, uint32_t* minor) {
  *major = VBT_PLUGIN_ABI_MAJOR;
  *minor = 0;
}
#else
VBT_PLUGIN_DEFINE_ABI_VERSION()
#endif

static void mul1_f32(char** data, const int64_t* s, int64_t n, void* ctx) {
  (void)ctx;
  for (int64_t i = 0; i < n; ++i)
    *(float*)(data[0] + i * s[0]) = *(const float*)(data[1] + i * s[1]) * *(const float*)(data[2] + i * s[2]) + 1.0f;
}
static void mul1_f64(char** data, const int64_t* s, int64_t n, void* ctx) {
  (void)ctx;
  for (int64_t i = 0; i < n; ++i)
    *(double*)(data[0] + i * s[0]) = *(const double*)(data[1] + i * s[1]) * *(const double*)(data[2] + i * s[2]) + 1.0;
}

/* args: self, other (Tensors; a Python number arrives as a wrapped 0-dim tensor), out (always NONE here). */
static int32_t mul_plus_one(const vbt_host_api* host, const vbt_value* args, int32_t nargs, vbt_tensor* out, void* u) {
  (void)u;
  if (nargs < 2 || args[0].tag != VBT_VALUE_TENSOR || args[1].tag != VBT_VALUE_TENSOR) {
    host->set_error("override of mul: expected two tensors");
    return VBT_STATUS_INVALID_ARGUMENT;
  }
  vbt_tensor inputs[2] = {args[0].u.tensor, args[1].u.tensor};
  DLDataType any = {0, 0, 0};
  vbt_iter it = NULL;
  int32_t rc = host->iter_build("mul", inputs, 2, any, &it);
  if (rc) return rc;
  DLDataType dt;
  host->iter_common_dtype(it, &dt);
  vbt_loop_fn loop = NULL;
  if (dt.code == kDLFloat && dt.bits == 32) loop = mul1_f32;
  if (dt.code == kDLFloat && dt.bits == 64) loop = mul1_f64;
  if (!loop) {
    host->iter_free(it);
    host->set_error("override of mul: only float32 and float64 are supported");
    return VBT_STATUS_UNSUPPORTED;
  }
  rc = host->iter_for_each(it, loop, NULL);
  if (!rc) rc = host->iter_output(it, out);
  host->iter_free(it);
  return rc;
}

static int32_t identity(const vbt_host_api* host, const vbt_value* args, int32_t nargs, vbt_tensor* out, void* u) {
  (void)u;
  if (nargs < 1 || args[0].tag != VBT_VALUE_TENSOR) {
    host->set_error("expected a tensor");
    return VBT_STATUS_INVALID_ARGUMENT;
  }
  vbt_tensor_info info;
  int32_t rc = host->tensor_info(args[0].u.tensor, &info);
  if (rc) return rc;
  rc = host->empty(info.shape, info.ndim, info.dtype, info.device, out);
  if (rc) return rc;
  vbt_tensor_info o;
  host->tensor_info(*out, &o);
  /* contiguous copy of a contiguous float input only (enough for the tests) */
  if (info.dtype.code != kDLFloat || info.dtype.bits != 32) {
    host->release_tensor(*out);
    *out = NULL;
    host->set_error("float32 only");
    return VBT_STATUS_UNSUPPORTED;
  }
  for (int64_t i = 0; i < info.numel; ++i) ((float*)o.data)[i] = ((const float*)info.data)[i];
  return VBT_STATUS_OK;
}

VBT_PLUGIN_EXPORT int32_t vbt_plugin_init(const vbt_host_api* host, vbt_registrar reg) {
#if defined(VBT_OVERRIDE_ok)
  int32_t rc = host->register_kernel_ex(reg, "mul", kDLCPU, mul_plus_one, 0, VBT_KERNEL_OVERRIDE_BUILTIN);
  if (!rc) rc = host->define_op(reg, "vbt_override_probe(Tensor x) -> Tensor");
  if (!rc) rc = host->register_kernel(reg, "vbt_override_probe", kDLCPU, identity, 0);
  return rc;
#elif defined(VBT_OVERRIDE_init_fails)
  if (host->register_kernel_ex(reg, "mul", kDLCPU, mul_plus_one, 0, VBT_KERNEL_OVERRIDE_BUILTIN))
    return VBT_STATUS_RUNTIME_ERROR;
  if (host->define_op(reg, "vbt_override_partial(Tensor x) -> Tensor")) return VBT_STATUS_RUNTIME_ERROR;
  if (host->register_kernel(reg, "vbt_override_partial", kDLCPU, identity, 0)) return VBT_STATUS_RUNTIME_ERROR;
  host->set_error("override plugin: simulated failure after overriding mul");
  return VBT_STATUS_RUNTIME_ERROR;
#elif defined(VBT_OVERRIDE_no_flag)
  return host->register_kernel(reg, "mul", kDLCPU, mul_plus_one, 0);
#elif defined(VBT_OVERRIDE_abi10)
  (void)mul_plus_one;
  int32_t rc = host->define_op(reg, "vbt_override_old_abi(Tensor x) -> Tensor");
  if (!rc) rc = host->register_kernel(reg, "vbt_override_old_abi", kDLCPU, identity, 0);
  return rc;
#else
#error "select a VBT_OVERRIDE_<mode>"
#endif
}
