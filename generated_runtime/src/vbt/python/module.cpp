// The nanobind binding, vibetensor._C. Policy: this layer is narrow -- it converts Python
// values to boxed op arguments by the op's schema (dispatcher.h), calls the dispatcher, and
// converts results back; it never reaches into kernels. It also exposes the Tensor handle
// (geometry, dtype, version counter), dtype/device/Generator objects and NumPy interop.
// The public, torch-like API lives in python/vibetensor/torch and is built on top of this.
// vbt::Error kinds map to Python exceptions (Note [Error kinds]); argument conversion
// failures raise TypeError naming the op and the argument.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/shared_ptr.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <cmath>
#include <cstring>

#include "vbt/core/generator.h"
#include "vbt/core/tensor_impl.h"
#include "vbt/cpu/parallel.h"
#include "vbt/cpu/tensor_iterator.h"
#include "vbt/dispatch/dispatcher.h"

namespace nb = nanobind;
using namespace vbt;

// Optional subsystems bind themselves into _C (Note: each cmake/<name>.cmake defines VBT_HAS_<NAME>).
#ifdef VBT_HAS_AUTOGRAD
void vbt_bind_autograd(nanobind::module_& m);
#endif
#ifdef VBT_HAS_INTEROP
void vbt_bind_interop(nanobind::module_& m);
#endif
#ifdef VBT_HAS_CUDA
void vbt_bind_cuda(nanobind::module_& m);
#endif

