// Extension-op registry, the host side of the plugin ABI (vbt_plugin.h) and the dlopen loader.
// Policy in vbt/plugins/registry.h. No C++ exception crosses into plugin code: every host_api function
// catches and reports through a status plus a thread-local error message.
#include <dlfcn.h>

#include <atomic>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "vbt/cpu/tensor_iterator.h"
#include "vbt/dispatch/dispatcher.h"
#include "vbt/interop/dlpack_convert.h"
#include "vbt/plugins/registry.h"
#include "vbt/plugins/vbt_plugin.h"

struct vbt_tensor_s {
  vbt::Tensor t;
};

static_assert(sizeof(vbt_value) == 16, "vbt_value's layout is part of the plugin ABI (1.0 to 1.2)");

struct vbt_iter_s {
  std::string op_name;
  std::unique_ptr<vbt::TensorIterator> it;
};

struct vbt_registrar_s;

namespace vbt::plugins {
namespace {

thread_local std::string tls_error;

struct ExtKernel {
  vbt_kernel_fn fn = nullptr;
  void* user = nullptr;
};

struct ExtOp {
  ExtSchema schema;
  std::map<int32_t, ExtKernel> kernels;  // by DLPack device type
  std::string library;
  bool multi_device = false;             // VBT_KERNEL_MULTI_DEVICE (ABI 1.2)
};

// What one library registered in the dispatcher (undone in reverse order by a rollback or an unload).
struct LibraryRecord {
  std::vector<std::string> ops;                           // ops it defined
  std::vector<std::pair<std::string, int32_t>> kernels;   // kernels it added to another library's ops
  struct Override {
    std::string op;
    BoxedKernel previous;  // the boxed kernel it replaced (usually none: the built-in's plain kernel runs)
  };
  std::vector<Override> overrides;                        // built-in ops whose CPU kernel it replaced
};

struct Registry {
  std::mutex mu;       // guards the maps below
  std::mutex load_mu;  // serialises loads and unloads (they change the dispatcher's op set)
  std::unordered_map<std::string, ExtOp> ops;
  std::map<std::string, LibraryRecord> libraries;  // path -> what it registered
  std::map<std::string, std::string> overridden;   // built-in op -> the library overriding its CPU kernel
  std::vector<void*> handles;                      // kept open for the process lifetime
};

Registry& registry() {
  static Registry* r = new Registry();  // never destroyed: plugin kernels may run during exit
  return *r;
}

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\n"), e = s.find_last_not_of(" \t\n");
  return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

bool valid_identifier(const std::string& s) {
  if (s.empty() || std::isdigit(static_cast<unsigned char>(s[0]))) return false;
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.')) return false;
  return true;
}

// An op name: an identifier, or since ABI 1.2 `ns::name` (one namespace, both parts identifiers).
bool valid_op_name(const std::string& s) {
  size_t sep = s.find("::");
  if (sep == std::string::npos) return valid_identifier(s);
  return valid_identifier(s.substr(0, sep)) && valid_identifier(s.substr(sep + 2));
}

std::atomic<CudaStreamProvider> g_stream_provider{nullptr};

ScalarType scalar_type_of(DLDataType d) {
  for (int i = 0; i < kNumScalarTypes; ++i) {
    DLDataType x = interop::to_dlpack_dtype(static_cast<ScalarType>(i));
    if (x.code == d.code && x.bits == d.bits && x.lanes == d.lanes) return static_cast<ScalarType>(i);
  }
  throw_error(ErrorKind::Type, "plugin: unsupported DLPack dtype (code ", int(d.code), ", ", int(d.bits), " bits, ",
              d.lanes, " lanes)");
}

Device device_of(DLDevice d) {
  if (d.device_type == kDLCPU) return Device{};
  if (d.device_type == kDLCUDA) return Device{DeviceType::CUDA, static_cast<int16_t>(d.device_id)};
  throw_error(ErrorKind::Runtime, "plugin: unsupported DLPack device type ", int(d.device_type));
}

const char* device_type_name(int32_t t) {
  return t == kDLCPU ? "cpu" : t == kDLCUDA ? "cuda" : "unknown";
}

// Runs f, turning exceptions into a status and the thread's error message.
template <typename F>
int32_t guarded(F&& f) {
  try {
    return f();
  } catch (const std::bad_alloc&) {
    tls_error = "out of memory";
    return VBT_STATUS_OUT_OF_MEMORY;
  } catch (const std::exception& e) {
    tls_error = e.what();
    return VBT_STATUS_RUNTIME_ERROR;
  } catch (...) {
    tls_error = "unknown error";
    return VBT_STATUS_RUNTIME_ERROR;
  }
}

}  // namespace

// ---- schema -------------------------------------------------------------------------------------

ExtSchema ExtSchema::parse(const std::string& text) {
  auto bad = [&](const std::string& why) -> void {
    throw_error(ErrorKind::Value, "invalid op schema '", text, "': ", why);
  };
  ExtSchema s;
  s.text = trim(text);
  size_t lp = s.text.find('('), rp = std::string::npos;
  for (size_t i = lp, depth = 0; lp != std::string::npos && i < s.text.size(); ++i) {  // the ')' closing the args
    if (s.text[i] == '(') ++depth;
    if (s.text[i] == ')' && --depth == 0) { rp = i; break; }
  }
  if (lp == std::string::npos || rp == std::string::npos) bad("expected 'name(args) -> Tensor'");
  s.name = trim(s.text.substr(0, lp));
  if (!valid_op_name(s.name)) bad("bad op name '" + s.name + "' (an identifier, or 'namespace::name')");
  std::string rest = trim(s.text.substr(rp + 1));
  if (rest == "-> ()") s.returns_none = true;
  else if (rest != "-> Tensor") bad("the supported return types are '-> Tensor' and '-> ()'");
  std::string body = s.text.substr(lp + 1, rp - lp - 1);
  size_t pos = 0;
  while (pos <= body.size()) {
    size_t comma = body.find(',', pos);
    if (comma == std::string::npos) comma = body.size();
    std::string p = trim(body.substr(pos, comma - pos));
    pos = comma + 1;
    if (p.empty()) {
      if (comma == body.size() && s.args.empty()) break;
      bad("empty argument");
    }
    ExtArg a;
    std::string decl = p, def;
    size_t eq = p.find('=');
    if (eq != std::string::npos) { decl = trim(p.substr(0, eq)); def = trim(p.substr(eq + 1)); a.has_default = true; }
    size_t sp = decl.rfind(' ');
    if (sp == std::string::npos) bad("argument '" + p + "' needs a type and a name");
    std::string type = trim(decl.substr(0, sp));
    a.name = trim(decl.substr(sp + 1));
    if (!valid_identifier(a.name)) bad("bad argument name '" + a.name + "'");
    for (const ExtArg& o : s.args)
      if (o.name == a.name) bad("argument '" + a.name + "' appears twice");
    std::string written = type;
    if (!type.empty() && type.back() == '?') { a.optional = true; type.pop_back(); }
    if (type == "Tensor") a.type = ExtArgType::Tensor;
    else if (type == "int") a.type = ExtArgType::Int;
    else if (type == "float") a.type = ExtArgType::Float;
    else if (type == "bool") a.type = ExtArgType::Bool;
    else if (type == "Tensor[]") a.type = ExtArgType::TensorList;
    else bad("unsupported argument type '" + written + "' (Tensor, int, float, bool, Tensor[])");
    if (a.type == ExtArgType::TensorList && a.optional)
      bad("argument '" + a.name + "': an optional tensor list 'Tensor[]?' is not supported (pass an empty list)");
    if (a.type == ExtArgType::TensorList && a.has_default)
      bad("argument '" + a.name + "': a 'Tensor[]' argument cannot have a default");
    if (a.has_default) {
      try {
        if (def == "None") {
          if (!a.optional) bad("default None needs an optional type");
          a.default_value = std::monostate{};
        } else if (a.type == ExtArgType::Bool) {
          if (def != "True" && def != "False") bad("bad bool default '" + def + "'");
          a.default_value = def == "True";
        } else if (a.type == ExtArgType::Int) {
          size_t used = 0;
          a.default_value = static_cast<int64_t>(std::stoll(def, &used));
          if (used != def.size()) bad("bad int default '" + def + "'");
        } else if (a.type == ExtArgType::Float) {
          size_t used = 0;
          a.default_value = std::stod(def, &used);
          if (used != def.size()) bad("bad float default '" + def + "'");
        } else {
          bad("Tensor arguments can only default to None");
        }
      } catch (const std::logic_error&) {
        bad("bad default '" + def + "'");
      }
    } else {
      for (const ExtArg& o : s.args)
        if (o.has_default) bad("argument '" + a.name + "' without a default follows one with a default");
    }
    s.args.push_back(std::move(a));
    if (comma == body.size()) break;
  }
  return s;
}

}  // namespace vbt::plugins

