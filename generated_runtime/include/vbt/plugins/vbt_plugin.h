/* vibetensor plugin ABI: the C interface between the runtime and a dynamically loaded kernel library.
 *
 * Versioning: VBT_PLUGIN_ABI_MAJOR changes on any incompatible change (layouts, meanings); the
 * loader rejects a plugin built for another major. VBT_PLUGIN_ABI_MINOR grows when members are
 * appended to vbt_host_api; the loader rejects a plugin built against a NEWER minor than the runtime
 * provides (it might call members that do not exist). All enums have explicit values and only grow.
 *
 * A plugin exports two C symbols (VBT_PLUGIN_DEFINE_ABI_VERSION() writes the first one):
 *   void    vbt_plugin_abi_version(uint32_t* major, uint32_t* minor);
 *   int32_t vbt_plugin_init(const vbt_host_api* host, vbt_registrar reg);
 * The loader dlopens the library, checks the version, then calls vbt_plugin_init once. Inside init the
 * plugin defines ops (a schema string) and registers kernels per device through host->define_op /
 * host->register_kernel. Registrations are staged: they become visible only if init returns VBT_OK and
 * no registration failed; otherwise every one of them is rolled back and the library is unloaded.
 *
 * Tensors are opaque handles (vbt_tensor). Their metadata is DLPack's (DLDataType, DLDevice, shape and
 * strides in elements), read with host->tensor_info. Kernel argument handles are borrowed for the call;
 * handles made by host->empty / host->iter_output are owned by the plugin until returned through a
 * kernel's `out` or released with host->release_tensor.
 *
 * Elementwise helpers (host->iter_*) run the runtime's TensorIterator: broadcasting, type promotion
 * (inputs are cast to the common dtype), allocation of the output, any striding and aliasing of the
 * operands; the plugin supplies only the 1-d inner loop.
 *
 * ABI 1.1 appends host->register_kernel_ex: with VBT_KERNEL_OVERRIDE_BUILTIN a plugin replaces a built-in
 * op's CPU kernel (every call of that op on the CPU, vt.<op>, the Tensor operators and calls from inside
 * other kernels, runs the plugin's kernel, which receives the built-in's arguments in schema order). Without
 * the flag a built-in name is refused as before. Plugins built against 1.0 keep loading (they never read
 * the appended member). Plugin ops and overrides are registered in the runtime's dispatcher, so plugin
 * ops are also reachable through vibetensor._C.call and listed by _C.op_schemas().
 *
 * ABI 1.2 appends, for collectives and other ops over several tensors and devices (plugins built against 1.0
 * and 1.1 keep loading; sizeof(vbt_value) stays 16 bytes):
 *  - the schema argument type `Tensor[]` (a list of tensors, not optional, no default), passed to kernels as a
 *    vbt_value tagged VBT_VALUE_TENSOR_LIST whose u.list points to a vbt_tensor_list {data, size}: `size`
 *    borrowed handles, valid for the call (like a Tensor argument's handle). From Python: a list or tuple of
 *    tensors (`vt.ops.ns.op([t0, t1])`).
 *  - the return type `-> ()`: an op that only mutates its arguments; its kernel leaves *out NULL and the call
 *    returns None.
 *  - op names may carry one namespace, `ns::name` (reached from Python as vt.ops.ns.name).
 *  - the flag VBT_KERNEL_MULTI_DEVICE of register_kernel_ex, for a plugin's own op and kDLCUDA: the op is exempt
 *    from the dispatcher's one-device policy (its tensors may be on several CUDA devices, or mix CPU and CUDA).
 *    Dispatch of such an op: the CUDA kernel when any tensor argument (in a Tensor or a Tensor[]) is on a CUDA
 *    device, else the CPU kernel; the kernel itself checks where its tensors are. The runtime sets no current
 *    device for it.
 *  - host->cuda_current_stream(device): the calling thread's current CUDA stream of a device (a cudaStream_t as
 *    void*), so a CUDA kernel launches on it and needs no device-wide synchronisation. NULL is the legacy default
 *    stream (launching on it is correct); it is also what kDLCPU and a runtime without CUDA return.
 *
 * Errors: functions return a vbt_status; a failing kernel or init calls host->set_error(msg) and
 * returns non-zero; the runtime raises a Python exception carrying msg. No C++ exception ever crosses
 * this interface.
 */
