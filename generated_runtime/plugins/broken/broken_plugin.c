/* Plugins that break one rule of the plugin ABI each, selected at compile time:
 *   VBT_BROKEN_missing_init      exports the version but no vbt_plugin_init
 *   VBT_BROKEN_wrong_major       built for ABI major VBT_PLUGIN_ABI_MAJOR + 1
 *   VBT_BROKEN_newer_minor       built for a minor newer than the runtime's
 *   VBT_BROKEN_init_fails        registers an op and its kernel, then fails
 *   VBT_BROKEN_duplicate_op      defines a good op, then defines it again (and ignores the error)
 *   VBT_BROKEN_duplicate_builtin defines a good op, then one named like a built-in op ("add")
 * The loader must reject each, roll back what it registered, and leave the process healthy. */
#include "vbt/plugins/vbt_plugin.h"

#if defined(VBT_BROKEN_wrong_major)
VBT_PLUGIN_EXPORT void vbt_plugin_abi_version(uint32_t* major, uint32_t* minor) {
  *major = VBT_PLUGIN_ABI_MAJOR + 1;
  *minor = 0;
}
#elif defined(VBT_BROKEN_newer_minor)
VBT_PLUGIN_EXPORT void vbt_plugin_abi_version(uint32_t* major, uint32_t* minor) {
  *major = VBT_PLUGIN_ABI_MAJOR;
  *minor = VBT_PLUGIN_ABI_MINOR + 7;
}
#else
VBT_PLUGIN_DEFINE_ABI_VERSION()
#endif

static int32_t identity_cpu(const vbt_host_api* host, const vbt_value* args, int32_t nargs, vbt_tensor* out, void* u) {
  (void)host; (void)nargs; (void)u; (void)args; (void)out;
  host->set_error("this kernel must never run");
  return VBT_STATUS_RUNTIME_ERROR;
}

#if !defined(VBT_BROKEN_missing_init)
VBT_PLUGIN_EXPORT int32_t vbt_plugin_init(const vbt_host_api* host, vbt_registrar reg) {
#if defined(VBT_BROKEN_init_fails)
  if (host->define_op(reg, "vbt_broken_partial(Tensor x) -> Tensor")) return VBT_STATUS_RUNTIME_ERROR;
  if (host->register_kernel(reg, "vbt_broken_partial", kDLCPU, identity_cpu, 0)) return VBT_STATUS_RUNTIME_ERROR;
  host->set_error("broken plugin: simulated failure after a partial registration");
  return VBT_STATUS_RUNTIME_ERROR;
#elif defined(VBT_BROKEN_duplicate_op)
  host->define_op(reg, "vbt_broken_dup(Tensor x) -> Tensor");
  host->register_kernel(reg, "vbt_broken_dup", kDLCPU, identity_cpu, 0);
  host->define_op(reg, "vbt_broken_dup(Tensor x, Tensor y) -> Tensor"); /* error ignored on purpose */
  return VBT_STATUS_OK;
#elif defined(VBT_BROKEN_duplicate_builtin)
  int32_t rc = host->define_op(reg, "vbt_broken_before_builtin(Tensor x) -> Tensor");
  if (!rc) rc = host->register_kernel(reg, "vbt_broken_before_builtin", kDLCPU, identity_cpu, 0);
  if (!rc) rc = host->define_op(reg, "add(Tensor self, Tensor other) -> Tensor");
  return rc;
#else
  (void)host; (void)reg; (void)identity_cpu;
  return VBT_STATUS_OK;
#endif
}
#endif