// ---- the registrar (staged registrations of one load) -----------------------------------------

struct vbt_registrar_s {
  std::string library;
  std::vector<vbt::plugins::ExtSchema> new_ops;
  struct StagedKernel {
    std::string op;
    int32_t device_type;
    vbt::plugins::ExtKernel kernel;
  };
  std::vector<StagedKernel> kernels;
  std::vector<StagedKernel> overrides;  // register_kernel_ex with VBT_KERNEL_OVERRIDE_BUILTIN
  std::vector<std::string> multi_device_ops;  // register_kernel_ex with VBT_KERNEL_MULTI_DEVICE (ABI 1.2)
  bool active = true;
  std::vector<std::string> errors;  // every failed registration
};

namespace vbt::plugins {
namespace {

int32_t fail(vbt_registrar r, int32_t status, const std::string& msg) {
  tls_error = msg;
  if (r) r->errors.push_back(msg);
  return status;
}

int32_t host_define_op(vbt_registrar r, const char* schema) {
  if (!r || !r->active) return fail(nullptr, VBT_STATUS_WRONG_PHASE, "define_op called outside vbt_plugin_init");
  if (!schema) return fail(r, VBT_STATUS_INVALID_ARGUMENT, "define_op: NULL schema");
  ExtSchema s;
  try {
    s = ExtSchema::parse(schema);
  } catch (const std::exception& e) {
    return fail(r, VBT_STATUS_INVALID_ARGUMENT, e.what());
  }
  {
    std::lock_guard<std::mutex> lock(registry().mu);
    auto it = registry().ops.find(s.name);
    if (it != registry().ops.end())
      return fail(r, VBT_STATUS_DUPLICATE,
                  "duplicate op name '" + s.name + "': already defined by " + it->second.library);
  }
  if (const OpHandle* h = Dispatcher::get().find_or_null(s.name))
    return fail(r, VBT_STATUS_DUPLICATE, "duplicate op name '" + s.name + "': " +
                                             (h->runtime ? "an op registered at run time" : "it is a built-in vibetensor op"));
  for (const ExtSchema& o : r->new_ops)
    if (o.name == s.name)
      return fail(r, VBT_STATUS_DUPLICATE, "duplicate op name '" + s.name + "': defined twice by this plugin");
  r->new_ops.push_back(std::move(s));
  return VBT_STATUS_OK;
}

int32_t host_register_kernel(vbt_registrar r, const char* op_name, int32_t device_type, vbt_kernel_fn fn, void* user) {
  if (!r || !r->active) return fail(nullptr, VBT_STATUS_WRONG_PHASE, "register_kernel called outside vbt_plugin_init");
  if (!op_name || !fn) return fail(r, VBT_STATUS_INVALID_ARGUMENT, "register_kernel: NULL op name or kernel");
  std::string name = op_name;
  if (device_type != kDLCPU && device_type != kDLCUDA)
    return fail(r, VBT_STATUS_UNSUPPORTED,
                "register_kernel('" + name + "'): unsupported device type " + std::to_string(device_type));
  bool staged = false;
  for (const ExtSchema& o : r->new_ops) staged |= o.name == name;
  if (!staged) {
    std::lock_guard<std::mutex> lock(registry().mu);
    auto it = registry().ops.find(name);
    if (it == registry().ops.end()) {
      if (Dispatcher::get().find_or_null(name))
        return fail(r, VBT_STATUS_UNSUPPORTED,
                    "register_kernel('" + name + "'): '" + name +
                        "' is a built-in op; overriding it needs register_kernel_ex with VBT_KERNEL_OVERRIDE_BUILTIN "
                        "(ABI 1.1)");
      return fail(r, VBT_STATUS_NOT_FOUND, "register_kernel('" + name + "'): unknown op (define it first)");
    }
    if (it->second.kernels.count(device_type))
      return fail(r, VBT_STATUS_DUPLICATE, "register_kernel('" + name + "'): a " + device_type_name(device_type) +
                                               " kernel is already registered by " + it->second.library);
  }
  for (const auto& k : r->kernels)
    if (k.op == name && k.device_type == device_type)
      return fail(r, VBT_STATUS_DUPLICATE, "register_kernel('" + name + "'): " + device_type_name(device_type) +
                                               " kernel registered twice by this plugin");
  r->kernels.push_back({name, device_type, ExtKernel{fn, user}});
  return VBT_STATUS_OK;
}

int32_t host_register_kernel_ex(vbt_registrar r, const char* op_name, int32_t device_type, vbt_kernel_fn fn,
                                void* user, uint32_t flags) {
  if (!r || !r->active) return fail(nullptr, VBT_STATUS_WRONG_PHASE, "register_kernel_ex called outside vbt_plugin_init");
  if (flags & ~uint32_t(VBT_KERNEL_OVERRIDE_BUILTIN | VBT_KERNEL_MULTI_DEVICE))
    return fail(r, VBT_STATUS_INVALID_ARGUMENT, "register_kernel_ex: unknown flags " + std::to_string(flags));
  if ((flags & VBT_KERNEL_OVERRIDE_BUILTIN) && (flags & VBT_KERNEL_MULTI_DEVICE))
    return fail(r, VBT_STATUS_INVALID_ARGUMENT,
                "register_kernel_ex: VBT_KERNEL_OVERRIDE_BUILTIN and VBT_KERNEL_MULTI_DEVICE cannot be combined");
  if (flags & VBT_KERNEL_MULTI_DEVICE) {
    std::string name = op_name ? op_name : "";
    if (device_type != kDLCUDA)
      return fail(r, VBT_STATUS_UNSUPPORTED, "register_kernel_ex('" + name +
                                                 "'): VBT_KERNEL_MULTI_DEVICE needs a kDLCUDA kernel (device type " +
                                                 std::to_string(device_type) + ")");
    bool own = false;
    for (const ExtSchema& o : r->new_ops) own |= o.name == name;
    if (!own)
      return fail(r, VBT_STATUS_UNSUPPORTED, "register_kernel_ex('" + name +
                                                 "'): VBT_KERNEL_MULTI_DEVICE applies only to an op this plugin "
                                                 "defines");
    int32_t rc = host_register_kernel(r, op_name, device_type, fn, user);
    if (rc == VBT_STATUS_OK) r->multi_device_ops.push_back(name);
    return rc;
  }
  if (!(flags & VBT_KERNEL_OVERRIDE_BUILTIN)) return host_register_kernel(r, op_name, device_type, fn, user);
  if (!op_name || !fn) return fail(r, VBT_STATUS_INVALID_ARGUMENT, "register_kernel_ex: NULL op name or kernel");
  std::string name = op_name;
  const OpHandle* h = Dispatcher::get().find_or_null(name);
  if (!h || h->runtime)
    return fail(r, VBT_STATUS_NOT_FOUND,
                "register_kernel_ex('" + name + "'): VBT_KERNEL_OVERRIDE_BUILTIN needs a built-in op");
  if (device_type != kDLCPU)
    return fail(r, VBT_STATUS_UNSUPPORTED, "register_kernel_ex('" + name + "'): only the " +
                                               "CPU kernel of a built-in op can be overridden (device type " +
                                               std::to_string(device_type) + ")");
  {
    std::lock_guard<std::mutex> lock(registry().mu);
    auto it = registry().overridden.find(name);
    if (it != registry().overridden.end())
      return fail(r, VBT_STATUS_DUPLICATE,
                  "register_kernel_ex('" + name + "'): its CPU kernel is already overridden by " + it->second);
  }
  for (const auto& o : r->overrides)
    if (o.op == name)
      return fail(r, VBT_STATUS_DUPLICATE, "register_kernel_ex('" + name + "'): overridden twice by this plugin");
  r->overrides.push_back({name, device_type, ExtKernel{fn, user}});
  return VBT_STATUS_OK;
}

int32_t host_tensor_info(vbt_tensor t, vbt_tensor_info* out) {
  if (!t || !out) { tls_error = "tensor_info: NULL argument"; return VBT_STATUS_INVALID_ARGUMENT; }
  return guarded([&] {
    const Tensor& x = t->t;
    out->data = x.data_ptr();
    out->device = interop::to_dlpack_device(x.device());
    out->dtype = interop::to_dlpack_dtype(x.dtype());
    out->ndim = static_cast<int32_t>(x.dim());
    out->shape = x.sizes().data();
    out->strides = x.strides().data();
    out->numel = x.numel();
    return VBT_STATUS_OK;
  });
}

int32_t host_empty(const int64_t* shape, int32_t ndim, DLDataType dtype, DLDevice device, vbt_tensor* out) {
  if (!out || ndim < 0 || (ndim > 0 && !shape)) { tls_error = "empty: bad arguments"; return VBT_STATUS_INVALID_ARGUMENT; }
  return guarded([&] {
    Shape s(shape, shape + ndim);
    for (int64_t d : s) VBT_CHECK_VALUE(d >= 0, "empty: negative dimension ", d);
    *out = new vbt_tensor_s{empty(s, scalar_type_of(dtype), device_of(device))};
    return VBT_STATUS_OK;
  });
}

void host_release_tensor(vbt_tensor t) { delete t; }

int32_t host_iter_build(const char* op_name, const vbt_tensor* inputs, int32_t ninputs, DLDataType out_dtype, vbt_iter* out) {
  if (!out || ninputs < 0 || (ninputs > 0 && !inputs)) { tls_error = "iter_build: bad arguments"; return VBT_STATUS_INVALID_ARGUMENT; }
  return guarded([&] {
    auto it = std::make_unique<vbt_iter_s>();
    it->op_name = op_name ? op_name : "plugin_op";
    TensorIteratorConfig cfg(it->op_name.c_str());
    cfg.add_output(Tensor());
    for (int32_t i = 0; i < ninputs; ++i) {
      VBT_CHECK_VALUE(inputs[i] != nullptr, it->op_name, ": NULL input ", i);
      VBT_CHECK(inputs[i]->t.device().type == DeviceType::CPU, it->op_name,
                ": the iterator helpers run on CPU tensors only");
      cfg.add_input(inputs[i]->t, inputs[i]->t.impl()->wrapped_number);
    }
    if (out_dtype.bits != 0) cfg.set_output_dtype(scalar_type_of(out_dtype));
    it->it = std::make_unique<TensorIterator>(cfg.build());
    *out = it.release();
    return VBT_STATUS_OK;
  });
}

int32_t host_iter_common_dtype(vbt_iter it, DLDataType* out) {
  if (!it || !out) { tls_error = "iter_common_dtype: NULL argument"; return VBT_STATUS_INVALID_ARGUMENT; }
  *out = interop::to_dlpack_dtype(it->it->common_dtype());
  return VBT_STATUS_OK;
}

int32_t host_iter_for_each(vbt_iter it, vbt_loop_fn loop, void* ctx) {
  if (!it || !loop) { tls_error = "iter_for_each: NULL argument"; return VBT_STATUS_INVALID_ARGUMENT; }
  return guarded([&] {
    it->it->for_each([loop, ctx](char** data, const int64_t* strides, int64_t n) { loop(data, strides, n, ctx); });
    return VBT_STATUS_OK;
  });
}

int32_t host_iter_output(vbt_iter it, vbt_tensor* out) {
  if (!it || !out) { tls_error = "iter_output: NULL argument"; return VBT_STATUS_INVALID_ARGUMENT; }
  return guarded([&] {
    *out = new vbt_tensor_s{it->it->output(0)};
    return VBT_STATUS_OK;
  });
}

void host_iter_free(vbt_iter it) { delete it; }

void host_set_error(const char* msg) { tls_error = msg ? msg : ""; }

void* host_cuda_current_stream(DLDevice device) {
  if (device.device_type != kDLCUDA) return nullptr;
  CudaStreamProvider p = g_stream_provider.load();
  if (!p) return nullptr;
  try {
    return p(device.device_id);
  } catch (...) {
    return nullptr;
  }
}

const vbt_host_api& host_api() {
  static const vbt_host_api api = [] {
    vbt_host_api a{};
    a.abi_major = VBT_PLUGIN_ABI_MAJOR;
    a.abi_minor = VBT_PLUGIN_ABI_MINOR;
    a.struct_size = sizeof(vbt_host_api);
    a.define_op = &host_define_op;
    a.register_kernel = &host_register_kernel;
    a.tensor_info = &host_tensor_info;
    a.empty = &host_empty;
    a.release_tensor = &host_release_tensor;
    a.iter_build = &host_iter_build;
    a.iter_common_dtype = &host_iter_common_dtype;
    a.iter_for_each = &host_iter_for_each;
    a.iter_output = &host_iter_output;
    a.iter_free = &host_iter_free;
    a.set_error = &host_set_error;
    a.register_kernel_ex = &host_register_kernel_ex;
    a.cuda_current_stream = &host_cuda_current_stream;
    return a;
  }();
  return api;
}

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : "; ") + s;
  return out;
}

