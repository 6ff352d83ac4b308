// Python binding of extension ops: C plugins (vt.ops.load_library) and the Python override layer
// used by vibetensor.torch.library. Called from vbt_bind_interop when VBT_HAS_PLUGINS is defined.
// Note [Python override layer]: overriding a built-in op installs the dispatcher's Python wrapper
// layer (DispatchKey::Python); the layer looks up the op name in a table of Python callables
// f(device: str, args: list) and calls it, or continues with `next` when the op has no override or f
// returns NotImplemented. The layer is installed only while at least one override exists, so ops
// without overrides pay nothing when none are registered.
#include <nanobind/nanobind.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <atomic>
#include <mutex>
#include <unordered_map>

#include "vbt/dispatch/dispatcher.h"
#include "vbt/plugins/registry.h"
#ifdef VBT_WITH_CUDA  // the CUDA runtime is built (VBT_HAS_CUDA: only the subsystem, host backend included)
#include "vbt/cuda/stream.h"
#endif

namespace nb = nanobind;
using namespace vbt;

namespace {

// ---- extension-op calls ---------------------------------------------------------------------------

plugins::ExtValue ext_value(nb::handle h, const plugins::ExtArg& spec, const std::string& op) {
  auto bad = [&](const char* expected) {
    throw_error(ErrorKind::Type, op, "(): argument '", spec.name, "' must be ", expected, ", not ",
                nb::type_name(h.type()).c_str());
  };
  if (h.is_none()) {
    if (!spec.optional) bad("not None");
    return std::monostate{};
  }
  switch (spec.type) {
    case plugins::ExtArgType::Tensor:
      if (!nb::isinstance<Tensor>(h)) bad("Tensor");
      return nb::cast<Tensor>(h);
    case plugins::ExtArgType::Int:
      if (PyBool_Check(h.ptr()) || !PyLong_Check(h.ptr())) bad("int");
      return nb::cast<int64_t>(h);
    case plugins::ExtArgType::Float:
      if (PyBool_Check(h.ptr()) || !(PyLong_Check(h.ptr()) || PyFloat_Check(h.ptr()))) bad("float");
      return PyFloat_AsDouble(h.ptr());
    case plugins::ExtArgType::Bool:
      if (!PyBool_Check(h.ptr())) bad("bool");
      return h.ptr() == Py_True;
    case plugins::ExtArgType::TensorList: {  // ABI 1.2: a list or tuple of tensors
      if (!PyList_Check(h.ptr()) && !PyTuple_Check(h.ptr())) bad("a list or tuple of Tensors");
      std::vector<Tensor> out;
      size_t j = 0;
      for (nb::handle item : nb::borrow<nb::sequence>(h)) {
        if (!nb::isinstance<Tensor>(item))
          throw_error(ErrorKind::Type, op, "(): argument '", spec.name, "' must be a list of Tensors, but element ",
                      j, " is ", nb::type_name(item.type()).c_str());
        out.push_back(nb::cast<Tensor>(item));
        ++j;
      }
      return out;
    }
  }
  bad("a supported value");
  return std::monostate{};
}

nb::object ext_call(const std::string& name, nb::args args, nb::kwargs kwargs) {
  plugins::ExtSchema s = plugins::ext_op_schema(name);
  const auto& specs = s.args;
  if (args.size() > specs.size())
    throw_error(ErrorKind::Type, name, "() takes ", specs.size(), " arguments but ", args.size(), " were given");
  std::vector<nb::handle> given(specs.size());
  std::vector<bool> have(specs.size(), false);
  for (size_t i = 0; i < args.size(); ++i) { given[i] = args[i]; have[i] = true; }
  for (auto [k, v] : kwargs) {
    std::string key = nb::cast<std::string>(k);
    size_t i = 0;
    while (i < specs.size() && specs[i].name != key) ++i;
    if (i == specs.size()) throw_error(ErrorKind::Type, name, "() got an unexpected keyword argument '", key, "'");
    if (have[i]) throw_error(ErrorKind::Type, name, "() got multiple values for argument '", key, "'");
    given[i] = v;
    have[i] = true;
  }
  std::vector<plugins::ExtValue> boxed;
  for (size_t i = 0; i < specs.size(); ++i) {
    if (have[i]) boxed.push_back(ext_value(given[i], specs[i], name));
    else if (specs[i].has_default) boxed.push_back(specs[i].default_value);
    else throw_error(ErrorKind::Type, name, "() missing required argument '", specs[i].name, "'");
  }
  Tensor r;
  {
    nb::gil_scoped_release release;  // plugin kernels never touch Python
    r = plugins::call_ext_op(name, std::move(boxed));
  }
  if (s.returns_none) return nb::none();  // `-> ()` (ABI 1.2)
  return nb::cast(r);
}

// ---- Python override layer --------------------------------------------------------------------------

struct Overrides {
  std::mutex mu;
  std::unordered_map<std::string, PyObject*> fns;  // strong references
  std::atomic<size_t> count{0};
};
Overrides& overrides() {
  static Overrides* o = new Overrides();  // never destroyed (holds Python objects)
  return *o;
}

nb::object value_to_py(const Value& v) {
  if (auto t = std::get_if<Tensor>(&v)) return nb::cast(*t);
  if (auto s = std::get_if<Scalar>(&v)) {
    if (s->is_bool()) return nb::bool_(s->to_bool());
    if (s->is_floating()) return nb::float_(s->to_double());
    return nb::int_(s->to_int());
  }
  if (auto i = std::get_if<int64_t>(&v)) return nb::int_(*i);
  if (auto d = std::get_if<double>(&v)) return nb::float_(*d);
  if (auto b = std::get_if<bool>(&v)) return nb::bool_(*b);
  if (auto sh = std::get_if<Shape>(&v)) {
    nb::list l;
    for (int64_t x : *sh) l.append(nb::int_(x));
    return l;
  }
  if (auto str = std::get_if<std::string>(&v)) return nb::str(str->c_str());
  if (auto tl = std::get_if<TensorList>(&v)) {
    nb::list l;
    for (const Tensor& t : *tl) l.append(nb::cast(t));
    return l;
  }
  if (auto st = std::get_if<ScalarType>(&v)) return nb::module_::import_("vibetensor._C").attr(dtype_name(*st));
  if (auto dev = std::get_if<Device>(&v)) return nb::str(dev->str().c_str());
  return nb::none();  // None, Generator (not exposed to overrides)
}

Value py_to_value(nb::handle h, const char* op) {
  if (h.is_none()) return std::monostate{};
  if (nb::isinstance<Tensor>(h)) return nb::cast<Tensor>(h);
  if (PyBool_Check(h.ptr())) return Scalar(h.ptr() == Py_True);
  if (PyLong_Check(h.ptr())) return Scalar(nb::cast<int64_t>(h));
  if (PyFloat_Check(h.ptr())) return Scalar(nb::cast<double>(h));
  if (PyTuple_Check(h.ptr()) || PyList_Check(h.ptr())) {
    TensorList out;
    for (nb::handle item : nb::borrow<nb::sequence>(h)) {
      if (!nb::isinstance<Tensor>(item))
        throw_error(ErrorKind::Type, op, ": a Python override returned a sequence holding ",
                    nb::type_name(item.type()).c_str(), "; expected Tensors");
      out.push_back(nb::cast<Tensor>(item));
    }
    return out;
  }
  throw_error(ErrorKind::Type, op, ": a Python override returned ", nb::type_name(h.type()).c_str(),
              "; expected a Tensor, a sequence of Tensors, a number or None");
}

std::string call_device(const Args& args) {
  for (const Value& v : args.values()) {
    if (auto t = std::get_if<Tensor>(&v)) if (t->defined()) return t->device().type == DeviceType::CUDA ? "cuda" : "cpu";
    if (auto tl = std::get_if<TensorList>(&v))
      for (const Tensor& t : *tl) if (t.defined()) return t.device().type == DeviceType::CUDA ? "cuda" : "cpu";
    if (auto d = std::get_if<Device>(&v)) return d->type == DeviceType::CUDA ? "cuda" : "cpu";
  }
  return "cpu";
}

Value python_layer(const OpHandle& op, Args& args, const std::function<Value(Args&)>& next) {
  if (overrides().count.load(std::memory_order_relaxed) == 0) return next(args);
  PyObject* fn = nullptr;
  {
    std::lock_guard<std::mutex> lock(overrides().mu);
    auto it = overrides().fns.find(op.def.name);
    if (it != overrides().fns.end()) fn = it->second;
  }
  if (!fn) return next(args);
  nb::gil_scoped_acquire gil;
  nb::object f = nb::borrow(fn);  // keeps it alive even if unregistered meanwhile
  nb::list pyargs;
  for (const Value& v : args.values()) pyargs.append(value_to_py(v));
  nb::object r = f(nb::str(call_device(args).c_str()), pyargs);
  if (r.ptr() == Py_NotImplemented) return next(args);
  return py_to_value(r, op.def.name);
}

void set_python_override(const std::string& name, nb::object fn) {
  Dispatcher::get().find(name);  // RuntimeError for unknown ops
  std::lock_guard<std::mutex> lock(overrides().mu);
  auto& fns = overrides().fns;
  auto it = fns.find(name);
  if (it != fns.end()) {
    Py_DECREF(it->second);
    fns.erase(it);
  }
  if (!fn.is_none()) {
    VBT_CHECK_TYPE(PyCallable_Check(fn.ptr()), "override for '", name, "' must be callable");
    fns[name] = fn.release().ptr();
  }
  size_t before = overrides().count.load();
  overrides().count.store(fns.size());
  if (before == 0 && !fns.empty()) Dispatcher::get().set_layer(DispatchKey::Python, &python_layer);
  if (before != 0 && fns.empty()) Dispatcher::get().set_layer(DispatchKey::Python, LayerFn());
}

}  // namespace

