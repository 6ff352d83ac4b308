// Python binding of the autograd subsystem: private _C._ag_* functions and the Node class.
// The public API (Tensor.requires_grad/.grad/.backward..., vt.autograd, no_grad) is written in
// python/vibetensor/torch/autograd on top of these. Called by module.cpp under VBT_HAS_AUTOGRAD.
#include <nanobind/nanobind.h>
#include <nanobind/stl/function.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/shared_ptr.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <optional>

#include "vbt/autograd/autograd.h"
#include "vbt/core/error.h"

namespace nb = nanobind;
using namespace vbt;
namespace ag = vbt::autograd;

namespace {

std::vector<Tensor> to_tensors(nb::handle seq) {
  std::vector<Tensor> out;
  for (nb::handle h : nb::borrow<nb::sequence>(seq)) out.push_back(h.is_none() ? Tensor() : nb::cast<Tensor>(h));
  return out;
}

nb::object tensor_or_none(const Tensor& t) { return t.defined() ? nb::cast(t) : nb::none(); }

nb::list tensors_to_list(const std::vector<Tensor>& ts) {
  nb::list l;
  for (const Tensor& t : ts) l.append(tensor_or_none(t));
  return l;
}

// A Python callable as a gradient hook (None result keeps the gradient).
ag::GradHook py_hook(nb::object fn) {
  return [fn](const Tensor& g) -> Tensor {
    nb::object r = fn(nb::cast(g));
    return r.is_none() ? Tensor() : nb::cast<Tensor>(r);
  };
}

}  // namespace

void vbt_bind_autograd(nb::module_& m) {
  ag::install();

  nb::class_<ag::Node>(m, "_AutogradNode")
      .def("name", &ag::Node::name)
      .def_prop_ro("next_functions", [](const ag::Node& n) {
        nb::list l;
        for (const ag::Edge& e : n.next_edges) {
          if (e.fn) l.append(nb::make_tuple(nb::cast(e.fn), e.input_nr));
          else l.append(nb::make_tuple(nb::none(), 0));
        }
        return nb::tuple(l);
      })
      .def_prop_ro("_sequence_nr", [](const ag::Node& n) { return n.sequence_nr; })
      .def("_id", [](const ag::Node& n) { return reinterpret_cast<uintptr_t>(&n); })
      .def_prop_ro("variable", [](const ag::Node& n) -> nb::object {
        if (auto* acc = dynamic_cast<const ag::AccumulateGrad*>(&n)) return nb::cast(Tensor(acc->variable));
        throw nb::attribute_error("variable");
      })
      .def("__repr__", [](const ag::Node& n) {
        char buf[64];
        std::snprintf(buf, sizeof(buf), " object at 0x%llx>", static_cast<unsigned long long>(reinterpret_cast<uintptr_t>(&n)));
        return "<" + n.name() + buf;
      });

  m.def("_ag_requires_grad", [](const Tensor& t) { return ag::requires_grad(t); });
  m.def("_ag_set_requires_grad", [](const Tensor& t, bool v) { ag::set_requires_grad(t, v); });
  m.def("_ag_is_leaf", [](const Tensor& t) { return ag::is_leaf(t); });
  m.def("_ag_grad_fn", [](const Tensor& t) -> nb::object {
    auto fn = ag::grad_fn(t);
    return fn ? nb::cast(fn) : nb::none();
  });
  m.def("_ag_output_nr", [](const Tensor& t) -> uint32_t {
    ag::AutogradMeta* meta = ag::get_meta(t);
    return meta ? meta->output_nr : 0;
  });
  m.def("_ag_grad", [](const Tensor& t) -> nb::object {
    ag::AutogradMeta* meta = ag::get_meta(t);
    return meta && meta->grad.defined() ? nb::cast(meta->grad) : nb::none();
  });
  m.def("_ag_set_grad", [](const Tensor& t, nb::handle g) {
    if (g.is_none()) {
      if (ag::AutogradMeta* meta = ag::get_meta(t)) meta->grad = Tensor();
      return;
    }
    Tensor gt = nb::cast<Tensor>(g);
    VBT_CHECK(gt.sizes() == t.sizes(), "assigned grad has data of a different size");
    VBT_CHECK(gt.dtype() == t.dtype(), "assigned grad has data of a different type");
    ag::get_or_create_meta(t).grad = gt;
  }, nb::arg("t"), nb::arg("g").none());
  m.def("_ag_retains_grad", [](const Tensor& t) {
    ag::AutogradMeta* meta = ag::get_meta(t);
    return meta && meta->retains_grad;
  });
  m.def("_ag_retain_grad", [](const Tensor& t) { ag::retain_grad(t); });
  m.def("_ag_detach", [](const Tensor& t) { return ag::detach(t); });
  m.def("_ag_detach_", [](const Tensor& t) { ag::detach_(t); });
  m.def("_ag_register_hook", [](const Tensor& t, nb::object fn) { ag::register_hook(t, py_hook(std::move(fn))); });
  m.def("_ag_is_grad_enabled", [] { return ag::GradMode::is_enabled(); });
  m.def("_ag_set_grad_enabled", [](bool v) { ag::GradMode::set_enabled(v); });
  m.def("_ag_backward", [](nb::handle outputs, nb::handle grads, bool retain_graph, bool create_graph, nb::handle inputs) {
    ag::backward(to_tensors(outputs), to_tensors(grads), retain_graph, create_graph,
                 inputs.is_none() ? std::vector<Tensor>{} : to_tensors(inputs));
  }, nb::arg("outputs"), nb::arg("grads"), nb::arg("retain_graph"), nb::arg("create_graph"), nb::arg("inputs").none());
  m.def("_ag_run_grad", [](nb::handle outputs, nb::handle grads, nb::handle inputs, bool retain_graph, bool create_graph,
                           bool allow_unused) {
    return tensors_to_list(ag::grad(to_tensors(outputs), to_tensors(grads), to_tensors(inputs), retain_graph,
                                    create_graph, allow_unused));
  });
  // Custom function node: backward_fn(list of grads) -> sequence of Tensor|None (one per input);
  // release_fn() is called when the graph is freed (retain_graph=False).
  m.def("_ag_make_custom_node", [](const std::string& name, nb::handle inputs, nb::handle outputs, nb::object backward_fn,
                                   nb::object release_fn) {
    std::vector<Tensor> ins = to_tensors(inputs), outs = to_tensors(outputs);
    size_t n_in = ins.size();
    auto node = ag::make_custom_node(name, ins, outs, [backward_fn, n_in](std::vector<Tensor>&& grads) {
      nb::object r = backward_fn(tensors_to_list(grads));
      std::vector<Tensor> res;
      if (nb::isinstance<Tensor>(r)) res.push_back(nb::cast<Tensor>(r));
      else res = to_tensors(r);
      if (res.size() < n_in) {
        throw_error(ErrorKind::Runtime, "function backward returned an incorrect number of gradients (expected ", n_in,
                    ", got ", res.size(), ")");
      }
      res.resize(n_in);
      return res;
    });
    if (!release_fn.is_none()) node->on_release = [release_fn] { release_fn(); };
    return std::static_pointer_cast<ag::Node>(node);
  }, nb::arg("name"), nb::arg("inputs"), nb::arg("outputs"), nb::arg("backward_fn"), nb::arg("release_fn").none());
  m.def("_ag_ops_with_backward", [] { return ag::ops_with_backward(); });
  m.def("_ag_nondifferentiable_ops", [] { return ag::nondifferentiable_ops(); });
}