// Runs a plugin kernel for a dispatcher call (the boxed kernel of a plugin op or of an overridden
// built-in): arguments become vbt_values in schema order; a given out= receives the result.
Value run_plugin_kernel(const OpHandle& op, const Args& args, const ExtKernel& k) {
  const char* name = op.def.name;
  size_t nhandles = args.size();
  for (const Value& a : args.values())
    if (auto tl = std::get_if<TensorList>(&a)) nhandles += tl->size();
  std::vector<vbt_tensor_s> handles;
  handles.reserve(nhandles);  // never reallocates: values point into it
  std::vector<vbt_tensor> list_handles;  // the handle arrays of Tensor[] arguments, back to back
  list_handles.reserve(nhandles);
  std::vector<vbt_tensor_list> lists;
  lists.reserve(args.size());
  std::vector<vbt_value> values(args.size());
  Tensor out_arg;
  for (size_t i = 0; i < args.size(); ++i) {
    vbt_value& v = values[i];
    const Value& a = args[i];
    if (static_cast<int>(i) == op.out_index) {  // the plugin computes a fresh result; out= is written below
      if (auto t = std::get_if<Tensor>(&a)) out_arg = *t;
      v.tag = VBT_VALUE_NONE;
    } else if (std::holds_alternative<std::monostate>(a)) {
      v.tag = VBT_VALUE_NONE;
    } else if (auto t = std::get_if<Tensor>(&a)) {
      if (!t->defined()) { v.tag = VBT_VALUE_NONE; continue; }
      handles.push_back(vbt_tensor_s{*t});
      v.tag = VBT_VALUE_TENSOR;
      v.u.tensor = &handles.back();
    } else if (auto tl = std::get_if<TensorList>(&a)) {
      const size_t first = list_handles.size();
      for (size_t j = 0; j < tl->size(); ++j) {
        const Tensor& t = (*tl)[j];
        if (!t.defined()) {
          std::string arg = i < op.schema.args.size() ? op.schema.args[i].name : std::to_string(i);
          throw_error(ErrorKind::Value, name, ": argument '", arg, "' holds an undefined tensor at index ", j);
        }
        handles.push_back(vbt_tensor_s{t});
        list_handles.push_back(&handles.back());
      }
      lists.push_back(vbt_tensor_list{list_handles.data() + first, static_cast<int64_t>(tl->size())});
      v.tag = VBT_VALUE_TENSOR_LIST;
      v.u.list = &lists.back();
    } else if (auto n = std::get_if<int64_t>(&a)) {
      v.tag = VBT_VALUE_INT;
      v.u.i = *n;
    } else if (auto d = std::get_if<double>(&a)) {
      v.tag = VBT_VALUE_FLOAT;
      v.u.f = *d;
    } else if (auto b = std::get_if<bool>(&a)) {
      v.tag = VBT_VALUE_BOOL;
      v.u.b = *b ? 1 : 0;
    } else if (auto sc = std::get_if<Scalar>(&a)) {
      if (sc->is_bool()) { v.tag = VBT_VALUE_BOOL; v.u.b = sc->to_bool() ? 1 : 0; }
      else if (sc->is_floating()) { v.tag = VBT_VALUE_FLOAT; v.u.f = sc->to_double(); }
      else { v.tag = VBT_VALUE_INT; v.u.i = sc->to_int(); }
    } else {
      std::string arg = i < op.schema.args.size() ? op.schema.args[i].name : std::to_string(i);
      throw_error(ErrorKind::NotImplemented, name, ": argument '", arg,
                  "' has a type the plugin ABI cannot pass (Tensor, Tensor[], int, float, bool, Scalar)");
    }
  }
  vbt_tensor out = nullptr;
  tls_error.clear();
  int32_t rc = k.fn(&host_api(), values.data(), static_cast<int32_t>(values.size()), &out, k.user);
  if (rc != VBT_STATUS_OK) {
    if (out) delete out;
    std::string msg = tls_error.empty() ? "(no message)" : tls_error;
    ErrorKind kind = rc == VBT_STATUS_INVALID_ARGUMENT ? ErrorKind::Value
                     : rc == VBT_STATUS_UNSUPPORTED    ? ErrorKind::NotImplemented
                                                       : ErrorKind::Runtime;
    throw_error(kind, name, ": plugin kernel failed (status ", rc, "): ", msg);
  }
  if (op.schema.returns == "()") {  // ABI 1.2: an op that only mutates its arguments
    if (out) {
      delete out;
      throw_error(ErrorKind::Runtime, name, ": plugin kernel of an op returning () produced an output tensor");
    }
    return std::monostate{};
  }
  VBT_CHECK(out != nullptr, name, ": plugin kernel returned OK but no output tensor");
  Tensor result = out->t;
  delete out;
  if (out_arg.defined()) return Dispatcher::get().write_out(op, out_arg, result);
  return result;
}

