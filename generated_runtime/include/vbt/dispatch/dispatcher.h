// Dispatcher: op name -> OpHandle (parsed schema + kernels per backend key) and the call path
//   wrapper layers (Python override, then Autograd; each may be unset) -> device policy ->
//   backend kernel.
// Note [Op table]: every op is declared exactly once in src/vbt/ops/op_table.cpp as an OpDef
// (name, schema string, kernels per device, later a backward). Adding an op = a kernel in its
// family's .cpp file + one OpDef line + a test. Nothing registers itself by static initialiser.
// Note [Device policy]: all tensor arguments of one call must be on one device; the first
// mismatch raises RuntimeError naming the op and both arguments. Two exceptions, as in torch: a 0-dim CPU tensor
// (e.g. a wrapped Python number) may join tensors of another device (the backend kernel reads it), and
// copy_ may cross devices (it runs on the non-CPU backend when either side is not on the CPU). Factories (no tensor inputs)
// take their device from a `Device? device` argument, defaulting to CPU. A run-time op marked multi_device
// (a plugin's VBT_KERNEL_MULTI_DEVICE, ABI 1.2: collectives over tensors on several GPUs) skips the check: it runs
// its CUDA kernel when any tensor argument is on a CUDA device, else its CPU kernel, and checks placement itself.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "vbt/dispatch/dispatch_key.h"
#include "vbt/dispatch/value.h"

namespace vbt {

using Kernel = Value (*)(const Args&);

// Note [out= by the dispatcher]: how an op's `Tensor? out=None` argument is honoured.
//  * Kernel: the kernel writes into out itself (elementwise ops through TensorIterator; their
//    in-place `<name>_` forms are the same kernel with out=self).
//  * Exact / Cast / DtypeFromOut: the kernel never sees out (the dispatcher passes None), computes
//    a fresh result, and the dispatcher checks out's dtype, resizes out to the result's shape (with
//    a warning when out had elements, as torch does) and copies the result into out's storage, then
//    returns out. Exact: out's dtype must equal the result's (RuntimeError naming both). Cast: the
//    result is converted when can_cast(result, out) (sum-like ops whose torch out= form casts).
//    DtypeFromOut: the op's `dtype` argument, when None, becomes out's dtype before the kernel runs
//    (factories, sum/prod/cumsum/cumprod), then as Exact.
enum class OutMode : uint8_t { Kernel, Exact, Cast, DtypeFromOut };

// One row of the op table. `any_device` marks a device-independent kernel (views and
// composites written in terms of other ops); it is used when the backend slot is empty.
struct OpDef {
  const char* name;
  const char* schema;  // e.g. "add(Tensor self, Tensor other, *, Scalar alpha=1) -> Tensor"
  Kernel cpu = nullptr;
  Kernel cuda = nullptr;
  Kernel any_device = nullptr;
  OutMode out_mode = OutMode::Kernel;  // Note [out= by the dispatcher]; only meaningful with an `out` argument
};

enum class ArgType : uint8_t { Tensor, Scalar, Int, Float, Bool, IntList, Str, TensorList, Dtype, Generator, Device };

struct ArgSpec {
  std::string name;
  ArgType type;
  bool optional = false;     // `T?`: may be None
  bool kwarg_only = false;   // after `*`
  bool has_default = false;
  Value default_value;       // valid when has_default
};

struct Schema {
  std::string name;
  std::vector<ArgSpec> args;
  std::string returns;
  static Schema parse(const std::string& text);  // internal assert on malformed schema
};

struct OpHandle;

// A kernel with state (a plugin's function pointer plus its user data): called with the op it runs for.
// Note [Run-time registration]: a boxed kernel of a backend key takes precedence over the plain one.
using BoxedKernel = std::function<Value(const OpHandle&, const Args&)>;

struct OpHandle {
  OpDef def;
  Schema schema;
  int out_index = -1;    // position of the `out` argument, -1 when the op has none
  int dtype_index = -1;  // position of a `ScalarType? dtype` argument, -1 when none
  Kernel kernel_for(DispatchKey key) const;
  BoxedKernel boxed_cpu, boxed_cuda;  // Note [Run-time registration]
  bool runtime = false;               // registered by register_op (not in the op table)
  bool multi_device = false;          // exempt from the one-device policy (Note [Device policy])
  // Storage of def.name / def.schema for run-time ops (heap strings: stable when the handle moves).
  std::shared_ptr<const std::string> owned_name, owned_schema;
};

// A wrapper layer: may inspect/replace the call, and continues with next(args).
using LayerFn = std::function<Value(const OpHandle&, Args&, const std::function<Value(Args&)>& next)>;

class Dispatcher {
 public:
  static Dispatcher& get();
  const OpHandle& find(const std::string& name) const;  // RuntimeError if unknown
  const OpHandle* find_or_null(const std::string& name) const;
  const std::vector<OpHandle>& ops() const { return ops_; }
  Value call(const OpHandle& op, Args& args) const;
  // Installs (or with an empty function removes) a wrapper layer for Autograd or Python.
  void set_layer(DispatchKey key, LayerFn fn);
  // Runtime registration of a backend kernel (the CUDA subsystem fills the CUDA column at import; the op
  // must be in the op table). Not thread-safe: call before ops run concurrently. Returns the kernel it
  // replaced, so a caller can restore it with a second set_kernel.
  Kernel set_kernel(const std::string& op_name, DispatchKey key, Kernel k);

