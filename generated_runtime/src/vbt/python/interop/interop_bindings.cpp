// Python binding of the interop subsystem (DLPack capsules, SafeTensors, plugins, Python op
// overrides), called from module.cpp as vbt_bind_interop(m) under VBT_HAS_INTEROP.
// Policy: private helpers only (names start with '_'); the public API is the pure-Python layer in
// vibetensor/interop, vibetensor/safetensors and vibetensor/torch/library.
// Capsule protocol: a capsule named "dltensor[_versioned]" owns its managed tensor until a consumer
// renames it "used_dltensor[_versioned]"; the capsule destructor frees only an unconsumed one.
#include <nanobind/nanobind.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/map.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <system_error>

#include "vbt/interop/dlpack_convert.h"
#include "vbt/interop/safetensors.h"

namespace nb = nanobind;
using namespace vbt;

#ifdef VBT_HAS_PLUGINS
void vbt_bind_plugins(nanobind::module_& m);
#endif

namespace {

constexpr const char* kVersionedName = "dltensor_versioned";
constexpr const char* kLegacyName = "dltensor";
constexpr const char* kUsedVersionedName = "used_dltensor_versioned";
constexpr const char* kUsedLegacyName = "used_dltensor";

void versioned_capsule_destructor(PyObject* cap) {
  if (!PyCapsule_IsValid(cap, kVersionedName)) return;  // consumed (renamed) capsules own nothing
  auto* m = static_cast<DLManagedTensorVersioned*>(PyCapsule_GetPointer(cap, kVersionedName));
  if (m && m->deleter) m->deleter(m);
}

void legacy_capsule_destructor(PyObject* cap) {
  if (!PyCapsule_IsValid(cap, kLegacyName)) return;
  auto* m = static_cast<DLManagedTensor*>(PyCapsule_GetPointer(cap, kLegacyName));
  if (m && m->deleter) m->deleter(m);
}

nb::object to_capsule(const Tensor& t, bool versioned, bool copy) {
  PyObject* cap = nullptr;
  if (versioned) {
    DLManagedTensorVersioned* m = interop::to_dlpack_versioned(t, copy);
    cap = PyCapsule_New(m, kVersionedName, &versioned_capsule_destructor);
    if (!cap) { m->deleter(m); throw nb::python_error(); }
  } else {
    DLManagedTensor* m = interop::to_dlpack_legacy(t, copy);
    cap = PyCapsule_New(m, kLegacyName, &legacy_capsule_destructor);
    if (!cap) { m->deleter(m); throw nb::python_error(); }
  }
  return nb::steal(cap);
}

Tensor from_capsule(nb::handle cap) {
  PyObject* c = cap.ptr();
  VBT_CHECK_TYPE(PyCapsule_CheckExact(c), "from_dlpack: expected a DLPack capsule, got ",
                 nb::type_name(cap.type()).c_str());
  const char* name = PyCapsule_GetName(c);
  std::string n = name ? name : "";
  if (n == kUsedVersionedName || n == kUsedLegacyName)
    throw_error(ErrorKind::Value, "from_dlpack: this DLPack capsule was already consumed (a capsule can be imported once)");
  if (n == kVersionedName) {
    auto* m = static_cast<DLManagedTensorVersioned*>(PyCapsule_GetPointer(c, kVersionedName));
    Tensor t = interop::from_dlpack_versioned(m);  // throws before taking ownership
    PyCapsule_SetName(c, kUsedVersionedName);
    return t;
  }
  if (n == kLegacyName) {
    auto* m = static_cast<DLManagedTensor*>(PyCapsule_GetPointer(c, kLegacyName));
    Tensor t = interop::from_dlpack_legacy(m);
    PyCapsule_SetName(c, kUsedLegacyName);
    return t;
  }
  throw_error(ErrorKind::Type, "from_dlpack: not a DLPack capsule (capsule name '", n, "')");
}

// Foreign (Python producer) deleters may touch Python objects: run them holding the GIL.
void run_with_gil(void (*fn)(void*), void* arg) {
  if (!Py_IsInitialized()) return;  // interpreter gone: leaking beats crashing
#if PY_VERSION_HEX >= 0x030D0000
  if (Py_IsFinalizing()) return;
#endif
  PyGILState_STATE s = PyGILState_Ensure();
  fn(arg);
  PyGILState_Release(s);
}

nb::object contents_to_py(interop::SafeTensorsContents&& c) {
  nb::list names, tensors;
  for (auto& [name, t] : c.tensors) {
    names.append(nb::str(name.data(), name.size()));
    tensors.append(nb::cast(std::move(t)));
  }
  nb::object meta = nb::none();
  if (c.metadata) meta = nb::cast(*c.metadata);
  return nb::make_tuple(names, tensors, meta);
}

interop::NamedTensors named_from_py(const std::vector<std::string>& names, const std::vector<Tensor>& tensors) {
  VBT_CHECK_VALUE(names.size() == tensors.size(), "safetensors: ", names.size(), " names but ", tensors.size(), " tensors");
  interop::NamedTensors out;
  out.reserve(names.size());
  for (size_t i = 0; i < names.size(); ++i) {
    VBT_CHECK_VALUE(tensors[i].defined(), "safetensors: tensor '", names[i], "' is undefined");
    VBT_CHECK_VALUE(tensors[i].device().type == DeviceType::CPU, "safetensors: tensor '", names[i], "' is on ",
                    tensors[i].device().str(), "; only CPU tensors can be saved (call .cpu() first)");
    out.emplace_back(names[i], tensors[i]);
  }
  return out;
}

}  // namespace

