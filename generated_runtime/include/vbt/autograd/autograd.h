// Reverse-mode autograd: a wrapper layer of the dispatcher (DispatchKey::Autograd).
//
// Note [Autograd design]
//   * Every tensor that takes part in differentiation carries an AutogradMeta (stored in
//     TensorImpl::autograd_meta): requires_grad, the accumulated .grad, grad_fn (the Node that
//     produced it, null for leaves), output_nr (which output of grad_fn it is), hooks, and for
//     leaves a weak reference to their AccumulateGrad node.
//   * A Node maps the gradients of its forward outputs to the gradients of its forward inputs;
//     next_edges[i] says where the gradient of input i flows (a Node and which of its inputs).
//   * The autograd layer (install()) wraps every dispatcher call: when grad mode is on and a
//     differentiable input requires grad, it runs the op below the layer, then builds a
//     FormulaNode from the op's backward formula (src/vbt/autograd/formulas.cpp) and attaches it
//     to the outputs. Formulas are written with dispatcher ops, so running them with grad mode
//     on (create_graph) records a graph of the backward itself.
//   * The engine (engine.cpp) counts dependencies from the roots, keeps one gradient buffer per
//     node input and a ready queue (highest sequence number first, like PyTorch's CPU queue).
//   * Saved tensors record the storage version when saved and refuse to unpack after an
//     in-place change (PyTorch's error text). Outputs are saved without their grad_fn (no
//     reference cycle) and get it back on unpack.
//   * In-place ops (name ending in '_' or an out= argument) rebase the written tensor's history.
//     Views made by view ops in grad mode remember their base; an in-place op on a view rebases
//     the base's history onto a CopySlices node (layer.cpp), and a view whose storage version
//     moved on regenerates its grad_fn from the base's current history (refresh in
//     autograd_meta.cpp), as PyTorch does.
//   * Freeing a graph never recurses (release_node), so graphs of any depth are fine.
//   * On devices with streams (CUDA) every node runs its backward on the stream its forward ran on, and
//     the engine orders gradients across streams with events (Note [Autograd streams] in engine.cpp).
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "vbt/autograd/streams.h"
#include "vbt/core/tensor_impl.h"
#include "vbt/dispatch/value.h"

namespace vbt::autograd {

struct Node;

struct Edge {
  std::shared_ptr<Node> fn;
  uint32_t input_nr = 0;
  bool valid() const { return fn != nullptr; }
};

// A hook on a tensor's gradient: returns a replacement gradient or an undefined Tensor to keep it.
using GradHook = std::function<Tensor(const Tensor&)>;

// Shape/dtype/device of one forward output (= one backward input), used to check gradients
// and to materialise zeros for outputs that received no gradient.
struct InputMeta {
  Shape sizes;
  ScalarType dtype = ScalarType::Float32;
  Device device{};
};

struct Node : std::enable_shared_from_this<Node> {
  Node();
  // Releases next_edges iteratively (see release_node), so very long graphs do not recurse.
  virtual ~Node();
  // grads: one per forward output (undefined where no gradient reached it).
  // Returns one gradient per next edge (undefined = no gradient).
  virtual std::vector<Tensor> apply(std::vector<Tensor>&& grads) = 0;
  virtual std::string name() const = 0;
  // Frees saved tensors (retain_graph=False); a later apply raises.
  virtual void release_variables() {}