BoxedKernel boxed(const ExtKernel& k) {
  return [k](const OpHandle& op, const Args& args) -> Value { return run_plugin_kernel(op, args, k); };
}

DispatchKey key_of(int32_t dl_device_type) { return dl_device_type == kDLCUDA ? DispatchKey::CUDA : DispatchKey::CPU; }

// Undoes a library's dispatcher registrations in reverse order and forgets them in the registry.
// Caller holds load_mu (not mu).
void undo_registrations(const std::string& path, const LibraryRecord& rec) {
  Dispatcher& d = Dispatcher::get();
  std::lock_guard<std::mutex> lock(registry().mu);
  for (auto it = rec.overrides.rbegin(); it != rec.overrides.rend(); ++it) {
    d.set_boxed_kernel(it->op, DispatchKey::CPU, it->previous);
    auto o = registry().overridden.find(it->op);
    if (o != registry().overridden.end() && o->second == path) registry().overridden.erase(o);
  }
  for (auto it = rec.kernels.rbegin(); it != rec.kernels.rend(); ++it) {
    if (d.find_or_null(it->first)) d.set_boxed_kernel(it->first, key_of(it->second), BoxedKernel());
    auto op = registry().ops.find(it->first);
    if (op != registry().ops.end()) op->second.kernels.erase(it->second);
  }
  for (auto it = rec.ops.rbegin(); it != rec.ops.rend(); ++it) {
    if (d.find_or_null(*it)) d.remove_op(*it);
    registry().ops.erase(*it);
  }
}

}  // namespace

