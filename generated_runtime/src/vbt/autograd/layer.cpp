// The autograd wrapper layer of the dispatcher (Note [Autograd design] in autograd.h).
// For a call with grad mode on and an input that requires grad: record the edges of the inputs,
// run the op below this layer, then attach a FormulaNode (saved tensors, argument values,
// input geometry) as grad_fn of the floating-point outputs.
// In-place and out= calls rebase the history of the written tensor onto the new node; writing
// into a leaf that requires grad, or into a view of a tensor with history, raises.
#include <deque>
#include <memory>
#include <unordered_map>
#include <mutex>
#include <unordered_set>

#include "formula_node.h"
#include "vbt/core/error.h"

namespace vbt::autograd {

const std::vector<FormulaDef>& formula_table();
const std::vector<std::string>& nondiff_table();

namespace {

struct OpInfo {
  const FormulaDef* f = nullptr;
  bool nondiff = false;
  bool inplace = false;  // mutates argument 0
  bool view = false;     // a view op (outputs may alias argument 0)
  int out_idx = -1;
  CompositeFn composite = nullptr;  // recorded as other ops when an input requires grad (composite_table)
};

std::vector<OpInfo> g_info;
const OpHandle* g_base = nullptr;
std::deque<FormulaDef> g_missing;       // placeholder defs of ops without a formula
std::deque<std::string> g_missing_names;

std::vector<Tensor> not_implemented_bw(BwCtx& c) {
  throw_error(ErrorKind::NotImplemented, "the derivative for '", c.node.def->op, "' is not implemented.");
}

// Note [Run-time ops in the autograd layer]: ops registered at run time (C plugins, Dispatcher::register_op)
// have no row in the formula table (g_info covers the built-in ops only; their handles follow the built-in
// ones). A call of one with an input that requires grad records a node whose backward raises
// NotImplementedError naming the op, as PyTorch does for an op without a derivative, so the output does not
// silently lose its history. A backward attached from Python (vibetensor.torch.library.register_autograd)
// runs in the Python layer above this one and never reaches here with grad mode on.
std::vector<Tensor> runtime_not_implemented_bw(BwCtx& c) {
  throw_error(ErrorKind::NotImplemented, "the derivative for '", c.node.def->op,
              "' is not implemented (an op registered at run time, e.g. by a plugin; attach one with "
              "vibetensor.torch.library.register_autograd('", c.node.def->op, "', backward, setup_context=...))");
}

struct RuntimeFormula {
  std::string op, node_name;
  FormulaDef def;
};

// One formula per run-time op name, kept for the process lifetime (nodes may outlive an unloaded plugin).
const FormulaDef* runtime_formula(const std::string& name) {
  static std::mutex mu;
  static auto* table = new std::unordered_map<std::string, std::unique_ptr<RuntimeFormula>>();
  std::lock_guard<std::mutex> lock(mu);
  auto& slot = (*table)[name];
  if (!slot) {
    slot = std::make_unique<RuntimeFormula>();
    slot->op = name;
    slot->node_name = name + "Backward (not implemented)";
    slot->def = FormulaDef{slot->op.c_str(), slot->node_name.c_str(), 0, false, runtime_not_implemented_bw};
  }
  return &slot->def;
}

// f stays null until a node is recorded (then runtime_formula): calls without grad pay no lookup.
OpInfo runtime_info(const OpHandle& op) {
  OpInfo info;
  info.out_idx = op.out_index;  // plugin kernels return a fresh tensor; a given out= is written by the dispatcher
  return info;
}

bool is_view_op(const std::string& name) {
  static const std::unordered_set<std::string> views = {
      "view", "reshape", "permute", "transpose", "t", "expand", "narrow", "slice", "select", "squeeze", "unsqueeze",
      "flatten", "unflatten", "as_strided", "split", "split_with_sizes", "chunk", "unbind", "diagonal", "movedim"};
  return views.count(name) > 0;
}

bool shares_storage(const Tensor& a, const Tensor& b) {
  return a.defined() && b.defined() && a.impl()->storage().get() == b.impl()->storage().get();
}

// The root tensor whose storage `t` views (t itself when it is not a recorded view).
Tensor base_of(const Tensor& t) {
  AutogradMeta* m = get_meta(t);
  return m && m->view_base ? Tensor(m->view_base) : t;
}

// Records, for the outputs of a view op, which tensor owns their storage.
void record_views(const Args& args, std::vector<Tensor*>& outs) {
  if (args.size() == 0 || !std::holds_alternative<Tensor>(args[0])) return;
  const Tensor& in = args.tensor(0);
  Tensor base = base_of(in);
  for (Tensor* o : outs) {
    if (o->defined() && shares_storage(*o, in) && !o->is_same(base)) {
      AutogradMeta& m = get_or_create_meta(*o);
      m.view_base = base.impl_ptr();
      m.view_version = o->impl()->version();
    }
  }
}

// Geometry of a view relative to its (contiguous) base.
struct ViewGeometry {
  InputMeta base;
  Shape sizes, strides;
  int64_t offset = 0;
  Tensor region_of(const Tensor& base_like) const {
    return call_tensor_op("as_strided", {base_like, sizes, strides, offset});
  }
};

// PyTorch's CopySlices: the new history of a base after an in-place op on one of its views.
// Input 0 of the backward is the base's gradient; the op's own node maps the view region's
// gradient to the op's inputs; the overwritten region's old values get the op's self gradient.
struct CopySlices : Node {
  std::shared_ptr<FormulaNode> fn;
  ViewGeometry geo;
  int self_slot = -1;
  std::vector<int> slot_of_edge;  // edge i (>= 1) -> slot of fn
  std::vector<Tensor> apply(std::vector<Tensor>&& grads) override {
    Tensor gb = grads.empty() || !grads[0].defined() ? zeros_like_meta(geo.base) : grads[0];
    Tensor result = call_tensor_op("clone", {gb});
    Tensor region = geo.region_of(result);
    std::vector<Tensor> r = fn->apply(std::vector<Tensor>{call_tensor_op("clone", {region})});
    Tensor self_grad = self_slot >= 0 && static_cast<size_t>(self_slot) < r.size() ? r[self_slot] : Tensor();
    if (self_grad.defined()) call_op("copy_", {region, self_grad});
    else call_op("zero_", {region});
    std::vector<Tensor> out(next_edges.size());
    out[0] = result;
    for (size_t i = 1; i < next_edges.size(); ++i) {
      int s = slot_of_edge[i];
      if (s >= 0 && static_cast<size_t>(s) < r.size()) out[i] = r[s];
    }
    return out;
  }
  std::string name() const override { return "CopySlices"; }
  void release_variables() override { fn->release_variables(); }
};

// The history of a view after an in-place op on it: its gradient lands in the region of the
// base's gradient.
struct ViewOfBase : Node {
  ViewGeometry geo;
  std::vector<Tensor> apply(std::vector<Tensor>&& grads) override {
    Tensor z = zeros_like_meta(geo.base);
    if (!grads.empty() && grads[0].defined()) call_op("copy_", {geo.region_of(z), grads[0]});
    return {z};
  }
  std::string name() const override { return "AsStridedBackward0"; }
};

}  // namespace

std::shared_ptr<Node> make_view_of_base_node(const Tensor& base, const Tensor& view) {
  if (!base.is_contiguous()) return nullptr;
  auto vn = std::make_shared<ViewOfBase>();
  vn->geo = ViewGeometry{InputMeta{base.sizes(), base.dtype(), base.device()}, view.sizes(), view.strides(),
                         view.storage_offset() - base.storage_offset()};
  vn->next_edges.push_back(gradient_edge(base));
  vn->input_meta.push_back(InputMeta{view.sizes(), view.dtype(), view.device()});
  vn->stream = current_stream_of(view.device());
  return vn;
}

namespace {

Value autograd_layer(const OpHandle& op, Args& args, const std::function<Value(Args&)>& next) {
  if (!GradMode::is_enabled()) return next(args);
  const size_t pos = static_cast<size_t>(&op - g_base);
  const OpInfo info = op.runtime || pos >= g_info.size() ? runtime_info(op) : g_info[pos];  // Note [Run-time ops ...]
  const auto& specs = op.schema.args;
  size_t nargs = std::min(args.size(), specs.size());

  bool any_req = false;
  for (size_t i = 0; i < nargs && !any_req; ++i) {
    if (static_cast<int>(i) == info.out_idx) continue;
    if (auto t = std::get_if<Tensor>(&args[i])) any_req = requires_grad(*t);
    else if (auto tl = std::get_if<TensorList>(&args[i]))
      for (const Tensor& t : *tl) any_req = any_req || requires_grad(t);
  }
  const bool has_out = info.out_idx >= 0 && static_cast<size_t>(info.out_idx) < args.size() && !args.is_none(info.out_idx);
  if (any_req && info.composite && !has_out) {  // its pieces record their own nodes (Note [Layer re-entry])
    LayerReentry reenter(DispatchKey::Autograd);
    if (std::optional<Value> r = info.composite(args)) return std::move(*r);
  }
  Tensor mutated;
  if (has_out) mutated = args.tensor(info.out_idx);
  else if (info.inplace && nargs > 0 && std::holds_alternative<Tensor>(args[0])) mutated = args.tensor(0);
  // An in-place op on a recorded view: the base's history is rebased (CopySlices).
  Tensor base;
  if (mutated.defined() && !info.nondiff) {
    AutogradMeta* mm = get_meta(mutated);
    if (mm && mm->view_base) {
      Tensor b(mm->view_base);
      if (any_req || requires_grad(b)) base = b;
    }
  }
  if (mutated.defined() && requires_grad(mutated) && is_leaf(mutated) && !base.defined()) {
    throw_error(ErrorKind::Runtime, "a leaf Variable that requires grad is being used in an in-place operation.");
  }
  if (base.defined()) {
    if (requires_grad(base) && is_leaf(base)) {
      throw_error(ErrorKind::Runtime, "a view of a leaf Variable that requires grad is being used in an in-place "
                  "operation.");
    }
    if (!base.is_contiguous()) {
      throw_error(ErrorKind::NotImplemented, op.def.name, ": in-place modification of a view of a non-contiguous "
                  "base tensor is not supported by vibetensor autograd");
    }
  } else if (any_req && !info.nondiff && mutated.defined() && !requires_grad(mutated)) {
    // Writing a value with history into part of a storage whose owner is unknown (a view made
    // under no_grad, or by detach): the owner would not see the new history, so refuse instead
    // of silently dropping gradients.
    const Storage& st = mutated.impl()->storage();
    bool whole = mutated.storage_offset() == 0 && mutated.is_contiguous() &&
                 static_cast<size_t>(mutated.numel()) * itemsize(mutated.dtype()) == st->nbytes;
    if (!whole) {
      throw_error(ErrorKind::NotImplemented, op.def.name,
                  ": writing a tensor that requires grad into a view of unknown origin is not supported by vibetensor "
                  "autograd; build the result out of place (e.g. with cat/where/index_put)");
    }
  }
  if ((!any_req && !base.defined()) || info.nondiff) {
    Value r = next(args);
    if (mutated.defined() && requires_grad(mutated)) detach_(mutated);  // overwritten without history
    if (info.view) {
      std::vector<Tensor*> outs;
      if (auto t = std::get_if<Tensor>(&r)) outs.push_back(t);
      else if (auto tl = std::get_if<TensorList>(&r))
        for (Tensor& t : *tl) outs.push_back(&t);
      record_views(args, outs);
    }
    return r;
  }
  Edge base_edge = base.defined() ? gradient_edge(base) : Edge{};
  int self_slot = -1;

  const FormulaDef* f = info.f ? info.f : runtime_formula(op.def.name);
  auto node = std::make_shared<FormulaNode>();
  node->def = f;
  node->args.resize(nargs);
  node->arg_slot.assign(nargs, -1);
  node->arg_nslots.assign(nargs, 0);
  auto add_slot = [&](const Tensor& t, bool save) {
    if (t.defined() && mutated.defined() && t.is_same(mutated) && self_slot < 0)
      self_slot = static_cast<int>(node->slot_meta.size());
    node->slot_meta.push_back(t.defined() ? InputMeta{t.sizes(), t.dtype(), t.device()} : InputMeta{});
    node->slot_defined.push_back(t.defined());
    Edge e;
    if (t.defined() && is_floating(t.dtype()) && requires_grad(t)) e = gradient_edge(t);
    node->next_edges.push_back(std::move(e));
    if (save && t.defined()) {
      // A saved input that the call overwrites (out= aliasing) is saved as a copy.
      bool alias = mutated.defined() && shares_storage(t, mutated) && !info.inplace;
      node->saved.emplace_back(alias ? call_tensor_op("clone", {t}) : t, false);
    } else {
      node->saved.emplace_back();
    }
  };
  for (size_t i = 0; i < nargs; ++i) {
    bool save = (f->save_args >> i) & 1u;
    if (static_cast<int>(i) == info.out_idx) continue;
    if (auto t = std::get_if<Tensor>(&args[i])) {
      node->arg_slot[i] = static_cast<int>(node->slot_meta.size());
      node->arg_nslots[i] = 1;
      add_slot(*t, save);
    } else if (auto tl = std::get_if<TensorList>(&args[i])) {
      node->arg_slot[i] = static_cast<int>(node->slot_meta.size());
      node->arg_nslots[i] = static_cast<int>(tl->size());
      for (const Tensor& t : *tl) add_slot(t, save);
    } else if (specs[i].type == ArgType::Tensor) {  // an absent optional tensor
      node->arg_slot[i] = static_cast<int>(node->slot_meta.size());
      node->arg_nslots[i] = 1;
      add_slot(Tensor(), false);
    } else {
      node->args[i] = args[i];
    }
  }

  Value r = next(args);

  // Outputs: a tensor returned unchanged from an input (e.g. contiguous of a contiguous
  // tensor) becomes a new alias, so the input keeps its own history.
  auto is_input = [&](const Tensor& o) {
    if (mutated.defined() && o.is_same(mutated)) return false;
    for (size_t i = 0; i < nargs; ++i) {
      if (auto t = std::get_if<Tensor>(&args[i]); t && t->is_same(o)) return true;
      if (auto tl = std::get_if<TensorList>(&args[i]))
        for (const Tensor& t : *tl)
          if (t.is_same(o)) return true;
    }
    return false;
  };
  std::vector<Tensor*> outs;
  if (auto t = std::get_if<Tensor>(&r)) outs.push_back(t);
  else if (auto tl = std::get_if<TensorList>(&r))
    for (Tensor& t : *tl) outs.push_back(&t);
  for (size_t k = 0; k < outs.size(); ++k) {
    Tensor& o = *outs[k];
    if (!o.defined()) {
      node->input_meta.push_back(InputMeta{});
      continue;
    }
    if (is_input(o)) o = detach(o);
    node->input_meta.push_back(InputMeta{o.sizes(), o.dtype(), o.device()});
    if (is_floating(o.dtype())) set_history(o, node, static_cast<uint32_t>(k));
  }
  if (f->save_result) {
    for (Tensor* o : outs) node->saved_out.emplace_back(*o, true, node.get());
  }
  if (info.view) record_views(args, outs);
  if (base.defined()) {
    ViewGeometry geo{InputMeta{base.sizes(), base.dtype(), base.device()}, mutated.sizes(), mutated.strides(),
                     mutated.storage_offset() - base.storage_offset()};
    auto cs = std::make_shared<CopySlices>();
    cs->fn = node;
    cs->geo = geo;
    cs->self_slot = self_slot;
    cs->next_edges.push_back(base_edge);
    cs->slot_of_edge.push_back(-1);
    for (size_t s = 0; s < node->next_edges.size(); ++s) {
      if (static_cast<int>(s) == self_slot) continue;
      cs->next_edges.push_back(node->next_edges[s]);
      cs->slot_of_edge.push_back(static_cast<int>(s));
    }
    cs->input_meta.push_back(geo.base);
    set_history(base, cs, 0);
    auto vn = std::make_shared<ViewOfBase>();
    vn->geo = geo;
    vn->next_edges.push_back(Edge{cs, 0});
    vn->input_meta.push_back(InputMeta{mutated.sizes(), mutated.dtype(), mutated.device()});
    set_history(mutated, vn, 0);
    get_or_create_meta(mutated).view_version = mutated.impl()->version();
  }
  return r;
}

std::once_flag g_once;

}  // namespace

void install() {
  std::call_once(g_once, [] {
    Dispatcher& d = Dispatcher::get();
    const auto& ops = d.ops();
    g_base = ops.data();
    g_info.resize(d.builtin_op_count());  // Note [Run-time ops in the autograd layer]
    std::unordered_set<std::string> nondiff(nondiff_table().begin(), nondiff_table().end());
    for (const FormulaDef& f : formula_table()) {
      const OpHandle* h = d.find_or_null(f.op);
      if (!h || h->runtime) continue;  // formula for an op this build does not have
      g_info[h - g_base].f = &f;
    }
    for (const CompositeDef& c : composite_table()) {
      const OpHandle* h = d.find_or_null(c.op);
      if (h && !h->runtime) g_info[h - g_base].composite = c.fn;
    }
    for (size_t i = 0; i < g_info.size(); ++i) {
      OpInfo& info = g_info[i];
      const std::string name = ops[i].def.name;
      for (size_t a = 0; a < ops[i].schema.args.size(); ++a)
        if (ops[i].schema.args[a].name == "out") info.out_idx = static_cast<int>(a);
      info.inplace = !name.empty() && name.back() == '_';
      info.view = is_view_op(name);
      info.nondiff = nondiff.count(name) > 0;
      if (!info.f && !info.nondiff) {
        g_missing_names.push_back(name);
        g_missing_names.push_back(name + "Backward (not implemented)");
        const char* nn = g_missing_names.back().c_str();
        const char* on = g_missing_names[g_missing_names.size() - 2].c_str();
        g_missing.push_back(FormulaDef{on, nn, 0, false, not_implemented_bw});
        info.f = &g_missing.back();
      }
    }
  });
  Dispatcher::get().set_layer(DispatchKey::Autograd, autograd_layer);  // again after a test replaced it
}

std::vector<std::string> ops_with_backward() {
  std::vector<std::string> out;
  for (const OpHandle& h : Dispatcher::get().ops()) {
    for (const FormulaDef& f : formula_table())
      if (h.def.name == std::string(f.op)) out.push_back(f.op);
  }
  return out;
}

std::vector<std::string> nondifferentiable_ops() { return nondiff_table(); }

}  // namespace vbt::autograd
