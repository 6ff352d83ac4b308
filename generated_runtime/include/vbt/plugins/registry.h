// Extension ops: ops defined at run time by C plugins (vbt_plugin.h), next to the op table's ops.
// Policy:
//  * An extension op has a schema restricted to Tensor/int/float/bool arguments (optional `T?`, defaults)
//    returning one Tensor, and one kernel per device type (DLPack device type: kDLCPU, kDLCUDA).
//  * load_library() is transactional: everything a plugin registers during its init is staged and
//    committed only when init succeeds and no registration failed; otherwise it is rolled back, the
//    library is unloaded, and vbt::Error(Runtime) explains why. Loading the same path twice is a no-op.
//  * Names are unique across the runtime's op table and every loaded plugin.
//  * Committed ops and kernels live in the dispatcher (Dispatcher::register_op + boxed kernels, Note
//    [Run-time registration]): reachable through call_op / _C.call, listed by _C.op_schemas(), device
//    policy, Python and autograd layers as for built-in ops (autograd: NotImplementedError in backward unless
//    vibetensor.torch.library.register_autograd attached a backward). This registry keeps the
//    plugin-side metadata (ExtSchema, owning library) and what each library registered, for rollback.
//  * ABI 1.1: a plugin may override a built-in op's CPU kernel with VBT_KERNEL_OVERRIDE_BUILTIN (one
//    library per op); unload_library() and a failed commit restore the previous kernel.
//  * ABI 1.2: `Tensor[]` arguments (ExtArgType::TensorList), ops returning `()` (returns_none: the kernel only
//    mutates its arguments), `ns::name` op names, ops exempt from the one-device policy
//    (VBT_KERNEL_MULTI_DEVICE: OpHandle::multi_device, Note [Device policy] in dispatcher.h) and
//    host->cuda_current_stream (answered by the provider the CUDA-enabled _C installs, NULL otherwise).
//  * Loads and unloads are serialised (one at a time); registering while the same ops run on other
//    threads is not supported.
#pragma once
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "vbt/core/tensor_impl.h"

namespace vbt::plugins {

enum class ExtArgType : uint8_t { Tensor = 0, Int = 1, Float = 2, Bool = 3, TensorList = 4 };
using ExtValue = std::variant<std::monostate, Tensor, int64_t, double, bool, std::vector<Tensor>>;

struct ExtArg {
  std::string name;
  ExtArgType type = ExtArgType::Tensor;
  bool optional = false;
  bool has_default = false;
  ExtValue default_value;
};

struct ExtSchema {
  std::string text, name;
  std::vector<ExtArg> args;
  bool returns_none = false;  // `-> ()` (ABI 1.2)
  // Throws vbt::Error(Value) naming the problem on a malformed or unsupported schema.
  static ExtSchema parse(const std::string& text);
};

// Loads a plugin; returns the names of the ops it defined.
std::vector<std::string> load_library(const std::string& path);
std::vector<std::string> loaded_libraries();
// Rolls back everything the library at `path` registered (its ops leave the dispatcher, overridden built-in
// kernels are restored); false when it is not loaded. The shared object stays mapped.
bool unload_library(const std::string& path);
// Built-in ops whose CPU kernel a loaded plugin overrides (VBT_KERNEL_OVERRIDE_BUILTIN).
std::vector<std::string> overridden_ops();

bool has_ext_op(const std::string& name);
ExtSchema ext_op_schema(const std::string& name);  // RuntimeError if unknown
std::vector<std::string> ext_op_names();
// Calls an extension op with arguments in schema order (defaults already filled in). An op returning `()`
// gives an undefined Tensor.
Tensor call_ext_op(const std::string& name, std::vector<ExtValue> args);

// host->cuda_current_stream asks this function (device index -> cudaStream_t as void*); set by the Python
// extension when it is built with CUDA. Without one the member returns NULL.
using CudaStreamProvider = void* (*)(int device_index);
void set_cuda_stream_provider(CudaStreamProvider fn);

}  // namespace vbt::plugins