// ---- the loader ---------------------------------------------------------------------------------

std::vector<std::string> load_library(const std::string& path) {
  std::lock_guard<std::mutex> load_lock(registry().load_mu);
  {
    std::lock_guard<std::mutex> lock(registry().mu);
    auto it = registry().libraries.find(path);
    if (it != registry().libraries.end()) return it->second.ops;
  }
  dlerror();
  void* h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    const char* e = dlerror();
    throw_error(ErrorKind::Runtime, "load_library: cannot load '", path, "': ", e ? e : "unknown dlopen error");
  }
  auto reject = [&](const std::string& why) {
    dlclose(h);
    throw_error(ErrorKind::Runtime, "load_library: rejected '", path, "': ", why);
  };
  auto version_fn = reinterpret_cast<vbt_plugin_abi_version_fn>(dlsym(h, VBT_PLUGIN_ABI_VERSION_SYMBOL));
  if (!version_fn)
    reject(std::string("missing entry point '") + VBT_PLUGIN_ABI_VERSION_SYMBOL +
           "' (not a vibetensor plugin? use VBT_PLUGIN_DEFINE_ABI_VERSION())");
  uint32_t major = 0, minor = 0;
  version_fn(&major, &minor);
  if (major != VBT_PLUGIN_ABI_MAJOR)
    reject("plugin ABI major version " + std::to_string(major) + "." + std::to_string(minor) +
           " is incompatible with this runtime's " + std::to_string(VBT_PLUGIN_ABI_MAJOR) + "." +
           std::to_string(VBT_PLUGIN_ABI_MINOR));
  if (minor > VBT_PLUGIN_ABI_MINOR)
    reject("plugin needs ABI " + std::to_string(major) + "." + std::to_string(minor) + ", newer than this runtime's " +
           std::to_string(VBT_PLUGIN_ABI_MAJOR) + "." + std::to_string(VBT_PLUGIN_ABI_MINOR) +
           " (rebuild the plugin against this runtime or upgrade the runtime)");
  auto init_fn = reinterpret_cast<vbt_plugin_init_fn>(dlsym(h, VBT_PLUGIN_INIT_SYMBOL));
  if (!init_fn) reject(std::string("missing entry point '") + VBT_PLUGIN_INIT_SYMBOL + "'");

  vbt_registrar_s reg;
  reg.library = path;
  tls_error.clear();
  int32_t rc = VBT_STATUS_RUNTIME_ERROR;
  try {
    rc = init_fn(&host_api(), &reg);
  } catch (...) {
    reg.errors.push_back("a C++ exception escaped vbt_plugin_init");
  }
  reg.active = false;
  size_t staged = reg.new_ops.size() + reg.kernels.size() + reg.overrides.size();
  if (rc != VBT_STATUS_OK || !reg.errors.empty()) {
    std::string why = rc != VBT_STATUS_OK
                          ? "vbt_plugin_init failed with status " + std::to_string(rc) + ": " +
                                (tls_error.empty() ? std::string("(no message)") : tls_error)
                          : "vbt_plugin_init returned OK but a registration failed";
    if (!reg.errors.empty()) why += " [registration errors: " + join(reg.errors) + "]";
    why += "; rolled back " + std::to_string(staged) + " staged registration(s)";
    reject(why);
  }
  // Commit: into the dispatcher (Note [Run-time registration] in dispatcher.h) and the registry. Loads are
  // serialised by load_mu, so the names checked during init are still free; any failure here undoes
  // every registration made so far.
  std::vector<std::string> names;
  LibraryRecord rec;
  std::string commit_error;
  Dispatcher& d = Dispatcher::get();
  try {
    for (ExtSchema& s : reg.new_ops) {
      d.register_op(OpDef{s.name.c_str(), s.text.c_str()});
      rec.ops.push_back(s.name);
      names.push_back(s.name);
      ExtOp op;
      op.schema = s;
      op.library = path;
      std::lock_guard<std::mutex> lock(registry().mu);
      registry().ops.emplace(s.name, std::move(op));
    }
    for (auto& k : reg.kernels) {
      d.set_boxed_kernel(k.op, key_of(k.device_type), boxed(k.kernel));
      bool own = false;
      for (const auto& n : rec.ops) own |= n == k.op;
      if (!own) rec.kernels.emplace_back(k.op, k.device_type);
      std::lock_guard<std::mutex> lock(registry().mu);
      registry().ops.at(k.op).kernels[k.device_type] = k.kernel;
    }
    for (const std::string& n : reg.multi_device_ops) {
      d.set_multi_device(n, true);  // dropped with the op by remove_op
      std::lock_guard<std::mutex> lock(registry().mu);
      registry().ops.at(n).multi_device = true;
    }
    for (auto& o : reg.overrides) {
      BoxedKernel previous = d.set_boxed_kernel(o.op, DispatchKey::CPU, boxed(o.kernel));
      rec.overrides.push_back({o.op, std::move(previous)});
      std::lock_guard<std::mutex> lock(registry().mu);
      registry().overridden[o.op] = path;
    }
  } catch (const std::exception& e) {
    commit_error = e.what();
  }
  if (!commit_error.empty()) {
    undo_registrations(path, rec);
    reject("registration failed: " + commit_error + "; rolled back " + std::to_string(staged) +
           " staged registration(s)");
  }
  {
    std::lock_guard<std::mutex> lock(registry().mu);
    registry().libraries[path] = std::move(rec);
    registry().handles.push_back(h);
  }
  return names;
}

