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
#ifdef VBT_WITH_CUDA
#include <cuda_runtime_api.h>

#include <cstdint>

#include "vbt/cuda/cuda_error.h"
#include "vbt/cuda/device_guard.h"
#include "vbt/cuda/stream.h"
#endif

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

#ifdef VBT_WITH_CUDA
// Note [DLPack CUDA streams]: the DLPack stream handshake. A consumer passes its stream to the producer's
// __dlpack__(stream=...) as an integer: 1 the legacy default stream, 2 the per-thread default stream, any
// other value a cudaStream_t; -1 asks for no synchronisation (handled in Python). The producer makes that
// stream wait for the work queued so far on its own current stream (an event recorded on it), so the
// consumer may use the data on its stream at once.
int cuda_device_count_or_zero() {
  try {
    return vbt::cuda::device_count();
  } catch (const std::exception&) {
    return 0;  // no driver: CUDA tensors then fail the device-id check
  }
}

cudaStream_t stream_from_dlpack(int64_t s) {
  if (s == 1) return cudaStreamLegacy;
  if (s == 2) return cudaStreamPerThread;
  return reinterpret_cast<cudaStream_t>(static_cast<intptr_t>(s));
}

// The integer vibetensor passes as consumer: its current stream on `device` (1 for the legacy default one).
int64_t dlpack_consumer_stream(int device) {
  cudaStream_t h = vbt::cuda::current_stream(device).handle();
  return h == nullptr ? 1 : static_cast<int64_t>(reinterpret_cast<intptr_t>(h));
}

// Producer side: `consumer` (a DLPack stream integer, not -1) waits for vibetensor's current stream on `device`.
void dlpack_producer_sync(int device, int64_t consumer) {
  VBT_CHECK_VALUE(consumer != 0, "__dlpack__: stream=0 is ambiguous for CUDA and not allowed by the DLPack "
                  "protocol (use 1 for the legacy default stream, 2 for the per-thread default stream)");
  VBT_CHECK_VALUE(consumer > 0, "__dlpack__: invalid CUDA stream ", consumer);
  cudaStream_t producer = vbt::cuda::current_stream(device).handle();
  cudaStream_t target = stream_from_dlpack(consumer);
  if (target == producer || (producer == nullptr && target == cudaStreamLegacy)) return;  // already in order
  vbt::cuda::DeviceGuard guard(device);
  cudaEvent_t ev = nullptr;
  VBT_CUDA_CHECK(cudaEventCreateWithFlags(&ev, cudaEventDisableTiming));
  cudaError_t e = cudaEventRecord(ev, producer);
  if (e == cudaSuccess) e = cudaStreamWaitEvent(target, ev, 0);
  cudaEventDestroy(ev);  // released once the wait completes
  VBT_CUDA_CHECK(e);
}
#endif

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
#ifdef VBT_WITH_CUDA
  interop::set_cuda_device_count_fn(&cuda_device_count_or_zero);  // Note [DLPack CUDA import]
  m.def("_dlpack_cuda", [] { return true; });
  m.def("_dlpack_consumer_stream", &dlpack_consumer_stream, nb::arg("device"));
  m.def("_dlpack_producer_sync", &dlpack_producer_sync, nb::arg("device"), nb::arg("stream"));
#else
  m.def("_dlpack_cuda", [] { return false; });
#endif

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
