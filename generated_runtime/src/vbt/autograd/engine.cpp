// The backward engine (Note [Autograd design] in include/vbt/autograd/autograd.h):
//   1. a GraphRoot node feeds the output gradients into the graph;
//   2. dependencies (number of incoming edges) are counted over every node reachable from it;
//   3. a ready queue (highest sequence number first) holds nodes whose dependencies are all met;
//      each node's inputs are summed in a per-node gradient buffer before it runs;
//   4. for autograd.grad, gradients arriving at the inputs' edges are captured instead of being
//      accumulated, and only nodes that lead to an input run.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <queue>
#include <unordered_map>
#include <unordered_set>

#include "vbt/autograd/autograd.h"
#include "vbt/core/error.h"
#include "vbt/dispatch/dispatcher.h"

namespace vbt::autograd {

namespace {

struct GraphRoot : Node {
  std::vector<Tensor> grads;
  std::vector<Tensor> apply(std::vector<Tensor>&&) override { return grads; }
  std::string name() const override { return "GraphRoot"; }
};

std::string size_str(const Shape& s) {
  std::string out = "torch.Size([";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "])";
}

bool expandable_to(const Shape& from, const Shape& to) {
  if (from.size() > to.size()) return false;
  size_t lead = to.size() - from.size();
  for (size_t i = 0; i < from.size(); ++i)
    if (from[i] != 1 && from[i] != to[lead + i]) return false;
  return true;
}

// Makes a gradient flowing into `meta` match its shape and dtype, or raises.
Tensor validate_grad(const Node& producer, size_t index, Tensor g, const InputMeta& meta) {
  if (g.sizes() != meta.sizes) {
    if (expandable_to(meta.sizes, g.sizes())) {
      g = sum_to(g, meta.sizes);
    } else {
      throw_error(ErrorKind::Runtime, "Function ", producer.name(), " returned an invalid gradient at index ", index,
                  " - got ", shape_str(g.sizes()), " but expected shape compatible with ", shape_str(meta.sizes));
    }
  }
  if (g.dtype() != meta.dtype && is_floating(meta.dtype)) g = call_tensor_op("to_dtype", {g, meta.dtype, false});
  return g;
}

// VBT_AUTOGRAD_PROFILE=1: time per node type, printed at exit (stderr).
struct NodeProfile {
  bool on = std::getenv("VBT_AUTOGRAD_PROFILE") != nullptr;
  std::map<std::string, std::pair<double, long>> t;
  ~NodeProfile() {
    if (!on) return;
    for (auto& [k, v] : t) std::fprintf(stderr, "autograd %-28s %9.2f ms %7ld calls\n", k.c_str(), v.first, v.second);
  }
};
NodeProfile& profile() {
  static NodeProfile p;
  return p;
}

struct CompareSeq {
  bool operator()(const Node* a, const Node* b) const { return a->sequence_nr < b->sequence_nr; }
};

struct GraphTask {
  bool keep_graph = false;
  bool capture_mode = false;  // autograd.grad: capture, do not accumulate
  std::unordered_map<Node*, int> deps;
  std::unordered_map<Node*, std::vector<Tensor>> buffers;
  // capture targets: node -> list of (input_nr, result index)
  std::unordered_map<Node*, std::vector<std::pair<uint32_t, size_t>>> captures;
  std::unordered_map<Node*, bool> exec_needed;  // only when filtering
  bool filter = false;
  std::vector<Tensor> captured;
};

void compute_dependencies(GraphTask& task, Node* root) {
  std::vector<Node*> stack{root};
  std::unordered_set<Node*> seen{root};
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    for (const Edge& e : n->next_edges) {
      if (!e.valid()) continue;
      Node* c = e.fn.get();
      task.deps[c] += 1;
      if (seen.insert(c).second) stack.push_back(c);
    }
  }
}

// exec_needed[n] = n reaches a target node (not counting n itself).
void compute_needed(GraphTask& task, Node* root, const std::unordered_set<Node*>& targets) {
  // Iterative post-order DFS.
  std::unordered_map<Node*, bool>& need = task.exec_needed;
  std::vector<std::pair<Node*, size_t>> stack{{root, 0}};
  std::unordered_set<Node*> visiting{root};
  while (!stack.empty()) {
    auto& [n, i] = stack.back();
    if (i < n->next_edges.size()) {
      const Edge& e = n->next_edges[i++];
      if (!e.valid()) continue;
      Node* c = e.fn.get();
      if (!need.count(c) && !visiting.count(c)) {
        visiting.insert(c);
        stack.push_back({c, 0});
      }
      continue;
    }
    bool needed = false;
    for (const Edge& e : n->next_edges) {
      if (!e.valid()) continue;
      Node* c = e.fn.get();
      if (targets.count(c) || need[c]) needed = true;
    }
    need[n] = needed;
    stack.pop_back();
  }
}

void run_pre_hooks(Node* node, std::vector<Tensor>& inputs) {
  for (auto& [nr, hook] : node->pre_hooks) {
    if (nr < inputs.size() && inputs[nr].defined()) {
      Tensor r = hook(inputs[nr]);
      if (r.defined()) inputs[nr] = r;
    }
  }
  if (auto* acc = dynamic_cast<AccumulateGrad*>(node)) {
    Tensor var(acc->variable);
    if (AutogradMeta* m = get_meta(var)) {
      for (auto& hook : m->leaf_hooks) {
        if (!inputs.empty() && inputs[0].defined()) {
          Tensor r = hook(inputs[0]);
          if (r.defined()) inputs[0] = r;
        }
      }
    }
  }
  for (auto& [nr, weak] : node->retained) {
    auto impl = weak.lock();
    if (!impl || nr >= inputs.size() || !inputs[nr].defined()) continue;
    Tensor t(impl);
    AutogradMeta& m = get_or_create_meta(t);
    if (!m.grad.defined()) m.grad = GradMode::is_enabled() ? inputs[nr] : call_tensor_op("clone", {inputs[nr]});
    else m.grad = call_tensor_op("add", {m.grad, inputs[nr]});
  }
}

void execute(GraphTask& task, std::shared_ptr<GraphRoot> root) {
  std::priority_queue<Node*, std::vector<Node*>, CompareSeq> ready;
  // Keep every node alive while the task runs (release_variables may drop the last tensor
  // referencing an upstream node).
  std::vector<std::shared_ptr<Node>> keep;
  ready.push(root.get());
  while (!ready.empty()) {
    Node* node = ready.top();
    ready.pop();
    std::vector<Tensor> inputs;
    auto bit = task.buffers.find(node);
    if (bit != task.buffers.end()) {
      inputs = std::move(bit->second);
      task.buffers.erase(bit);
    }
    inputs.resize(node->input_meta.size());
    run_pre_hooks(node, inputs);
    auto cit = task.captures.find(node);
    if (cit != task.captures.end()) {
      for (auto& [nr, idx] : cit->second)
        if (nr < inputs.size() && inputs[nr].defined()) task.captured[idx] = inputs[nr];
    }
    bool run = true;
    if (task.filter) run = task.exec_needed[node];
    if (task.capture_mode && dynamic_cast<AccumulateGrad*>(node)) run = false;
    if (!run) {
      // Nothing downstream needs it: still release its dependants' counts (they are unneeded too).
      continue;
    }
    for (const Edge& e : node->next_edges)
      if (e.valid()) keep.push_back(e.fn);
    auto t0 = std::chrono::steady_clock::now();
    std::vector<Tensor> outputs = node->apply(std::move(inputs));
    if (profile().on) {
      auto& e = profile().t[node->name()];
      e.first += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      e.second += 1;
    }
    if (!task.keep_graph) node->release_variables();
    if (outputs.size() > node->next_edges.size()) outputs.resize(node->next_edges.size());
    for (size_t i = 0; i < node->next_edges.size(); ++i) {
      const Edge& e = node->next_edges[i];
      if (!e.valid()) continue;
      Node* next = e.fn.get();
      if (i < outputs.size() && outputs[i].defined()) {
        Tensor g = validate_grad(*node, i, outputs[i], next->input_meta.at(e.input_nr));
        auto& buf = task.buffers[next];
        if (buf.size() < next->input_meta.size()) buf.resize(next->input_meta.size());
        Tensor& slot = buf[e.input_nr];
        slot = slot.defined() ? call_tensor_op("add", {slot, g}) : g;
      }
      if (--task.deps[next] == 0) ready.push(next);
    }
  }
}

std::shared_ptr<GraphRoot> make_root(const std::vector<Tensor>& outputs, const std::vector<Tensor>& grad_outputs) {
  auto root = std::make_shared<GraphRoot>();
  root->sequence_nr = UINT64_MAX;
  VBT_CHECK(grad_outputs.empty() || grad_outputs.size() == outputs.size(), "grad can be implicitly created only for "
            "scalar outputs; got ", grad_outputs.size(), " gradients for ", outputs.size(), " outputs");
  for (size_t i = 0; i < outputs.size(); ++i) {
    const Tensor& out = outputs[i];
    if (!requires_grad(out)) {
      throw_error(ErrorKind::Runtime, "element ", i, " of tensors does not require grad and does not have a grad_fn");
    }
    Tensor g = grad_outputs.empty() ? Tensor() : grad_outputs[i];
    if (!g.defined()) {
      if (out.numel() != 1) throw_error(ErrorKind::Runtime, "grad can be implicitly created only for scalar outputs");
      g = call_tensor_op("ones", {out.sizes(), out.dtype(), out.device()});
    } else if (g.sizes() != out.sizes()) {
      throw_error(ErrorKind::Runtime, "Mismatch in shape: grad_output[", i, "] has a shape of ", size_str(g.sizes()),
                  " and output[", i, "] has a shape of ", size_str(out.sizes()), ".");
    }
    root->grads.push_back(g);
    root->next_edges.push_back(gradient_edge(out));
  }
  return root;
}

}  // namespace