#ifndef VBT_PLUGINS_VBT_PLUGIN_H_
#define VBT_PLUGINS_VBT_PLUGIN_H_

#include <stddef.h>
#include <stdint.h>

#include "vbt/interop/dlpack.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VBT_PLUGIN_ABI_MAJOR 1
#define VBT_PLUGIN_ABI_MINOR 2

#if defined(_WIN32)
#define VBT_PLUGIN_EXPORT __declspec(dllexport)
#else
#define VBT_PLUGIN_EXPORT __attribute__((visibility("default")))
#endif

typedef enum vbt_status {
  VBT_STATUS_OK = 0,
  VBT_STATUS_INVALID_ARGUMENT = 1,
  VBT_STATUS_DUPLICATE = 2,
  VBT_STATUS_NOT_FOUND = 3,
  VBT_STATUS_UNSUPPORTED = 4,
  VBT_STATUS_RUNTIME_ERROR = 5,
  VBT_STATUS_OUT_OF_MEMORY = 6,
  VBT_STATUS_WRONG_PHASE = 7 /* e.g. registering outside vbt_plugin_init */
} vbt_status;

/* Flags of register_kernel_ex (ABI 1.1). */
typedef enum vbt_kernel_flags {
  VBT_KERNEL_FLAGS_NONE = 0,
  VBT_KERNEL_OVERRIDE_BUILTIN = 1, /* replace a built-in op's kernel (CPU only) until the library is unloaded */
  VBT_KERNEL_MULTI_DEVICE = 2      /* ABI 1.2: the op's tensors may be on several devices (kDLCUDA kernels only) */
} vbt_kernel_flags;

typedef enum vbt_value_tag {
  VBT_VALUE_NONE = 0,
  VBT_VALUE_TENSOR = 1,
  VBT_VALUE_INT = 2,
  VBT_VALUE_FLOAT = 3,
  VBT_VALUE_BOOL = 4,
  VBT_VALUE_TENSOR_LIST = 5 /* ABI 1.2: u.list */
} vbt_value_tag;

typedef struct vbt_tensor_s* vbt_tensor;       /* opaque tensor handle */
typedef struct vbt_registrar_s* vbt_registrar; /* opaque, valid only during vbt_plugin_init */
typedef struct vbt_iter_s* vbt_iter;           /* opaque elementwise iterator */

/* A Tensor[] argument (ABI 1.2): `size` borrowed handles (none NULL), valid for the kernel call. */
typedef struct vbt_tensor_list {
  const vbt_tensor* data;
  int64_t size;
} vbt_tensor_list;

/* One kernel argument, in schema order. */
typedef struct vbt_value {
  int32_t tag; /* a vbt_value_tag */
  int32_t reserved;
  union {
    vbt_tensor tensor;
    int64_t i;
    double f;
    int32_t b;
    const vbt_tensor_list* list; /* VBT_VALUE_TENSOR_LIST (ABI 1.2) */
  } u;
} vbt_value;

/* A tensor's metadata; pointers stay valid while the handle lives. */
typedef struct vbt_tensor_info {
  void* data;             /* address of the first element (storage offset applied) */
  DLDevice device;
  DLDataType dtype;
  int32_t ndim;
  const int64_t* shape;   /* ndim sizes */
  const int64_t* strides; /* ndim strides, in elements */
  int64_t numel;
} vbt_tensor_info;

struct vbt_host_api;

/* A kernel: computes the op for `args` and stores a new tensor handle in *out. */
typedef int32_t (*vbt_kernel_fn)(const struct vbt_host_api* host, const vbt_value* args, int32_t nargs,
                                 vbt_tensor* out, void* user_data);
/* The inner loop of an elementwise op: data[0] is the output, data[1..] the inputs; byte_strides[i]
 * is operand i's stride in bytes; n elements. */
typedef void (*vbt_loop_fn)(char** data, const int64_t* byte_strides, int64_t n, void* ctx);