void vbt_bind_plugins(nb::module_& m) {
#ifdef VBT_WITH_CUDA
  // host->cuda_current_stream (ABI 1.2): this thread's current vibetensor stream of the device.
  plugins::set_cuda_stream_provider(
      [](int device_index) -> void* { return static_cast<void*>(cuda::current_stream(device_index).handle()); });
#endif
  m.def("_load_library", [](const std::string& path) {
    nb::gil_scoped_release release;
    return plugins::load_library(path);
  }, nb::arg("path"));
  m.def("_loaded_libraries", &plugins::loaded_libraries);
  m.def("_unload_library", [](const std::string& path) {
    nb::gil_scoped_release release;
    return plugins::unload_library(path);
  }, nb::arg("path"));
  m.def("_overridden_ops", &plugins::overridden_ops);
  m.def("_ext_ops", &plugins::ext_op_names);
  m.def("_has_ext_op", &plugins::has_ext_op);
  m.def("_ext_schema", [](const std::string& name) { return plugins::ext_op_schema(name).text; });
  m.def("_ext_call", &ext_call, nb::arg("name"), nb::arg("args"), nb::arg("kwargs"));
  m.def("_set_python_override", &set_python_override, nb::arg("name"), nb::arg("fn").none());
  m.def("_python_overrides", [] {
    std::lock_guard<std::mutex> lock(overrides().mu);
    std::vector<std::string> out;
    for (const auto& [n, _] : overrides().fns) out.push_back(n);
    return out;
  });
}
