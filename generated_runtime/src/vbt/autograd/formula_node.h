// Private header of the autograd layer: the node built for one recorded dispatcher call and the
// context its backward formula reads (saved tensors, non-tensor arguments, input geometry).
// Slots: every Tensor argument (except `out`) is one slot, every Tensor[] element one slot, in
// schema order; a formula returns one gradient per slot (undefined = none).
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "vbt/autograd/autograd.h"
#include "vbt/dispatch/dispatcher.h"

namespace vbt::autograd {

struct BwCtx;
using BackwardFn = std::vector<Tensor> (*)(BwCtx& ctx);

struct FormulaDef {
  const char* op;         // op table name
  const char* node_name;  // PyTorch's node class name, e.g. "MulBackward0"
  uint32_t save_args;     // bit i: save the tensor(s) of argument i
  bool save_result;       // save the forward outputs
  BackwardFn fn;
};

// An op that the autograd layer records as a composition of other ops when an input requires grad (Note [Batched
// matmul under autograd] in formulas.cpp): returns the result, each inner op recording its own node, or nullopt when
// the op's own kernel and formula should run (shapes it does not decompose, inputs the kernel will reject).
using CompositeFn = std::optional<Value> (*)(const Args& args);
struct CompositeDef {
  const char* op;
  CompositeFn fn;
};
const std::vector<CompositeDef>& composite_table();

struct FormulaNode : Node {
  const FormulaDef* def = nullptr;
  std::vector<Value> args;        // non-tensor arguments (tensors replaced by None)
  std::vector<int> arg_slot;      // first slot of argument i (-1: not a tensor argument)
  std::vector<int> arg_nslots;    // number of slots of argument i
  std::vector<InputMeta> slot_meta;
  std::vector<bool> slot_defined;
  std::vector<SavedVariable> saved;      // per slot (only those saved)
  std::vector<SavedVariable> saved_out;  // per output (when save_result)

  std::vector<Tensor> apply(std::vector<Tensor>&& grads) override;
  std::string name() const override { return def->node_name; }
  void release_variables() override;
};

struct BwCtx {
  FormulaNode& node;
  std::vector<Tensor> grads;

  // Saved tensor of (single-tensor) argument i.
  Tensor arg(size_t i) const { return node.saved.at(node.arg_slot.at(i)).unpack(&node); }
  // Saved tensors of a Tensor[] argument.
  std::vector<Tensor> arg_list(size_t i) const;
  const Value& val(size_t i) const { return node.args.at(i); }
  // Argument i is None (for a Tensor argument: it was not given).
  bool none(size_t i) const {
    int s = node.arg_slot.at(i);
    if (s >= 0) return node.arg_nslots.at(i) == 0 || !node.slot_defined.at(s);
    return std::holds_alternative<std::monostate>(node.args.at(i));
  }
  int64_t integer(size_t i) const { return std::get<int64_t>(node.args.at(i)); }
  double real(size_t i) const;  // Scalar/double/int argument as double
  const Shape& int_list(size_t i) const { return std::get<Shape>(node.args.at(i)); }
  const InputMeta& meta(size_t arg) const { return node.slot_meta.at(node.arg_slot.at(arg)); }
  const Shape& shape(size_t arg) const { return meta(arg).sizes; }
  int slot(size_t arg) const { return node.arg_slot.at(arg); }
  // Does the gradient of argument i's (first) slot flow anywhere?
  bool needs(size_t arg) const {
    int s = node.arg_slot.at(arg);
    return s >= 0 && node.next_edges.at(s).valid();
  }
  bool needs_slot(size_t s) const { return node.next_edges.at(s).valid(); }
  Tensor result(size_t k = 0) const { return node.saved_out.at(k).unpack(&node); }
  // Gradient of output k (zeros when none arrived).
  Tensor g(size_t k = 0);
  size_t nslots() const { return node.slot_meta.size(); }
};

// A node giving `view` (a view of the contiguous `base`) the history "region of base's gradient";
// null when the base is not contiguous.
std::shared_ptr<Node> make_view_of_base_node(const Tensor& base, const Tensor& view);

}  // namespace vbt::autograd