namespace {

// A dtype object (vt.float32 ...). One instance per ScalarType, so `is` and == both work.
struct PyDType {
  ScalarType type;
};
// A device object (vt.device("cpu")).
struct PyDevice {
  Device device;
};
struct PyGenerator {
  GeneratorPtr gen;
};

// Borrowed: the module attributes own the dtype objects (a static owning vector would outlive
// the interpreter and trip nanobind's leak check).
std::vector<PyObject*>& dtype_objects() {
  static std::vector<PyObject*> objs;
  return objs;
}
nb::object dtype_object(ScalarType t) { return nb::borrow(dtype_objects().at(static_cast<size_t>(t))); }

[[noreturn]] void arg_error(const OpHandle& op, const ArgSpec& spec, const char* expected, nb::handle got) {
  std::string tname = nb::type_name(got.type()).c_str();
  throw_error(ErrorKind::Type, op.def.name, "(): argument '", spec.name, "' must be ", expected, ", not ", tname);
}

bool is_py_number(nb::handle h) {
  return PyBool_Check(h.ptr()) || PyLong_Check(h.ptr()) || PyFloat_Check(h.ptr());
}

Scalar to_scalar(nb::handle h) {
  if (PyBool_Check(h.ptr())) return Scalar(h.ptr() == Py_True);
  if (PyLong_Check(h.ptr())) return Scalar(static_cast<int64_t>(nb::cast<int64_t>(h)));
  return Scalar(nb::cast<double>(h));
}

ScalarType to_dtype(nb::handle h, const OpHandle& op, const ArgSpec& spec) {
  if (nb::isinstance<PyDType>(h)) return nb::cast<PyDType&>(h).type;
  if (nb::isinstance<nb::str>(h)) return dtype_from_name(nb::cast<std::string>(h));
  if (h.ptr() == reinterpret_cast<PyObject*>(&PyFloat_Type)) return ScalarType::Float64;
  if (h.ptr() == reinterpret_cast<PyObject*>(&PyLong_Type)) return ScalarType::Int64;
  if (h.ptr() == reinterpret_cast<PyObject*>(&PyBool_Type)) return ScalarType::Bool;
  arg_error(op, spec, "a dtype", h);
}

int64_t to_int(nb::handle h, const OpHandle& op, const ArgSpec& spec) {
  if (nb::isinstance<Tensor>(h)) {
    const Tensor& t = nb::cast<const Tensor&>(h);
    if (t.numel() == 1 && is_integral(t.dtype(), true)) {
      Args args{t};
      return std::get<Scalar>(Dispatcher::get().call(Dispatcher::get().find("item"), args)).to_int();
    }
  }
  if (PyFloat_Check(h.ptr()) || !PyIndex_Check(h.ptr())) arg_error(op, spec, "int", h);
  return nb::cast<int64_t>(nb::steal(PyNumber_Index(h.ptr())));
}

Value to_value(nb::handle h, const OpHandle& op, const ArgSpec& spec) {
  if (h.is_none()) {
    if (!spec.optional) arg_error(op, spec, "not None", h);
    return std::monostate{};
  }
  switch (spec.type) {
    case ArgType::Tensor: {
      if (nb::isinstance<Tensor>(h)) return nb::cast<Tensor>(h);
      if (is_py_number(h)) {
        Scalar s = to_scalar(h);
        Tensor t = scalar_to_tensor(s, s.natural_dtype());
        t.impl()->wrapped_number = true;
        return t;
      }
      arg_error(op, spec, "Tensor or number", h);
    }
    case ArgType::Scalar: {
      if (is_py_number(h)) return to_scalar(h);
      if (nb::isinstance<Tensor>(h)) {
        const Tensor& t = nb::cast<const Tensor&>(h);
        VBT_CHECK(t.numel() == 1, op.def.name, "(): argument '", spec.name, "' must be a number or a 1-element tensor, got shape ",
                  shape_str(t.sizes()));
        Args args{t};
        return std::get<Scalar>(Dispatcher::get().call(Dispatcher::get().find("item"), args));
      }
      if (PyIndex_Check(h.ptr())) return Scalar(static_cast<int64_t>(nb::cast<int64_t>(nb::steal(PyNumber_Index(h.ptr())))));
      if (PyNumber_Check(h.ptr())) return Scalar(PyFloat_AsDouble(h.ptr()));
      arg_error(op, spec, "a number", h);
    }
    case ArgType::Int: return to_int(h, op, spec);
    case ArgType::Float:
      if (PyFloat_Check(h.ptr()) || PyLong_Check(h.ptr())) return PyFloat_AsDouble(h.ptr());
      if (nb::isinstance<Tensor>(h) || PyNumber_Check(h.ptr())) return nb::cast<double>(nb::float_(h));
      arg_error(op, spec, "float", h);
    case ArgType::Bool:
      if (PyBool_Check(h.ptr())) return h.ptr() == Py_True;
      arg_error(op, spec, "bool", h);
    case ArgType::IntList: {
      if (PyIndex_Check(h.ptr()) && !PyBool_Check(h.ptr())) return Shape{to_int(h, op, spec)};
      if (!PySequence_Check(h.ptr()) || nb::isinstance<nb::str>(h)) arg_error(op, spec, "a sequence of ints", h);
      Shape out;
      for (nb::handle item : nb::borrow<nb::sequence>(h)) out.push_back(to_int(item, op, spec));
      return out;
    }
    case ArgType::Str:
      if (nb::isinstance<nb::str>(h)) return nb::cast<std::string>(h);
      arg_error(op, spec, "str", h);
    case ArgType::TensorList: {
      if (!PySequence_Check(h.ptr())) arg_error(op, spec, "a sequence of Tensors", h);
      TensorList out;
      for (nb::handle item : nb::borrow<nb::sequence>(h)) {
        if (!nb::isinstance<Tensor>(item)) arg_error(op, spec, "a sequence of Tensors", item);
        out.push_back(nb::cast<Tensor>(item));
      }
      return out;
    }
    case ArgType::Dtype: return to_dtype(h, op, spec);
    case ArgType::Generator:
      if (nb::isinstance<PyGenerator>(h)) return nb::cast<PyGenerator&>(h).gen;
      arg_error(op, spec, "a Generator", h);
    case ArgType::Device:
      if (nb::isinstance<PyDevice>(h)) return nb::cast<PyDevice&>(h).device;
      if (nb::isinstance<nb::str>(h)) return Device::parse(nb::cast<std::string>(h));
      arg_error(op, spec, "a device", h);
  }
  VBT_INTERNAL_ASSERT(false, "unhandled ArgType");
}

nb::object from_value(const Value& v) {
  if (auto t = std::get_if<Tensor>(&v)) return nb::cast(*t);
  if (auto tl = std::get_if<TensorList>(&v)) {
    nb::list l;
    for (const Tensor& t : *tl) l.append(nb::cast(t));
    return nb::tuple(l);
  }
  if (auto s = std::get_if<Scalar>(&v)) {
    if (s->is_bool()) return nb::bool_(s->to_bool());
    if (s->is_floating()) return nb::float_(s->to_double());
    return nb::int_(s->to_int());
  }
  if (std::holds_alternative<std::monostate>(v)) return nb::none();
  VBT_INTERNAL_ASSERT(false, "unsupported return Value");
}

// _C.call(name, *args, **kwargs): the one entry point to every op.
nb::object call(const std::string& name, nb::args args, nb::kwargs kwargs) {
  const OpHandle& op = Dispatcher::get().find(name);
  const auto& specs = op.schema.args;
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
  Args boxed;
  for (size_t i = 0; i < specs.size(); ++i) {
    if (have[i]) boxed.push_back(to_value(given[i], op, specs[i]));
    else if (specs[i].has_default) boxed.push_back(specs[i].default_value);
    else throw_error(ErrorKind::Type, name, "() missing required argument '", specs[i].name, "'");
  }
  return from_value(Dispatcher::get().call(op, boxed));
}

// ---- NumPy interop --------------------------------------------------------------------------

nb::dlpack::dtype to_dlpack(ScalarType t) {
  using nb::dlpack::dtype_code;
  auto mk = [](dtype_code c, int bits) { return nb::dlpack::dtype{static_cast<uint8_t>(c), static_cast<uint8_t>(bits), 1}; };
  switch (t) {
    case ScalarType::Bool: return mk(dtype_code::Bool, 8);
    case ScalarType::UInt8: return mk(dtype_code::UInt, 8);
    case ScalarType::Int8: return mk(dtype_code::Int, 8);
    case ScalarType::Int16: return mk(dtype_code::Int, 16);
    case ScalarType::Int32: return mk(dtype_code::Int, 32);
    case ScalarType::Int64: return mk(dtype_code::Int, 64);
    case ScalarType::Float16: return mk(dtype_code::Float, 16);
    case ScalarType::BFloat16: return mk(dtype_code::Bfloat, 16);
    case ScalarType::Float32: return mk(dtype_code::Float, 32);
    case ScalarType::Float64: return mk(dtype_code::Float, 64);
  }
  VBT_INTERNAL_ASSERT(false);
}

ScalarType from_dlpack(nb::dlpack::dtype d) {
  using nb::dlpack::dtype_code;
  auto code = static_cast<dtype_code>(d.code);
  if (d.lanes == 1) {
    if (code == dtype_code::Bool && d.bits == 8) return ScalarType::Bool;
    if (code == dtype_code::UInt && d.bits == 8) return ScalarType::UInt8;
    if (code == dtype_code::Int) {
      if (d.bits == 8) return ScalarType::Int8;
      if (d.bits == 16) return ScalarType::Int16;
      if (d.bits == 32) return ScalarType::Int32;
      if (d.bits == 64) return ScalarType::Int64;
    }
    if (code == dtype_code::Float) {
      if (d.bits == 16) return ScalarType::Float16;
      if (d.bits == 32) return ScalarType::Float32;
      if (d.bits == 64) return ScalarType::Float64;
    }
    if (code == dtype_code::Bfloat && d.bits == 16) return ScalarType::BFloat16;
  }
  throw_error(ErrorKind::Type, "from_numpy: can't convert np.ndarray of this type (dtype code ", int(d.code), ", ",
              int(d.bits), " bits); the only supported types are: float64, float32, float16, int64, int32, int16, int8, "
              "uint8, and bool.");
}

Tensor from_numpy(nb::ndarray<nb::ro, nb::device::cpu> arr) {
  ScalarType dt = from_dlpack(arr.dtype());
  size_t nd = arr.ndim();
  Shape sizes(nd), strides(nd);
  int64_t max_off = 0;
  bool empty_arr = false;
  for (size_t d = 0; d < nd; ++d) {
    sizes[d] = static_cast<int64_t>(arr.shape(d));
    strides[d] = arr.stride(d);
    VBT_CHECK_VALUE(strides[d] >= 0, "from_numpy: At least one stride in the given numpy array is negative, and tensors "
                    "with negative strides are not currently supported. (You can probably work around this by making a "
                    "copy of your array  with array.copy().)");
    if (sizes[d] == 0) empty_arr = true;
    else max_off += (sizes[d] - 1) * strides[d];
  }
  size_t nbytes = empty_arr ? 0 : static_cast<size_t>((max_off + 1) * itemsize(dt));
  auto* keep = new nb::ndarray<nb::ro, nb::device::cpu>(arr);
  auto st = std::make_shared<StorageImpl>();
  st->data_ptr = wrap_foreign_memory(const_cast<void*>(arr.data()), Device{}, [keep] { delete keep; });
  st->nbytes = nbytes;
  return Tensor(std::make_shared<TensorImpl>(st, dt, sizes, strides, 0));
}

nb::object to_numpy(const Tensor& t) {
  VBT_CHECK_TYPE(t.dtype() != ScalarType::BFloat16, "Got unsupported ScalarType BFloat16");
  VBT_CHECK_TYPE(t.device().type == DeviceType::CPU, "can't convert ", t.device().str(),
                 " device type tensor to numpy. Use Tensor.cpu() to copy the tensor to host memory first.");
  std::vector<size_t> shape(t.sizes().begin(), t.sizes().end());
  nb::capsule owner(new Tensor(t), [](void* p) noexcept { delete static_cast<Tensor*>(p); });
  nb::ndarray<nb::numpy> arr(t.data_ptr(), shape.size(), shape.data(), owner, t.strides().data(), to_dlpack(t.dtype()));
  return nb::cast(arr, nb::rv_policy::reference);
}

// Generator.get_state(): the state bytes as a 1-D uint8 tensor (torch's ByteTensor).
Tensor generator_state_tensor(Generator& g) {
  std::string st = g.get_state();
  Tensor t = empty({static_cast<int64_t>(st.size())}, ScalarType::UInt8);
  std::memcpy(t.data_ptr(), st.data(), st.size());
  return t;
}

// Generator.set_state(state): state must be a 1-D uint8 CPU tensor from get_state().
void set_generator_state(Generator& g, nb::handle state) {
  if (!nb::isinstance<Tensor>(state))
    throw_error(ErrorKind::Type, "expected a torch.ByteTensor, but got ", nb::type_name(state.type()).c_str());
  const Tensor& t = nb::cast<const Tensor&>(state);
  VBT_CHECK_TYPE(t.dtype() == ScalarType::UInt8 && t.device().type == DeviceType::CPU,
                 "RNG state must be a torch.ByteTensor (a uint8 CPU tensor), got ", dtype_name(t.dtype()), " on ",
                 t.device().str());
  VBT_CHECK(t.dim() == 1, "set_state: expected a 1-D RNG state tensor, got shape ", shape_str(t.sizes()));
  std::string bytes(static_cast<size_t>(t.numel()), '\0');
  const uint8_t* p = t.data<uint8_t>();
  for (int64_t i = 0; i < t.numel(); ++i) bytes[static_cast<size_t>(i)] = static_cast<char>(p[i * t.strides()[0]]);
  g.set_state(bytes);
}

// Builds a tensor from a flat Python list of numbers (the overlay flattens nested lists).
Tensor tensor_from_flat(nb::list values, const Shape& shape, nb::handle dtype_h) {
  ScalarType dt = nb::cast<PyDType&>(dtype_h).type;
  Tensor t = empty(shape, dt);
  VBT_CHECK_VALUE(static_cast<int64_t>(values.size()) == t.numel(), "tensor: expected ", t.numel(), " values for shape ",
                  shape_str(shape), ", got ", values.size());
  VBT_DISPATCH_ALL(dt, "tensor", [&]<typename T>() {
    T* p = t.data<T>();
    size_t i = 0;
    for (nb::handle h : values) {
      if (!is_py_number(h)) {
        std::string tname = nb::type_name(h.type()).c_str();
        throw_error(ErrorKind::Type, "tensor(): new(): invalid data type '", tname, "'");
      }
      p[i++] = to_scalar(h).to<T>();
    }
  });
  return t;
}

std::string device_repr(const Device& d) {
  if (d.index < 0) return "device(type='" + std::string(d.type == DeviceType::CPU ? "cpu" : "cuda") + "')";
  return "device(type='cuda', index=" + std::to_string(d.index) + ")";
}

}  // namespace

