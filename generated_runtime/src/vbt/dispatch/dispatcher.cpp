// Dispatcher implementation: schema parsing, the layer chain and the device policy
// (Note [Op table], Note [Device policy] in dispatcher.h).
#include "vbt/dispatch/dispatcher.h"
#include "vbt/cpu/tensor_iterator.h"

#include <cctype>
#include <optional>
#include <limits>
#include <string_view>

namespace vbt {

namespace {

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t"), e = s.find_last_not_of(" \t");
  return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

ArgType parse_type(const std::string& t, const std::string& schema) {
  if (t == "Tensor") return ArgType::Tensor;
  if (t == "Scalar") return ArgType::Scalar;
  if (t == "int") return ArgType::Int;
  if (t == "float") return ArgType::Float;
  if (t == "bool") return ArgType::Bool;
  if (t == "int[]") return ArgType::IntList;
  if (t == "str") return ArgType::Str;
  if (t == "Tensor[]") return ArgType::TensorList;
  if (t == "ScalarType") return ArgType::Dtype;
  if (t == "Generator") return ArgType::Generator;
  if (t == "Device") return ArgType::Device;
  VBT_INTERNAL_ASSERT(false, "unknown type '", t, "' in schema ", schema);
}

Value parse_default(const std::string& text, ArgType type, const std::string& schema) {
  if (text == "None") return std::monostate{};
  switch (type) {
    case ArgType::Bool:
      VBT_INTERNAL_ASSERT(text == "True" || text == "False", "bad bool default in ", schema);
      return text == "True";
    case ArgType::Int: return static_cast<int64_t>(std::stoll(text));
    case ArgType::Float: return std::stod(text);
    case ArgType::Scalar:
      if (text == "True" || text == "False") return Scalar(text == "True");
      if (text.find_first_of(".eE") != std::string::npos && text.find("inf") == std::string::npos)
        return Scalar(std::stod(text));
      if (text == "inf") return Scalar(std::numeric_limits<double>::infinity());
      return Scalar(static_cast<int64_t>(std::stoll(text)));
    case ArgType::IntList: {
      Shape out;
      std::string inner = text.substr(1, text.size() - 2);
      size_t pos = 0;
      while (pos < inner.size()) {
        size_t comma = inner.find(',', pos);
        if (comma == std::string::npos) comma = inner.size();
        std::string item = trim(inner.substr(pos, comma - pos));
        if (!item.empty()) out.push_back(std::stoll(item));
        pos = comma + 1;
      }
      return out;
    }
    case ArgType::Str:
      VBT_INTERNAL_ASSERT(text.size() >= 2 && text.front() == '\'', "bad str default in ", schema);
      return text.substr(1, text.size() - 2);
    default: VBT_INTERNAL_ASSERT(false, "unsupported default '", text, "' in ", schema);
  }
}

// Which layers are switched off on this thread (set while a layer runs its own code, so a
// layer that calls ops does not re-enter itself).
thread_local uint32_t tls_excluded_layers = 0;

struct ExcludeGuard {
  uint32_t saved;
  explicit ExcludeGuard(DispatchKey k) : saved(tls_excluded_layers) { tls_excluded_layers |= 1u << int(k); }
  ~ExcludeGuard() { tls_excluded_layers = saved; }
};

}  // namespace

LayerReentry::LayerReentry(DispatchKey key) : saved_(tls_excluded_layers) {  // Note [Layer re-entry]
  tls_excluded_layers &= ~(1u << int(key));
}
LayerReentry::~LayerReentry() { tls_excluded_layers = saved_; }

Schema Schema::parse(const std::string& text) {
  Schema s;
  size_t lp = text.find('('), rp = std::string::npos;
  for (size_t i = lp, depth = 0; lp != std::string::npos && i < text.size(); ++i) {  // the ')' closing the args
    if (text[i] == '(') ++depth;                                                     // (returns may be "()")
    if (text[i] == ')' && --depth == 0) { rp = i; break; }
  }
  VBT_INTERNAL_ASSERT(lp != std::string::npos && rp != std::string::npos && rp > lp, "bad schema ", text);
  s.name = trim(text.substr(0, lp));
  size_t arrow = text.find("->", rp);
  s.returns = arrow == std::string::npos ? "" : trim(text.substr(arrow + 2));
  std::string body = text.substr(lp + 1, rp - lp - 1);
  bool kwarg_only = false;
  int depth = 0;
  std::string cur;
  std::vector<std::string> parts;
  for (char c : body) {
    if (c == '[') ++depth;
    if (c == ']') --depth;
    if (c == ',' && depth == 0) { parts.push_back(cur); cur.clear(); } else cur += c;
  }
  if (!trim(cur).empty()) parts.push_back(cur);
  for (auto& raw : parts) {
    std::string p = trim(raw);
    if (p == "*") { kwarg_only = true; continue; }
    ArgSpec a;
    std::string decl = p, def;
    size_t eq = p.find('=');
    if (eq != std::string::npos) { decl = trim(p.substr(0, eq)); def = trim(p.substr(eq + 1)); }
    size_t sp = decl.rfind(' ');
    VBT_INTERNAL_ASSERT(sp != std::string::npos, "bad argument '", p, "' in ", text);
    std::string type = trim(decl.substr(0, sp));
    a.name = trim(decl.substr(sp + 1));
    if (!type.empty() && type.back() == '?') { a.optional = true; type.pop_back(); }
    a.type = parse_type(type, text);
    a.kwarg_only = kwarg_only;
    if (eq != std::string::npos) { a.has_default = true; a.default_value = parse_default(def, a.type, text); }
    s.args.push_back(std::move(a));
  }
  return s;
}

Kernel OpHandle::kernel_for(DispatchKey key) const {
  Kernel k = key == DispatchKey::CUDA ? def.cuda : def.cpu;
  return k ? k : def.any_device;
}

Dispatcher& Dispatcher::get() {
  static Dispatcher d;
  return d;
}

namespace {

OpHandle make_handle(const OpDef& def) {
  OpHandle h{def, Schema::parse(def.schema)};
  VBT_INTERNAL_ASSERT(h.schema.name == def.name, "schema name mismatch for ", def.name);
  for (size_t i = 0; i < h.schema.args.size(); ++i) {
    const ArgSpec& a = h.schema.args[i];
    if (a.name == "out" && a.type == ArgType::Tensor) h.out_index = static_cast<int>(i);
    if (a.name == "dtype" && a.type == ArgType::Dtype) h.dtype_index = static_cast<int>(i);
  }
  VBT_INTERNAL_ASSERT(def.out_mode == OutMode::Kernel || h.out_index >= 0, "op '", def.name,
                      "' has a dispatcher out= mode but no `Tensor? out` argument");
  VBT_INTERNAL_ASSERT(def.out_mode != OutMode::DtypeFromOut || h.dtype_index >= 0, "op '", def.name,
                      "' takes its dtype from out= but has no `ScalarType? dtype` argument");
  return h;
}

}  // namespace

Dispatcher::Dispatcher() {
  ops_.reserve(op_table().size() + kMaxRuntimeOps);  // Note [Run-time registration]: handles never move
  for (const OpDef& def : op_table()) {
    VBT_INTERNAL_ASSERT(!index_.count(def.name), "op '", def.name, "' declared twice in the op table");
    index_[def.name] = ops_.size();
    ops_.push_back(make_handle(def));
  }
  builtin_count_ = ops_.size();
}

// Note [Run-time registration] (dispatcher.h).
const OpHandle& Dispatcher::register_op(const OpDef& def) {
  VBT_CHECK_VALUE(def.name && def.schema, "register_op: an op needs a name and a schema");
  std::string name = def.name;
  if (index_.count(name)) throw_error(ErrorKind::Runtime, "register_op: an op named '", name, "' already exists");
  VBT_CHECK(ops_.size() < ops_.capacity(), "register_op: too many run-time ops (at most ", kMaxRuntimeOps, ")");
  auto owned_name = std::make_shared<const std::string>(name);
  auto owned_schema = std::make_shared<const std::string>(def.schema);
  OpDef d = def;
  d.name = owned_name->c_str();
  d.schema = owned_schema->c_str();
  OpHandle h = make_handle(d);
  h.runtime = true;
  h.owned_name = std::move(owned_name);
  h.owned_schema = std::move(owned_schema);
  index_[name] = ops_.size();
  ops_.push_back(std::move(h));  // within the reserved capacity: no reallocation
  return ops_.back();
}

void Dispatcher::remove_op(const std::string& name) {
  auto it = index_.find(name);
  if (it == index_.end()) throw_error(ErrorKind::Runtime, "remove_op: unknown op '", name, "'");
  size_t pos = it->second;
  if (pos < builtin_count_) throw_error(ErrorKind::Runtime, "remove_op: '", name, "' is a built-in op");
  index_.erase(it);
  ops_.erase(ops_.begin() + static_cast<std::ptrdiff_t>(pos));
  for (auto& [n, i] : index_)
    if (i > pos) --i;
}

BoxedKernel Dispatcher::set_boxed_kernel(const std::string& op_name, DispatchKey key, BoxedKernel k) {
  VBT_CHECK_VALUE(key == DispatchKey::CPU || key == DispatchKey::CUDA, "set_boxed_kernel: only backend keys hold kernels");
  auto it = index_.find(op_name);
  if (it == index_.end()) throw_error(ErrorKind::Runtime, "set_boxed_kernel: unknown op '", op_name, "'");
  OpHandle& h = ops_[it->second];
  BoxedKernel& slot = key == DispatchKey::CUDA ? h.boxed_cuda : h.boxed_cpu;
  BoxedKernel previous = std::move(slot);
  slot = std::move(k);
  return previous;
}

void Dispatcher::set_multi_device(const std::string& op_name, bool on) {
  auto it = index_.find(op_name);
  if (it == index_.end()) throw_error(ErrorKind::Runtime, "set_multi_device: unknown op '", op_name, "'");
  if (it->second < builtin_count_) throw_error(ErrorKind::Runtime, "set_multi_device: '", op_name, "' is a built-in op");
  ops_[it->second].multi_device = on;
}

const OpHandle* Dispatcher::find_or_null(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &ops_[it->second];
}

const OpHandle& Dispatcher::find(const std::string& name) const {
  const OpHandle* h = find_or_null(name);
  if (!h) throw_error(ErrorKind::Runtime, "unknown op '", name, "'");
  return *h;
}

Kernel Dispatcher::set_kernel(const std::string& op_name, DispatchKey key, Kernel k) {
  VBT_INTERNAL_ASSERT(key == DispatchKey::CPU || key == DispatchKey::CUDA, "set_kernel: only backend keys hold kernels");
  auto it = index_.find(op_name);
  VBT_INTERNAL_ASSERT(it != index_.end(), "set_kernel: unknown op '", op_name, "'");
  OpDef& def = ops_[it->second].def;
  Kernel& slot = key == DispatchKey::CUDA ? def.cuda : def.cpu;
  Kernel previous = slot;
  slot = k;
  return previous;
}

void Dispatcher::set_layer(DispatchKey key, LayerFn fn) {
  VBT_INTERNAL_ASSERT(key == DispatchKey::Autograd || key == DispatchKey::Python, "only wrapper keys have layers");
  layers_[int(key)] = std::move(fn);
}

Value Dispatcher::call(const OpHandle& op, Args& args) const {
  for (DispatchKey key : {DispatchKey::Python, DispatchKey::Autograd}) {
    const LayerFn& layer = layers_[int(key)];
    if (!layer || (tls_excluded_layers & (1u << int(key)))) continue;
    ExcludeGuard guard(key);
    // `next` continues below this layer (later layers still run).
    std::function<Value(Args&)> next = [this, &op, key](Args& a) -> Value {
      ExcludeGuard inner(key);
      return this->call(op, a);
    };
    return layer(op, args, next);
  }
  return call_backend(op, args);
}

Value Dispatcher::call_backend(const OpHandle& op, Args& args) const {
  Device device{};
  const char* device_arg = nullptr;
  bool have_device = false;
  const bool cross_device = std::string_view(op.def.name) == "copy_";  // Note [Device policy]
  bool have_cpu_scalar = false, have_other = false;
  auto see = [&](const Tensor& t, const std::string& arg_name) {
    if (!t.defined()) return;
    if (op.multi_device) {  // the first CUDA tensor picks the CUDA kernel; no same-device check
      if (!have_device && t.device().type == DeviceType::CUDA) {
        device = t.device();
        have_device = true;
      }
      return;
    }
    if (t.device().type != DeviceType::CPU) have_other = true;
    if (cross_device) return;
    if (t.dim() == 0 && t.device().type == DeviceType::CPU) {  // may join another device's tensors
      have_cpu_scalar = true;
      return;
    }
    if (!have_device) {
      device = t.device();
      device_arg = arg_name.c_str();
      have_device = true;
    } else if (t.device() != device) {
      throw_error(ErrorKind::Runtime, op.def.name,
                  ": Expected all tensors to be on the same device, but found at least two devices, ", device.str(),
                  " (argument '", device_arg, "') and ", t.device().str(), " (argument '", arg_name, "')");
    }
  };
  for (size_t i = 0; i < args.size() && i < op.schema.args.size(); ++i) {
    const std::string& name = op.schema.args[i].name;
    if (auto t = std::get_if<Tensor>(&args[i])) see(*t, name);
    if (auto tl = std::get_if<TensorList>(&args[i]))
      for (const Tensor& t : *tl) see(t, name);
  }
  if (cross_device && have_other) {
    for (size_t i = 0; i < args.size() && !have_device; ++i)
      if (auto t = std::get_if<Tensor>(&args[i]); t && t->defined() && t->device().type != DeviceType::CPU) {
        device = t->device();
        have_device = true;
      }
  }
  if (!have_device && (have_cpu_scalar || cross_device)) have_device = true;  // all on the CPU
  if (!have_device) {
    for (size_t i = 0; i < args.size() && i < op.schema.args.size(); ++i)
      if (op.schema.args[i].type == ArgType::Device) device = args.device_or_cpu(i);
  }
  const DispatchKey bkey = backend_key(device.type);
  const BoxedKernel& boxed = bkey == DispatchKey::CUDA ? op.boxed_cuda : op.boxed_cpu;
  if (boxed) return boxed(op, args);  // Note [Run-time registration]: handles out= itself
  Kernel k = op.kernel_for(bkey);
  if (!k) throw_error(ErrorKind::NotImplemented, op.def.name, ": no kernel for device ", device.str());
  if (op.def.out_mode == OutMode::Kernel || op.out_index < 0 || args.is_none(op.out_index)) return k(args);
  return call_with_out(op, k, args);
}

// Note [out= by the dispatcher] (dispatcher.h).
Value Dispatcher::call_with_out(const OpHandle& op, Kernel k, Args& args) const {
  const size_t oi = static_cast<size_t>(op.out_index);
  Tensor out = args.tensor(oi);
  if (op.def.out_mode == OutMode::DtypeFromOut && args.is_none(op.dtype_index)) {
    args[op.dtype_index] = out.dtype();
    for (size_t i = 0; i < op.schema.args.size() && i < args.size(); ++i)
      if (op.schema.args[i].type == ArgType::Device && args.is_none(i)) args[i] = out.device();
  }
  args[oi] = std::monostate{};
  Value v = k(args);
  args[oi] = out;
  auto* rp = std::get_if<Tensor>(&v);
  VBT_INTERNAL_ASSERT(rp && rp->defined(), op.def.name, ": out= given but the op does not return one tensor");
  return write_out(op, out, *rp);
}

Tensor Dispatcher::write_out(const OpHandle& op, const Tensor& out, const Tensor& result) const {
  const char* name = op.def.name;
  if (op.def.out_mode == OutMode::Cast || op.def.out_mode == OutMode::Kernel) {  // Kernel: via _write_out
    VBT_CHECK(can_cast(result.dtype(), out.dtype()), name, "(): result type ", dtype_name(result.dtype()),
              " can't be cast to the desired output type ", dtype_name(out.dtype()));
  } else {
    VBT_CHECK(result.dtype() == out.dtype(), name, "(): Expected out tensor to have dtype ",
              dtype_name(result.dtype()), ", but got ", dtype_name(out.dtype()), " instead");
  }
  VBT_CHECK(out.device() == result.device(), name, "(): Expected out tensor to be on device ",
            result.device().str(), ", but got ", out.device().str());
  if (out.sizes() != result.sizes()) {
    if (out.numel() != 0) {
      warn(detail::str_cat(
          "An output with one or more elements was resized since it had shape ", shape_str(out.sizes()),
          ", which does not match the required output shape ", shape_str(result.sizes()),
          ". This behavior is deprecated, and in a future PyTorch release outputs will not be resized unless they "
          "have zero elements. You can explicitly reuse an out tensor t by resizing it, inplace, to zero elements "
          "with t.resize_(0). (", name, ")"));
    }
    out.impl()->set_sizes_contiguous(result.sizes());
  }
  if (!out.is_same(result)) {
    Args copy_args{out, result};
    call_backend(find("copy_"), copy_args);
  }
  return out;
}

Value call_op(const std::string& name, Args args) {
  const OpHandle& op = Dispatcher::get().find(name);
  const auto& specs = op.schema.args;
  VBT_INTERNAL_ASSERT(args.size() <= specs.size(), name, ": too many arguments");
  // A number given where the schema wants a Tensor becomes a wrapped 0-dim tensor, as in Python.
  for (size_t i = 0; i < args.size(); ++i) {
    if (specs[i].type != ArgType::Tensor) continue;
    Value& v = args[i];
    std::optional<Scalar> s;
    if (auto p = std::get_if<Scalar>(&v)) s = *p;
    else if (auto p = std::get_if<int64_t>(&v)) s = Scalar(*p);
    else if (auto p = std::get_if<double>(&v)) s = Scalar(*p);
    else if (auto p = std::get_if<bool>(&v)) s = Scalar(*p);
    if (s) {
      Tensor t = scalar_to_tensor(*s, s->natural_dtype());
      t.impl()->wrapped_number = true;
      v = t;
    }
  }
  for (size_t i = args.size(); i < specs.size(); ++i) {
    VBT_INTERNAL_ASSERT(specs[i].has_default, name, ": missing argument '", specs[i].name, "'");
    args.push_back(specs[i].default_value);
  }
  return Dispatcher::get().call(op, args);
}

Tensor call_tensor_op(const std::string& name, Args args) {
  Value v = call_op(name, std::move(args));
  return std::get<Tensor>(v);
}

}  // namespace vbt