void backward(const std::vector<Tensor>& outputs, const std::vector<Tensor>& grad_outputs, bool retain_graph,
              bool create_graph, const std::vector<Tensor>& inputs) {
  auto root = make_root(outputs, grad_outputs);
  GraphTask task;
  task.keep_graph = retain_graph || create_graph;
  compute_dependencies(task, root.get());
  if (!inputs.empty()) {
    std::unordered_set<Node*> targets;
    std::vector<std::shared_ptr<Node>> hold;
    for (const Tensor& t : inputs) {
      Edge e = gradient_edge(t);
      VBT_CHECK(e.valid(), "backward: one of the inputs does not require grad");
      VBT_CHECK(dynamic_cast<AccumulateGrad*>(e.fn.get()), "backward(inputs=...) supports leaf tensors only");
      targets.insert(e.fn.get());
      hold.push_back(e.fn);
    }
    task.filter = true;
    compute_needed(task, root.get(), targets);
    for (Node* t : targets) task.exec_needed[t] = true;
    AutoGradMode mode(create_graph);
    execute(task, root);
    return;
  }
  AutoGradMode mode(create_graph);
  execute(task, root);
}

std::vector<Tensor> grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& grad_outputs,
                         const std::vector<Tensor>& inputs, bool retain_graph, bool create_graph, bool allow_unused) {
  auto root = make_root(outputs, grad_outputs);
  GraphTask task;
  task.keep_graph = retain_graph || create_graph;
  task.capture_mode = true;
  task.filter = true;
  task.captured.resize(inputs.size());
  std::unordered_set<Node*> targets;
  std::vector<std::shared_ptr<Node>> hold;
  for (size_t i = 0; i < inputs.size(); ++i) {
    Edge e = gradient_edge(inputs[i]);
    if (!e.valid()) throw_error(ErrorKind::Runtime, "One of the differentiated Tensors does not require grad");
    task.captures[e.fn.get()].push_back({e.input_nr, i});
    targets.insert(e.fn.get());
    hold.push_back(e.fn);
  }
  compute_dependencies(task, root.get());
  compute_needed(task, root.get(), targets);
  {
    AutoGradMode mode(create_graph);
    execute(task, root);
  }
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!task.captured[i].defined() && !allow_unused) {
      throw_error(ErrorKind::Runtime, "One of the differentiated Tensors appears to not have been used in the graph. "
                  "Set allow_unused=True if this is the desired behavior.");
    }
    Tensor& c = task.captured[i];
    if (c.defined() && !create_graph) c = detach(c);
  }
  return task.captured;
}

}  // namespace vbt::autograd
