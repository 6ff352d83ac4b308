/* Example plugin: a CPU op through the runtime's iterator helpers, so it follows the runtime's
 * broadcasting, type promotion, striding and aliasing rules; the plugin writes only the inner loop.
 *   vbt_example_hypot(Tensor a, Tensor b) -> Tensor     sqrt(a*a + b*b), float32/float64
 *   vbt_example_lerp(Tensor a, Tensor b, float w) -> Tensor   a + w * (b - a) */
#include <math.h>

#include "vbt/plugins/vbt_plugin.h"

VBT_PLUGIN_DEFINE_ABI_VERSION()

typedef struct { double w; } lerp_ctx;

static void hypot_f32(char** data, const int64_t* s, int64_t n, void* ctx) {
  (void)ctx;
  for (int64_t i = 0; i < n; ++i) {
    float a = *(const float*)(data[1] + i * s[1]), b = *(const float*)(data[2] + i * s[2]);
    *(float*)(data[0] + i * s[0]) = hypotf(a, b);
  }
}
static void hypot_f64(char** data, const int64_t* s, int64_t n, void* ctx) {
  (void)ctx;
  for (int64_t i = 0; i < n; ++i) {
    double a = *(const double*)(data[1] + i * s[1]), b = *(const double*)(data[2] + i * s[2]);
    *(double*)(data[0] + i * s[0]) = hypot(a, b);
  }
}
static void lerp_f32(char** data, const int64_t* s, int64_t n, void* ctx) {
  float w = (float)((lerp_ctx*)ctx)->w;
  for (int64_t i = 0; i < n; ++i) {
    float a = *(const float*)(data[1] + i * s[1]), b = *(const float*)(data[2] + i * s[2]);
    *(float*)(data[0] + i * s[0]) = a + w * (b - a);
  }
}
static void lerp_f64(char** data, const int64_t* s, int64_t n, void* ctx) {
  double w = ((lerp_ctx*)ctx)->w;
  for (int64_t i = 0; i < n; ++i) {
    double a = *(const double*)(data[1] + i * s[1]), b = *(const double*)(data[2] + i * s[2]);
    *(double*)(data[0] + i * s[0]) = a + w * (b - a);
  }
}

/* Shared driver: build the iterator, pick the loop by the common dtype, run, return the output. */
static int32_t run_binary(const vbt_host_api* host, const char* name, const vbt_value* args, vbt_loop_fn f32,
                          vbt_loop_fn f64, void* ctx, vbt_tensor* out) {
  vbt_tensor inputs[2] = {args[0].u.tensor, args[1].u.tensor};
  DLDataType any = {0, 0, 0};
  vbt_iter it = NULL;
  int32_t rc = host->iter_build(name, inputs, 2, any, &it);
  if (rc) return rc;
  DLDataType dt;
  host->iter_common_dtype(it, &dt);
  vbt_loop_fn loop = NULL;
  if (dt.code == kDLFloat && dt.bits == 32) loop = f32;
  if (dt.code == kDLFloat && dt.bits == 64) loop = f64;
  if (!loop) {
    host->iter_free(it);
    host->set_error("only float32 and float64 are supported (cast integer inputs first)");
    return VBT_STATUS_UNSUPPORTED;
  }
  rc = host->iter_for_each(it, loop, ctx);
  if (!rc) rc = host->iter_output(it, out);
  host->iter_free(it);
  return rc;
}

static int32_t hypot_cpu(const vbt_host_api* host, const vbt_value* args, int32_t nargs, vbt_tensor* out, void* user) {
  (void)user;
  if (nargs != 2) return VBT_STATUS_INVALID_ARGUMENT;
  return run_binary(host, "vbt_example_hypot", args, hypot_f32, hypot_f64, NULL, out);
}

static int32_t lerp_cpu(const vbt_host_api* host, const vbt_value* args, int32_t nargs, vbt_tensor* out, void* user) {
  (void)user;
  if (nargs != 3) return VBT_STATUS_INVALID_ARGUMENT;
  lerp_ctx ctx = {args[2].u.f};
  return run_binary(host, "vbt_example_lerp", args, lerp_f32, lerp_f64, &ctx, out);
}

VBT_PLUGIN_EXPORT int32_t vbt_plugin_init(const vbt_host_api* host, vbt_registrar reg) {
  int32_t rc = host->define_op(reg, "vbt_example_hypot(Tensor a, Tensor b) -> Tensor");
  if (!rc) rc = host->register_kernel(reg, "vbt_example_hypot", kDLCPU, hypot_cpu, NULL);
  if (!rc) rc = host->define_op(reg, "vbt_example_lerp(Tensor a, Tensor b, float w) -> Tensor");
  if (!rc) rc = host->register_kernel(reg, "vbt_example_lerp", kDLCPU, lerp_cpu, NULL);
  return rc;
}