// vbt::warn -> Python UserWarning; when warnings are errors, the Python exception propagates.
void python_warning_handler(const std::string& msg) {
  nb::gil_scoped_acquire gil;
  if (PyErr_WarnEx(PyExc_UserWarning, msg.c_str(), 1) != 0) throw nb::python_error();
}

const char* out_mode_name(OutMode m) {
  switch (m) {
    case OutMode::Kernel: return "kernel";
    case OutMode::Exact: return "exact";
    case OutMode::Cast: return "cast";
    case OutMode::DtypeFromOut: return "dtype_from_out";
  }
  return "kernel";
}

NB_MODULE(_C, m) {
  set_warning_handler(&python_warning_handler);
  m.doc() = "vibetensor native core (private; use vibetensor.torch)";

  nb::register_exception_translator([](const std::exception_ptr& p, void*) {
    try {
      std::rethrow_exception(p);
    } catch (const vbt::Error& e) {
      PyObject* type = PyExc_RuntimeError;
      switch (e.kind()) {
        case ErrorKind::Value: type = PyExc_ValueError; break;
        case ErrorKind::Index: type = PyExc_IndexError; break;
        case ErrorKind::Type: type = PyExc_TypeError; break;
        case ErrorKind::NotImplemented: type = PyExc_NotImplementedError; break;
        case ErrorKind::Runtime: type = PyExc_RuntimeError; break;
      }
      PyErr_SetString(type, e.what());
    }
  });

  nb::class_<PyDType>(m, "dtype")
      .def_prop_ro("is_floating_point", [](const PyDType& d) { return is_floating(d.type); })
      .def_prop_ro("is_signed", [](const PyDType& d) { return d.type != ScalarType::Bool && d.type != ScalarType::UInt8; })
      .def_prop_ro("itemsize", [](const PyDType& d) { return itemsize(d.type); })
      .def_prop_ro("name", [](const PyDType& d) { return std::string(dtype_name(d.type)); })
      .def("__repr__", [](const PyDType& d) { return std::string("torch.") + dtype_name(d.type); })
      .def("__reduce__", [](const PyDType& d) { return std::string(dtype_name(d.type)); });
  for (int i = 0; i < kNumScalarTypes; ++i) {
    nb::object o = nb::cast(PyDType{static_cast<ScalarType>(i)}, nb::rv_policy::move);
    m.attr(dtype_name(static_cast<ScalarType>(i))) = o;
    dtype_objects().push_back(o.ptr());
  }

  nb::class_<PyDevice>(m, "device")
      .def("__init__", [](PyDevice* self, const std::string& s) { new (self) PyDevice{Device::parse(s)}; })
      .def("__init__", [](PyDevice* self, const std::string& type, int index) {
        Device d = Device::parse(type);
        d.index = static_cast<int16_t>(index);
        new (self) PyDevice{d};
      })
      .def_prop_ro("type", [](const PyDevice& d) { return std::string(d.device.type == DeviceType::CPU ? "cpu" : "cuda"); })
      .def_prop_ro("index", [](const PyDevice& d) -> nb::object {
        return d.device.index < 0 ? nb::none() : nb::cast(static_cast<int>(d.device.index));
      })
      .def("__eq__", [](const PyDevice& a, nb::handle b) {
        if (nb::isinstance<PyDevice>(b)) return a.device == nb::cast<PyDevice&>(b).device;
        if (nb::isinstance<nb::str>(b)) return a.device.str() == nb::cast<std::string>(b);
        return false;
      })
      .def("__hash__", [](const PyDevice& d) { return std::hash<std::string>()(d.device.str()); })
      .def("__str__", [](const PyDevice& d) { return d.device.str(); })
      .def("__repr__", [](const PyDevice& d) { return device_repr(d.device); });

  nb::class_<PyGenerator>(m, "Generator")
      .def("__init__", [](PyGenerator* self, nb::handle device) {
        (void)device;
        new (self) PyGenerator{std::make_shared<Generator>()};
      }, nb::arg("device") = nb::none())
      .def("manual_seed", [](nb::handle self, int64_t seed) {
        nb::cast<PyGenerator&>(self).gen->manual_seed(static_cast<uint64_t>(seed));
        return nb::borrow(self);
      })
      .def("initial_seed", [](const PyGenerator& g) { return g.gen->initial_seed(); })
      .def("seed", [](PyGenerator& g) {
        uint64_t s = std::random_device{}();
        g.gen->manual_seed(s);
        return s;
      })
      .def("get_state", [](PyGenerator& g) { return generator_state_tensor(*g.gen); })
      .def("set_state", [](nb::handle self, nb::handle state) {
        set_generator_state(*nb::cast<PyGenerator&>(self).gen, state);
        return nb::borrow(self);
      });
  m.def("default_generator", [] { return PyGenerator{default_generator()}; });
  m.def("manual_seed", [](int64_t seed) { default_generator()->manual_seed(static_cast<uint64_t>(seed)); });
  m.def("initial_seed", [] { return default_generator()->initial_seed(); });

  nb::class_<Tensor>(m, "Tensor", nb::dynamic_attr())
      .def_prop_ro("shape", [](const Tensor& t) { return t.sizes(); })
      .def("_sizes", [](const Tensor& t) { return t.sizes(); })
      .def("_strides", [](const Tensor& t) { return t.strides(); })
      .def_prop_ro("dtype", [](const Tensor& t) { return dtype_object(t.dtype()); })
      .def_prop_ro("device", [](const Tensor& t) { return PyDevice{t.device()}; })
      .def_prop_ro("_version", [](const Tensor& t) { return t.impl()->version(); })
      .def_prop_ro("ndim", [](const Tensor& t) { return t.dim(); })
      .def_prop_ro("is_cuda", [](const Tensor& t) { return t.device().type == DeviceType::CUDA; })
      .def("dim", [](const Tensor& t) { return t.dim(); })
      .def("numel", [](const Tensor& t) { return t.numel(); })
      .def("storage_offset", [](const Tensor& t) { return t.storage_offset(); })
      .def("data_ptr", [](const Tensor& t) { return reinterpret_cast<uintptr_t>(t.data_ptr()); })
      .def("element_size", [](const Tensor& t) { return itemsize(t.dtype()); })
      .def("is_contiguous", [](const Tensor& t) { return t.is_contiguous(); })
      .def("_is_wrapped_number", [](const Tensor& t) { return t.impl()->wrapped_number; })
      .def("_storage_id", [](const Tensor& t) { return reinterpret_cast<uintptr_t>(t.impl()->storage().get()); })
      .def("_storage_nbytes", [](const Tensor& t) { return t.impl()->storage()->nbytes; })
      .def("_bump_version", [](const Tensor& t) { t.impl()->bump_version(); })
      .def("_is_same", [](const Tensor& a, const Tensor& b) { return a.is_same(b); })
      .def("_numpy_view", &to_numpy);

  m.def("call", &call, nb::arg("name"), nb::arg("args"), nb::arg("kwargs"));
  m.def("from_numpy", &from_numpy);
  m.def("tensor_from_flat", &tensor_from_flat);
  m.def("op_schemas", [] {
    std::vector<std::string> out;
    for (const OpHandle& h : Dispatcher::get().ops()) out.push_back(h.def.schema);
    return out;
  });
  // name -> how its out= is honoured (Note [out= by the dispatcher]); only ops with an `out` argument
  m.def("op_out_modes", [] {
    nb::dict d;
    for (const OpHandle& h : Dispatcher::get().ops())
      if (h.out_index >= 0) d[h.def.name] = out_mode_name(h.def.out_mode);
    return d;
  });
  // The out= epilogue of op `name` for a result computed by an overlay function: returns out.
  m.def("_write_out", [](const std::string& name, const Tensor& out, const Tensor& result) {
    const Dispatcher& d = Dispatcher::get();
    return d.write_out(d.find(name), out, result);
  });
  m.def("get_num_threads", &get_num_threads);
  m.def("set_num_threads", &set_num_threads);
  m.def("_parallel_regions", &parallel_regions);
  m.def("result_type_of", [](const std::vector<Tensor>& ts) {
    std::vector<bool> wr;
    for (const Tensor& t : ts) wr.push_back(t.impl()->wrapped_number);
    return dtype_object(result_type(ts, wr));
  });
  m.def("promote_types", [](const PyDType& a, const PyDType& b) { return dtype_object(promote_types(a.type, b.type)); });
  m.def("scalar_tensor", [](nb::handle v, nb::handle dtype_h) {
    Scalar s = to_scalar(v);
    ScalarType dt = dtype_h.is_none() ? s.natural_dtype() : nb::cast<PyDType&>(dtype_h).type;
    Tensor t = scalar_to_tensor(s, dt);
    if (dtype_h.is_none()) t.impl()->wrapped_number = true;
    return t;
  }, nb::arg("value"), nb::arg("dtype").none());

  // ---- optional subsystems (after the core types exist, so they can refer to them)
#ifdef VBT_HAS_AUTOGRAD
  vbt_bind_autograd(m);
#endif
#ifdef VBT_HAS_INTEROP
  vbt_bind_interop(m);
#endif
#ifdef VBT_HAS_CUDA
  vbt_bind_cuda(m);
#endif
}