void vbt_bind_interop(nb::module_& m) {
  interop::set_foreign_deleter_runner(&run_with_gil);

  nb::register_exception_translator([](const std::exception_ptr& p, void*) {
    try {
      std::rethrow_exception(p);
    } catch (const std::system_error& e) {
      int err = e.code().value();
      PyObject* type = err == ENOENT ? PyExc_FileNotFoundError : PyExc_OSError;
      PyObject* args = Py_BuildValue("(is)", err, e.what());
      if (args) {
        PyErr_SetObject(type, args);
        Py_DECREF(args);
      }
    }
  });

  m.def("_to_dlpack", &to_capsule, nb::arg("tensor"), nb::arg("versioned") = true, nb::arg("copy") = false,
        "A DLPack capsule viewing the tensor (zero-copy unless copy=True).");
  m.def("_from_dlpack_capsule", &from_capsule, nb::arg("capsule"),
        "Imports a 'dltensor' / 'dltensor_versioned' capsule (zero-copy when writable and aligned).");
  m.def("_dlpack_device", [](const Tensor& t) {
    DLDevice d = interop::to_dlpack_device(t.device());
    return nb::make_tuple(static_cast<int>(d.device_type), static_cast<int>(d.device_id));
  });
  m.def("_dlpack_max_version", [] { return nb::make_tuple(DLPACK_MAJOR_VERSION, DLPACK_MINOR_VERSION); });

  m.def("_safetensors_load_file", [](const std::string& path) {
    interop::SafeTensorsContents c;
    {
      nb::gil_scoped_release release;
      c = interop::load_safetensors_file(path);
    }
    return contents_to_py(std::move(c));
  }, nb::arg("path"));
  m.def("_safetensors_load_bytes", [](nb::bytes data) {
    return contents_to_py(interop::load_safetensors_bytes(data.c_str(), data.size(), "<bytes>"));
  }, nb::arg("data"));
  m.def("_safetensors_save_bytes", [](const std::vector<std::string>& names, const std::vector<Tensor>& tensors,
                                      const std::optional<std::map<std::string, std::string>>& metadata) {
    std::string s = interop::save_safetensors_bytes(named_from_py(names, tensors), metadata);
    return nb::bytes(s.data(), s.size());
  }, nb::arg("names"), nb::arg("tensors"), nb::arg("metadata").none());
  m.def("_safetensors_save_file", [](const std::vector<std::string>& names, const std::vector<Tensor>& tensors,
                                     const std::optional<std::map<std::string, std::string>>& metadata,
                                     const std::string& path) {
    interop::save_safetensors_file(named_from_py(names, tensors), metadata, path);
  }, nb::arg("names"), nb::arg("tensors"), nb::arg("metadata").none(), nb::arg("path"));

#ifdef VBT_HAS_PLUGINS
  vbt_bind_plugins(m);
#endif
}