typedef struct vbt_host_api {
  uint32_t abi_major;
  uint32_t abi_minor;
  size_t struct_size; /* sizeof(vbt_host_api) of the runtime */

  /* --- registration (only inside vbt_plugin_init) --- */
  /* Defines a new op, e.g. "myadd(Tensor self, Tensor other, float alpha=1.0) -> Tensor". Argument
   * types: Tensor, int, float, bool, and since ABI 1.2 Tensor[]; returns: Tensor, or () since 1.2. A name
   * that already exists (runtime op or any plugin's) fails with VBT_STATUS_DUPLICATE. */
  int32_t (*define_op)(vbt_registrar reg, const char* schema);
  /* Registers the kernel of an op for one device type (kDLCPU or kDLCUDA). */
  int32_t (*register_kernel)(vbt_registrar reg, const char* op_name, int32_t dl_device_type, vbt_kernel_fn fn,
                             void* user_data);

  /* --- tensors --- */
  int32_t (*tensor_info)(vbt_tensor t, vbt_tensor_info* out);
  /* A new contiguous, uninitialised tensor. */
  int32_t (*empty)(const int64_t* shape, int32_t ndim, DLDataType dtype, DLDevice device, vbt_tensor* out);
  void (*release_tensor)(vbt_tensor t);

  /* --- elementwise iterator helpers (CPU) --- */
  /* Builds an iterator over `ninputs` inputs with a freshly allocated output. `out_dtype` with
   * bits == 0 means "the common dtype". */
  int32_t (*iter_build)(const char* op_name, const vbt_tensor* inputs, int32_t ninputs, DLDataType out_dtype,
                        vbt_iter* out);
  int32_t (*iter_common_dtype)(vbt_iter it, DLDataType* out);
  /* Runs the loop over every element (possibly in parallel chunks). */
  int32_t (*iter_for_each)(vbt_iter it, vbt_loop_fn loop, void* ctx);
  /* The output tensor (a new handle). */
  int32_t (*iter_output)(vbt_iter it, vbt_tensor* out);
  void (*iter_free)(vbt_iter it);

  /* --- errors --- */
  void (*set_error)(const char* message);

  /* --- ABI 1.1 (present when abi_minor >= 1) --- */
  /* register_kernel with flags (vbt_kernel_flags). VBT_KERNEL_OVERRIDE_BUILTIN: op_name must be a built-in
   * op and dl_device_type kDLCPU; one library at a time may override an op (VBT_STATUS_DUPLICATE otherwise).
   * Built-in arguments are passed as vbt_values: Tensor (an absent optional Tensor is NONE), int, float,
   * bool and Scalar (as INT, FLOAT or BOOL); an op with another argument type is VBT_STATUS_UNSUPPORTED
   * at call time. A given out= tensor receives the kernel's result (as a torch out= overload would). */
  int32_t (*register_kernel_ex)(vbt_registrar reg, const char* op_name, int32_t dl_device_type, vbt_kernel_fn fn,
                                void* user_data, uint32_t flags);

  /* --- ABI 1.2 (present when abi_minor >= 2) --- */
  /* The calling thread's current CUDA stream of `device` (a cudaStream_t). NULL means the legacy default stream,
   * and is also returned for kDLCPU and by a runtime built without CUDA. */
  void* (*cuda_current_stream)(DLDevice device);
} vbt_host_api;

typedef void (*vbt_plugin_abi_version_fn)(uint32_t* major, uint32_t* minor);
typedef int32_t (*vbt_plugin_init_fn)(const vbt_host_api* host, vbt_registrar reg);

#define VBT_PLUGIN_ABI_VERSION_SYMBOL "vbt_plugin_abi_version"
#define VBT_PLUGIN_INIT_SYMBOL "vbt_plugin_init"

/* Writes the version entry point for the ABI this plugin is compiled against. */
#define VBT_PLUGIN_DEFINE_ABI_VERSION()                                                          \
  VBT_PLUGIN_EXPORT void vbt_plugin_abi_version(uint32_t* major, uint32_t* minor) {              \
    *major = VBT_PLUGIN_ABI_MAJOR;                                                               \
    *minor = VBT_PLUGIN_ABI_MINOR;                                                               \
  }

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* VBT_PLUGINS_VBT_PLUGIN_H_ */