std::vector<std::string> loaded_libraries() {
  std::lock_guard<std::mutex> lock(registry().mu);
  std::vector<std::string> out;
  for (const auto& [p, _] : registry().libraries) out.push_back(p);
  return out;
}

bool unload_library(const std::string& path) {
  std::lock_guard<std::mutex> load_lock(registry().load_mu);
  LibraryRecord rec;
  {
    std::lock_guard<std::mutex> lock(registry().mu);
    auto it = registry().libraries.find(path);
    if (it == registry().libraries.end()) return false;
    rec = std::move(it->second);
    registry().libraries.erase(it);
  }
  undo_registrations(path, rec);  // the shared object stays mapped: a kernel may still be running
  return true;
}

std::vector<std::string> overridden_ops() {
  std::lock_guard<std::mutex> lock(registry().mu);
  std::vector<std::string> out;
  for (const auto& [n, _] : registry().overridden) out.push_back(n);
  return out;
}

bool has_ext_op(const std::string& name) {
  std::lock_guard<std::mutex> lock(registry().mu);
  return registry().ops.count(name) != 0;
}

ExtSchema ext_op_schema(const std::string& name) {
  std::lock_guard<std::mutex> lock(registry().mu);
  auto it = registry().ops.find(name);
  if (it == registry().ops.end()) throw_error(ErrorKind::Runtime, "unknown op '", name, "'");
  return it->second.schema;
}

