// The backward engine (Note [Autograd design] in include/vbt/autograd/autograd.h):
//   1. a GraphRoot node feeds the output gradients into the graph;
//   2. dependencies (number of incoming edges) are counted over every node reachable from it;
//   3. a ready queue (highest sequence number first) holds nodes whose dependencies are all met;
//      each node's inputs are summed in a per-node gradient buffer before it runs;
//   4. for autograd.grad, gradients arriving at the inputs' edges are captured instead of being
//      accumulated, and only nodes that lead to an input run;
//   5. on devices with streams, nodes run on their forward streams, ordered by events (the Note below).
//
// Note [Autograd streams]
//   PyTorch's stream semantics of backward, for device types that registered StreamHooks (CUDA;
//   include/vbt/autograd/streams.h). Nothing of this runs when no hooks are registered (CPU builds).
//   * Recording. A node remembers the stream that was current on the device of its first output when
//     its forward op ran (set_history; AccumulateGrad: when the leaf's accumulator is made, i.e. the
//     leaf's first use in the graph). Node::stream keeps that stream alive.
//   * The caller's streams. The streams current when backward()/grad() is called, per device ("the
//     backward call is synchronised with the current stream at call time"). The root's gradients
//     (implicit ones or grad_outputs) count as produced on them, and a node without a stream on a
//     device (e.g. a CPU node returning a CUDA gradient) runs its work there on them.
//   * Running a node. The node's stream is made current while its pre-hooks, its backward and the
//     validation of its outputs (sum_to, dtype casts) run; so every op of its backward is queued on it.
//   * Handing a gradient over. A gradient g on device d from producer P to consumer C is accumulated
//     on C's stream if C's stream is on d, else on the caller's stream of d; P's stream on d is P's
//     stream, or the caller's stream of d when P's stream is elsewhere. When the two differ, an event
//     recorded on the producer stream is waited on by the accumulation stream (the host never blocks),
//     and g is record_stream'ed on the accumulation stream: the caching allocator keeps g's block
//     (allocated on the producer's stream) from being reused until the consumer's work is done. A
//     second gradient for the same input is added on the accumulation stream.
//   * Finishing. When the graph has run, the caller's stream of each device waits for every stream a
//     node ran on there (AccumulateGrad's .grad writes, captured gradients of grad(), retained
//     gradients), so work queued on the caller's stream after backward() returns sees finished values;
//     leaf .grad tensors written and gradients captured on another stream are record_stream'ed on the
//     caller's stream (the user goes on using them there). With one stream nothing is recorded.
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

// Per-backward stream bookkeeping (Note [Autograd streams]). Devices are few: small vectors.
struct StreamState {
  bool on = false;  // some device type has stream hooks
  std::vector<StreamRef> caller;  // the caller's current stream per device, queried once
  std::vector<StreamRef> used;    // distinct streams nodes ran on
  std::vector<Tensor> handoffs;   // gradients left to the caller (leaf .grad, captured)

  const StreamRef& caller_stream(Device d) {
    for (const StreamRef& s : caller)
      if (s.device == d) return s;
    caller.push_back(current_stream_of(d));
    caller.back().device = d;
    return caller.back();
  }
  // The stream `node` runs its work of device d on.
  StreamRef stream_on(const Node& node, Device d) {
    if (node.stream.defined() && node.stream.device == d) return node.stream;
    return caller_stream(d);
  }
  void note_used(const StreamRef& s) {
    for (const StreamRef& u : used)
      if (u.same(s)) return;
    used.push_back(s);
  }
  // Adds gradient g (from producer to consumer) into slot (the Note's "Handing a gradient over").
  void accumulate(Tensor& slot, const Tensor& g, const Node& producer, const Node& consumer) {
    StreamHooks* hooks = stream_hooks(g.device().type);
    if (!hooks) {
      slot = slot.defined() ? call_tensor_op("add", {slot, g}) : g;
      return;
    }
    StreamRef prod = stream_on(producer, g.device());
    StreamRef acc = stream_on(consumer, g.device());
    if (!acc.same(prod)) {
      hooks->wait_stream(acc, prod);
      hooks->record_stream(g, acc);
    }
    if (!slot.defined()) {
      slot = g;
      return;
    }
    StreamRefGuard guard(acc);
    slot = call_tensor_op("add", {slot, g});
  }
  // A gradient the caller will use, written on `node`'s stream.
  void handoff(const Tensor& t, const Node& node) {
    if (!t.defined() || !node.stream.defined() || node.stream.device != t.device()) return;
    if (!node.stream.same(caller_stream(t.device()))) handoffs.push_back(t);
  }
  // The Note's "Finishing".
  void finish() {
    if (!on) return;
    for (const StreamRef& u : used) {
      const StreamRef& c = caller_stream(u.device);
      if (!u.same(c)) stream_hooks(u.device.type)->wait_stream(c, u);
    }
    for (const Tensor& t : handoffs)
      if (StreamHooks* hooks = stream_hooks(t.device().type)) hooks->record_stream(t, caller_stream(t.device()));
    handoffs.clear();
  }
};

struct GraphTask {
  StreamState streams;
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
  StreamState& ss = task.streams;
  ss.on = any_stream_hooks();
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    if (ss.on && n->stream.defined()) ss.caller_stream(n->stream.device);  // "at call time", before any guard
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
  StreamState& ss = task.streams;
  ready.push(root.get());
  while (!ready.empty()) {
    Node* node = ready.top();
    ready.pop();
    const bool node_stream = ss.on && node->stream.defined();
    if (node_stream) ss.note_used(node->stream);
    StreamRefGuard stream_guard(node_stream ? node->stream : StreamRef{});
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
      for (auto& [nr, idx] : cit->second) {
        if (nr < inputs.size() && inputs[nr].defined()) {
          task.captured[idx] = inputs[nr];
          if (node_stream) ss.handoff(inputs[nr], *node);
        }
      }
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
    if (node_stream) {
      if (auto* acc = dynamic_cast<AccumulateGrad*>(node)) {
        if (AutogradMeta* m = get_meta(Tensor(acc->variable))) ss.handoff(m->grad, *node);
      }
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
        if (ss.on) ss.accumulate(slot, g, *node, *next);
        else slot = slot.defined() ? call_tensor_op("add", {slot, g}) : g;
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
    task.streams.finish();
    return;
  }
  AutoGradMode mode(create_graph);
  execute(task, root);
  task.streams.finish();
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
    task.streams.finish();
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
