// Autograd metadata, grad mode, saved variables and the leaf/custom nodes
// (Note [Autograd design] in include/vbt/autograd/autograd.h).
#include <atomic>

#include "formula_node.h"
#include "vbt/autograd/autograd.h"
#include "vbt/core/error.h"
#include "vbt/dispatch/dispatcher.h"

namespace vbt::autograd {

namespace {
std::atomic<uint64_t> g_next_sequence_nr{0};
thread_local bool tls_grad_enabled = true;

std::string legacy_type_name(const Tensor& t) {
  switch (t.dtype()) {
    case ScalarType::Float32: return "torch.FloatTensor";
    case ScalarType::Float64: return "torch.DoubleTensor";
    case ScalarType::Float16: return "torch.HalfTensor";
    case ScalarType::BFloat16: return "torch.BFloat16Tensor";
    case ScalarType::Int64: return "torch.LongTensor";
    case ScalarType::Int32: return "torch.IntTensor";
    case ScalarType::Bool: return "torch.BoolTensor";
    default: return std::string("torch.") + dtype_name(t.dtype()) + "Tensor";
  }
}
}  // namespace

Node::Node() : sequence_nr(g_next_sequence_nr.fetch_add(1)) {}

namespace {
thread_local std::vector<std::shared_ptr<Node>>* tls_pending_release = nullptr;
}

void release_node(std::shared_ptr<Node>&& node) {
  if (!node) return;
  if (tls_pending_release) {
    tls_pending_release->push_back(std::move(node));
    return;
  }
  std::vector<std::shared_ptr<Node>> pending;
  tls_pending_release = &pending;
  node.reset();
  while (!pending.empty()) {
    std::shared_ptr<Node> n = std::move(pending.back());
    pending.pop_back();
    n.reset();
  }
  tls_pending_release = nullptr;
}

Node::~Node() {
  for (Edge& e : next_edges) release_node(std::move(e.fn));
}

AutogradMeta::~AutogradMeta() { release_node(std::move(grad_fn)); }

bool GradMode::is_enabled() { return tls_grad_enabled; }
void GradMode::set_enabled(bool enabled) { tls_grad_enabled = enabled; }

AutogradMeta* get_meta(const Tensor& t) {
  if (!t.defined() || !t.impl()->autograd_meta) return nullptr;
  return static_cast<AutogradMeta*>(t.impl()->autograd_meta.get());
}

AutogradMeta& get_or_create_meta(const Tensor& t) {
  VBT_INTERNAL_ASSERT(t.defined(), "autograd metadata of an undefined tensor");
  if (!t.impl()->autograd_meta) t.impl()->autograd_meta = std::make_unique<AutogradMeta>();
  return *static_cast<AutogradMeta*>(t.impl()->autograd_meta.get());
}

namespace {
// Regenerates the history of a view whose base (or a sibling view) was modified in place since
// the view's grad_fn was set (PyTorch does the same lazily).
void refresh_view(const Tensor& t, AutogradMeta* m) {
  if (!m || !m->view_base || m->view_version == t.impl()->version()) return;
  Tensor base(m->view_base);
  AutogradMeta* bm = get_meta(base);
  if (!bm || !(bm->requires_grad || bm->grad_fn)) return;
  if (!GradMode::is_enabled()) return;
  if (auto node = make_view_of_base_node(base, t)) {
    m->grad_fn = std::move(node);
    m->output_nr = 0;
    m->requires_grad = false;
  }
  m->view_version = t.impl()->version();
}
}  // namespace

bool requires_grad(const Tensor& t) {
  AutogradMeta* m = get_meta(t);
  refresh_view(t, m);
  return m && (m->requires_grad || m->grad_fn);
}

bool is_leaf(const Tensor& t) {
  AutogradMeta* m = get_meta(t);
  refresh_view(t, m);
  return !m || !m->grad_fn;
}

std::shared_ptr<Node> grad_fn(const Tensor& t) {
  AutogradMeta* m = get_meta(t);
  refresh_view(t, m);
  return m ? m->grad_fn : nullptr;
}

void set_requires_grad(const Tensor& t, bool value) {
  if (!is_leaf(t)) {
    throw_error(ErrorKind::Runtime,
                "you can only change requires_grad flags of leaf variables. If you want to use a computed variable "
                "in a subgraph that doesn't require differentiation use var_no_grad = var.detach().");
  }
  if (value && !is_floating(t.dtype())) {
    throw_error(ErrorKind::Runtime, "only Tensors of floating point and complex dtype can require gradients");
  }
  if (!value && !get_meta(t)) return;
  get_or_create_meta(t).requires_grad = value;
}

Edge gradient_edge(const Tensor& t) {
  AutogradMeta* m = get_meta(t);
  refresh_view(t, m);
  if (!m) return Edge{};
  if (m->grad_fn) return Edge{m->grad_fn, m->output_nr};
  if (!m->requires_grad) return Edge{};
  std::shared_ptr<Node> acc = m->grad_accumulator.lock();
  if (!acc) {
    acc = std::make_shared<AccumulateGrad>(t.impl_ptr());
    m->grad_accumulator = acc;
  }
  return Edge{acc, 0};
}

void set_history(const Tensor& t, std::shared_ptr<Node> fn, uint32_t output_nr) {
  AutogradMeta& m = get_or_create_meta(t);
  if (fn && !fn->stream.defined()) fn->stream = current_stream_of(t.device());
  m.grad_fn = std::move(fn);
  m.output_nr = output_nr;
  m.requires_grad = false;  // derived from grad_fn for non-leaves
  m.grad_accumulator.reset();
}

Tensor detach(const Tensor& t) {
  Tensor d = make_view(t, t.sizes(), t.strides(), t.storage_offset());
  d.impl()->wrapped_number = t.impl()->wrapped_number;
  return d;
}

void detach_(const Tensor& t) {
  AutogradMeta* m = get_meta(t);
  if (!m) return;
  m->grad_fn.reset();
  m->requires_grad = false;
  m->output_nr = 0;
}

void register_hook(const Tensor& t, GradHook hook) {
  if (!requires_grad(t)) {
    throw_error(ErrorKind::Runtime, "cannot register a hook on a tensor that doesn't require gradient");
  }
  AutogradMeta& m = get_or_create_meta(t);
  if (m.grad_fn) m.grad_fn->pre_hooks.emplace_back(m.output_nr, std::move(hook));
  else m.leaf_hooks.push_back(std::move(hook));
}

void retain_grad(const Tensor& t) {
  if (!requires_grad(t)) throw_error(ErrorKind::Runtime, "can't retain_grad on Tensor that has requires_grad=False");
  AutogradMeta& m = get_or_create_meta(t);
  if (!m.grad_fn || m.retains_grad) return;  // leaves always keep .grad
  m.retains_grad = true;
  m.grad_fn->retained.emplace_back(m.output_nr, std::weak_ptr<TensorImpl>(t.impl_ptr()));
}

// ---- SavedVariable ----------------------------------------------------------------------------

SavedVariable::SavedVariable(const Tensor& t, bool is_output, Node* owner) {
  if (!t.defined()) return;
  version_ = t.impl()->version();
  is_output_ = is_output;
  if (is_output) {
    data_ = detach(t);  // no reference to the owning node: no cycle
    requires_grad_ = requires_grad(t);
    if (AutogradMeta* m = get_meta(t)) output_nr_ = m->output_nr;
    if (owner) {
      grad_fn_ = owner->weak_from_this();
      producer_ = owner->name();
    }
  } else {
    data_ = t;
    if (auto fn = grad_fn(t)) producer_ = fn->name();
  }
}

Tensor SavedVariable::unpack(const Node* owner) const {
  if (was_freed_) {
    throw_error(ErrorKind::Runtime,
                "Trying to backward through the graph a second time (or directly access saved tensors after they "
                "have already been freed). Saved intermediate values of the graph are freed when you call "
                ".backward() or autograd.grad(). Specify retain_graph=True if you need to backward through the graph "
                "a second time or if you need to access saved tensors after calling backward.");
  }
  if (!data_.defined()) return Tensor();
  int64_t now = data_.impl()->version();
  if (now != version_) {
    std::string shape = shape_str(data_.sizes());
    std::string who = producer_.empty() ? std::string() : ", which is output " + std::to_string(output_nr_) + " of " + producer_ + ",";
    throw_error(ErrorKind::Runtime,
                "one of the variables needed for gradient computation has been modified by an inplace operation: [",
                legacy_type_name(data_), " ", shape, "]", who, " is at version ", now, "; expected version ", version_,
                " instead. Hint: the backtrace further above can point to the operation that failed to compute its "
                "gradient. The variable in question was changed in there or anywhere later. Good luck!");
  }
  if (!is_output_) return data_;
  // An output: give it back its history when a graph of the backward is being recorded.
  if (requires_grad_ && GradMode::is_enabled()) {
    if (auto fn = grad_fn_.lock()) {
      Tensor t = detach(data_);
      set_history(t, fn, output_nr_);
      return t;
    }
  }
  return data_;
}

// ---- AccumulateGrad -------------------------------------------------------------------------

AccumulateGrad::AccumulateGrad(std::shared_ptr<TensorImpl> leaf) : variable(std::move(leaf)) {
  sequence_nr = UINT64_MAX;
  input_meta.push_back(InputMeta{variable->sizes(), variable->dtype(), variable->device()});
  stream = current_stream_of(variable->device());
}

std::vector<Tensor> AccumulateGrad::apply(std::vector<Tensor>&& grads) {
  Tensor g = grads.empty() ? Tensor() : grads[0];
  if (!g.defined()) return {};
  Tensor var(variable);
  AutogradMeta& m = get_or_create_meta(var);
  if (!m.grad.defined()) {
    if (GradMode::is_enabled()) {
      // create_graph: keep the gradient's history (a contiguous copy when it is a strided view).
      m.grad = g.is_contiguous() ? g : call_tensor_op("contiguous", {g});
    } else {
      m.grad = call_tensor_op("clone", {g});  // never alias a buffer of the graph
    }
  } else if (GradMode::is_enabled()) {
    m.grad = call_tensor_op("add", {m.grad, g});
  } else {
    call_op("add", {m.grad, g, Scalar(int64_t(1)), m.grad});  // in place
  }
  return {};
}

// ---- LambdaNode (custom functions) ------------------------------------------------------------

std::vector<Tensor> LambdaNode::apply(std::vector<Tensor>&& grads) {
  if (released) {
    throw_error(ErrorKind::Runtime,
                "Trying to backward through the graph a second time (or directly access saved tensors after they "
                "have already been freed). Saved intermediate values of the graph are freed when you call "
                ".backward() or autograd.grad(). Specify retain_graph=True if you need to backward through the graph "
                "a second time or if you need to access saved tensors after calling backward.");
  }
  for (size_t i = 0; i < grads.size() && i < input_meta.size(); ++i)
    if (!grads[i].defined()) grads[i] = zeros_like_meta(input_meta[i]);
  return fn_(std::move(grads));
}

void LambdaNode::release_variables() {
  if (on_release) {
    released = true;
    on_release();
  }
}

std::shared_ptr<LambdaNode> make_custom_node(const std::string& name, const std::vector<Tensor>& inputs,
                                             const std::vector<Tensor>& outputs, LambdaNode::Fn fn) {
  auto node = std::make_shared<LambdaNode>(name, std::move(fn));
  for (const Tensor& t : inputs) node->next_edges.push_back(t.defined() ? gradient_edge(t) : Edge{});
  for (size_t i = 0; i < outputs.size(); ++i) {
    const Tensor& o = outputs[i];
    if (!o.defined()) {
      node->input_meta.push_back(InputMeta{});
      continue;
    }
    node->input_meta.push_back(InputMeta{o.sizes(), o.dtype(), o.device()});
    if (is_floating(o.dtype())) set_history(o, node, static_cast<uint32_t>(i));
  }
  return node;
}

Tensor zeros_like_meta(const InputMeta& m) {
  return call_tensor_op("zeros", {m.sizes, m.dtype, m.device});
}

Tensor sum_to(const Tensor& g, const Shape& shape) {
  if (g.sizes() == shape) return g;
  int64_t lead = g.dim() - static_cast<int64_t>(shape.size());
  VBT_CHECK(lead >= 0, "autograd: cannot reduce gradient of shape ", shape_str(g.sizes()), " to ", shape_str(shape));
  Shape dims;
  for (int64_t i = 0; i < g.dim(); ++i) {
    if (i < lead) dims.push_back(i);
    else if (shape[i - lead] == 1 && g.sizes()[i] != 1) dims.push_back(i);
  }
  // Fast path: reducing only the leading dims of a contiguous CPU float tensor (the bias-gradient
  // pattern) is a vector-matrix product with BLAS: ones[N] @ g.view(N, M).
  bool leading = !dims.empty() && g.is_contiguous() && g.device().type == DeviceType::CPU &&
                 (g.dtype() == ScalarType::Float32 || g.dtype() == ScalarType::Float64) && !GradMode::is_enabled();
  for (size_t i = 0; leading && i < dims.size(); ++i) leading = dims[i] == static_cast<int64_t>(i);
  if (leading) {
    int64_t k = static_cast<int64_t>(dims.size()), n = 1, m = 1;
    for (int64_t i = 0; i < g.dim(); ++i) (i < k ? n : m) *= g.sizes()[i];
    if (n >= 64) {
      Tensor ones = call_tensor_op("ones", {Shape{n}, g.dtype(), g.device()});
      Tensor r = call_tensor_op("matmul", {ones, call_tensor_op("reshape", {g, Shape{n, m}})});
      return call_tensor_op("reshape", {r, shape});
    }
  }
  // ... and reducing only the trailing dims (kept as size 1) is a matrix-vector product.
  bool trailing = !dims.empty() && lead == 0 && g.is_contiguous() && g.device().type == DeviceType::CPU &&
                  (g.dtype() == ScalarType::Float32 || g.dtype() == ScalarType::Float64) && !GradMode::is_enabled();
  for (size_t i = 0; trailing && i < dims.size(); ++i)
    trailing = dims[dims.size() - 1 - i] == g.dim() - 1 - static_cast<int64_t>(i);
  if (trailing) {
    int64_t k = static_cast<int64_t>(dims.size()), n = 1, m = 1;
    for (int64_t i = 0; i < g.dim(); ++i) (i < g.dim() - k ? n : m) *= g.sizes()[i];
    if (m >= 16) {
      Tensor ones = call_tensor_op("ones", {Shape{m}, g.dtype(), g.device()});
      Tensor r = call_tensor_op("matmul", {call_tensor_op("reshape", {g, Shape{n, m}}), ones});
      return call_tensor_op("reshape", {r, shape});
    }
  }
  Tensor r = g;
  if (!dims.empty()) r = call_tensor_op("sum", {r, dims, true});
  if (r.sizes() != shape) r = call_tensor_op("reshape", {r, shape});
  return r;
}

}  // namespace vbt::autograd