std::vector<std::string> ext_op_names() {
  std::lock_guard<std::mutex> lock(registry().mu);
  std::vector<std::string> out;
  for (const auto& [n, _] : registry().ops) out.push_back(n);
  return out;
}

Tensor call_ext_op(const std::string& name, std::vector<ExtValue> args) {
  {
    std::lock_guard<std::mutex> lock(registry().mu);
    if (!registry().ops.count(name)) throw_error(ErrorKind::Runtime, "unknown op '", name, "'");
  }
  const OpHandle& op = Dispatcher::get().find(name);
  VBT_CHECK_TYPE(args.size() == op.schema.args.size(), name, "() expects ", op.schema.args.size(),
                 " arguments, got ", args.size());
  Args values;
  for (ExtValue& v : args) std::visit([&](auto&& x) { values.push_back(Value(std::move(x))); }, v);
  // The dispatcher's call path: layers, the device policy (Note [Device policy]), then the plugin kernel.
  Value r = Dispatcher::get().call(op, values);
  if (op.schema.returns == "()" && std::holds_alternative<std::monostate>(r)) return Tensor();
  auto* t = std::get_if<Tensor>(&r);
  VBT_CHECK(t != nullptr, name, ": plugin op did not return a Tensor");
  return *t;
}

void set_cuda_stream_provider(CudaStreamProvider fn) { g_stream_provider.store(fn); }

}  // namespace vbt::plugins