  // Note [Run-time registration]: ops added after start-up (C plugins, vt.ops.load_library).
  //  * register_op adds a new op (name + schema, kernels optional) and returns its handle; RuntimeError
  //    when the name exists. Storage for up to kMaxRuntimeOps run-time ops is reserved at start-up, so
  //    handles (and ops().data()) never move while ops are added: the built-in ops' handles are stable
  //    for the process lifetime. Run-time ops go through the Autograd layer too: without a backward attached
  //    from Python, backward through them raises NotImplementedError (autograd/layer.cpp, Note [Run-time ops..]).
  //  * remove_op removes a run-time op (rollback); RuntimeError for unknown or built-in ops. Handles of
  //    run-time ops registered after it move (built-in handles never do).
  //  * set_boxed_kernel installs (or with an empty function removes) a boxed kernel for CPU or CUDA,
  //    taking precedence over the op's plain kernel (override of a built-in for one device); it returns
  //    the boxed kernel it replaced (empty when there was none), so overrides can be undone in order.
  // Not thread-safe against concurrent calls of the same op: register before the op runs concurrently.
  static constexpr size_t kMaxRuntimeOps = 4096;
  const OpHandle& register_op(const OpDef& def);
  void remove_op(const std::string& name);
  BoxedKernel set_boxed_kernel(const std::string& op_name, DispatchKey key, BoxedKernel k);
  // Marks a run-time op multi_device (Note [Device policy]); RuntimeError for unknown or built-in ops.
  void set_multi_device(const std::string& op_name, bool on);
  size_t builtin_op_count() const { return builtin_count_; }
  // The dispatcher's out= epilogue (Note [out= by the dispatcher]) for a result computed elsewhere
  // (overlay functions whose Python signature differs from the schema): checks out's dtype by the
  // op's out_mode (Kernel, i.e. an op without dispatcher out=, counts as Cast), resizes out (warning when it had elements), copies.
  Tensor write_out(const OpHandle& op, const Tensor& out, const Tensor& result) const;

 private:
  Dispatcher();
  Value call_backend(const OpHandle& op, Args& args) const;
  Value call_with_out(const OpHandle& op, Kernel k, Args& args) const;
  std::vector<OpHandle> ops_;
  std::unordered_map<std::string, size_t> index_;
  size_t builtin_count_ = 0;
  LayerFn layers_[kNumDispatchKeys];
};

// Note [Layer re-entry]: a layer's own code runs with that layer switched off on its thread, so the ops it calls go
// below it (the autograd layer's kernels do not record themselves). LayerReentry switches one layer back on for a
// scope: the autograd layer uses it to record an op as the ops it is composed of (Note [Batched matmul under
// autograd] in src/vbt/autograd/formulas.cpp). Layers before it in the chain stay as they were.
class LayerReentry {
 public:
  explicit LayerReentry(DispatchKey key);
  ~LayerReentry();
  LayerReentry(const LayerReentry&) = delete;
  LayerReentry& operator=(const LayerReentry&) = delete;

 private:
  uint32_t saved_;
};

// Convenience entry points for C++ callers (kernels composing ops, tests). Trailing
// arguments with defaults may be omitted.
Value call_op(const std::string& name, Args args);
Tensor call_tensor_op(const std::string& name, Args args);

// The op table (src/vbt/ops/op_table.cpp).
const std::vector<OpDef>& op_table();

}  // namespace vbt