  std::vector<Edge> next_edges;
  std::vector<InputMeta> input_meta;
  // Hooks on the gradient of one forward output (tensor.register_hook on a non-leaf).
  std::vector<std::pair<uint32_t, GradHook>> pre_hooks;
  // retain_grad(): where to store the gradient of a given output.
  std::vector<std::pair<uint32_t, std::weak_ptr<TensorImpl>>> retained;
  uint64_t sequence_nr;
  // The stream that was current on the device of the node's (first) output when its forward op ran;
  // backward runs the node on it (Note [Autograd streams] in engine.cpp). Undefined: no stream (CPU).
  StreamRef stream;
};

struct AutogradMeta : AutogradMetaInterface {
  ~AutogradMeta() override;
  bool requires_grad = false;
  Tensor grad;
  std::shared_ptr<Node> grad_fn;
  std::weak_ptr<Node> grad_accumulator;
  uint32_t output_nr = 0;
  std::vector<GradHook> leaf_hooks;  // hooks of a leaf run before accumulation
  bool retains_grad = false;
  // For a view made by a view op in grad mode: the tensor owning the storage (never itself a
  // view). An in-place op on the view rebases the base's history (CopySlices).
  std::shared_ptr<TensorImpl> view_base;
  // Storage version when the view's grad_fn was set; a different version means the base or a
  // sibling view changed in place, and the view's history is regenerated from the base's.
  int64_t view_version = -1;
};

// Drops a reference to a node; nested releases (a node's edges, a saved tensor's grad_fn) are
// queued and drained by the outermost call, so freeing a graph of any depth uses constant stack.
void release_node(std::shared_ptr<Node>&& node);

// Metadata access (never null for get_or_create; may be null for get).
AutogradMeta* get_meta(const Tensor& t);
AutogradMeta& get_or_create_meta(const Tensor& t);
bool requires_grad(const Tensor& t);
bool is_leaf(const Tensor& t);
void set_requires_grad(const Tensor& t, bool value);  // RuntimeError on non-leaf / non-float
std::shared_ptr<Node> grad_fn(const Tensor& t);
// The edge a gradient of t flows into: grad_fn/output_nr, or the leaf's AccumulateGrad.
Edge gradient_edge(const Tensor& t);
// Sets t's history (grad_fn, output_nr) and requires_grad.
void set_history(const Tensor& t, std::shared_ptr<Node> fn, uint32_t output_nr);
// A new TensorImpl on the same storage and geometry, without autograd metadata.
Tensor detach(const Tensor& t);
void detach_(const Tensor& t);
void register_hook(const Tensor& t, GradHook hook);
void retain_grad(const Tensor& t);

// Thread-local grad mode (no_grad / enable_grad / set_grad_enabled).
struct GradMode {
  static bool is_enabled();
  static void set_enabled(bool enabled);
};
struct AutoGradMode {
  bool prev;
  explicit AutoGradMode(bool enabled) : prev(GradMode::is_enabled()) { GradMode::set_enabled(enabled); }
  ~AutoGradMode() { GradMode::set_enabled(prev); }
};

// A tensor saved for backward: version-checked; outputs are saved without their grad_fn.
class SavedVariable {
 public:
  SavedVariable() = default;
  SavedVariable(const Tensor& t, bool is_output, Node* owner = nullptr);
  Tensor unpack(const Node* owner) const;  // undefined when nothing was saved
  void reset() { data_ = Tensor(); was_freed_ = true; }
  bool defined() const { return data_.defined() || was_freed_; }

 private:
  Tensor data_;
  int64_t version_ = 0;
  bool is_output_ = false;
  bool was_freed_ = false;
  bool requires_grad_ = false;
  uint32_t output_nr_ = 0;
  std::weak_ptr<Node> grad_fn_;   // for outputs: the owner, re-attached on unpack
  std::string producer_;          // name of the node that produced the tensor (error text)
};

// The leaf's sink: accumulates into AutogradMeta::grad.
struct AccumulateGrad : Node {
  explicit AccumulateGrad(std::shared_ptr<TensorImpl> leaf);
  std::vector<Tensor> apply(std::vector<Tensor>&& grads) override;
  std::string name() const override { return "AccumulateGrad"; }
  std::shared_ptr<TensorImpl> variable;
};

// A node whose backward is an arbitrary function (custom autograd.Function from Python, tests).
struct LambdaNode : Node {
  using Fn = std::function<std::vector<Tensor>(std::vector<Tensor>&&)>;
  LambdaNode(std::string name, Fn fn) : name_(std::move(name)), fn_(std::move(fn)) {}
  std::vector<Tensor> apply(std::vector<Tensor>&& grads) override;
  std::string name() const override { return name_; }
  void release_variables() override;
  std::function<void()> on_release;
  bool released = false;

 private:
  std::string name_;
  Fn fn_;
};

// Creates a node for a custom function: edges to `inputs` (undefined or non-requiring ones get
// an invalid edge), attaches it as grad_fn of every floating `outputs[i]`.
std::shared_ptr<LambdaNode> make_custom_node(const std::string& name, const std::vector<Tensor>& inputs,
                                             const std::vector<Tensor>& outputs, LambdaNode::Fn fn);

// Engine entry points.
// backward: accumulates into leaves' .grad (or, when `inputs` is non-empty, only into those).
void backward(const std::vector<Tensor>& outputs, const std::vector<Tensor>& grad_outputs, bool retain_graph,
              bool create_graph, const std::vector<Tensor>& inputs = {});
// grad: returns d(outputs)/d(inputs) without touching .grad. allow_unused=false raises for an
// input that the outputs do not depend on.
std::vector<Tensor> grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& grad_outputs,
                         const std::vector<Tensor>& inputs, bool retain_graph, bool create_graph, bool allow_unused);

// Installs the autograd layer into the dispatcher (idempotent).
void install();

// Coverage: names of ops with a backward formula, and ops known to be non-differentiable.
std::vector<std::string> ops_with_backward();
std::vector<std::string> nondifferentiable_ops();

// Helpers shared by formulas and the engine (dispatcher calls).
Tensor sum_to(const Tensor& g, const Shape& shape);
Tensor zeros_like_meta(const InputMeta& m);

}  // namespace vbt::autograd
